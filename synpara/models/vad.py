"""Silero VAD (v6, TorchScript) from the ``silero-vad`` wheel."""

from __future__ import annotations

from typing import Any


def load_silero_vad() -> Any:
    """Silero VAD v6 (TorchScript) from the ``silero-vad`` wheel; no download."""
    from silero_vad import load_silero_vad as _load

    return _load()
