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


def test_snap_words_keeps_order_and_the_audio_whatever_whisper_said(shared_data):
    """Words timed before the audio, past its end, or overlapping, with the block and word-length
    options refine exposes: every word comes back, in order, never overlapping, inside the audio.
    (Found by fuzzing: words past the end used to crash with IndexError, ``max_block_words`` 1
    with ValueError.)"""
    import numpy as np

    from synpara.audio import SAMPLE_RATE, decode, resample, to_mono
    from synpara.frames import frame_features
    from synpara.timing import SnapConfig, snap_words

    decoded = decode(shared_data / "speech/jfk/jfk.wav")
    speech = resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)
    rng = np.random.default_rng(0)
    for trial in range(120):
        duration = rng.uniform(0.3, 3.0)
        start = int(rng.uniform(0, len(speech) / SAMPLE_RATE - duration) * SAMPLE_RATE)
        features = frame_features(speech[start:start + int(duration * SAMPLE_RATE)])
        count = int(rng.integers(1, 15))
        times = np.sort(rng.uniform(-0.5, duration + 1.0, 2 * count))
        if trial % 3 == 0:  # a transcript that runs on past the end of the audio
            times = np.minimum(times + 0.9 * duration, duration + 0.6)
        words = [(float(times[2 * i]), float(times[2 * i + 1])) for i in range(count)]
        config = SnapConfig(min_word=float(rng.choice([0.04, 0.08, 0.15])),
                            max_block_words=int(rng.choice([1, 2, 3, 40])))
        events = [bool(rng.random() < 0.2) for _ in words]
        snapped = snap_words(words, features, config, events=events)
        assert len(snapped) == count
        for before, after in zip(snapped, snapped[1:]):
            assert before.end <= after.start + 1e-9
        for word in snapped:
            assert 0.0 <= word.start <= word.end <= features.duration + 0.011
