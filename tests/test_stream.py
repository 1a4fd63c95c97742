"""Streamed pipelines (``synpara.executors.stream``): a record goes on to the next stage as soon as
it is done. Each stage's directory must be what the stages run one by one write; a killed run
resumes in every stage without redoing a record; a finished run is skipped."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synpara.errors import SynparaError
from synpara.executors.journal import DONE_FILE, PARTS_DIR, SUCCESS_FILE, input_key
from synpara.executors.stream import STREAMED_KEY, can_stream
from synpara.pipeline import load_pipeline, pipeline_from_dict, run_pipeline
from synpara.stages import stage_class
from tests.conftest import synpara_command

#: ingest splits each recording into cuts (several records of detect per record of ingest), detect
#: runs the shipped head, export has a finalise (it may end a stream, never sit inside one).
STAGES = [{"ingest": {"max_cut_duration": 10.0}}, {"detect": {}}, {"export": {"formats": ["nemo"]}}]


def _pipeline(tmp_path: Path, inputs: list[str], output: Path, workers: int, stream: bool,
              stages: list | None = None) -> Path:
    import yaml

    path = tmp_path / f"{output.name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": "stream", "input": inputs, "output": str(output), "seed": 3,
        "executor": {"type": "local", "workers": workers, "stream": stream},
        "stages": stages or STAGES,
    }))
    return path


def _text(path: Path) -> str:
    with gzip.open(path, "rt") as handle:
        return handle.read().replace(str(path.parent.parent.resolve()), "<OUT>")


def _stage_dirs(output: Path) -> list[Path]:
    return sorted(p for p in output.iterdir() if p.is_dir())


def test_streamed_stages_write_what_the_stages_one_by_one_write(tmp_path, shared_data):
    inputs = [str(shared_data / name) for name in
              ("speech/jfk/jfk.wav", "speech/pyannote_sample/sample.wav",
               "speech/silero_vad/test.wav")]
    streamed = run_pipeline(load_pipeline(_pipeline(tmp_path, inputs, tmp_path / "streamed", 2,
                                                    True)), progress=False)
    staged = run_pipeline(load_pipeline(_pipeline(tmp_path, inputs, tmp_path / "staged", 1,
                                                  False)), progress=False)
    assert [s.stage for s in streamed] == ["ingest", "detect", "export"]
    assert streamed[0].cuts > len(inputs)  # ingest fanned records out: ordering is exercised
    previous = None
    for ours, theirs in zip(_stage_dirs(tmp_path / "streamed"), _stage_dirs(tmp_path / "staged"),
                            strict=True):
        for name in ("cuts.jsonl.gz", "rejects.jsonl.gz"):
            assert _text(ours / name) == _text(theirs / name), f"{ours.name}/{name}"
        if previous is not None:
            # what a streamed stage read is recorded at its end, as a staged run records it
            key = json.loads((ours / "stage.json").read_text())["input_key"]
            assert key == input_key([previous / "cuts.jsonl.gz"], "manifest") != STREAMED_KEY
        previous = ours
    assert [s.cuts for s in streamed] == [s.cuts for s in staged]
    # stages streamed together overlap in wall time; each tells its own cost in worker seconds
    assert all(s.worker_seconds > 0 for s in streamed)
    assert "s in workers)" in streamed[1].line()
    export = tmp_path / "streamed/03-export"
    assert (export / "nemo_manifest.json").read_text().count("\n") == streamed[2].cuts  # finalise

    again = run_pipeline(load_pipeline(_pipeline(tmp_path, inputs, tmp_path / "streamed", 2,
                                                 True)), progress=False)
    assert all(summary.skipped for summary in again)


@pytest.fixture(scope="module")
def tone_folder(tmp_path_factory) -> Path:
    """Distinct 10 s files: enough work that a kill lands mid-run."""
    folder = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 10) / 16000
    for index in range(24):
        tone = 0.2 * np.sin(2 * np.pi * (180 + 15 * index) * t)
        noise = 0.02 * rng.standard_normal(len(t))
        soundfile.write(folder / f"tone{index:02d}.wav", (tone + noise).astype(np.float32), 16000)
    return folder


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_killed_streamed_run_resumes_in_every_stage(tmp_path, tone_folder):
    stages = [{"ingest": {}}, {"detect": {}}]
    out = tmp_path / "killed"
    pipe = _pipeline(tmp_path, [str(tone_folder)], out, 1, True, stages)
    process = subprocess.Popen(synpara_command("run", str(pipe)), stderr=subprocess.DEVNULL)
    detect_log = out / "02-detect" / PARTS_DIR / DONE_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _lines(detect_log) < 3:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    ingest_before = _lines(out / "01-ingest" / PARTS_DIR / DONE_FILE)
    detect_before = _lines(detect_log)
    # streamed: both stages were under way, neither had finished
    assert 3 <= detect_before < 24 and ingest_before < 24
    assert not (out / "01-ingest" / SUCCESS_FILE).exists()
    assert json.loads((out / "02-detect/stage.json").read_text())["input_key"] == STREAMED_KEY

    subprocess.run(synpara_command("run", str(pipe)), check=True, capture_output=True)
    for stage, before in (("01-ingest", ingest_before), ("02-detect", detect_before)):
        marker = json.loads((out / stage / SUCCESS_FILE).read_text())
        assert marker["resumed"] >= before - 1  # a half-written last line is redone
        assert marker["resumed"] + marker["processed"] == 24  # each record done exactly once

    clean = tmp_path / "clean"
    run_pipeline(load_pipeline(_pipeline(tmp_path, [str(tone_folder)], clean, 2, False, stages)),
                 progress=False)
    for stage in ("01-ingest", "02-detect"):
        assert _text(out / stage / "cuts.jsonl.gz") == _text(clean / stage / "cuts.jsonl.gz")


def test_what_streams_and_what_waits():
    ingest, detect, export = (stage_class(name)() for name in ("ingest", "detect", "export"))
    assert can_stream(ingest, detect) and can_stream(detect, export)
    assert not can_stream(export, detect)  # export's finalise may rewrite its finished manifest
    assert not can_stream(detect, stage_class("tts")())  # tts reads text files, not a manifest
    with pytest.raises(SynparaError, match="executor stream must be true or false"):
        pipeline_from_dict({"input": ["a.wav"], "executor": {"stream": "yes"},
                            "stages": [{"ingest": {}}]})
