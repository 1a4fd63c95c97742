"""The command line: one-line errors, fast help, options checked before anything runs."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time

import click
import pytest

from synpara.executors.journal import OutputLock
from tests.conftest import synpara_command

_synpara = synpara_command


@pytest.mark.parametrize(
    "args, message",
    [
        (["ingest", "-i", "x.wav", "-o", "o", "--workers", "0"], "workers must be >= 1"),
        (
            ["ingest", "-i", "x.wav", "-o", "o", "--sample-rate", "100"],
            "sample_rate must be 8000..48000",
        ),
        (["run", "no/such/pipeline.yaml"], "no such pipeline file"),
        (["ingest", "-i", "x.wav", "-o", "o", "--seed", "-7"], "seed must be an integer >= 0"),
        (["ingest", "-i", "x.wav", "-o", "o", "--max-failures", "lots"], "max failures must be"),
    ],
)
def test_absurd_options_are_one_line_errors(tmp_path, args, message):
    result = subprocess.run(_synpara(*args), capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr


def test_help_is_fast_and_lists_stages():
    started = time.monotonic()
    result = subprocess.run(
        _synpara("--help"),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert time.monotonic() - started < 5  # generous: the check is that nothing heavy is imported
    assert "ingest" in result.stdout and "run" in result.stdout
    # listing every stage's command must not import a model library
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from click.testing import CliRunner; "
            "from synpara.cli import cli; CliRunner().invoke(cli, ['--help']); "
            "print(sorted(m for m in ('torch', 'lhotse', 'faster_whisper', 'onnxruntime', "
            "'pyannote.audio', 'transformers', 'numpy') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


def test_help_lines_read_from_source_match_the_commands():
    # --help reads each command's docstring from source; it must say what the command says.
    from synpara.cli import COMMANDS, _docstring, _stage_command, _stage_summary
    from synpara.stages import STAGES

    for name, target in STAGES.items():
        assert _stage_summary(_docstring(target), name) == _stage_command(name).short_help
    for module in COMMANDS.values():
        command = importlib.import_module(module).command
        for limit in (45, 200):
            assert (click.utils.make_default_short_help(_docstring(f"{module}:command"), limit)
                    == command.get_short_help_str(limit))


def test_malformed_manifest_line_is_one_line_error(tmp_path):
    manifest = tmp_path / "cuts.jsonl"
    manifest.write_text('{"id": "a", "start": 0}\n')
    result = subprocess.run(
        _synpara("detect", "-i", str(manifest), "-o", str(tmp_path / "out")),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "cuts.jsonl: line 1: not a lhotse cut" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_lock_keeps_two_runs_apart(tmp_path, shared_data):
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out):
        result = subprocess.run(
            _synpara("ingest", "-i", str(shared_data / "speech/jfk/jfk.wav"), "-o", str(out)),
            capture_output=True,
            text=True,
        )
    assert result.returncode == 2
    assert "another synpara run is writing to this directory" in result.stderr


def test_too_many_workers_are_capped_and_the_summary_counts(tmp_path, shared_data):
    result = subprocess.run(
        _synpara(
            "ingest",
            "-i",
            str(shared_data / "speech/praatio"),
            "-o",
            str(tmp_path / "o"),
            "--workers",
            "1000",
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "1000 workers capped at" in result.stderr
    assert "ingest: 2 cuts from 2 records, 0 rejected" in result.stderr


def test_a_stage_that_rejects_everything_exits_non_zero(tmp_path, shared_data):
    result = subprocess.run(
        _synpara(
            "ingest",
            "-i",
            str(shared_data / "speech/praatio"),
            "-o",
            str(tmp_path / "o"),
            "--min-duration",
            "1000",
        ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "synpara: error: ingest: no cuts from 2 records (2x shorter than" in result.stderr
