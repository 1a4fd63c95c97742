"""The Ray runner on a real local Ray cluster gives the same manifest as the local runner, and
each stage's actors reserve the resources the pipeline gives that stage."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray  # an installed dependency: missing is a failure, not a skip

from synpara.errors import SynparaError
from synpara.executors.ray import BATCH_RECORDS, batch_size
from synpara.executors.run import run_stage
from synpara.manifest import iter_cuts, write_cuts
from synpara.pipeline import pipeline_from_dict, run_pipeline
from synpara.stage import Stage, StageConfig
from synpara.stages.detect import Detect, DetectConfig
from synpara.stages.ingest import Ingest
from tests.conftest import cut_for_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_cluster():
    # Actors unpickle this module's test stages: they must import ``tests`` from the clone.
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
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


# --------------------------------------------------------------------------- per-stage resources


@dataclass(frozen=True)
class _NoOptions(StageConfig):
    pass


class _Assigned(Stage[_NoOptions]):
    """Writes the Ray resources its actor holds into each cut: what the reservation became."""

    name = "assigned"
    version = "1"
    Config = _NoOptions

    def process(self, cut, context):
        assigned = ray.get_runtime_context().get_assigned_resources()
        cut.custom = {**(cut.custom or {}), "cpu": assigned.get("CPU", 0.0)}
        return cut


@pytest.fixture
def four_cuts(tmp_path, shared_data) -> Path:
    files = sorted((shared_data / "speech/praatio").glob("*.wav"))[:2]
    cuts = [cut_for_file(path, f"rec{index}") for index, path in enumerate(files * 2)]
    manifest = tmp_path / "in" / "cuts.jsonl.gz"
    write_cuts(manifest, cuts)
    return manifest


def test_stage_resources_are_what_each_actor_reserves(tmp_path, four_cuts, ray_cluster):
    summary = run_stage(_Assigned(), str(four_cuts), tmp_path / "o", workers=2, executor="ray",
                        progress=False, resources={"num_cpus": 0.5})
    assert summary.cuts == 4
    assert {cut.custom["cpu"] for cut in iter_cuts(summary.manifest)} == {0.5}
    default = run_stage(_Assigned(), str(four_cuts), tmp_path / "d", workers=2, executor="ray",
                        progress=False)
    assert {cut.custom["cpu"] for cut in iter_cuts(default.manifest)} == {1.0}  # 2 cores / 2


def test_a_reservation_no_node_can_meet_is_refused(tmp_path, four_cuts, ray_cluster):
    with pytest.raises(SynparaError, match="GPU 0.5.*no node has that"):
        run_stage(_Assigned(), str(four_cuts), tmp_path / "o", workers=2, executor="ray",
                  progress=False, resources={"num_gpus": 0.5})


def test_pipeline_resources_reach_ray(tmp_path, shared_data, ray_cluster):
    inputs = [str(shared_data / "speech/praatio")]
    pipeline = pipeline_from_dict({
        "input": inputs, "output": str(tmp_path / "out"),
        "executor": {"type": "ray", "workers": 2},
        "stages": [{"ingest": {"resources": {"num_cpus": 0.5}}}],
    })
    assert pipeline.steps[0].resources == {"num_cpus": 0.5}
    (summary,) = run_pipeline(pipeline, progress=False)
    local = run_stage(Ingest(), inputs, tmp_path / "local", workers=1, progress=False, seed=0,
                      upstream=json.dumps(sorted(inputs)))
    assert summary.cuts == local.cuts > 0
    assert _text(Path(summary.output_dir)) == _text(tmp_path / "local")


def test_pinned_threads_give_the_same_manifest_on_1_and_2_workers_and_2_actors(
    tmp_path, four_cuts, ray_cluster
):
    """A model stage (detect: YAMNet and Silero VAD) with its threads pinned gives the same manifest
    whatever runs it."""
    stage = Detect(DetectConfig(detector="yamnet", threads=1))
    runs = {
        "one": dict(workers=1),
        "two": dict(workers=2),
        "ray": dict(workers=2, executor="ray"),
    }
    texts = {}
    for name, how in runs.items():
        summary = run_stage(stage, str(four_cuts), tmp_path / name, progress=False, **how)
        assert summary.cuts == 4
        texts[name] = _text(tmp_path / name)
    assert texts["two"] == texts["one"]
    assert texts["ray"] == texts["one"]
