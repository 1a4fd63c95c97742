"""Time spans and their arithmetic, written once: overlap, gap, merge, subtract, best match.

Everything is in seconds. An *interval* is a ``(start, end)`` pair; a :class:`Span` is a labelled
interval with a score (a word, an event); a :class:`Turn` is a speaker's stretch of talk.

>>> merge([(0.0, 1.0), (1.2, 2.0), (5.0, 6.0)], max_gap=0.3)
[(0.0, 2.0), (5.0, 6.0)]
>>> subtract([(0.0, 10.0)], [(2.0, 3.0), (5.0, 6.0)])
[(0.0, 2.0), (3.0, 5.0), (6.0, 10.0)]
>>> overlap(0.0, 2.0, 1.5, 4.0), gap(0.0, 2.0, 3.0, 4.0)
(0.5, 1.0)
>>> best_match(2.5, 3.0, [(0.0, 1.0), (4.0, 5.0)])  # overlaps none: the nearest
1
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy only where a mask is made: the manifest module imports this one
    import numpy as np

Interval = tuple[float, float]


@dataclass(slots=True)
class Span:
    """A labelled time span with a score (a word, an event), seconds."""

    label: str
    start: float
    end: float
    score: float = 1.0

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Turn:
    """A speaker turn (seconds); ``custom`` is its supervision's custom dict (``overlap`` ...)."""

    start: float
    end: float
    speaker: str
    custom: dict[str, Any] | None = None

    @property
    def overlap(self) -> bool:
        """Whether another speaker talks during this turn (diarize marks it)."""
        return bool((self.custom or {}).get("overlap"))


def overlap(start: float, end: float, other_start: float, other_end: float) -> float:
    """Seconds that ``[start, end]`` and ``[other_start, other_end]`` share (0 when disjoint)."""
    return max(0.0, min(end, other_end) - max(start, other_start))


def gap(start: float, end: float, other_start: float, other_end: float) -> float:
    """Seconds between two intervals (0 when they touch or overlap)."""
    return max(other_start - end, start - other_end, 0.0)


def total_overlap(start: float, end: float, intervals: Iterable[Interval]) -> float:
    """Seconds of ``[start, end]`` covered by ``intervals``, counted once per interval."""
    return sum(overlap(start, end, a, b) for a, b in intervals)


def overlaps_any(start: float, end: float, intervals: Iterable[Interval]) -> bool:
    """Whether ``[start, end]`` shares a positive stretch with any of ``intervals``."""
    return any(overlap(start, end, a, b) > 0 for a, b in intervals)


def best_match(start: float, end: float, candidates: Sequence[Interval]) -> int:
    """Index of the candidate ``[start, end]`` overlaps most, else of the nearest one (the first
    on ties; 0 when there are none)."""
    best_index, best_key = 0, None
    for index, (a, b) in enumerate(candidates):
        shared = overlap(start, end, a, b)
        key = (shared > 0, shared if shared > 0 else -gap(start, end, a, b))
        if best_key is None or key > best_key:
            best_index, best_key = index, key
    return best_index


def merge(intervals: Iterable[Interval], max_gap: float = 0.0) -> list[Interval]:
    """Sorted union of ``intervals``; ones at most ``max_gap`` apart become one."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + max_gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def subtract(intervals: Iterable[Interval], holes: Iterable[Interval],
             min_length: float = 0.0) -> list[Interval]:
    """What is left of ``intervals`` outside ``holes``; pieces no longer than ``min_length``
    are dropped."""
    holes = list(holes)
    out: list[Interval] = []
    for start, end in intervals:
        pieces = [(start, end)]
        for h_start, h_end in holes:
            pieces = [p for a, b in pieces for p in ((a, min(b, h_start)), (max(a, h_end), b))
                      if p[1] - p[0] > min_length]
        out.extend(pieces)
    return out


def mask(times: np.ndarray, intervals: Iterable[Interval]) -> np.ndarray:
    """Boolean mask of the ``times`` that fall inside any interval (start inclusive)."""
    import numpy as np

    inside = np.zeros(len(times), dtype=bool)
    for start, end in intervals:
        inside |= (times >= start) & (times < end)
    return inside
