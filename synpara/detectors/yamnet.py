"""YAMNet (the packaged default) as a :class:`~synpara.detectors.base.Detector`: log-mel patches."""

from __future__ import annotations

import numpy as np

from synpara.detectors.base import Detector
from synpara.models.yamnet import (
    YAMNET_HOP_SAMPLES,
    YAMNET_PATCH_FRAMES,
    YAMNET_SAMPLE_RATE,
    load_yamnet,
    yamnet_log_mel,
)

#: Seconds per YAMNet log-mel frame (its 10 ms hop): a window centre's frame index.
MEL_FRAME_S = YAMNET_HOP_SAMPLES / YAMNET_SAMPLE_RATE


class YamnetDetector(Detector):
    """YAMNet's 521 AudioSet classes on 0.96 s log-mel patches (one log-mel pass per cut)."""

    audioset = True

    def __init__(self, threads: int, batch_size: int) -> None:
        self.model = load_yamnet(threads=threads, batch_size=batch_size)
        self.labels = self.model.class_names
        self.batch_size = batch_size

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        frames = yamnet_log_mel(samples)
        # Silence-level padding lets a window centre on the very first and last frames.
        floor = np.full((YAMNET_PATCH_FRAMES // 2, frames.shape[1]), np.log(0.001), np.float32)
        return np.concatenate([floor, frames, floor])

    def window(self, prepared: np.ndarray, centre: float) -> np.ndarray:
        frames = len(prepared) - 2 * (YAMNET_PATCH_FRAMES // 2)
        first = int(np.clip(np.round(centre / MEL_FRAME_S), 0, frames))
        return prepared[first:first + YAMNET_PATCH_FRAMES]

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self.model.predict(windows)


def load_yamnet_detector(path: str, threads: int, batch_size: int, window: float) -> Detector:
    """``--detector yamnet`` (no path; its window is fixed at 0.96 s)."""
    return YamnetDetector(threads, batch_size)
