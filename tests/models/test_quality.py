"""The gate's quality models: our DNSMOS runner against the reference implementation it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from synpara.audio import decode, resample, to_mono
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    decoded = decode(SHARED_DATA / "speech" / "jfk" / "jfk.wav")
    samples = resample(to_mono(decoded.samples), decoded.sample_rate, 16000)
    return (samples / max(1.0, float(np.abs(samples).max()))).astype(np.float32)


@pytest.mark.parametrize("seconds", [1.2, 3.0, 9.5, 11.0])
def test_dnsmos_overall_equals_speechmos(speech, seconds):
    # speechmos runs the same ONNX file plus a P.808 model we never read; the OVRL must agree,
    # for clips shorter than a window (repeated), about one window, and several windows.
    from speechmos import dnsmos

    from synpara.models.quality import load_dnsmos

    clip = speech[: int(seconds * 16000)]
    reference = float(dnsmos.run(clip, 16000)["ovrl_mos"])
    ours = load_dnsmos(threads=1).overall(clip)
    assert ours == pytest.approx(reference, abs=1e-5)
    assert 1.0 < ours < 5.0


def test_dnsmos_hears_noise_as_worse(speech):
    from synpara.models.quality import load_dnsmos

    model = load_dnsmos()
    clean = speech[: 5 * 16000]
    noisy = clean + np.random.default_rng(0).normal(0, 0.05, clean.shape).astype(np.float32)
    assert model.overall(noisy) < model.overall(clean) - 0.5
