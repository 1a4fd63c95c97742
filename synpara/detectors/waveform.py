"""User checkpoints that score plain waveform windows: AST (transformers) and PANNs."""

from __future__ import annotations

from typing import Any

import numpy as np

from synpara.detectors.base import Detector


class WaveformDetector(Detector):
    """Any ``predict(windows (n, samples) at rate) -> (n, classes)`` AudioSet tagger."""

    audioset = True

    def __init__(self, model: Any, window: float, batch_size: int) -> None:
        self.model = model
        self.labels = model.class_names
        self.sample_rate = model.sample_rate
        self.width = int(round(window * model.sample_rate))
        self.batch_size = batch_size

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self.model.predict(windows)


def load_ast_detector(path: str, threads: int, batch_size: int, window: float) -> Detector:
    """``--detector ast:DIR``: a transformers audio classifier saved in a local directory."""
    from synpara.models.ast import load_transformers_tagger

    return WaveformDetector(load_transformers_tagger(path), window, batch_size)


def load_panns_detector(path: str, threads: int, batch_size: int, window: float) -> Detector:
    """``--detector panns:FILE``: a PANNs Cnn14-style checkpoint."""
    from synpara.models.panns import load_panns_tagger

    return WaveformDetector(load_panns_tagger(path), window, batch_size)
