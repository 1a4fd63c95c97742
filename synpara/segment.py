"""Cutting speaker turns into training utterances, and the checks an utterance must pass.

After Emilia-Pipe and SynParaSpeech: a turn is split only at pauses between words, into pieces of
``min_duration``..``max_duration`` seconds, never through an event (an event stays whole inside one
utterance, with a margin). Each split can be *validated*: both halves are re-transcribed and the
split is kept only if each half's text matches its part of the whole's text (CER below a
threshold): a split inside a word garbles the halves and fails.

>>> words = [Span("a", 0.0, 2.0, 1.0), Span("b", 4.0, 6.0, 1.0)]
>>> [(p.start, p.end) for p in plan_segments(words, [], 0.0, 6.0, SegmentConfig(min_duration=1))]
[(0.0, 2.1), (3.9, 6.0)]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from synpara.intervals import Span, subtract

_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)

#: ``validate(start, split, end) -> (keep, cer)``: may the piece [start, end] be cut at ``split``?
Validator = Callable[[float, float, float], tuple[bool, float]]


@dataclass(frozen=True)
class SegmentConfig:
    """How turns are cut (seconds)."""

    min_duration: float = 3.0
    max_duration: float = 30.0
    min_pause: float = 0.2  # a split needs at least this much silence between two words
    split_pause: float = 1.0  # pauses this long split even a turn that fits max_duration
    event_margin: float = 0.2  # no split closer than this to an event
    pad: float = 0.1  # silence kept around the first and last sound of an utterance
    max_attempts: int = 3  # validation tries per piece before giving up on splitting it


@dataclass
class Piece:
    """One planned utterance: its extent, the words (index range) and events inside it."""

    start: float
    end: float
    first_word: int
    last_word: int  # exclusive
    events: list[int] = field(default_factory=list)
    rejected_splits: list[dict[str, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start


def normalise_text(text: str) -> str:
    """Characters that count for CER: lower case, no punctuation, no spaces."""
    return _NOT_TEXT.sub("", text.lower())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j - 1] + (char_a != char_b), previous[j] + 1,
                               current[j - 1] + 1))
        previous = current
    return previous[-1]


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` (after normalisation)."""
    hyp, ref = normalise_text(hypothesis), normalise_text(reference)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(hyp, ref) / len(ref)


def split_cer(left_hyp: str, right_hyp: str, left_ref: str, right_ref: str) -> float:
    """The worse of the two halves' CER against their parts of the whole's text."""
    return max(cer(left_hyp, left_ref), cer(right_hyp, right_ref))


def _free_point(gap_start: float, gap_end: float, events: Sequence[Span], margin: float
                ) -> float | None:
    """Middle of the longest stretch of ``[gap_start, gap_end]`` at least ``margin`` from events."""
    free = subtract([(gap_start, gap_end)], [(e.start - margin, e.end + margin) for e in events])
    if not free:
        return None
    a, b = max(free, key=lambda ab: ab[1] - ab[0])
    return (a + b) / 2


def plan_segments(
    words: Sequence[Span],
    events: Sequence[Span],
    start: float,
    end: float,
    config: SegmentConfig,
    validate: Validator | None = None,
) -> list[Piece]:
    """Utterances of a turn ``[start, end]`` holding ``words`` and ``events`` (time-ordered).

    Pieces longer than ``max_duration`` are split at their longest valid pause; pauses of at least
    ``split_pause`` split wherever both sides stay ``min_duration`` long. A piece that must be
    split but cannot (no pause, or every split fails validation) comes back whole: the caller's
    length filter rejects it.
    """
    points: dict[int, tuple[float, float]] = {}  # split after word k -> (time, pause)
    for k in range(len(words) - 1):
        pause = words[k + 1].start - words[k].end
        if pause < config.min_pause:
            continue
        point = _free_point(words[k].end, words[k + 1].start, events, config.event_margin)
        if point is not None:
            points[k] = (point, pause)

    def extent(lo: float, hi: float, i0: int, i1: int) -> tuple[float, float]:
        inside = [(w.start, w.end) for w in words[i0:i1]]
        inside += [(e.start, e.end) for e in events if lo <= (e.start + e.end) / 2 < hi]
        if not inside:
            return lo, hi
        first = min(a for a, _ in inside)
        last = max(b for _, b in inside)
        return max(lo, first - config.pad), min(hi, last + config.pad)

    def build(lo: float, hi: float, i0: int, i1: int, rejected: list[dict[str, float]]) -> Piece:
        a, b = extent(lo, hi, i0, i1)
        inside = [n for n, e in enumerate(events) if lo <= (e.start + e.end) / 2 < hi]
        return Piece(a, b, i0, i1, inside, rejected)

    def split(lo: float, hi: float, i0: int, i1: int) -> list[Piece]:
        a, b = extent(lo, hi, i0, i1)
        must = b - a > config.max_duration
        options = []
        for k in range(i0, i1 - 1):
            if k not in points:
                continue
            point, pause = points[k]
            left, right = extent(lo, point, i0, k + 1), extent(point, hi, k + 1, i1)
            if min(left[1] - left[0], right[1] - right[0]) < config.min_duration:
                continue
            if not must and pause < config.split_pause:
                continue
            options.append((-pause, abs(point - (a + b) / 2), k))
        rejected: list[dict[str, float]] = []
        for _, _, k in sorted(options)[: config.max_attempts]:
            point = points[k][0]
            keep, error = validate(a, point, b) if validate is not None else (True, 0.0)
            if keep:
                return split(lo, point, i0, k + 1) + split(point, hi, k + 1, i1)
            rejected.append({"time": round(float(point), 3), "cer": round(float(error), 3)})
        return [build(lo, hi, i0, i1, rejected)]

    if not words:
        return [build(start, end, 0, 0, [])]
    return split(start, end, 0, len(words))


def validate_split(
    transcribe: Callable[[float, float], str],
    text_between: Callable[[float, float], str],
    start: float,
    split: float,
    end: float,
    threshold: float,
) -> tuple[bool, float]:
    """SynParaSpeech's split-point check: re-transcribe ``[start, split]`` and ``[split, end]``
    and keep the split only if each half's text matches the words the whole has there
    (worst-half CER below ``threshold``). ``transcribe(a, b)`` and ``text_between(a, b)`` return
    text for a time range (recording time)."""
    error = split_cer(transcribe(start, split), transcribe(split, end),
                      text_between(start, split), text_between(split, end))
    return error < threshold, error


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class FilterConfig:
    """Thresholds of :func:`filter_reason`."""

    min_duration: float = 3.0
    max_duration: float = 30.0
    min_asr_confidence: float = 0.4
    cps_range: tuple[float, float] = (2.0, 35.0)
    iqr_min_count: int = 8
    max_overlap: float = 0.1
    max_clipping: float = 0.001
    min_snr_db: float = 10.0


@dataclass(frozen=True)
class UtteranceStats:
    """What the filters look at for one utterance."""

    duration: float
    words: int
    chars: int
    asr_confidence: float
    overlap: float  # fraction of the utterance another speaker talks over
    clipping: float  # fraction of clipped samples
    snr_db: float

    @property
    def chars_per_second(self) -> float:
        return self.chars / self.duration if self.duration > 0 else 0.0


def cps_fence(values: Sequence[float], config: FilterConfig) -> tuple[float, float]:
    """Characters-per-second bounds: the IQR fence (Q1 - 1.5 IQR, Q3 + 1.5 IQR) of ``values``
    when there are enough of them, always inside the fixed ``cps_range``."""
    low, high = config.cps_range
    if len(values) >= config.iqr_min_count:
        q1, q3 = np.percentile(values, [25, 75])
        low, high = max(low, q1 - 1.5 * (q3 - q1)), min(high, q3 + 1.5 * (q3 - q1))
    return float(low), float(high)


def filter_reason(
    stats: UtteranceStats, config: FilterConfig, fence: tuple[float, float]
) -> str | None:
    """Why an utterance is unfit for training, or ``None`` when it passes every filter."""
    if stats.duration < config.min_duration:
        return f"too short ({stats.duration:.2f} s < {config.min_duration} s)"
    if stats.duration > config.max_duration:
        return f"too long with no valid split ({stats.duration:.1f} s > {config.max_duration} s)"
    if stats.words == 0:
        return "no words"
    cps = stats.chars_per_second
    if not fence[0] <= cps <= fence[1]:
        return (f"characters per second {cps:.1f} outside [{fence[0]:.1f}, {fence[1]:.1f}] "
                "(hallucination or misalignment)")
    if stats.asr_confidence < config.min_asr_confidence:
        return f"low ASR confidence ({stats.asr_confidence:.2f} < {config.min_asr_confidence})"
    if stats.overlap > config.max_overlap:
        return f"overlapped speech ({stats.overlap:.0%} of the utterance)"
    if stats.clipping > config.max_clipping:
        return f"clipping ({stats.clipping:.2%} of samples at full scale)"
    if stats.snr_db < config.min_snr_db:
        return f"low SNR ({stats.snr_db:.1f} dB < {config.min_snr_db} dB)"
    return None
