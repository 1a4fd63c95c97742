"""The stage registry: stage name -> ``module:Class``. Modules are imported only when needed.

Adding a stage = one module in this package + one line here; the CLI (``synpara <name>``) and the
pipeline runner pick it up from this table.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from synpara.errors import SynparaError

if TYPE_CHECKING:
    from synpara.stage import Stage

STAGES: dict[str, str] = {
    "ingest": "synpara.stages.ingest:Ingest",
    "diarize": "synpara.stages.diarize:Diarize",
    "transcribe": "synpara.stages.transcribe:Transcribe",
    "detect": "synpara.stages.detect:Detect",
    "refine": "synpara.stages.refine:Refine",
    "bank": "synpara.stages.bank:Bank",
    "tts": "synpara.stages.tts:Tts",
    "insert": "synpara.stages.insert:Insert",
    "describe": "synpara.stages.describe:Describe",
    "export": "synpara.stages.export:Export",
}


def stage_class(name: str) -> type[Stage]:
    """Import and return the Stage class registered under ``name``."""
    try:
        target = STAGES[name]
    except KeyError:
        raise SynparaError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)
