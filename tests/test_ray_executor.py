"""The Ray runner on a real local Ray cluster gives the same manifest as the local runner."""

from __future__ import annotations

import gzip

import pytest
import ray  # an installed dependency: missing is a failure, not a skip

from synpara.executors.ray import BATCH_RECORDS, batch_size
from synpara.executors.run import run_stage
from synpara.stages.ingest import Ingest


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


def test_actors_get_batches_of_records():
    assert batch_size(9, 2) == 5  # the test above: two actors, five records per call at most
    assert batch_size(10_000, 4) == BATCH_RECORDS
    assert batch_size(1, 4) == 1
