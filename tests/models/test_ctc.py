"""CTC forced alignment on a known emission (the model loading path is tested through refine)."""

from __future__ import annotations

import numpy as np
import pytest

from synpara.models.ctc import ctc_word_times


def test_ctc_word_times_on_a_known_emission():
    vocab = {"<pad>": 0, "|": 1, "A": 2, "B": 3}
    # 10 frames of 20 ms: blank, A, A, blank, |, B, B, B, blank, blank
    path = [0, 2, 2, 0, 1, 3, 3, 3, 0, 0]
    log_probs = np.full((10, 4), -20.0, dtype=np.float32)
    log_probs[np.arange(10), path] = 0.0
    times = ctc_word_times(log_probs, 0.02, ["a", "b", "42"], vocab, blank=0)
    assert times[0] == pytest.approx((0.02, 0.06))
    assert times[1] == pytest.approx((0.10, 0.16))
    assert times[2] is None  # no known characters: old times kept by the caller
