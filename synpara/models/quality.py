"""Models that judge synthesized audio: CAM++ speaker embeddings and DNSMOS.

Loaders are called once per worker (``setup()``); the measures are plain functions of 16 kHz mono
float32 samples. DNSMOS runs Microsoft's ONNX file as shipped in ``speechmos`` (MIT).

>>> model = load_speaker_model()                                   # doctest: +SKIP
>>> cosine(speaker_embedding(model, a), speaker_embedding(model, b))  # doctest: +SKIP
0.71
"""

from __future__ import annotations

from pathlib import Path
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


#: DNSMOS P.835 scores 9.01 s windows, one per second of audio (Microsoft's reference script).
DNSMOS_WINDOW_S = 9.01
#: The P.835 model's raw OVRL -> MOS polynomial (non-personalised), from the reference script.
_OVRL_POLY = (-0.06766283, 1.11546468, 0.04602535)


class Dnsmos:
    """DNSMOS P.835 overall MOS (1..5) of 16 kHz mono audio: ``overall(samples)``.

    Runs Microsoft's ``sig_bak_ovr.onnx`` as shipped inside ``speechmos`` with our own
    onnxruntime session: the same windows and polynomial as ``speechmos.dnsmos.run``'s
    ``ovrl_mos`` (tested equal), without its P.808 model and librosa features, which it computes
    on every call and we never read (2x the time, and a numba compile of several seconds in each
    process), and with the worker's thread count and the windows of a clip in one batch.
    """

    def __init__(self, threads: int = 1) -> None:
        import importlib.util

        import onnxruntime

        spec = importlib.util.find_spec("speechmos")
        if spec is None or not spec.submodule_search_locations:
            raise SynparaError("DNSMOS needs speechmos (it ships the ONNX model): "
                               "pip install speechmos==0.0.1.1")
        path = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models" / "sig_bak_ovr.onnx"
        if not path.is_file():
            raise SynparaError("speechmos is installed without its DNSMOS model", path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"])

    def overall(self, samples: np.ndarray) -> float:
        audio = np.asarray(samples, dtype=np.float32)
        if audio.size == 0:
            raise SynparaError("DNSMOS of empty audio")
        peak = float(np.max(np.abs(audio)))
        if peak > 1.0:
            audio = audio / peak  # the reference refuses audio outside [-1, 1]
        rate = 16000
        window = int(DNSMOS_WINDOW_S * rate)
        while len(audio) < window:  # short clips are repeated, as the reference does
            audio = np.append(audio, audio)
        hops = int(np.floor(len(audio) / rate) - DNSMOS_WINDOW_S) + 1
        # the reference's float arithmetic, so the same windows are kept (a few fall 1 sample short)
        windows = [audio[int(i * rate): int((i + DNSMOS_WINDOW_S) * rate)] for i in range(hops)]
        windows = [w for w in windows if len(w) >= window]
        raw = np.concatenate([
            self.session.run(None, {"input_1": np.stack(windows[i: i + 16]).astype(np.float32)})[0]
            for i in range(0, len(windows), 16)])
        return float(np.mean(np.poly1d(_OVRL_POLY)(raw[:, 2])))


def load_dnsmos(threads: int = 1) -> Dnsmos:
    return Dnsmos(threads)
