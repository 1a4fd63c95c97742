"""Event/word overlap rules of the boundary code (the signal-level tests run through refine in
tests/stages/test_refine.py)."""

from __future__ import annotations

from synpara.intervals import Span
from synpara.timing import resolve_overlaps


def test_overlaps_trimmed_unless_both_confident():
    words = [Span("so", 1.0, 1.5, 0.9), Span("funny", 2.0, 2.6, 0.3)]
    events = [Span("laughter", 1.3, 1.9, 0.9), Span("laughter", 2.4, 3.4, 0.9)]
    kept, flagged = resolve_overlaps(words, events, 0.5)
    assert flagged == [(0, 0)]  # both confident: both stay
    assert kept[0] == events[0]
    assert kept[1] == Span("laughter", 2.6, 3.4, 0.9)  # trimmed off the unsure word
