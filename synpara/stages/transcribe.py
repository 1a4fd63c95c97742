"""transcribe: every word with a start, an end, a probability and a speaker (faster-whisper).

The default model is Whisper base (multilingual) from the packaged weights (see
``synpara.models.load_whisper``); ``tiny.en`` is the fast option, and ``--model`` takes any local
CTranslate2 directory or, when online, a hub name.

Output, per cut: ``alignment["word"]`` items in recording time with the word probability as
score; one supervision per speaker turn. When the input cut carries diarization turns (supervisions
with a ``speaker``), each word goes to the turn it overlaps most (the nearest turn when none), and
each turn becomes one supervision holding its words (a turn with no words is kept with empty text:
it may hold a laugh or a breath). Without turns, all words get the speaker ``<cut id>-S0``
and supervisions split at pauses longer than ``max_pause``. Existing ``alignment["event"]`` items
are kept.

The decoding itself is :func:`synpara.asr.transcribe_audio` (refine re-transcribes split halves
with :func:`synpara.asr.transcribe_words`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synpara.asr import VERBATIM_PROMPT, Transcript, WhisperOptions, Word, transcribe_audio
from synpara.audio import load_cut_audio
from synpara.errors import SynparaError
from synpara.intervals import Turn, best_match
from synpara.manifest import EVENT, WORD, alignment_item, attach_events, round_time, synpara_meta
from synpara.stage import RecordContext, Reject, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut
    from lhotse.supervision import AlignmentItem, SupervisionSegment

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- speakers


def assign_turns(words: list[Word], turns: list[Turn]) -> list[int]:
    """Index of the turn each word overlaps most; the nearest turn when it overlaps none."""
    spans = [(turn.start, turn.end) for turn in turns]
    return [best_match(word.start, word.end, spans) for word in words]


def default_speaker(cut_id: str) -> str:
    """The speaker label of a cut without diarization (the diarize stage's first label)."""
    return f"{cut_id}-S0"


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class TranscribeConfig(StageConfig):
    """Options of the transcribe stage: the Whisper model and how it decodes, and how words
    become supervisions (seconds unless the name says otherwise).

    >>> TranscribeConfig(model="tiny.en", beam_size=1).whisper_options().beam_size
    1
    """

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
    vad: bool = field(
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
            vad_filter=self.vad,
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
    speaker = default_speaker(cut.id)  # the recording's id unless ingest split it
    return [
        _supervision(cut, index, words[0].start, words[-1].end, speaker, words, transcript.language)
        for index, words in enumerate(groups)
    ]
