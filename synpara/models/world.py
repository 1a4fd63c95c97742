"""WORLD (pyworld, MIT): F0 analysis for describe and the bank, pitch shifting for insert.

pyworld 0.3.5's ``__init__`` imports ``pkg_resources`` only to read its own version, and
setuptools >= 81 no longer ships it; the compiled module beside it needs nothing, so it is loaded
directly when the package import fails for that one reason.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from synpara.errors import SynparaError


@lru_cache(maxsize=1)
def load_pyworld() -> ModuleType:
    """The WORLD extension module (``dio``, ``harvest``, ``stonemask``, ``cheaptrick`` ...)."""
    try:
        import pyworld

        return pyworld
    except ModuleNotFoundError as error:
        if error.name != "pkg_resources":
            raise SynparaError("pyworld is not installed (pip install pyworld)") from error
    spec = importlib.util.find_spec("pyworld")
    locations = list(spec.submodule_search_locations or []) if spec else []
    compiled = sorted(p for d in locations for p in Path(d).glob("pyworld*.so"))
    if not compiled:
        raise SynparaError("pyworld's compiled module not found (pip install pyworld)")
    loader = importlib.machinery.ExtensionFileLoader("pyworld.pyworld", str(compiled[0]))
    module_spec = importlib.util.spec_from_file_location(
        "pyworld.pyworld", compiled[0], loader=loader
    )
    if module_spec is None:
        raise SynparaError(f"cannot load {compiled[0]}")
    module = importlib.util.module_from_spec(module_spec)
    loader.exec_module(module)
    return module
