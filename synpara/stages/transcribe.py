"""transcribe: every word with a start, an end, a probability and a speaker (faster-whisper).

The default model is Whisper base (multilingual) from the packaged weights (see
``synpara.models.load_whisper``); ``tiny.en`` is the fast option, and ``--model`` takes any local
CTranslate2 directory or, when online, a hub name.

Output, per cut: ``alignment["word"]`` items in recording time with the word probability as
score; one supervision per speaker turn. When the input cut carries diarization turns (supervisions
with a ``speaker``), each word goes to the turn it overlaps most (the nearest turn when none), and
each turn becomes one supervision holding its words (a turn with no words is kept with empty text:
it may hold a laugh or a breath). Without turns, all words get the speaker ``<recording_id>-S0``
and supervisions split at pauses longer than ``max_pause``. Existing ``alignment["event"]`` items
are kept.

:func:`transcribe_words` is the reusable core (refine re-transcribes split halves with it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.audio import SAMPLE_RATE, load_cut_audio
from synpara.errors import SynparaError
from synpara.manifest import EVENT, WORD, alignment_item, attach_events, round_time, synpara_meta
from synpara.stage import RecordContext, Reject, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut
    from lhotse.supervision import AlignmentItem, SupervisionSegment

logger = logging.getLogger(__name__)

#: A prompt in the style of spontaneous speech: Whisper imitates its prompt's style, so it keeps
#: fillers and hesitations it would otherwise drop as disfluencies.
VERBATIM_PROMPT = "Um, so, uh, I was like, hmm... well, you know, I mean, uh, yeah. Mm-hmm."


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times in seconds (relative to the samples given, plus ``offset``)."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class WhisperOptions:
    """Decoding options of :func:`transcribe_words` (some of faster-whisper's, our defaults).

    >>> WhisperOptions(language="en", beam_size=1).beam_size
    1
    """

    language: str | None = None
    beam_size: int = 5
    batch_size: int = 1
    vad_filter: bool = True
    initial_prompt: str | None = None
    condition_on_previous_text: bool = False
    chunk_seconds: float = 600.0


@dataclass(frozen=True)
class Transcript:
    """Words plus the language they were decoded in."""

    words: list[Word]
    language: str
    language_probability: float


def transcribe_words(
    model: Any, samples: np.ndarray, options: WhisperOptions | None = None, *, offset: float = 0.0
) -> list[Word]:
    """Words of mono 16 kHz float32 ``samples``, in time order, inside the audio, not overlapping.

    ``model`` is a ``faster_whisper.WhisperModel`` (e.g. from ``synpara.models.load_whisper``);
    ``offset`` (seconds) is added to every time, so a caller passing a slice of a recording gets
    recording time back.

    >>> words = transcribe_words(load_whisper("tiny.en"), samples, WhisperOptions(language="en"))
    >>> [(w.text, round(w.start, 2)) for w in words][:2]
    [('And', 0.3), ('so', 0.6)]
    """
    return transcribe_audio(model, samples, options, offset=offset).words


def transcribe_audio(
    model: Any, samples: np.ndarray, options: WhisperOptions | None = None, *, offset: float = 0.0
) -> Transcript:
    """Like :func:`transcribe_words`, plus the language (detected once, on the first chunk).

    Audio longer than ``options.chunk_seconds`` is cut at the longest VAD pause near each chunk
    boundary, so memory stays bounded and no word is cut in two.
    """
    options = options or WhisperOptions()
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise SynparaError(f"transcribe expects mono samples, got shape {samples.shape}")
    language = options.language
    language_probability = 1.0 if language else 0.0
    words: list[Word] = []
    bounds = pause_split_points(samples, int(options.chunk_seconds * SAMPLE_RATE))
    for start_sample, end_sample in zip(bounds[:-1], bounds[1:]):
        chunk = samples[start_sample:end_sample]
        chunk_words, info = _transcribe_chunk(model, chunk, options, language)
        if language is None:
            language, language_probability = info.language, float(info.language_probability)
        chunk_offset = offset + start_sample / SAMPLE_RATE
        words.extend(
            Word(w.start + chunk_offset, w.end + chunk_offset, w.text, w.probability)
            for w in chunk_words
        )
    duration = len(samples) / SAMPLE_RATE
    return Transcript(
        words=_tidy(words, offset, offset + duration),
        language=language or "",
        language_probability=language_probability,
    )


def _transcribe_chunk(
    model: Any, samples: np.ndarray, options: WhisperOptions, language: str | None
) -> tuple[list[Word], Any]:
    kwargs: dict[str, Any] = dict(
        language=language,
        beam_size=options.beam_size,
        word_timestamps=True,
        vad_filter=options.vad_filter,
        initial_prompt=options.initial_prompt,
        condition_on_previous_text=options.condition_on_previous_text,
    )
    if options.batch_size > 1:
        from faster_whisper import BatchedInferencePipeline

        # The batched pipeline needs speech chunks to batch; it always runs its VAD.
        kwargs.pop("condition_on_previous_text")
        kwargs["vad_filter"] = True
        segments, info = BatchedInferencePipeline(model).transcribe(
            samples, batch_size=options.batch_size, **kwargs
        )
    else:
        segments, info = model.transcribe(samples, **kwargs)
    words = [
        Word(float(w.start), float(w.end), w.word.strip(), float(w.probability))
        for segment in segments  # a generator: decoding happens here
        for w in segment.words or []
    ]
    return words, info


def _tidy(words: list[Word], start: float, end: float) -> list[Word]:
    """Sort, clip to ``[start, end]`` and remove overlaps (Whisper's word times can cross by a few
    ms at segment joins); empty tokens are dropped."""
    tidy: list[Word] = []
    previous_end = start
    for word in sorted(words, key=lambda w: (w.start, w.end)):
        if not word.text:
            continue
        word_start = min(max(word.start, previous_end), end)
        word_end = min(max(word.end, word_start), end)
        tidy.append(Word(word_start, word_end, word.text, word.probability))
        previous_end = word_end
    return tidy


def pause_split_points(samples: np.ndarray, max_chunk_samples: int) -> list[int]:
    """Chunk boundaries (sample indices, first 0, last ``len(samples)``) no further apart than
    ``max_chunk_samples``, each placed in the middle of the longest speech pause that Silero VAD
    finds in the second half of the chunk (a hard cut only where there is no pause at all)."""
    total = len(samples)
    if max_chunk_samples <= 0 or total <= max_chunk_samples:
        return [0, total]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    speech = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=300))
    pauses = [(a["end"], b["start"]) for a, b in zip(speech, speech[1:])]
    if speech:
        pauses = [(0, speech[0]["start"]), *pauses, (speech[-1]["end"], total)]
    bounds = [0]
    while total - bounds[-1] > max_chunk_samples:
        low, high = bounds[-1] + max_chunk_samples // 2, bounds[-1] + max_chunk_samples
        # (length of the pause inside the window, its middle) for each pause reaching into it
        clipped = [(max(begin, low), min(stop, high)) for begin, stop in pauses]
        candidates = [(stop - begin, (begin + stop) // 2) for begin, stop in clipped
                      if stop > begin]
        bounds.append(max(candidates)[1] if candidates else high)
    bounds.append(total)
    return bounds


# --------------------------------------------------------------------------- speakers


@dataclass(frozen=True, slots=True)
class Turn:
    """A speaker turn in recording time; ``custom`` is its diarization supervision's (overlap)."""

    start: float
    end: float
    speaker: str
    custom: dict[str, Any] | None = None


def assign_turns(words: list[Word], turns: list[Turn]) -> list[int]:
    """Index of the turn each word overlaps most; the nearest turn when it overlaps none."""
    if not turns:
        return [0] * len(words)
    starts = np.array([t.start for t in turns])
    ends = np.array([t.end for t in turns])
    assigned = []
    for word in words:
        overlap = np.minimum(ends, word.end) - np.maximum(starts, word.start)
        if overlap.max() > 0:
            assigned.append(int(overlap.argmax()))
        else:
            distance = np.maximum(starts - word.end, word.start - ends)
            assigned.append(int(distance.argmin()))
    return assigned


def default_speaker(recording_id: str) -> str:
    """The speaker label of a recording without diarization (the diarize stage's first label)."""
    return f"{recording_id}-S0"


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class TranscribeConfig(StageConfig):
    model: str = field(
        default="base",
        metadata={"help": "base (offline, multilingual), tiny.en (offline, fast), a local "
                  "CTranslate2 Whisper directory, or a hub name (needs a network)"},
    )
    language: str | None = field(
        default=None, metadata={"help": "language code to force (e.g. en); default: detect"}
    )
    beam_size: int = field(default=5, metadata={"help": "beam size (1 = greedy, faster)"})
    batch_size: int = field(
        default=1, metadata={"help": "> 1: batched decoding of VAD chunks (faster on GPU)"}
    )
    vad_filter: bool = field(
        default=True, metadata={"help": "skip non-speech with faster-whisper's Silero VAD"}
    )
    verbatim: bool = field(
        default=False, metadata={"help": "prompt Whisper to keep fillers (um, uh) and hesitations"}
    )
    initial_prompt: str | None = field(
        default=None, metadata={"help": "prompt text (overrides --verbatim's prompt)"}
    )
    chunk_seconds: float = field(
        default=600.0, metadata={"help": "longer audio is cut at VAD pauses into chunks this long"}
    )
    max_pause: float = field(
        default=2.0,
        metadata={"help": "without diarization, a new supervision starts after a pause this long"},
    )
    min_duration: float = field(
        default=0.5, metadata={"help": "reject cuts shorter than this (seconds)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    compute_type: str = field(
        default="auto",
        metadata={"help": "auto (int8 on CPU, float16 on CUDA) or a CTranslate2 compute type"},
    )
    threads: int = field(
        default=0,
        metadata={"help": "CPU threads per worker (0: the executor's cap, else all cores up "
                  "to 4); keep workers x threads <= cores"},
    )

    def validate(self) -> None:
        if self.beam_size < 1:
            raise SynparaError(f"transcribe: beam_size must be >= 1, got {self.beam_size}")
        if self.batch_size < 1:
            raise SynparaError(f"transcribe: batch_size must be >= 1, got {self.batch_size}")
        if self.chunk_seconds < 30:
            raise SynparaError(f"transcribe: chunk_seconds must be >= 30, got {self.chunk_seconds}")
        if self.max_pause <= 0:
            raise SynparaError(f"transcribe: max_pause must be > 0, got {self.max_pause}")
        if self.min_duration < 0:
            raise SynparaError(f"transcribe: min_duration must be >= 0, got {self.min_duration}")
        if self.threads < 0:
            raise SynparaError(f"transcribe: threads must be >= 0, got {self.threads}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise SynparaError(f"transcribe: device must be auto, cpu or cuda, got {self.device!r}")

    def whisper_options(self) -> WhisperOptions:
        prompt = self.initial_prompt or (VERBATIM_PROMPT if self.verbatim else None)
        return WhisperOptions(
            language=self.language,
            beam_size=self.beam_size,
            batch_size=self.batch_size,
            vad_filter=self.vad_filter,
            initial_prompt=prompt,
            chunk_seconds=self.chunk_seconds,
        )


class Transcribe(Stage[TranscribeConfig]):
    """Words with times, probabilities and speakers, from faster-whisper.

    Example::

        stage = Transcribe(TranscribeConfig(model="tiny.en", beam_size=1))
        stage.setup()
        cut = stage.process(cut, context)
        [(w.symbol, w.start, w.score) for w in cut.supervisions[0].alignment["word"]]
    """

    name = "transcribe"
    version = "1"
    Config = TranscribeConfig

    def setup(self, threads: int = 0) -> None:
        from synpara.models.files import cpu_threads
        from synpara.models.whisper import load_whisper

        config = self.config
        self.model = load_whisper(config.model, config.device, config.compute_type,
                                  cpu_threads(config.threads, threads))

    @property
    def model_id(self) -> str:
        return f"faster-whisper:{self.config.model}"

    def process(self, cut: Cut, context: RecordContext) -> Cut | Reject:
        config = self.config
        if cut.duration < config.min_duration:
            return Reject(
                f"too short to transcribe ({cut.duration:.2f} s < {config.min_duration} s)"
            )
        try:
            samples = load_cut_audio(cut)
        except SynparaError as error:
            return Reject(str(error))
        options = config.whisper_options()
        transcript = transcribe_audio(self.model, samples, options, offset=cut.start)
        if not transcript.words:
            return Reject("no words recognised (silence, noise or no speech)")
        turns = [
            Turn(cut.start + s.start, cut.start + s.end, s.speaker, s.custom)
            for s in cut.supervisions
            if s.speaker is not None
        ]
        events = [item for s in cut.supervisions for item in (s.alignment or {}).get(EVENT, [])]
        if turns:
            supervisions = _supervisions_from_turns(cut, transcript, turns)
        else:
            supervisions = _supervisions_from_pauses(cut, transcript, config.max_pause)
        cut = cut.copy(supervisions=supervisions)
        if events:
            cut = attach_events(cut, events)
        synpara_meta(cut)["transcribe"] = {
            "model": config.model,
            "language": transcript.language,
            "language_probability": round(transcript.language_probability, 4),
            "words": len(transcript.words),
            "verbatim_prompt": bool(config.initial_prompt or config.verbatim),
        }
        return cut


def _word_items(words: list[Word]) -> list[AlignmentItem]:
    return [alignment_item(w.text, w.start, w.end, round(w.probability, 4)) for w in words]


def _supervision(
    cut: Cut,
    index: int,
    start: float,
    end: float,
    speaker: str,
    words: list[Word],
    language: str,
    custom: dict[str, Any] | None = None,
) -> SupervisionSegment:
    from lhotse.supervision import SupervisionSegment

    channel = cut.channel if isinstance(getattr(cut, "channel", None), int) else 0
    return SupervisionSegment(
        id=f"{cut.id}-{index:04d}",
        recording_id=cut.recording_id,
        start=round_time(start - cut.start),
        duration=round_time(end - start),
        channel=channel,
        text=" ".join(w.text for w in words),
        language=language or None,
        speaker=speaker,
        custom=dict(custom) if custom else None,
        alignment={WORD: _word_items(words)},
    )


def _supervisions_from_turns(
    cut: Cut, transcript: Transcript, turns: list[Turn]
) -> list[SupervisionSegment]:
    order = sorted(range(len(turns)), key=lambda i: (turns[i].start, turns[i].end))
    turns = [turns[i] for i in order]
    per_turn: list[list[Word]] = [[] for _ in turns]
    for word, index in zip(transcript.words, assign_turns(transcript.words, turns)):
        per_turn[index].append(word)
    supervisions = []
    for index, (turn, words) in enumerate(zip(turns, per_turn)):
        start = min([turn.start, *(w.start for w in words[:1])])
        end = max([turn.end, *(w.end for w in words[-1:])])
        supervisions.append(
            _supervision(
                cut, index, start, end, turn.speaker, words, transcript.language, turn.custom
            )
        )
    return supervisions


def _supervisions_from_pauses(
    cut: Cut, transcript: Transcript, max_pause: float
) -> list[SupervisionSegment]:
    groups: list[list[Word]] = []
    for word in transcript.words:
        if groups and word.start - groups[-1][-1].end <= max_pause:
            groups[-1].append(word)
        else:
            groups.append([word])
    speaker = default_speaker(cut.recording_id)
    return [
        _supervision(cut, index, words[0].start, words[-1].end, speaker, words, transcript.language)
        for index, words in enumerate(groups)
    ]
