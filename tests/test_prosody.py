"""Prosodic measures against signals whose answer is known (synpara/prosody.py)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from synpara.audio import SAMPLE_RATE, decode, resample, to_mono
from synpara.errors import SynparaError
from synpara.prosody import (
    count_syllables,
    f0_summary,
    f0_track,
    loudness_lufs,
    perceived_gender,
    snr_db,
    speaking_rate,
)
from tests.synth import SENTENCES, have_espeak, noise_floor, synth_sentence

#: Syllables of tests.synth.SENTENCES, counted by hand (a dictionary's syllabification).
HAND_SYLLABLES = (13, 12, 13, 16, 11, 13, 14, 13, 11, 16, 12, 11)
needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")


def _sweep(low_hz: float, high_hz: float, seconds: float) -> np.ndarray:
    """An exponential sine sweep: F0 rises evenly in semitones from ``low_hz`` to ``high_hz``."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    k = np.log(high_hz / low_hz) / seconds
    phase = 2 * np.pi * low_hz * (np.exp(k * t) - 1) / k
    return (0.3 * np.sin(phase)).astype(np.float32)


def _autocorrelation_f0(samples: np.ndarray) -> float:
    """Median F0 by normalised cross-correlation (RAPT's NCCF, unbiased at long lags) on loud,
    periodic frames: a reference that shares nothing with WORLD's DIO/StoneMask."""
    window, hop = 400, 160
    min_lag, max_lag = SAMPLE_RATE // 400, SAMPLE_RATE // 60
    starts = range(0, len(samples) - window - max_lag - 1, hop)
    peak_rms = max(float(np.sqrt(np.mean(samples[i : i + window] ** 2))) for i in starts)
    estimates = []
    for i in starts:
        x = samples[i : i + window].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 0.1 * peak_rms:
            continue
        lags = np.arange(min_lag - 1, max_lag + 2)
        shifted = np.stack([samples[i + k : i + k + window] for k in lags]).astype(np.float64)
        nccf = shifted @ x / np.sqrt((shifted**2).sum(axis=1) * (x**2).sum() + 1e-12)
        best = 1 + int(np.argmax(nccf[1:-1]))
        if nccf[best] < 0.8:  # not periodic enough to be voiced
            continue
        a, b, c = nccf[best - 1], nccf[best], nccf[best + 1]  # parabolic peak interpolation
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
        estimates.append(SAMPLE_RATE / (lags[best] + shift))
    return float(np.median(estimates))


def _espeak(text: str, pitch: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-p", str(pitch), "-w", str(path), text],
            check=True,
            capture_output=True,
        )
        decoded = decode(path)
    return resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)


def test_f0_of_a_tone_and_a_sweep():
    # dio only: harvest's voicing decision rejects a stationary tone (it is tuned to speech)
    method = "dio"
    tone = (0.3 * np.sin(2 * np.pi * 150 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    assert f0_summary(f0_track(tone, SAMPLE_RATE, method)).median_hz == pytest.approx(150, rel=0.02)
    summary = f0_summary(f0_track(_sweep(100, 200, 3.0), SAMPLE_RATE, method))
    # an octave, evenly in semitones: median at the geometric middle, 5-95 % range = 0.9 * 12
    assert summary.median_hz == pytest.approx(100 * 2**0.5, rel=0.05)
    assert summary.range_st == pytest.approx(10.8, rel=0.05)
    assert summary.voiced_fraction > 0.9


@needs_espeak
@pytest.mark.parametrize("method", ["dio", "harvest"])
def test_f0_of_espeak_speech_at_three_pitch_settings(method):
    medians = []
    for pitch in (20, 50, 80):
        speech = _espeak("please bring the green bottle from the kitchen table", pitch)
        measured = f0_summary(f0_track(speech, SAMPLE_RATE, method)).median_hz
        assert measured == pytest.approx(_autocorrelation_f0(speech), rel=0.05), pitch
        medians.append(measured)
    assert medians[0] < medians[1] < medians[2]  # espeak's -p raises the voice


def test_silence_and_short_audio_have_no_f0():
    assert f0_summary(f0_track(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)).median_hz is None
    assert f0_track(np.zeros(100, np.float32), SAMPLE_RATE).size == 0
    with pytest.raises(SynparaError, match="dio or harvest"):
        f0_track(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, "crepe")


def test_syllable_counter_within_10_percent_of_hand_counts():
    for text, truth in zip(SENTENCES, HAND_SYLLABLES):
        counted = sum(count_syllables(w) for w in text.split())
        assert abs(counted - truth) <= 0.1 * truth, text
    assert [count_syllables(w) for w in ("make", "table", "walked", "wanted", "hmm")] == [
        1,
        2,
        1,
        2,
        1,
    ]
    assert count_syllables("你好", "zh") == 2


@needs_espeak
def test_speaking_rate_of_word_by_word_sentences_within_10_percent():
    rng = np.random.default_rng(3)
    for text, truth in zip(SENTENCES[:6], HAND_SYLLABLES):
        sentence = synth_sentence(text.split(), rng, words_per_minute=int(rng.integers(120, 260)))
        words = [(w.text, w.start, w.end) for w in sentence.words]
        span = sentence.words[-1].end - sentence.words[0].start
        rate = speaking_rate(words)
        assert rate.syllables_per_second == pytest.approx(truth / span, rel=0.1), text
        assert rate.words_per_second == pytest.approx(len(words) / span, rel=1e-6)
    assert speaking_rate([("hi", 0.0, 0.2)]).syllables_per_second is None
    # a 1 s laugh between two words is not speaking time; the part under a word is
    words = [("hello", 0.0, 0.5), ("there", 2.0, 2.5)]
    assert speaking_rate(words, events=[(0.8, 1.8)]).seconds == pytest.approx(1.5, abs=0.02)
    assert speaking_rate(words, events=[(0.3, 0.8)]).seconds == pytest.approx(2.2, abs=0.02)


def test_loudness_is_bs1770_and_snr_follows_added_noise():
    rng = np.random.default_rng(0)
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE)
    reference = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(tone)
    assert loudness_lufs(tone.astype(np.float32), SAMPLE_RATE) == pytest.approx(reference, abs=1e-3)
    assert loudness_lufs(np.zeros(1000, np.float32), SAMPLE_RATE) is None
    # 1 s on, 1 s off, three times; noise set to a known SNR against the tone's power
    on = np.tile(np.r_[np.ones(SAMPLE_RATE), np.zeros(SAMPLE_RATE)], 3)
    signal = 0.1 * np.sin(2 * np.pi * 200 * np.arange(on.size) / SAMPLE_RATE) * on
    spans = [(2.0 * i, 2.0 * i + 1.0) for i in range(3)]
    for target_db in (10.0, 20.0, 30.0):
        noise_db = 10 * np.log10(0.1**2 / 2) - target_db
        noisy = (signal + noise_floor(signal.size, rng, noise_db)).astype(np.float32)
        assert snr_db(noisy, SAMPLE_RATE, spans) == pytest.approx(target_db, abs=1.5)
        assert snr_db(noisy, SAMPLE_RATE) == pytest.approx(target_db, abs=3.0)


def test_perceived_gender_rule():
    assert perceived_gender(None) is None
    low, high, middle = perceived_gender(105), perceived_gender(245), perceived_gender(160)
    assert low["label"] == "male" and low["confidence"] > 0.95
    assert high["label"] == "female" and high["confidence"] > 0.95
    assert middle["confidence"] == pytest.approx(0.5)
    assert perceived_gender(150)["confidence"] < 0.8  # too close to call
