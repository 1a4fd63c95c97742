"""Fixtures shared by all tests: where the real audio lives, and a cut over any audio file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests must never reach a model hub: everything they load ships in a package or is made here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
# Caches the tests fill (joined Whisper weights, float YAMNet, HF datasets) live inside the clone,
# so a run depends on nothing a fresh machine lacks and leaves nothing behind outside it.
os.environ.setdefault("SYNPARA_CACHE", str(REPO / ".cache" / "synpara"))
os.environ.setdefault("HF_HOME", str(REPO / ".cache" / "huggingface"))
#: Real recordings for tests (see ../shared/data/README.md); CI clones the repo beside shared/.
SHARED_DATA = Path(os.environ.get("SYNPARA_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test audio not found at {SHARED_DATA} (set SYNPARA_SHARED_DATA)")
    return SHARED_DATA


def cut_for_file(path: str | Path, cut_id: str | None = None):
    """A lhotse cut over a whole audio file, as ingest would make it (without the working copy)."""
    from lhotse import Recording

    recording = Recording.from_file(str(path), recording_id=cut_id or Path(path).stem)
    return recording.to_cut()


@pytest.fixture
def make_cut():
    return cut_for_file


def synpara_command(*args: str) -> list[str]:
    """argv for running the CLI in a subprocess, as a user would."""
    import sys

    return [sys.executable, "-m", "synpara", *args]


def write_pipeline(
    folder: Path,
    inputs: list[str],
    output: Path,
    workers: int = 1,
    stages: list | None = None,
    seed: int = 7,
) -> Path:
    """A pipeline YAML in ``folder`` (default: ingest only) writing into ``output``."""
    import yaml

    path = folder / f"pipe-{output.name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "test",
                "input": inputs,
                "output": str(output),
                "seed": seed,
                "executor": {"type": "local", "workers": workers},
                "stages": stages or [{"ingest": {}}],
            }
        )
    )
    return path


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory) -> Path:
    """One run of ``synpara run pipelines/demo.yaml`` (the slowest thing the tests do), shared by
    the end-to-end tests and the notebook."""
    import subprocess

    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        synpara_command("run", "pipelines/demo.yaml", "-o", str(out)),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out
