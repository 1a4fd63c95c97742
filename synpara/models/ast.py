"""A user's AudioSet-style audio classifier saved with ``transformers`` (AST, BEATs-class)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synpara.errors import SynparaError


class TransformersTagger:
    """An AudioSet-style audio classifier saved with ``transformers`` (AST, BEATs-class) in a local
    directory; ``predict`` takes windows ``(n, samples)`` and returns sigmoid probabilities.

    >>> tagger = load_transformers_tagger("/models/ast-audioset")   # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        try:
            from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
        except ImportError as error:
            raise SynparaError("the ast detector needs transformers: pip install transformers") \
                from error
        path = Path(path)
        if not path.is_dir():
            raise SynparaError("not a directory with a transformers model", path)
        try:  # local_files_only: a directory that lacks a file must not reach for the hub
            self.extractor = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForAudioClassification.from_pretrained(
                str(path), local_files_only=True).eval()
        except (OSError, ValueError, KeyError) as error:
            raise SynparaError(f"cannot load a transformers audio classifier ({error})", path) \
                from error
        from synpara.models.files import torch_device

        self.device = torch_device("auto")  # the GPU when there is one
        self.model.to(self.device)
        id2label = self.model.config.id2label
        self.class_names = [str(id2label[i]) for i in range(len(id2label))]
        self.sample_rate = int(getattr(self.extractor, "sampling_rate", 16000))

    def predict(self, windows: Any) -> Any:
        import torch

        inputs = self.extractor(list(windows), sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**inputs.to(self.device)).logits
        return torch.sigmoid(logits).float().cpu().numpy()


def load_transformers_tagger(path: str | Path) -> TransformersTagger:
    """A user's transformers audio classifier from a local directory (no download)."""
    return TransformersTagger(path)

