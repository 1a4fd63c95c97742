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


# --------------------------------------------------------------------------- streamed on Ray


def _pipeline_text(output: Path, stage: str, name: str) -> str:
    with gzip.open(output / stage / name, "rt") as handle:
        return handle.read().replace(str(output.resolve()), "<OUT>")


def test_a_ray_stream_writes_what_the_stages_one_by_one_write(tmp_path, shared_data, ray_cluster):
    """ingest fans each file out into cuts, detect runs the shipped head, export has a finalise:
    one Ray Data chain, each stage its own actors, the same directories as a local staged run."""
    inputs = [str(shared_data / name) for name in
              ("speech/jfk/jfk.wav", "speech/pyannote_sample/sample.wav")]
    stages = [{"ingest": {"max_cut_duration": 10.0}}, {"detect": {}},
              {"export": {"formats": ["nemo"]}}]
    runs = {}
    for name, executor in (("ray", {"type": "ray", "workers": 2}),
                           ("staged", {"type": "local", "workers": 1, "stream": False})):
        pipeline = pipeline_from_dict({"input": inputs, "output": str(tmp_path / name),
                                       "seed": 3, "executor": executor, "stages": stages})
        runs[name] = run_pipeline(pipeline, progress=False)
    assert [s.streamed for s in runs["ray"]] == [True, True, True]
    assert runs["ray"][0].cuts > len(inputs)  # fanned out: the order of the manifests is tested
    for stage in ("01-ingest", "02-detect", "03-export"):
        for name in ("cuts.jsonl.gz", "rejects.jsonl.gz"):
            assert (_pipeline_text(tmp_path / "ray", stage, name)
                    == _pipeline_text(tmp_path / "staged", stage, name)), f"{stage}/{name}"
    nemo = (tmp_path / "ray/03-export/nemo_manifest.json").read_text()
    assert nemo == (tmp_path / "staged/03-export/nemo_manifest.json").read_text().replace(
        str((tmp_path / "staged").resolve()), str((tmp_path / "ray").resolve()))


@dataclass(frozen=True)
class _StepOptions(StageConfig):
    key: str = "a"
    sleep: float = 0.0
    #: while this file exists, the record ``rec2`` fails (an error, not a reject: not journalled)
    fail_marker: str = ""
    #: ``rec0`` and ``rec1`` come out under one id: a duplicate record for the next stage
    merge_ids: bool = False
    times: bool = False  # note when each record ran and what its actor holds
    #: ``rec0`` waits in this stage until this file exists
    hold_until: str = ""


class _Step(Stage[_StepOptions]):
    name = "step"
    version = "1"
    Config = _StepOptions

    def process(self, cut, context):
        import time

        from lhotse.utils import fastcopy

        if self.config.fail_marker and Path(self.config.fail_marker).exists() and (
                cut.id == "rec2"):
            raise RuntimeError("the marker file is there")
        deadline = time.time() + 120
        while self.config.hold_until and cut.id == "rec0" and time.time() < deadline and not (
                Path(self.config.hold_until).exists()):
            time.sleep(0.05)
        started = time.time()
        time.sleep(self.config.sleep)
        noted: dict = {"seen": True}
        if self.config.times:
            assigned = ray.get_runtime_context().get_assigned_resources()
            noted = {"cpu": assigned.get("CPU", 0.0), "start": started, "end": time.time()}
        cut = fastcopy(cut, custom={**(cut.custom or {}), self.config.key: noted})
        if self.config.merge_ids and cut.id in ("rec0", "rec1"):
            cut = fastcopy(cut, id="rec01")
        return cut


def _step_chain(tmp_path: Path, name: str, *options: _StepOptions,
                resources: tuple[dict, ...] = ()):
    from synpara.executors.stream import StreamStep

    return [StreamStep(_Step(option), tmp_path / name / f"{index:02d}", f"up{index}",
                       f"stage {index}", resources[index] if resources else {})
            for index, option in enumerate(options)]


def test_ray_stream_runs_each_stage_on_actors_with_its_resources_side_by_side(
        tmp_path, four_cuts, ray_cluster):
    from synpara.executors.stream import run_streamed

    steps = _step_chain(tmp_path, "sides", _StepOptions("a", 0.4, times=True),
                        _StepOptions("b", 0.4, times=True),
                        resources=({"num_cpus": 0.5}, {"num_cpus": 0.25}))
    summaries = run_streamed(steps, str(four_cuts), seed=0, workers=2, threads=1, pool=None,
                             progress=False, executor="ray")
    assert [s.cuts for s in summaries] == [4, 4]
    cuts = list(iter_cuts(summaries[1].manifest))
    assert {cut.custom["a"]["cpu"] for cut in cuts} == {0.5}
    assert {cut.custom["b"]["cpu"] for cut in cuts} == {0.25}
    # side by side: the second stage began before the first had finished every record
    assert min(c.custom["b"]["start"] for c in cuts) < max(c.custom["a"]["end"] for c in cuts)
    # without a reservation the stages share the worker's cores
    default = run_streamed(_step_chain(tmp_path, "default", _StepOptions("a", times=True),
                                       _StepOptions("b", times=True)),
                           str(four_cuts), seed=0, workers=2, threads=1, pool=None,
                           progress=False, executor="ray")
    assert {cut.custom["b"]["cpu"] for cut in iter_cuts(default[1].manifest)} == {0.5}


def test_ray_stream_resumes_every_stage_as_the_local_stream(tmp_path, four_cuts, ray_cluster):
    """A record failing in the second stage stops the run with the rest journalled; a rerun does
    only that record, in that stage and the one after, and writes what the local stream writes."""
    from synpara.executors.stream import run_streamed

    marker = tmp_path / "fail"
    marker.touch()
    options = (_StepOptions("a"), _StepOptions("b", fail_marker=str(marker)), _StepOptions("c"))
    with pytest.raises(SynparaError, match="1 of 4 records failed"):
        run_streamed(_step_chain(tmp_path, "ray", *options), str(four_cuts), seed=0, workers=2,
                     threads=1, pool=None, progress=False, executor="ray")
    marker.unlink()
    summaries = run_streamed(_step_chain(tmp_path, "ray", *options), str(four_cuts), seed=0,
                             workers=2, threads=1, pool=None, progress=False, executor="ray")
    # the first stage finished in the first run (skipped); rec2 is done once in each later stage
    assert [(s.skipped, s.resumed, s.processed) for s in summaries] == [
        (True, 0, 0), (False, 3, 1), (False, 3, 1)]
    local = run_streamed(_step_chain(tmp_path, "local", *options), str(four_cuts), seed=0,
                         workers=1, threads=1, pool=None, progress=False)
    for ours, theirs in zip(summaries, local, strict=True):
        for name in ("cuts.jsonl.gz", "rejects.jsonl.gz"):
            assert (_pipeline_text(Path(ours.output_dir).parent, Path(ours.output_dir).name, name)
                    == _pipeline_text(Path(theirs.output_dir).parent,
                                      Path(theirs.output_dir).name, name)), name


def test_ray_stream_journals_each_stage_as_it_finishes(tmp_path, four_cuts, ray_cluster):
    """A record's line in a stage is journalled when that stage is done with it, not when the
    record leaves the chain: a kill loses only what a stage was working on."""
    import threading
    import time

    from synpara.executors.journal import DONE_FILE, PARTS_DIR
    from synpara.executors.stream import run_streamed

    release = tmp_path / "release"
    steps = _step_chain(tmp_path, "held", _StepOptions("a"),
                        _StepOptions("b", hold_until=str(release)))
    done: list = []
    runner = threading.Thread(target=lambda: done.append(run_streamed(
        steps, str(four_cuts), seed=0, workers=2, threads=1, pool=None, progress=False,
        executor="ray")))
    runner.start()
    first_journal = steps[0].output_dir / PARTS_DIR / DONE_FILE
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (
            not first_journal.exists() or first_journal.read_bytes().count(b"\n") < 4):
        time.sleep(0.05)
    held = first_journal.read_text() if first_journal.exists() else ""
    release.touch()
    runner.join()
    assert held.count("\n") == 4 and '"id": "rec0"' in held  # rec0 still held in the 2nd stage
    assert [s.cuts for s in done[0]] == [4, 4]


def test_ray_stream_rejects_a_duplicate_id_once(tmp_path, four_cuts, ray_cluster):
    """Two records of one id in the stream: one goes on, the other is a reject line (which one
    depends on which finished first, as on the local stream with several workers)."""
    from synpara.executors.stream import run_streamed

    summaries = run_streamed(
        _step_chain(tmp_path, "dup", _StepOptions("a", merge_ids=True), _StepOptions("b"),
                    _StepOptions("c")),
        str(four_cuts), seed=0, workers=2, threads=1, pool=None, progress=False, executor="ray")
    assert [(s.cuts, s.rejected) for s in summaries] == [(4, 0), (3, 1), (3, 0)]
    assert summaries[1].reject_reasons == {"duplicate record id 'rec01'": 1}
    assert sorted(cut.id for cut in iter_cuts(summaries[2].manifest)) == ["rec01", "rec2", "rec3"]


class _CannotSetUp(_Step):
    """A stage whose model cannot be loaded (as a Whisper name with no network)."""

    def setup(self, threads: int = 0) -> None:
        raise SynparaError("cannot load model 'nowhere'")


def test_a_stage_that_cannot_be_set_up_is_one_line_on_ray(tmp_path, four_cuts, ray_cluster):
    """As on the local executor: the stage's SynparaError, not an actor's death with tracebacks."""
    from synpara.executors.stream import StreamStep, run_streamed

    with pytest.raises(SynparaError, match=r"^step: cannot load model 'nowhere'$"):
        run_stage(_CannotSetUp(), str(four_cuts), tmp_path / "one", workers=2, executor="ray",
                  progress=False)
    steps = [StreamStep(_Step(), tmp_path / "a", "up", "stage a"),
             StreamStep(_CannotSetUp(), tmp_path / "b", "up", "stage b")]
    with pytest.raises(SynparaError, match=r"^step: cannot load model 'nowhere'$"):
        run_streamed(steps, str(four_cuts), seed=0, workers=2, threads=1, pool=None,
                     progress=False, executor="ray")
