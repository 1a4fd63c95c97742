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
