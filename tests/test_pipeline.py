"""Pipelines: YAML loading, slices, determinism, and a stage that leaves nothing stops the run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from synpara.errors import SynparaError
from synpara.pipeline import load_pipeline, run_pipeline
from tests.conftest import synpara_command, write_pipeline


def _pipeline_file(tmp_path: Path, inputs: list[str], output: Path, workers: int = 1) -> Path:
    return write_pipeline(tmp_path, inputs, output, workers)


def test_same_seed_gives_byte_identical_manifests(tmp_path, shared_data):
    pipe = load_pipeline(
        _pipeline_file(tmp_path, [str(shared_data / "speech/praatio")], tmp_path / "out")
    )
    run_pipeline(pipe, progress=False)
    first = (tmp_path / "out/01-ingest/cuts.jsonl.gz").read_bytes()
    run_pipeline(pipe, overwrite=True, progress=False)
    assert (tmp_path / "out/01-ingest/cuts.jsonl.gz").read_bytes() == first


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
    bad.write_text("seed: -5\nstages:\n  - ingest: {}\n")
    with pytest.raises(SynparaError, match="'seed' must be an integer >= 0, got -5"):
        load_pipeline(bad)
    bad.write_text("executor: {max_failures: -1}\nstages:\n  - ingest: {}\n")
    with pytest.raises(SynparaError, match="max failures must be >= 0"):
        load_pipeline(bad)


def test_a_stage_that_rejects_everything_stops_the_pipeline(tmp_path, shared_data):
    inputs = [str(shared_data / "speech/praatio")]
    stages = [{"ingest": {"min_duration": 1000.0}}, {"diarize": {}}]
    pipe = write_pipeline(tmp_path, inputs, tmp_path / "out", stages=stages)
    with pytest.raises(SynparaError, match=r"stage 01-ingest: no cuts from 2 records \(2x shorter"):
        run_pipeline(load_pipeline(pipe), progress=False)
    assert not (tmp_path / "out" / "02-diarize").exists()  # diarize never ran on nothing
    result = subprocess.run(synpara_command("run", str(pipe)), capture_output=True, text=True)
    assert result.returncode == 2
    # progress and log lines come before; the error itself is one line, with no traceback
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [result.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith("synpara: error: stage 01-ingest: no cuts from 2 records (2x")
    assert "Traceback" not in result.stderr


def test_stage_resources_are_checked_and_stay_out_of_the_config_hash():
    from synpara.pipeline import pipeline_from_dict

    def pipeline(resources):
        entry = {"model": "tiny.en"} if resources is None else {"model": "tiny.en",
                                                                 "resources": resources}
        return pipeline_from_dict({"input": ["a.wav"], "stages": [{"ingest": {}},
                                                                  {"transcribe": entry}]})

    with_gpu = pipeline({"num_gpus": 0.5, "num_cpus": 1})
    assert with_gpu.steps[1].resources == {"num_gpus": 0.5, "num_cpus": 1.0}
    assert with_gpu.steps[0].resources == {}
    assert with_gpu.upstream_hashes() == pipeline(None).upstream_hashes()
    for bad, message in [({"gpus": 1}, "unknown resource.*gpus.*known: num_cpus"),
                         ({"num_gpus": -1}, "resources num_gpus must be a number >= 0"),
                         ({"num_cpus": "two"}, "resources num_cpus must be a number"),
                         ({"num_cpus": 0}, "resources reserve nothing"),
                         ([1], "resources must be a mapping")]:
        with pytest.raises(SynparaError, match=f"stage 2 \\(transcribe\\): {message}"):
            pipeline(bad)
