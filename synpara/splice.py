"""Signal code of the insert stage: make a vocalization belong to a host, then splice it in.

Pure functions on float32 mono numpy arrays (``(samples,)``) at a stated rate: F0 median and
pitch shift (WORLD via pyworld, formants moved by spectral-envelope warping), loudness (BS.1770
via pyloudnorm) and the gain to a target, the host's room tone continued under an insertion,
equal-power cross-fades, and :func:`splice_stretch`, which builds the stretch inserted into a
pause so that the host's samples on both sides stay untouched and both joins stay continuous.

>>> fade_in, fade_out = equal_power_fades(4)
>>> bool(np.allclose(fade_in**2 + fade_out**2, 1.0))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.errors import SynparaError
from synpara.models.world import load_pyworld

if TYPE_CHECKING:
    from lhotse.cut import Cut

#: Loudness of digital silence (below BS.1770's absolute gate).
SILENCE_LUFS = -70.0
#: WORLD analysis frame period (ms): 5 ms is WORLD's default and keeps laugh bursts apart.
FRAME_PERIOD_MS = 5.0


def _world_f0(
    samples: np.ndarray, sample_rate: int, frame_period_ms: float = FRAME_PERIOD_MS
) -> tuple[np.ndarray, np.ndarray]:
    pw = load_pyworld()
    x = np.ascontiguousarray(samples, dtype=np.float64)
    f0, times = pw.dio(x, sample_rate, f0_floor=60.0, f0_ceil=900.0, frame_period=frame_period_ms)
    return pw.stonemask(x, f0, times, sample_rate), times


def f0_median_hz(
    samples: np.ndarray, sample_rate: int, frame_period_ms: float = FRAME_PERIOD_MS
) -> float | None:
    """Median F0 (Hz) of the voiced frames, ``None`` when fewer than 3 frames are voiced
    (a breath, a cough's noise burst, silence)."""
    if len(samples) < sample_rate // 20:
        return None
    f0, _ = _world_f0(samples, sample_rate, frame_period_ms)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size >= 3 else None


@dataclass(frozen=True)
class WorldAnalysis:
    """WORLD's decomposition of a clip (the expensive half of a pitch shift: cache it)."""

    f0: np.ndarray
    envelope: np.ndarray
    aperiodicity: np.ndarray
    num_samples: int


def world_analysis(samples: np.ndarray, sample_rate: int) -> WorldAnalysis:
    pw = load_pyworld()
    x = np.ascontiguousarray(samples, dtype=np.float64)
    f0, times = _world_f0(samples, sample_rate)
    envelope = pw.cheaptrick(x, f0, times, sample_rate)
    aperiodicity = pw.d4c(x, f0, times, sample_rate)
    return WorldAnalysis(f0, envelope, aperiodicity, len(samples))


def pitch_shift(
    samples: np.ndarray,
    sample_rate: int,
    semitones: float,
    formant_follow: float = 1.0,
    analysis: WorldAnalysis | None = None,
) -> np.ndarray:
    """Shift F0 by ``semitones`` with WORLD; the spectral envelope (formants) is warped by the
    ratio raised to ``formant_follow`` (1: formants move with the pitch, as when a smaller or
    larger voice makes the sound; 0: formants stay). Same length out as in. ``analysis`` (of
    these very samples) saves the analysis when one clip is shifted many times.

    >>> t = np.arange(16000) / 16000
    >>> tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    >>> round(f0_median_hz(pitch_shift(tone, 16000, -12.0), 16000))
    110
    """
    if semitones == 0.0 or len(samples) < sample_rate // 20:
        return np.asarray(samples, dtype=np.float32)
    pw = load_pyworld()
    world = analysis or world_analysis(samples, sample_rate)
    envelope, aperiodicity = world.envelope, world.aperiodicity
    ratio = 2.0 ** (semitones / 12.0)
    warp = ratio**formant_follow
    if warp != 1.0:
        # new envelope at frequency f is the old one at f / warp (formants scale by warp)
        bins = envelope.shape[1]
        source = np.clip(np.arange(bins) / warp, 0, bins - 1)
        envelope = np.stack([np.interp(source, np.arange(bins), row) for row in envelope])
        aperiodicity = np.stack([np.interp(source, np.arange(bins), row) for row in aperiodicity])
    out = pw.synthesize(
        world.f0 * ratio,
        np.ascontiguousarray(envelope),
        np.ascontiguousarray(aperiodicity),
        sample_rate,
        FRAME_PERIOD_MS,
    )
    out = np.asarray(out[: len(samples)], dtype=np.float32)
    if len(out) < len(samples):
        out = np.pad(out, (0, len(samples) - len(out)))
    return out


def semitones_toward(clip_f0_hz: float | None, host_f0_hz: float | None, limit: float) -> float:
    """Semitones that move ``clip_f0_hz`` onto ``host_f0_hz``, bounded to ``±limit``; 0 when
    either is unknown."""
    if not clip_f0_hz or not host_f0_hz:
        return 0.0
    return float(np.clip(12.0 * np.log2(host_f0_hz / clip_f0_hz), -limit, limit))


# --------------------------------------------------------------------------- loudness


def loudness_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS, BS.1770-4). Clips shorter than the standard 0.4 s block are
    measured in one block of their own length; silence gives :data:`SILENCE_LUFS`."""
    import pyloudnorm

    samples = np.asarray(samples, dtype=np.float64)
    duration = len(samples) / sample_rate
    if duration < 0.02 or not np.any(samples):
        return SILENCE_LUFS
    meter = pyloudnorm.Meter(sample_rate, block_size=min(0.4, duration))
    value = float(meter.integrated_loudness(samples))
    return max(value, SILENCE_LUFS) if np.isfinite(value) else SILENCE_LUFS


def gain_to_loudness(samples: np.ndarray, sample_rate: int, target_lufs: float) -> float:
    """Gain (dB) that brings ``samples`` to ``target_lufs``."""
    return float(target_lufs - loudness_lufs(samples, sample_rate))


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    return (np.asarray(samples, dtype=np.float64) * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def peak_limit_gain_db(samples: np.ndarray, ceiling: float = 0.98) -> float:
    """Gain (dB, <= 0) that keeps the peak at or under ``ceiling`` of full scale."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    return min(0.0, 20.0 * np.log10(ceiling / peak)) if peak > ceiling else 0.0


# --------------------------------------------------------------------------- room tone, fades


def equal_power_fades(length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fade_in, fade_out)`` of ``length`` samples with ``in² + out² = 1`` (constant power for
    uncorrelated signals such as two stretches of noise)."""
    phase = (np.arange(length, dtype=np.float64) + 0.5) / max(length, 1) * (np.pi / 2)
    return np.sin(phase).astype(np.float32), np.cos(phase).astype(np.float32)


def room_tone(
    reference: np.ndarray, length: int, rng: np.random.Generator, fft_size: int = 1024
) -> np.ndarray:
    """``length`` samples of noise with the level and spectrum of ``reference`` (the host's
    quietest stretch): white noise shaped by the reference's average magnitude spectrum.
    Digital silence in gives digital silence out."""
    reference = np.asarray(reference, dtype=np.float64)
    if length <= 0:
        return np.zeros(0, dtype=np.float32)
    if reference.size == 0 or not np.any(reference):
        return np.zeros(length, dtype=np.float32)
    size = min(fft_size, 1 << int(np.log2(max(16, len(reference)))))
    frames = np.lib.stride_tricks.sliding_window_view(reference, size)[:: size // 2]
    window = np.hanning(size)
    magnitude = np.sqrt(np.mean(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, axis=0))
    from scipy.fft import next_fast_len

    total = next_fast_len(length + size, real=True)  # odd lengths make the FFT crawl
    spectrum = np.fft.rfft(rng.standard_normal(total))
    shape = np.interp(
        np.linspace(0, 1, len(spectrum)), np.linspace(0, 1, len(magnitude)), magnitude
    )
    tone = np.fft.irfft(spectrum * shape, n=total)[:length]
    target_rms = float(np.sqrt(np.mean(reference**2)))
    rms = float(np.sqrt(np.mean(tone**2)))
    return (tone * (target_rms / rms if rms > 0 else 0.0)).astype(np.float32)


def quietest_stretch(samples: np.ndarray, length: int, spans: list[tuple[int, int]]) -> np.ndarray:
    """The quietest ``length``-sample window inside ``spans`` (the host's pauses, in samples),
    else the quietest window anywhere: the reference for :func:`room_tone`."""
    samples = np.asarray(samples, dtype=np.float32)
    length = max(1, min(length, len(samples)))
    best, best_energy = samples[:length], np.inf
    candidates = [(a, b) for a, b in spans if b - a >= length] or [(0, len(samples))]
    for a, b in candidates:
        hop = max(1, length // 4)
        for start in range(a, b - length + 1, hop):
            energy = float(np.mean(samples[start : start + length].astype(np.float64) ** 2))
            if energy < best_energy:
                best, best_energy = samples[start : start + length], energy
    return best


# --------------------------------------------------------------------------- the inserted stretch


@dataclass(frozen=True)
class Stretch:
    """What is inserted at one point: ``samples`` (``len`` = the inserted length) and where the
    clip's own samples lie inside it."""

    samples: np.ndarray
    clip_offset_sample: int  # the clip starts this many samples into the stretch
    clip_samples: int


def splice_stretch(
    host: np.ndarray,
    at_sample: int,
    clip: np.ndarray,
    tone: np.ndarray,
    fade_samples: int,
    pad_before: int,
    pad_after: int,
) -> Stretch:
    """The samples inserted at ``host[at_sample]`` (between ``host[at_sample - 1]`` and it).

    Room ``tone`` (``len`` = the whole stretch) fills the stretch, the ``clip`` is added on it
    after ``pad_before`` samples, and each end cross-fades (equal power) with the host's own pause
    samples: the first ``fade_samples`` continue ``host[at_sample:]`` into the tone, the last ones
    lead from the tone into ``host[at_sample - fade_samples : at_sample]``, which is what came
    before ``host[at_sample]`` originally. So ``host[:at_sample] + stretch + host[at_sample:]``
    keeps every host sample and is continuous at both joins; the pause must hold ``fade_samples``
    on each side of ``at_sample``.
    """
    length = pad_before + len(clip) + pad_after
    if len(tone) != length:
        raise SynparaError(f"room tone has {len(tone)} samples, the stretch needs {length}")
    if pad_before < fade_samples or pad_after < fade_samples:
        raise SynparaError("the pads around the clip must hold the cross-fades")
    if at_sample < fade_samples or at_sample + fade_samples > len(host):
        raise SynparaError("insertion point too close to the edge of the host for the fades")
    out = np.asarray(tone, dtype=np.float32).copy()
    if fade_samples:
        fade_in, fade_out = equal_power_fades(fade_samples)
        out[:fade_samples] = (
            host[at_sample : at_sample + fade_samples] * fade_out + out[:fade_samples] * fade_in
        )
        out[-fade_samples:] = (
            out[-fade_samples:] * fade_out + host[at_sample - fade_samples : at_sample] * fade_in
        )
    out[pad_before : pad_before + len(clip)] += clip
    return Stretch(samples=out, clip_offset_sample=pad_before, clip_samples=len(clip))


def edge_fade(clip: np.ndarray, fade_samples: int) -> np.ndarray:
    """The clip with short raised-cosine fades at both ends (no click where it meets the tone)."""
    clip = np.asarray(clip, dtype=np.float32).copy()
    n = min(fade_samples, len(clip) // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
        clip[:n] *= ramp
        clip[-n:] *= ramp[::-1]
    return clip


# --------------------------------------------------------------------------- host measures


def speech_near(host: np.ndarray, spans: list[tuple[int, int]], lo: int, hi: int) -> np.ndarray:
    """The host's word samples between ``lo`` and ``hi`` (all words when none lie there)."""
    parts = [host[max(a, lo) : min(b, hi)] for a, b in spans if min(b, hi) > max(a, lo)]
    if not parts:
        parts = [host[a:b] for a, b in spans]
    return np.concatenate(parts) if parts else host


@dataclass(frozen=True)
class LoudnessMatch:
    """A clip brought to the loudness of the speech around its insertion point."""

    samples: np.ndarray
    speech_lufs: float  # the host's words near the insertion point
    target_lufs: float
    gain_db: float  # all the gain applied, the peak limit included
    peak_limit_db: float


def match_loudness(clip: np.ndarray, rate: int, host: np.ndarray, spans: list[tuple[int, int]],
                   at: int, window: int, offsets_db: tuple[float, ...],
                   ceiling: float = 0.9) -> LoudnessMatch:
    """``clip`` at the loudness of the host's words within ``window`` samples of ``at`` plus
    ``offsets_db`` (added in order), edges faded over 5 ms, its peak held under ``ceiling``."""
    speech_lufs = loudness_lufs(speech_near(host, spans, at - window, at + window), rate)
    target = sum(offsets_db, speech_lufs)  # added in order, as the stage always has
    gain = gain_to_loudness(clip, rate, target)
    processed = edge_fade(apply_gain(clip, gain), int(round(0.005 * rate)))
    limit = peak_limit_gain_db(processed, ceiling=ceiling)
    processed = apply_gain(processed, limit) if limit else processed
    return LoudnessMatch(processed, speech_lufs, target, gain + limit, limit)


def host_f0_hz(host: np.ndarray, spans: list[tuple[int, int]], rate: int) -> float | None:
    """The host speaker's F0 median over the words."""
    from synpara.audio import resample

    speech = speech_near(host, spans, 0, len(host))
    # 8 kHz, 10 ms frames: a speaking voice's F0 (60-500 Hz) is as clear, in a quarter of the time
    low_rate = min(rate, 8000)
    return f0_median_hz(resample(speech, rate, low_rate), low_rate, frame_period_ms=10.0)


def host_samples(
    cut: Cut, sample_rate: int, allow_upsample: bool = False
) -> tuple[np.ndarray, int]:
    """A cut's samples read at its source rate (ingest's record, or the TTS engine's) and
    resampled to ``sample_rate`` only when that is lower (or upsampling is allowed): the 16 kHz
    working copy is for analysis, a synthesized corpus keeps the host's full band."""
    from synpara.audio import decode, load_cut_audio, resample, to_mono

    source: dict[str, Any] = ((cut.custom or {}).get("synpara") or {}).get("source") or {}
    try:
        decoded = decode(source["path"])
        rate = decoded.sample_rate
        first = int(round(cut.start * rate))
        samples = to_mono(decoded.samples)[first : first + int(round(cut.duration * rate))]
    except (KeyError, SynparaError):
        rate = int(cut.sampling_rate)
        samples = load_cut_audio(cut, rate)
    out_rate = sample_rate if sample_rate <= rate or allow_upsample else rate
    return resample(samples, rate, out_rate), out_rate
