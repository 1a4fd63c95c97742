"""A user's wav2vec2-style CTC model for refine's ``--aligner ctc``, and forced alignment with it.

No wav2vec2/CTC weights ship in any package: this is the loading path for a user's own Hugging Face
``Wav2Vec2ForCTC`` directory (config.json, weights, vocab.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError
from synpara.models.files import torch_device


class CtcAligner:
    """A local wav2vec2-style CTC model: frame log-probabilities for forced alignment.

    >>> aligner = load_ctc_aligner("~/models/wav2vec2-base-960h")  # doctest: +SKIP
    >>> log_probs, frame_seconds = aligner.log_probs(samples)       # doctest: +SKIP
    """

    def __init__(self, model: Any, vocab: dict[str, int], blank: int, delimiter: str | None,
                 device: str) -> None:
        self.model = model
        self.vocab = vocab
        self.blank = blank
        self.delimiter = delimiter
        self.device = device

    def log_probs(self, samples: Any) -> tuple[Any, float]:
        """``(frames, vocab)`` log-probabilities of mono 16 kHz samples, and seconds per frame."""
        import numpy as np
        import torch

        audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        audio = (audio - audio.mean()) / (audio.std() + 1e-7)  # wav2vec2's feature normalisation
        with torch.inference_mode():
            logits = self.model(audio[None].to(self.device)).logits[0]
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return log_probs, len(samples) / 16000 / max(len(log_probs), 1)


def load_ctc_aligner(path: str, device: str = "auto") -> CtcAligner:
    """A user's local ``Wav2Vec2ForCTC`` directory (no download: ``local_files_only``)."""
    import json

    local = Path(path).expanduser()
    if not local.is_dir():
        raise SynparaError("CTC model directory not found", local)
    vocab_file = local / "vocab.json"
    if not vocab_file.is_file():
        raise SynparaError("not a CTC model directory (no vocab.json)", local)
    try:
        from transformers import Wav2Vec2ForCTC
    except ImportError as error:
        raise SynparaError("the CTC aligner needs: pip install transformers") from error
    try:
        model = Wav2Vec2ForCTC.from_pretrained(str(local), local_files_only=True)
    except (OSError, ValueError) as error:
        raise SynparaError(f"cannot load CTC model ({error})", local) from error
    device = torch_device(device)
    model = model.to(device).eval()
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    blank = int(getattr(model.config, "pad_token_id", None) or vocab.get("<pad>", 0))
    delimiter = "|" if "|" in vocab else None
    return CtcAligner(model, vocab, blank, delimiter, device)



def ctc_word_times(
    log_probs: np.ndarray,
    frame_seconds: float,
    words: Sequence[str],
    vocab: dict[str, int],
    blank: int,
    delimiter: str | None = "|",
) -> list[tuple[float, float] | None]:
    """Forced-align ``words`` to CTC ``log_probs`` (frames x vocab) with torchaudio.

    Returns each word's ``(start, end)`` in seconds from the first frame, or ``None`` for a word
    none of whose characters the model knows (the caller keeps its old times: no interpolation).
    """
    import torch
    from torchaudio.functional import forced_align, merge_tokens

    def token_ids(word: str) -> list[int]:
        ids = []
        for char in word:
            for variant in (char, char.upper(), char.lower()):
                if variant in vocab and vocab[variant] != blank:
                    ids.append(vocab[variant])
                    break
        return ids

    targets: list[int] = []
    owner: list[int] = []  # word index of each target token (-1: delimiter)
    for index, word in enumerate(words):
        ids = token_ids(word)
        if not ids:
            continue
        if targets and delimiter is not None:
            targets.append(vocab[delimiter])
            owner.append(-1)
        targets.extend(ids)
        owner.extend([index] * len(ids))
    times: list[tuple[float, float] | None] = [None] * len(words)
    if not targets or len(targets) > len(log_probs):
        return times
    emission = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float32))[None]
    labels, scores = forced_align(emission, torch.tensor([targets], dtype=torch.int32), blank=blank)
    spans = merge_tokens(labels[0], scores[0].exp(), blank=blank)
    for span, word_index in zip(spans, owner):
        if word_index < 0:
            continue
        start, end = span.start * frame_seconds, span.end * frame_seconds
        old = times[word_index]
        times[word_index] = (start, end) if old is None else (old[0], end)
    return times
