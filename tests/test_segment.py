"""Turns cut into utterances at pauses, never through an event; lengths respected."""

from __future__ import annotations

import numpy as np

from synpara.intervals import Span
from synpara.segment import SegmentConfig, plan_segments


def _spans(times, label="w"):
    return [Span(f"{label}{i}", a, b, 0.9) for i, (a, b) in enumerate(times)]


def test_segments_split_at_pauses_keep_events_whole_and_respect_lengths():
    # Three 4-second stretches of words separated by 1.5 s pauses; an event sits in the second
    # pause, so the split there must go around it.
    times = [(t, t + 0.4) for block in (0.0, 5.5, 11.0) for t in np.arange(block, block + 4, 0.5)]
    words = _spans(times)
    events = [Span("laughter", 9.55, 10.4, 0.9)]
    config = SegmentConfig(min_duration=3.0, max_duration=30.0, split_pause=1.0)
    pieces = plan_segments(words, events, 0.0, 15.0, config)
    assert len(pieces) == 3
    for piece in pieces:
        assert config.min_duration <= piece.duration <= config.max_duration
    (holder,) = [p for p in pieces if p.events]
    assert holder.start <= 9.55 and holder.end >= 10.4
    # A hard max forces splits at shorter pauses; a validator that refuses keeps the piece whole.
    tight = SegmentConfig(min_duration=1.0, max_duration=6.0, split_pause=10.0)
    assert all(p.duration <= 6.0 for p in plan_segments(words, events, 0.0, 15.0, tight))
    refused = plan_segments(words, [], 0.0, 15.0, tight, lambda a, s, b: (False, 1.0))
    assert len(refused) == 1 and len(refused[0].rejected_splits) == 2  # both long pauses tried
