"""Frame-level facts about a signal on a 5 ms grid (energy, flux, activity, the noise floor):
what word and event boundaries are placed on (:mod:`synpara.timing`) and what refine's SNR and
detect's event edges are measured from.

>>> features = frame_features(samples)                       # doctest: +SKIP
>>> features.noise_floor_db, features.frames                 # doctest: +SKIP
(-62.1, 600)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from synpara.audio import SAMPLE_RATE, centered_frame_energy_db, noise_floor_db, spectral_flux

#: Frame hop of the boundary search (seconds); boundaries are placed to within half of it.
HOP = 0.005
_HOP_SAMPLES = int(HOP * SAMPLE_RATE)
_FRAME_SAMPLES = 2 * _HOP_SAMPLES
_FLUX_FRAME_SAMPLES = 8 * _HOP_SAMPLES


@dataclass(frozen=True)
class FrameFeatures:
    """Per-frame facts about a signal; frame ``t`` is centred on ``t * HOP`` seconds.

    ``activity`` is the probability that frame ``t`` is speech sound (not pause, not noise);
    ``sound`` the probability that it is any sound over the floor (what an event is made of).
    """

    energy_db: np.ndarray
    flux: np.ndarray
    activity: np.ndarray
    sound: np.ndarray
    speech_prob: np.ndarray | None
    noise_floor_db: float
    speech_level_db: float

    @property
    def frames(self) -> int:
        return len(self.energy_db)

    @property
    def duration(self) -> float:
        return self.frames * HOP


def mask_frames(features: FrameFeatures, spans: Sequence[tuple[float, float]],
                keep: Sequence[tuple[float, float]] = ()) -> FrameFeatures:
    """``features`` with the frames of ``spans`` (seconds on the features' axis) turned into
    silence, except where they meet ``keep``.

    Used to hide other speakers' words from one speaker's snapping: in a conversation the sound
    just before or after a turn is often the other speaker, and it must not be taken for the
    turn's first or last word.
    """
    hidden = np.zeros(features.frames, dtype=bool)
    for start, end in spans:
        hidden[max(0, int(start / HOP)) : max(0, int(np.ceil(end / HOP)))] = True
    for start, end in keep:
        hidden[max(0, int(start / HOP)) : max(0, int(np.ceil(end / HOP)))] = False
    if not hidden.any():
        return features

    def silenced(values: np.ndarray, quiet: float) -> np.ndarray:
        values = values.copy()
        values[hidden] = quiet
        return values

    return replace(
        features,
        energy_db=silenced(features.energy_db, features.noise_floor_db),
        flux=silenced(features.flux, 0.0),
        activity=silenced(features.activity, 0.0),
        sound=silenced(features.sound, 0.0),
        speech_prob=None if features.speech_prob is None else silenced(features.speech_prob, 0.0),
    )


def frame_features(
    samples: np.ndarray,
    speech_prob: np.ndarray | None = None,
    speech_window: float = 0.032,
    contrast_db: float = 9.0,
    flux: bool = True,
) -> FrameFeatures:
    """Energy, flux and speech activity of mono 16 kHz ``samples`` on the 5 ms grid.

    ``speech_prob``: optional Silero VAD probabilities, one per ``speech_window`` seconds; they
    damp loud non-speech sounds far from any speech. ``flux=False``: all-zero flux, for callers
    that only place event edges (:func:`synpara.timing.refine_event` reads energy alone) and
    should not pay for a spectrum of every frame.
    """
    energy = centered_frame_energy_db(samples, _HOP_SAMPLES, _FRAME_SAMPLES).astype(np.float64)
    flux_values = (spectral_flux(samples, _HOP_SAMPLES, _FLUX_FRAME_SAMPLES).astype(np.float64)
                   if flux else np.zeros(len(energy)))
    floor = noise_floor_db(energy, 10.0)
    level = float(np.percentile(energy, 95)) if energy.size else floor
    # Threshold between floor and speech: a fixed margin over the floor for quiet rooms, a share
    # of the dynamic range for loud ones (so breath noise and reverb tails stay "pause").
    threshold = floor + max(contrast_db, 0.2 * (level - floor))
    activity = sound = 1.0 / (1.0 + np.exp(-(energy - threshold) / 2.0))
    frame_prob = None
    if speech_prob is not None and len(speech_prob):
        times = np.arange(len(energy)) * HOP
        index = np.minimum((times / speech_window).astype(int), len(speech_prob) - 1)
        frame_prob = speech_prob[index].astype(np.float64)
        # Silero lags and smears by tens of ms: widen its speech regions by 150 ms each side so it
        # only vetoes sound far from speech and never moves a boundary itself.
        widen = int(0.15 / HOP)
        padded = np.pad(frame_prob, widen, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * widen + 1)
        activity = activity * (0.3 + 0.7 * windows.max(axis=1))
    return FrameFeatures(
        energy_db=energy,
        flux=flux_values,
        activity=activity,
        sound=sound,
        speech_prob=frame_prob,
        noise_floor_db=floor,
        speech_level_db=level,
    )


def outward_energy_db(features: FrameFeatures, frames: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Mean energy of ``frames`` frames ending at / starting at each frame (dB): averaged only
    away from the word, so loud word frames never leak into the estimate of a pause."""
    power = np.concatenate([[0.0], np.cumsum(10 ** (features.energy_db / 10))])
    n = len(features.energy_db)
    t = np.arange(n)
    lo = np.maximum(t - frames + 1, 0)
    hi = np.minimum(t + frames, n)
    ending = (power[t + 1] - power[lo]) / (t + 1 - lo)
    starting = (power[hi] - power[t]) / (hi - t)
    return 10 * np.log10(np.maximum(ending, 1e-12)), 10 * np.log10(np.maximum(starting, 1e-12))


def snr_db(features: FrameFeatures, spans: Sequence[tuple[float, float]], offset: float) -> float:
    """Power in the frames of ``spans`` (seconds; ``offset`` is the features' first frame) over
    the noise floor (dB); 0 without spans."""
    if not spans:
        return 0.0
    frames = np.concatenate([
        np.arange(int((start - offset) / HOP), max(int((end - offset) / HOP),
                                                   int((start - offset) / HOP) + 1))
        for start, end in spans
    ])
    frames = frames[(frames >= 0) & (frames < features.frames)]
    if frames.size == 0:
        return 0.0
    speech = float(np.mean(10 ** (features.energy_db[frames] / 10)))
    noise = 10 ** (features.noise_floor_db / 10)
    return float(min(100.0, 10 * np.log10(max(speech - noise, 1e-12) / max(noise, 1e-12))))
