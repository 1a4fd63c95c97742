"""A user's PANNs Cnn14-style checkpoint: the network, rebuilt from the checkpoint's shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synpara.errors import SynparaError


def cnn14_network(widths: list[int], fft: int, mels: int, classes: int, hop: int) -> Any:
    """A PANNs Cnn14-shaped network whose parameter names match the published checkpoints.

    The STFT is the checkpoint's own convolution weights (window x cos/sin) and the mel matrix its
    ``melW``, so the front end is whatever the checkpoint was trained with.
    """
    import torch
    from torch import nn

    class ConvBlock(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

        def forward(self, x: Any, pool: int) -> Any:
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            return nn.functional.avg_pool2d(x, pool) if pool > 1 else x

    class Stft(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_real = nn.Conv1d(1, fft // 2 + 1, fft, stride=hop, bias=False)
            self.conv_imag = nn.Conv1d(1, fft // 2 + 1, fft, stride=hop, bias=False)

    class Extractor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stft = Stft()

    class Logmel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.melW = nn.Parameter(torch.zeros(fft // 2 + 1, mels), requires_grad=False)

    class Cnn14(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.spectrogram_extractor = Extractor()
            self.logmel_extractor = Logmel()
            self.bn0 = nn.BatchNorm2d(mels)
            channels = [1, *widths]
            for index in range(6):
                block = ConvBlock(channels[index], channels[index + 1])
                setattr(self, f"conv_block{index + 1}", block)
            self.fc1 = nn.Linear(widths[-1], widths[-1])
            self.fc_audioset = nn.Linear(widths[-1], classes)

        def forward(self, audio: Any) -> Any:
            x = nn.functional.pad(audio[:, None, :], (fft // 2, fft // 2), mode="reflect")
            stft = self.spectrogram_extractor.stft
            power = stft.conv_real(x) ** 2 + stft.conv_imag(x) ** 2  # (n, bins, time)
            mel = torch.matmul(power.transpose(1, 2), self.logmel_extractor.melW)
            x = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))[:, None]  # (n, 1, time, mels)
            x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
            for index in range(6):
                x = getattr(self, f"conv_block{index + 1}")(x, 2 if index < 5 else 1)
            x = x.mean(dim=3)
            x = x.max(dim=2).values + x.mean(dim=2)
            x = torch.relu(self.fc1(x))
            return torch.sigmoid(self.fc_audioset(x))

    return Cnn14()


class PannsTagger:
    """A PANNs Cnn14-style checkpoint (``{"model": state_dict}``) run on the CPU or GPU.

    Class names come from ``checkpoint["labels"]`` or a ``class_labels_indices.csv``
    (``display_name`` column) beside the checkpoint; PANNs' 527 AudioSet names are not packaged.
    """

    def __init__(self, path: str | Path, sample_rate: int = 32000,
                 hop: int = 320) -> None:
        import torch

        path = Path(path)
        if not path.is_file():
            raise SynparaError("no such PANNs checkpoint", path)
        try:
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as error:  # torch raises many types for a file that is not a checkpoint
            raise SynparaError(f"cannot read the PANNs checkpoint ({error})", path) from error
        state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise SynparaError("not a PANNs checkpoint (no state dict inside)", path)
        try:
            widths = [int(state[f"conv_block{i}.conv1.weight"].shape[0]) for i in range(1, 7)]
            real = state["spectrogram_extractor.stft.conv_real.weight"]
            mels = int(state["logmel_extractor.melW"].shape[1])
            classes = int(state["fc_audioset.weight"].shape[0])
        except (KeyError, TypeError, AttributeError) as error:
            raise SynparaError(f"not a PANNs Cnn14 checkpoint (missing {error})", path) from error
        self.model = cnn14_network(widths, int(real.shape[-1]), mels, classes, hop)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing:
            raise SynparaError(f"PANNs checkpoint lacks {len(missing)} weights ({missing[0]} ...)",
                               path)
        from synpara.models.files import torch_device

        self.device = torch_device("auto")  # the GPU when there is one
        self.model.to(self.device).eval()
        self.class_names = self._labels(checkpoint, path, classes)
        self.sample_rate = sample_rate

    @staticmethod
    def _labels(checkpoint: Any, path: Path, classes: int) -> list[str]:
        import csv

        labels = checkpoint.get("labels") if isinstance(checkpoint, dict) else None
        if labels is None:
            table = path.parent / "class_labels_indices.csv"
            if not table.exists():
                raise SynparaError("PANNs class names not found: put class_labels_indices.csv "
                                   "beside the checkpoint or store them as checkpoint['labels']",
                                   path)
            with open(table, newline="", encoding="utf-8") as handle:
                labels = [row["display_name"] for row in csv.DictReader(handle)]
        if len(labels) != classes:
            raise SynparaError(f"{len(labels)} class names for {classes} outputs", path)
        return [str(label) for label in labels]

    def predict(self, windows: Any) -> Any:
        import numpy as np
        import torch

        with torch.inference_mode():
            audio = torch.from_numpy(np.asarray(windows, dtype=np.float32)).to(self.device)
            return self.model(audio).cpu().numpy()


def load_panns_tagger(path: str | Path) -> PannsTagger:
    """A user's PANNs checkpoint from a local file (no download)."""
    return PannsTagger(path)
