"""The detector interface and the ``kind:path`` registry.

A detector scores fixed-length windows of audio: it has ``labels`` (one per output column) and
``predict(windows) -> (n, len(labels))`` probabilities. The base class cuts the windows (centred at
given times, one batch at a time) from the cut's audio; a detector whose input is not a plain
waveform window (YAMNet's log-mel patches) overrides :meth:`Detector.prepare` and
:meth:`Detector.window`. A detector whose labels are AudioSet display names sets ``audioset`` and
goes through :mod:`synpara.detectors.audioset`; one trained on our own labels
(:mod:`synpara.ontology`) is read column by column (:func:`own_label_map`).

Adding a detector = a loader ``(path, threads, batch_size, window) -> Detector`` and one line in
:data:`DETECTORS`; ``--detector KIND:PATH`` then reaches it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synpara.audio import SAMPLE_RATE
from synpara.errors import SynparaError
from synpara.ontology import LABELS

#: ``--detector`` spec -> ``module:loader``. A spec with ``:PLACEHOLDER`` takes a path there.
DETECTORS: dict[str, str] = {
    "yamnet": "synpara.detectors.yamnet:load_yamnet_detector",
    "ast:DIR": "synpara.detectors.waveform:load_ast_detector",
    "panns:FILE": "synpara.detectors.waveform:load_panns_detector",
    "head:FILE": "synpara.detectors.head:load_head_detector",  # head:default is the shipped one
}

#: Our own label for "someone is talking" in a detector with our labels (speech counts against
#: events, as AudioSet's Speech classes do).
SPEECH_LABEL = "speech"


class Detector:
    """Scores windows centred at given times. ``prepare`` runs once per cut, ``score`` as often
    as detect looks (coarse, then fine)."""

    labels: list[str]
    #: True when ``labels`` are AudioSet display names (mapped through the ontology CSV).
    audioset: bool = False
    sample_rate: int = SAMPLE_RATE
    width: int = int(0.96 * SAMPLE_RATE)  # window length in samples at ``sample_rate``
    batch_size: int = 64

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """``(n, len(labels))`` probabilities for ``n`` windows."""
        raise NotImplementedError

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        """The cut's 16 kHz samples, resampled and padded so every centre has a whole window."""
        from synpara.audio import resample

        audio = resample(samples, SAMPLE_RATE, self.sample_rate)
        return np.pad(audio, (self.width // 2, self.width - self.width // 2))

    def window(self, prepared: np.ndarray, centre: float) -> np.ndarray:
        start = int(np.clip(round(centre * self.sample_rate), 0, len(prepared) - self.width))
        return prepared[start:start + self.width]

    def score(self, prepared: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """``(len(centres), len(labels))`` probabilities; windows are cut one batch at a time, so
        an hour of audio never holds all its windows at once."""
        out = [
            np.asarray(self.predict(np.stack([self.window(prepared, c) for c in chunk])),
                       dtype=np.float32)
            for chunk in np.array_split(centres, max(1, -(-len(centres) // self.batch_size)))
            if len(chunk)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


@dataclass(frozen=True)
class ClassMap:
    """Detector output columns feeding each event label, the speech evidence and background tags."""

    events: dict[str, list[int]]
    speech: list[int]
    background: dict[str, list[int]]


def own_label_map(labels: list[str]) -> ClassMap:
    """Columns of a detector trained on our own labels: each ontology label is an event, the
    ``speech`` column counts against them."""
    events = {label: [index] for index, label in enumerate(labels) if label in LABELS}
    if not events:
        raise SynparaError(f"the detector's labels ({', '.join(labels[:5])} ...) name no event "
                           f"label; known: {', '.join(LABELS)}")
    speech = [index for index, label in enumerate(labels) if label == SPEECH_LABEL]
    return ClassMap(events, speech, {})


def _parse(spec: str) -> tuple[str, str, str]:
    """``spec`` -> (registry key, kind, path)."""
    kind, _, path = spec.partition(":")
    for key in DETECTORS:
        known, sep, _ = key.partition(":")
        if known == kind:
            if sep and not path:
                raise SynparaError(f"detect: detector {kind} needs a path: {key}")
            return key, kind, path
    raise SynparaError(f"detect: unknown detector {spec!r}; use {', '.join(DETECTORS)}")


def check_spec(spec: str) -> None:
    """Raise :class:`SynparaError` for a ``--detector`` value no registry entry takes."""
    _parse(spec)


def load_detector(spec: str, threads: int, batch_size: int, window: float) -> Detector:
    """The detector a ``--detector`` spec names, loaded (call from ``setup``)."""
    key, _, path = _parse(spec)
    module_name, name = DETECTORS[key].split(":")
    loader: Callable[[str, int, int, float], Detector] = getattr(
        importlib.import_module(module_name), name)
    return loader(path, threads, batch_size, window)
