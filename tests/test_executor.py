"""The local executor and `synpara run`: resume after SIGKILL, determinism, refusals, slicing."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from synpara.errors import SynparaError
from synpara.executors.journal import DONE_FILE, PARTS_DIR, SUCCESS_FILE, OutputLock
from synpara.executors.run import run_stage
from synpara.pipeline import load_pipeline, run_pipeline
from synpara.stage import record_rng
from synpara.stages.ingest import Ingest

N_FILES = 48


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory) -> Path:
    """Distinct 20 s stereo 48 kHz files: slow enough to ingest that a kill lands mid-stage."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    rate = 48000
    t = np.arange(rate * 20) / rate
    for index in range(N_FILES):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 10 * index) * t)
        noise = 0.05 * rng.standard_normal((len(t), 2))
        soundfile.write(
            folder / f"file{index:02d}.wav", (tone[:, None] + noise).astype(np.float32), rate
        )
    return folder


def _pipeline_file(tmp_path: Path, inputs: list[str], output: Path, workers: int = 1) -> Path:
    path = tmp_path / f"pipe-{output.name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "test",
                "input": inputs,
                "output": str(output),
                "seed": 7,
                "executor": {"type": "local", "workers": workers},
                "stages": [{"ingest": {}}],
            }
        )
    )
    return path


def _manifest_text(directory: Path) -> str:
    """Manifest content with the output directory blanked (working-copy paths are absolute)."""
    with gzip.open(directory / "cuts.jsonl.gz", "rt") as handle:
        return handle.read().replace(str(directory.resolve()), "<DIR>")


def _synpara(*args: str) -> list[str]:
    return [sys.executable, "-m", "synpara", *args]


def test_killed_run_resumes_without_redoing_work(tmp_path, audio_folder):
    killed_out = tmp_path / "killed"
    pipe = _pipeline_file(tmp_path, [str(audio_folder)], killed_out)
    process = subprocess.Popen(_synpara("run", str(pipe)), stderr=subprocess.DEVNULL)
    done_log = killed_out / "01-ingest" / PARTS_DIR / DONE_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if done_log.exists() and done_log.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = done_log.read_bytes().count(b"\n")
    assert 5 <= done_before < N_FILES, "the kill must land mid-stage"
    assert not (killed_out / "01-ingest" / SUCCESS_FILE).exists()

    subprocess.run(_synpara("run", str(pipe)), check=True, capture_output=True)
    marker = json.loads((killed_out / "01-ingest" / SUCCESS_FILE).read_text())
    # every record processed exactly once over the two runs
    assert marker["resumed"] >= done_before - 1  # a half-written last line is redone
    assert marker["resumed"] + marker["processed"] == N_FILES

    clean_out = tmp_path / "clean"
    clean_pipe = _pipeline_file(tmp_path, [str(audio_folder)], clean_out, workers=2)
    subprocess.run(_synpara("run", str(clean_pipe)), check=True, capture_output=True)
    # killed + resumed (1 worker) == uninterrupted (2 workers), line for line
    assert _manifest_text(killed_out / "01-ingest") == _manifest_text(clean_out / "01-ingest")


def test_same_seed_gives_byte_identical_manifests(tmp_path, shared_data):
    pipe = load_pipeline(
        _pipeline_file(tmp_path, [str(shared_data / "speech/praatio")], tmp_path / "out")
    )
    run_pipeline(pipe, progress=False)
    first = (tmp_path / "out/01-ingest/cuts.jsonl.gz").read_bytes()
    run_pipeline(pipe, overwrite=True, progress=False)
    assert (tmp_path / "out/01-ingest/cuts.jsonl.gz").read_bytes() == first


def test_finished_stage_is_skipped_and_other_config_refused(tmp_path, shared_data):
    inputs = [str(shared_data / "speech/jfk/jfk.wav")]
    out = tmp_path / "out"
    first = run_stage(Ingest(), inputs, out, workers=1, progress=False)
    assert first.cuts == 1 and not first.skipped
    again = run_stage(Ingest(), inputs, out, workers=1, progress=False)
    assert again.skipped
    with pytest.raises(SynparaError, match="another ingest config"):
        run_stage(Ingest.from_params({"sample_rate": 8000}), inputs, out, workers=1, progress=False)
    with pytest.raises(SynparaError, match="another ingest config"):
        run_stage(Ingest(), inputs, out, workers=1, seed=1, progress=False)
    replaced = run_stage(
        Ingest.from_params({"sample_rate": 8000}),
        inputs,
        out,
        workers=1,
        overwrite=True,
        progress=False,
    )
    assert replaced.cuts == 1 and not replaced.skipped


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


def test_record_rng_depends_only_on_seed_and_id():
    a = record_rng(3, "rec-1").random(4)
    assert np.array_equal(a, record_rng(3, "rec-1").random(4))
    assert not np.array_equal(a, record_rng(4, "rec-1").random(4))
    assert not np.array_equal(a, record_rng(3, "rec-2").random(4))


def test_pipeline_slices_and_errors(tmp_path, shared_data):
    pipe_path = _pipeline_file(tmp_path, [str(shared_data / "speech/jfk/jfk.wav")], tmp_path / "o")
    pipe = load_pipeline(pipe_path)
    with pytest.raises(SynparaError, match="no stage 'transcribe'"):
        run_pipeline(pipe, from_stage="transcribe", progress=False)
    summaries = run_pipeline(pipe, from_stage="ingest", to_stage="01-ingest", progress=False)
    assert [s.stage for s in summaries] == ["ingest"]

    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - ingest: {sample_rate: 'fast'}\n")
    with pytest.raises(SynparaError, match="option 'sample_rate' must be int"):
        load_pipeline(bad)
    bad.write_text("stages:\n  - ingest: {bogus: 1}\n")
    with pytest.raises(SynparaError, match="unknown option"):
        load_pipeline(bad)
    bad.write_text("stages:\n  - nosuchstage: {}\n")
    with pytest.raises(SynparaError, match="unknown stage 'nosuchstage'"):
        load_pipeline(bad)
    bad.write_text("stagez: []\n")
    with pytest.raises(SynparaError, match="unknown key"):
        load_pipeline(bad)


@pytest.mark.parametrize(
    "args, message",
    [
        (["ingest", "-i", "x.wav", "-o", "o", "--workers", "0"], "workers must be >= 1"),
        (
            ["ingest", "-i", "x.wav", "-o", "o", "--sample-rate", "100"],
            "sample_rate must be 8000..48000",
        ),
        (["run", "no/such/pipeline.yaml"], "no such pipeline file"),
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
        [sys.executable, "-c", "import sys; from click.testing import CliRunner; "
         "from synpara.cli import cli; CliRunner().invoke(cli, ['--help']); "
         "print(sorted(m for m in ('torch', 'lhotse', 'faster_whisper', 'onnxruntime', "
         "'pyannote.audio', 'transformers') if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    )
    assert probe.stdout.strip() == "[]"


def test_malformed_manifest_line_is_one_line_error(tmp_path):
    manifest = tmp_path / "cuts.jsonl"
    manifest.write_text('{"id": "a", "start": 0}\n')
    result = subprocess.run(_synpara("detect", "-i", str(manifest), "-o", str(tmp_path / "out")),
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "cuts.jsonl: line 1: not a lhotse cut" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written
