"""A user's voice-conversion model behind insert's ``--converter`` flag (Seed-VC-like).

Two ways to name one:

* ``python:package.module:function``: ``function(clip, reference, sample_rate) -> converted``,
  numpy float32 mono arrays at the output rate (the reference is the host's speech);
* a TorchScript file (``.pt``, ``.ts``, ``.torchscript``): ``model(clip, reference)`` with
  ``(1, samples)`` float32 tensors, returning ``(1, samples)`` at the same rate.

Nothing is downloaded; a converter that fails, or returns nothing finite, is an error naming it.

>>> convert = load_converter("python:numpy:negative")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from synpara.errors import SynparaError

Converter = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def load_converter(spec: str) -> Converter:
    """The converter named by ``spec`` (see the module docstring)."""
    if spec.startswith("python:"):
        module_name, _, function_name = spec[len("python:") :].rpartition(":")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError, ValueError) as error:
            raise SynparaError(f"cannot load converter {spec!r} ({error})") from None
        return _checked(lambda clip, ref, rate: function(clip, ref, rate), spec)
    path = Path(spec)
    if not path.is_file():
        raise SynparaError(
            "converter not found (a TorchScript file or python:module:function)", path
        )
    import torch

    try:
        model = torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as error:
        raise SynparaError(
            f"not a TorchScript model ({str(error).splitlines()[0]})", path
        ) from None

    def run(clip: np.ndarray, reference: np.ndarray, rate: int) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.from_numpy(clip)[None], torch.from_numpy(reference)[None])
        return out.reshape(-1).numpy()

    return _checked(run, spec)


def _checked(convert: Converter, spec: str) -> Converter:
    def run(clip: np.ndarray, reference: np.ndarray, rate: int) -> np.ndarray:
        out = np.asarray(
            convert(
                np.ascontiguousarray(clip, np.float32),
                np.ascontiguousarray(reference, np.float32),
                rate,
            ),
            dtype=np.float32,
        ).reshape(-1)
        if out.size == 0 or not np.isfinite(out).all():
            raise SynparaError(f"converter {spec!r} returned no finite samples")
        return out

    return run
