"""Interval arithmetic, written once: each function on cases worked out by hand."""

from __future__ import annotations

import numpy as np

from synpara.intervals import (
    Span,
    Turn,
    best_match,
    gap,
    mask,
    merge,
    overlap,
    overlaps_any,
    subtract,
    total_overlap,
)


def test_overlap_and_gap_are_lengths_never_negative():
    assert overlap(0.0, 2.0, 1.5, 4.0) == 0.5
    assert overlap(0.0, 1.0, 2.0, 3.0) == 0.0  # disjoint
    assert overlap(0.0, 1.0, 1.0, 2.0) == 0.0  # touching
    assert gap(0.0, 1.0, 2.5, 3.0) == 1.5 and gap(2.5, 3.0, 0.0, 1.0) == 1.5
    assert gap(0.0, 2.0, 1.0, 3.0) == 0.0
    assert total_overlap(1.0, 3.0, [(0.0, 1.5), (2.0, 2.5), (5.0, 6.0)]) == 1.0
    assert overlaps_any(1.0, 2.0, [(2.0, 3.0), (1.9, 1.95)])
    assert not overlaps_any(1.0, 2.0, [(2.0, 3.0), (0.0, 1.0)])


def test_best_match_prefers_most_overlap_then_nearest_then_first():
    turns = [(0.0, 2.0), (1.8, 4.0), (6.0, 7.0)]
    assert best_match(1.7, 2.2, turns) == 1  # 0.3 s with the first, 0.4 s with the second
    assert best_match(4.5, 4.8, turns) == 1  # in none: 0.5 s after the second, 1.2 s before
    assert best_match(5.0, 5.0, [(4.0, 4.5), (5.5, 6.0)]) == 0  # a tie: the first
    assert best_match(1.0, 2.0, []) == 0


def test_merge_joins_overlapping_and_near_intervals_in_order():
    assert merge([(5.0, 6.0), (0.0, 1.0), (0.5, 2.0)]) == [(0.0, 2.0), (5.0, 6.0)]
    assert merge([(0.0, 1.0), (1.2, 2.0)], max_gap=0.3) == [(0.0, 2.0)]
    assert merge([(0.0, 1.0), (1.2, 2.0)], max_gap=0.1) == [(0.0, 1.0), (1.2, 2.0)]
    assert merge([]) == []


def test_subtract_cuts_holes_and_drops_slivers():
    assert subtract([(0.0, 10.0)], [(2.0, 3.0), (5.0, 6.0)]) == [(0.0, 2.0), (3.0, 5.0),
                                                                 (6.0, 10.0)]
    assert subtract([(0.0, 1.0)], [(0.0, 1.0)]) == []
    assert subtract([(0.0, 1.0)], [(0.0005, 0.9995)], min_length=1e-3) == []
    assert subtract([(0.0, 1.0)], []) == [(0.0, 1.0)]


def test_mask_marks_times_inside_start_inclusive():
    times = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    assert mask(times, [(0.5, 1.5)]).tolist() == [False, True, True, False, False]
    assert not mask(times, []).any()


def test_span_and_turn():
    assert Span("laughter", 1.0, 2.5).duration == 1.5 and Span("a", 0.0, 1.0).score == 1.0
    assert Turn(0.0, 1.0, "A", {"overlap": True}).overlap
    assert not Turn(0.0, 1.0, "A").overlap
