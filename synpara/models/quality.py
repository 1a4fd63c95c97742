"""Models that judge synthesized audio: CAM++ speaker embeddings and DNSMOS.

Loaders are called once per worker (``setup()``); the measures are plain functions of 16 kHz mono
float32 samples. DNSMOS comes from ``speechmos`` (MIT, ships Microsoft's ONNX files); its first
call in a process pays a numba compile of librosa's features.

>>> model = load_speaker_model()                                   # doctest: +SKIP
>>> cosine(speaker_embedding(model, a), speaker_embedding(model, b))  # doctest: +SKIP
0.71
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synpara.errors import SynparaError


def load_speaker_model() -> Any:
    """CAM++ (192-d) as diarize loads it (``synpara.models.load_campplus``)."""
    from synpara.models import load_campplus

    return load_campplus()


def speaker_embedding(model: Any, samples: np.ndarray) -> np.ndarray | None:
    """CAM++ embedding of 16 kHz mono samples (unit length), ``None`` for audio under 0.2 s."""
    import torch

    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < 3200:
        return None
    with torch.no_grad():
        embedding = model(torch.from_numpy(samples)[None, None, :])[0].numpy()
    if not np.isfinite(embedding).all():
        return None
    norm = float(np.linalg.norm(embedding))
    return (embedding / norm).astype(np.float32) if norm > 0 else None


def cosine(a: np.ndarray | list[float] | None, b: np.ndarray | list[float] | None) -> float | None:
    """Cosine similarity of two embeddings; ``None`` when either is missing."""
    if a is None or b is None:
        return None
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / denominator) if denominator > 0 else None


class Dnsmos:
    """DNSMOS P.835 (``speechmos``): ``overall(samples16k)`` is the OVRL MOS (1..5)."""

    def __init__(self) -> None:
        try:
            from speechmos import dnsmos
        except ImportError as error:
            raise SynparaError(
                f"DNSMOS needs speechmos and librosa ({error}): "
                "pip install speechmos==0.0.1.1 librosa"
            ) from error
        self._dnsmos = dnsmos

    def overall(self, samples: np.ndarray) -> float:
        samples = np.asarray(samples, dtype=np.float32)
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        if peak > 1.0:
            samples = samples / peak  # speechmos refuses audio outside [-1, 1]
        return float(self._dnsmos.run(samples, 16000)["ovrl_mos"])


def load_dnsmos() -> Dnsmos:
    return Dnsmos()
