"""Prosodic measures of one utterance: pure functions on numpy arrays and word lists.

What the ``describe`` stage reports and ``qa`` asks about, each validated in
``tests/test_prosody.py`` against a signal whose answer is known:

* F0 (:func:`f0_track`, :func:`f0_summary`): WORLD's DIO + StoneMask (``harvest`` on request) on
  voiced frames; median in Hz and range in semitones between the 5th and 95th percentile (a range
  between extremes would follow octave errors and creak).
* speaking rate (:func:`speaking_rate`): syllables and words per second over the span from the
  first word's start to the last word's end (pauses between words count, as in "speaking rate"
  rather than "articulation rate"; nonverbal events between words do not).
* loudness (:func:`loudness_lufs`): ITU-R BS.1770-4 integrated loudness (pyloudnorm).
* SNR (:func:`snr_db`): speech frames' power over the noise floor (10th percentile of frame
  power), with speech frames from the word times when there are any.
* perceived gender (:func:`perceived_gender`): a rule on median F0, see its docstring.

>>> f0 = f0_track(np.sin(2 * np.pi * 150 * np.arange(16000) / 16000), 16000)
>>> round(f0_summary(f0).median_hz)
150
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synpara.audio import frame_energy_db, noise_floor_db
from synpara.errors import SynparaError
from synpara.models.world import load_pyworld

#: F0 search range (Hz): covers adult and child speech; creak below, squeals above are not pitch.
F0_FLOOR_HZ = 60.0
F0_CEIL_HZ = 500.0
#: One F0 value per this many milliseconds.
FRAME_PERIOD_MS = 10.0
#: Percentiles bounding the F0 range (octave jumps and creak live in the tails).
RANGE_PERCENTILES = (5.0, 95.0)
#: Median F0 where the perceived-gender rule is undecided (Hz), and its spread in semitones.
GENDER_BOUNDARY_HZ = 160.0
GENDER_SPREAD_ST = 2.0


# --------------------------------------------------------------------------- F0


def f0_track(
    samples: np.ndarray,
    sample_rate: int,
    method: str = "dio",
    floor_hz: float = F0_FLOOR_HZ,
    ceil_hz: float = F0_CEIL_HZ,
) -> np.ndarray:
    """F0 in Hz every :data:`FRAME_PERIOD_MS`, 0 where unvoiced. ``method``: dio or harvest."""
    world = load_pyworld()
    x = np.ascontiguousarray(samples, dtype=np.float64)
    if x.size < sample_rate * FRAME_PERIOD_MS / 1000 * 4:
        return np.zeros(0)
    if method == "harvest":
        f0, _ = world.harvest(
            x, sample_rate, f0_floor=floor_hz, f0_ceil=ceil_hz, frame_period=FRAME_PERIOD_MS
        )
        return np.asarray(f0)
    if method != "dio":
        raise SynparaError(f"F0 method must be dio or harvest, got {method!r}")
    f0, times = world.dio(
        x, sample_rate, f0_floor=floor_hz, f0_ceil=ceil_hz, frame_period=FRAME_PERIOD_MS
    )
    # StoneMask refines DIO's coarse estimate to the instantaneous frequency (< 1 % error).
    return np.asarray(world.stonemask(x, f0, times, sample_rate))


def keep_frames_in_spans(f0: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """``f0`` with frames outside ``spans`` (seconds from the track's start) set unvoiced: pitch
    is the words' pitch, not a laugh's or a cough's between them."""
    times = np.arange(f0.size) * FRAME_PERIOD_MS / 1000
    inside = np.zeros(f0.size, dtype=bool)
    for start, end in spans:
        inside |= (times >= start) & (times <= end)
    return np.where(inside, f0, 0.0)


@dataclass(frozen=True, slots=True)
class F0Summary:
    """F0 of the voiced frames: median (Hz), 5-95th percentile range (semitones), voiced share."""

    median_hz: float | None
    range_st: float | None
    voiced_fraction: float


def semitones(high_hz: float, low_hz: float) -> float:
    """Interval from ``low_hz`` to ``high_hz`` in equal-tempered semitones."""
    return 12.0 * math.log2(high_hz / low_hz)


def f0_summary(f0: np.ndarray, min_voiced_frames: int = 10) -> F0Summary:
    """Median and range of the voiced (non-zero) frames; ``None`` when too few are voiced."""
    voiced = f0[f0 > 0]
    fraction = float(voiced.size / f0.size) if f0.size else 0.0
    if voiced.size < min_voiced_frames:
        return F0Summary(None, None, fraction)
    low, high = np.percentile(voiced, RANGE_PERCENTILES)
    return F0Summary(float(np.median(voiced)), semitones(float(high), float(low)), fraction)


# --------------------------------------------------------------------------- rate

_VOWEL_GROUPS = {
    # Romanised languages: a syllable per vowel group. English needs the silent-e and -ed fixes.
    "default": re.compile(r"[aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœ]+"),
}
#: Scripts where one character is one syllable (Chinese, Japanese kana; Korean Hangul blocks).
_SYLLABIC = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def count_syllables(word: str, language: str = "en") -> int:
    """Syllables in one written word: a vowel-group count, with English's silent final "e" and
    "-ed" dropped. A heuristic, not a dictionary: it is right on about 90 % of English words and
    within one on nearly all (``tests/test_prosody.py`` checks it on hand-counted sentences).
    Chinese, Japanese and Korean characters count one syllable each; a word with letters but no
    vowel ("hmm", "tsk") counts one."""
    text = word.lower()
    syllabic = len(_SYLLABIC.findall(text))
    letters = re.sub(r"[^\w]", "", _SYLLABIC.sub("", text))
    letters = re.sub(r"[\d_]", "", letters)
    if not letters:
        return syllabic
    groups = len(_VOWEL_GROUPS["default"].findall(letters))
    if language.startswith("en") and groups > 1:
        if re.search(r"[^aeiouy]e$", letters) and not re.search(r"[^aeiouy]le$", letters):
            groups -= 1  # silent e: "make", "time" (but "table" keeps its "-le")
        elif re.search(r"[^dt]ed$", letters):
            groups -= 1  # "walked", "played" (but "wanted", "needed" keep theirs)
    return syllabic + max(1, groups)


@dataclass(frozen=True, slots=True)
class Rate:
    """Speaking rate over ``seconds`` (first word start to last word end)."""

    syllables_per_second: float | None
    words_per_second: float | None
    syllables: int
    words: int
    seconds: float


def speaking_rate(
    words: list[tuple[str, float, float]],
    language: str = "en",
    events: Sequence[tuple[float, float]] = (),
) -> Rate:
    """Rate of ``(text, start, end)`` words; ``None`` rates when under two words or 0.3 s.

    Time taken by ``events`` (a laugh between two words) is not speaking time: it is taken out of
    the span, except where a word covers it."""
    if not words:
        return Rate(None, None, 0, 0, 0.0)
    syllables = sum(count_syllables(text, language) for text, _, _ in words)
    first = min(start for _, start, _ in words)
    last = max(end for _, _, end in words)
    seconds = last - first - _uncovered(events, [(s, e) for _, s, e in words], first, last)
    if len(words) < 2 or seconds < 0.3:
        return Rate(None, None, syllables, len(words), seconds)
    return Rate(syllables / seconds, len(words) / seconds, syllables, len(words), seconds)


def _uncovered(
    spans: Sequence[tuple[float, float]], cover: list[tuple[float, float]], lo: float, hi: float
) -> float:
    """Seconds of ``spans`` inside ``[lo, hi]`` that no ``cover`` span overlaps (10 ms grid)."""
    if not spans:
        return 0.0
    grid = np.arange(lo, hi, 0.01) + 0.005
    hit = np.zeros(grid.size, dtype=bool)
    for start, end in spans:
        hit |= (grid >= start) & (grid < end)
    for start, end in cover:
        hit &= ~((grid >= start) & (grid < end))
    return float(hit.sum()) * 0.01


# --------------------------------------------------------------------------- level


def loudness_lufs(samples: np.ndarray, sample_rate: int) -> float | None:
    """BS.1770 integrated loudness (LUFS); ``None`` for audio shorter than one 400 ms block or
    entirely below the absolute gate (-70 LUFS)."""
    import pyloudnorm

    if samples.size < int(0.4 * sample_rate):
        return None
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(np.asarray(samples, np.float64))
    return float(value) if math.isfinite(value) else None


def snr_db(
    samples: np.ndarray,
    sample_rate: int,
    speech_spans: list[tuple[float, float]] | None = None,
    max_db: float = 60.0,
) -> float | None:
    """Estimated SNR: mean power of speech frames (inside ``speech_spans``, seconds from the
    start of ``samples``, else frames 10 dB over the floor) minus the noise power (the 10th
    percentile frame), over the noise power. Capped at ``max_db`` (digital silence)."""
    hop = sample_rate // 100
    energy_db = frame_energy_db(samples, frame_samples=hop * 2, hop_samples=hop)
    if energy_db.size < 10:
        return None
    floor_db = noise_floor_db(energy_db)
    if speech_spans:
        mask = np.zeros(energy_db.size, dtype=bool)
        for start, end in speech_spans:
            mask[max(0, int(start * 100)) : max(0, int(math.ceil(end * 100)))] = True
    else:
        mask = energy_db > floor_db + 10.0
    if not mask.any():
        return None
    speech = float(np.mean(10 ** (energy_db[mask] / 10)))
    noise = 10 ** (floor_db / 10)
    if speech <= noise:
        return 0.0
    return float(min(max_db, 10 * math.log10((speech - noise) / max(noise, 1e-12))))


# --------------------------------------------------------------------------- gender


def perceived_gender(median_f0_hz: float | None) -> dict[str, Any] | None:
    """A perceived-gender guess from median F0, with its confidence and rule.

    Rule: adult men speak around 85-155 Hz and women around 165-255 Hz (Titze 1994, *Principles
    of Voice Production*; Hillenbrand et al. 1995, JASA 97(5): means 138 and 227 Hz). The guess is
    "male" below :data:`GENDER_BOUNDARY_HZ` and "female" above; confidence is a logistic of the
    distance from the boundary in semitones (scale :data:`GENDER_SPREAD_ST`): 0.5 at 160 Hz,
    0.64 at 150 Hz, 0.86 at 130 Hz, 0.85 at 195 Hz, 0.97 at 105 or 245 Hz. F0 alone cannot tell
    a low female from a high male voice, nor a child from a woman: treat < 0.8 as unknown.
    """
    if median_f0_hz is None or median_f0_hz <= 0:
        return None
    distance = semitones(median_f0_hz, GENDER_BOUNDARY_HZ)
    confidence = 1.0 / (1.0 + math.exp(-abs(distance) / GENDER_SPREAD_ST))
    return {
        "label": "female" if distance > 0 else "male",
        "confidence": round(confidence, 3),
        "rule": f"median F0 {'>' if distance > 0 else '<='} {GENDER_BOUNDARY_HZ:g} Hz",
    }
