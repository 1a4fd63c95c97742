"""Lint (ruff) and type-check (mypy) the package as part of the test suite, as STYLE.md asks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)


def test_ruff_is_clean():
    result = _run("ruff", "check", "--output-format", "concise", "synpara", "tests", "benchmarks",
                  "scripts")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_is_clean():
    result = _run("mypy", "synpara")
    assert result.returncode == 0, result.stdout[-4000:]


def test_gpl_extras_are_never_imported_by_the_core():
    """piper and praat-parselmouth (GPL) stay optional: loading every stage and the tts engines
    (espeak-ng chosen) imports neither."""
    code = ("import sys; import synpara.cli, synpara.stages.tts, synpara.stages.insert, "
            "synpara.models.tts, synpara.models.piper_voice; "
            "from synpara.stages.tts import Tts; Tts.from_params({'engine': 'espeak-ng'}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('piper', 'parselmouth')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
