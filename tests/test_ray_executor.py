"""The Ray runner on a real local Ray cluster gives the same manifest as the local runner."""

from __future__ import annotations

import gzip

import pytest

from synpara.executors.run import run_stage
from synpara.stages.ingest import Ingest

ray = pytest.importorskip("ray", reason="the ray extra is part of .[dev]; CI installs it")


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _text(directory) -> str:
    with gzip.open(directory / "cuts.jsonl.gz", "rt") as handle:
        return handle.read().replace(str(directory.resolve()), "<DIR>")


def test_ray_matches_local(tmp_path, shared_data, ray_cluster):
    inputs = [str(shared_data / "speech/praatio"), str(shared_data / "speech/asterisk")]
    local = run_stage(Ingest(), inputs, tmp_path / "local", workers=1, progress=False)
    on_ray = run_stage(
        Ingest(), inputs, tmp_path / "ray", workers=2, executor="ray", progress=False
    )
    assert on_ray.cuts == local.cuts == 9
    assert _text(tmp_path / "ray") == _text(tmp_path / "local")
    again = run_stage(Ingest(), inputs, tmp_path / "ray", workers=2, executor="ray", progress=False)
    assert again.skipped
