"""Whisper decoding with word times (faster-whisper): the ASR core that transcribe and refine share.

:func:`transcribe_words` turns mono 16 kHz samples into time-ordered, non-overlapping
:class:`Word` s; audio longer than ``chunk_seconds`` is cut at VAD pauses first. Models come from
:func:`synpara.models.whisper.load_whisper`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synpara.audio import SAMPLE_RATE
from synpara.errors import SynparaError

#: A prompt in the style of spontaneous speech: Whisper imitates its prompt's style, so it keeps
#: fillers and hesitations it would otherwise drop as disfluencies.
VERBATIM_PROMPT = "Um, so, uh, I was like, hmm... well, you know, I mean, uh, yeah. Mm-hmm."


@dataclass(frozen=True, slots=True)
class Word:
    """A word and its boundaries (seconds), with the recogniser's probability when there is one."""

    text: str
    start: float
    end: float
    probability: float = 1.0


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


#: ISO 639-3 / BCP-47 tags whose Whisper code differs (espeak-ng's Mandarin is ``cmn``).
_WHISPER_ALIASES = {"cmn": "zh", "zh-cn": "zh", "iw": "he"}


def whisper_language(tag: str | None) -> str | None:
    """Whisper's code for a language tag (``en-US`` -> ``en``, ``cmn`` -> ``zh``), or ``None`` when
    Whisper does not know it (then Whisper detects the language itself)."""
    if not tag:
        return None
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    tag = tag.lower().replace("_", "-").split("+")[0]
    code = _WHISPER_ALIASES.get(tag) or _WHISPER_ALIASES.get(tag.split("-")[0]) or tag.split("-")[0]
    return code if code in _LANGUAGE_CODES else None


def transcribe_words(
    model: Any, samples: np.ndarray, options: WhisperOptions | None = None, *, offset: float = 0.0
) -> list[Word]:
    """Words of mono 16 kHz float32 ``samples``, in time order, inside the audio, not overlapping.

    ``model`` is a ``faster_whisper.WhisperModel`` (:func:`synpara.models.whisper.load_whisper`);
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
            Word(w.text, w.start + chunk_offset, w.end + chunk_offset, w.probability)
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
        Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
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
        tidy.append(Word(word.text, word_start, word_end, word.probability))
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
