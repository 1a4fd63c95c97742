"""Pipelines as data: a YAML file lists stages in order; each stage's output feeds the next.

Format (``pipelines/demo.yaml``)::

    name: demo
    input: [assets/sample/sample.wav]   # audio for the first stage (ingest); paths from the CWD
    output: output/demo                 # stage k writes OUTPUT/<kk>-<stage>/cuts.jsonl.gz
    seed: 0
    executor: {type: local, workers: 2} # or type: ray; workers: null = one per core;
                                        # max_failures: N or a fraction (default 0);
                                        # stream: false runs stages strictly one after the other
    stages:
      - ingest: {}
      - diarize: {num_speakers: 2}
      - transcribe: {model: base, resources: {num_gpus: 0.5}}   # per actor, on Ray

``resources`` (``num_cpus``, ``num_gpus``, ``memory`` in bytes) is not a stage option: it says what
each Ray actor of that stage reserves, so a cluster runs CPU and GPU stages side by side (default:
the worker's share of the cores, no GPU). The local executor ignores it; it never enters the config
hash (it changes where a stage runs, not what it computes).

Consecutive stages are **streamed** (``synpara.executors.stream``): a record goes on to the next
stage as soon as it is done there, so no worker idles at a stage's end; each stage still writes its
own directory, identical to a run of the stages one by one. On Ray the streamed stages are one Ray
Data chain, each stage on actors of its own with its ``resources``, so GPU and CPU stages run side
by side (``synpara.executors.ray_stream``).

``synpara run pipelines/demo.yaml --from diarize --to transcribe`` runs a slice; the stage before
the slice must have finished in the same output directory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.executors import EXECUTORS
from synpara.manifest import MANIFEST_NAME
from synpara.stage import Stage
from synpara.stages import stage_class

log = logging.getLogger(__name__)

_TOP_LEVEL_KEYS = {"name", "input", "output", "seed", "executor", "stages"}
_EXECUTOR_KEYS = {"type", "workers", "max_failures", "stream"}
#: What a stage entry's ``resources`` may reserve per Ray actor.
RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory")


@dataclass(frozen=True)
class Step:
    """One stage of a pipeline, configured, with the directory it writes."""

    index: int  # 1-based position in the pipeline
    stage: Stage
    #: Per-actor reservation on Ray (``num_cpus``, ``num_gpus``, ``memory``); empty: the default.
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def directory_name(self) -> str:
        return f"{self.index:02d}-{self.name}"


@dataclass(frozen=True)
class Pipeline:
    name: str
    input: list[str]
    output: Path
    seed: int
    steps: list[Step]
    executor: str = "local"
    workers: int | None = None
    max_failures: float = 0
    #: local executor: stream records from stage to stage (False: each stage waits for the last)
    stream: bool = True
    source: str = field(default="<memory>")

    def step_dir(self, step: Step) -> Path:
        return self.output / step.directory_name

    def upstream_hashes(self) -> list[str]:
        """Config hash of each step, chained so a change upstream invalidates what follows."""
        hashes, upstream = [], json.dumps(sorted(self.input))
        for step in self.steps:
            upstream = step.stage.config_hash(self.seed, upstream)
            hashes.append(upstream)
        return hashes


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline YAML; every stage's options are checked before anything runs."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SynparaError("no such pipeline file", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SynparaError(f"not valid YAML ({str(error).splitlines()[0]})", path) from error
    if not isinstance(data, dict):
        raise SynparaError("a pipeline must be a YAML mapping", path)
    return pipeline_from_dict(data, source=str(path))


def pipeline_from_dict(data: dict[str, Any], source: str = "<memory>") -> Pipeline:
    unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        raise SynparaError(
            f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TOP_LEVEL_KEYS))}",
            source,
        )
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise SynparaError("'stages' must be a non-empty list", source)
    steps = []
    for index, entry in enumerate(stages, start=1):
        if isinstance(entry, str):
            entry = {entry: {}}
        if not isinstance(entry, dict) or len(entry) != 1:
            raise SynparaError(
                f"stage {index} must be a mapping {{stage_name: {{options}}}}", source
            )
        ((name, params),) = entry.items()
        if params is not None and not isinstance(params, dict):
            raise SynparaError(f"stage {index} ({name}): options must be a mapping", source)
        params = dict(params or {})
        resources = parse_resources(params.pop("resources", None), f"stage {index} ({name})",
                                    source)
        try:
            stage = stage_class(name).from_params(params)
        except SynparaError as error:
            raise SynparaError(f"stage {index}: {error}", source) from error
        steps.append(Step(index=index, stage=stage, resources=resources))
    executor = data.get("executor") or {}
    if not isinstance(executor, dict) or set(executor) - _EXECUTOR_KEYS:
        raise SynparaError(f"'executor' takes only {', '.join(sorted(_EXECUTOR_KEYS))}", source)
    executor_type = executor.get("type", "local")
    if executor_type not in EXECUTORS:
        raise SynparaError(
            f"unknown executor type {executor_type!r} (known: {', '.join(EXECUTORS)})", source
        )
    inputs = data.get("input") or []
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise SynparaError(f"'seed' must be an integer >= 0, got {seed!r}", source)
    workers = executor.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SynparaError(f"executor workers must be a positive integer, got {workers!r}", source)
    stream = executor.get("stream", True)
    if not isinstance(stream, bool):
        raise SynparaError(f"executor stream must be true or false, got {stream!r}", source)
    from synpara.executors.run import parse_max_failures

    try:
        max_failures = parse_max_failures(executor.get("max_failures"))
    except SynparaError as error:
        raise SynparaError(f"executor {error}", source) from None
    return Pipeline(
        name=str(data.get("name") or Path(source).stem),
        input=[str(i) for i in inputs],
        output=Path(data.get("output") or Path("output") / Path(source).stem),
        seed=seed,
        steps=steps,
        executor=executor_type,
        workers=workers,
        max_failures=max_failures,
        stream=stream,
        source=source,
    )


def parse_resources(value: Any, where: str, source: str) -> dict[str, float]:
    """A stage entry's ``resources`` mapping, checked: known keys, numbers >= 0."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SynparaError(f"{where}: resources must be a mapping like {{num_gpus: 0.5}}", source)
    unknown = sorted(set(value) - set(RESOURCE_KEYS))
    if unknown:
        raise SynparaError(
            f"{where}: unknown resource(s) {', '.join(map(str, unknown))}; known: "
            f"{', '.join(RESOURCE_KEYS)}",
            source,
        )
    resources = {}
    for key, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not amount >= 0:
            raise SynparaError(f"{where}: resources {key} must be a number >= 0, got {amount!r}",
                               source)
        resources[key] = float(amount)
    if resources.get("num_cpus", 1.0) == 0 and resources.get("num_gpus", 0.0) == 0:
        raise SynparaError(f"{where}: resources reserve nothing (num_cpus and num_gpus are 0)",
                           source)
    return resources


def _step_index(pipeline: Pipeline, name: str | None, default: int) -> int:
    if name is None:
        return default
    for position, step in enumerate(pipeline.steps):
        if name in (step.name, step.directory_name, str(step.index)):
            return position
    known = ", ".join(step.directory_name for step in pipeline.steps)
    raise SynparaError(f"no stage {name!r} in pipeline {pipeline.name} ({known})", pipeline.source)


def run_pipeline(
    pipeline: Pipeline,
    *,
    from_stage: str | None = None,
    to_stage: str | None = None,
    output: str | Path | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    executor: str | None = None,
    max_failures: float | None = None,
    oversubscribe: bool = False,
    checksum_inputs: bool = False,
    allow_unknown_labels: bool = False,
) -> list[Any]:
    """Run the pipeline's stages in order (or a slice); returns one RunSummary per stage run.

    A stage that turns records into no cuts at all stops the run (a :class:`SynparaError`): the
    later stages would run on nothing. On the local executor, one set of worker processes serves
    every stage.
    """
    if output is not None:
        pipeline = Pipeline(**{**pipeline.__dict__, "output": Path(output)})
    first = _step_index(pipeline, from_stage, 0)
    last = _step_index(pipeline, to_stage, len(pipeline.steps) - 1)
    if first > last:
        raise SynparaError(f"--from {from_stage} comes after --to {to_stage}", pipeline.source)
    hashes = pipeline.upstream_hashes()
    summaries: list[Any] = []
    run_on = executor or pipeline.executor
    pool = None
    if run_on == "local":
        from synpara.executors.local import WorkerPool
        from synpara.executors.run import worker_counts

        # One set of worker processes for every stage: each imports its libraries once per run.
        pool = WorkerPool(worker_counts(workers or pipeline.workers, oversubscribe)[0])
    try:
        _run_steps(pipeline, first, last, hashes, summaries, pool, run_on, workers=workers,
                   overwrite=overwrite, progress=progress, max_failures=max_failures,
                   oversubscribe=oversubscribe, checksum_inputs=checksum_inputs,
                   allow_unknown_labels=allow_unknown_labels)
    finally:
        if pool is not None:
            pool.close()
    return summaries


def _run_steps(
    pipeline: Pipeline,
    first: int,
    last: int,
    hashes: list[str],
    summaries: list[Any],
    pool: Any,
    executor: str,
    *,
    workers: int | None,
    overwrite: bool,
    progress: bool,
    max_failures: float | None,
    oversubscribe: bool,
    checksum_inputs: bool,
    allow_unknown_labels: bool,
) -> None:
    from synpara.executors.journal import SUCCESS_FILE
    from synpara.executors.run import require_output, run_stage, worker_counts
    from synpara.executors.stream import StreamStep, can_stream, run_streamed

    workers = workers or pipeline.workers
    max_failures = pipeline.max_failures if max_failures is None else max_failures
    position = first
    while position <= last:
        step = pipeline.steps[position]
        if position == 0:
            if not pipeline.input:
                raise SynparaError(
                    "the pipeline has no 'input' for its first stage", pipeline.source
                )
            stage_input: Any = pipeline.input
        else:
            previous = pipeline.step_dir(pipeline.steps[position - 1])
            if not (previous / SUCCESS_FILE).exists():
                raise SynparaError(
                    f"stage {previous.name} has not finished; run it first (drop --from)", previous
                )
            stage_input = str(previous / MANIFEST_NAME)
        # the steps from here that can take their records from the step before, one by one
        end = position
        if pipeline.stream:
            while end < last and can_stream(pipeline.steps[end].stage,
                                            pipeline.steps[end + 1].stage):
                end += 1
        group = pipeline.steps[position:end + 1]

        def upstream(index: int) -> str:
            return json.dumps(sorted(pipeline.input)) if index == 0 else hashes[index - 1]

        log.info("stage %s -> %s", " + ".join(s.directory_name for s in group),
                 pipeline.output)
        if len(group) > 1:
            count, threads = worker_counts(workers, oversubscribe)
            streamed = [StreamStep(s.stage, pipeline.step_dir(s), upstream(s.index - 1),
                                   f"stage {s.directory_name}", s.resources) for s in group]
            summaries += run_streamed(
                streamed, stage_input, seed=pipeline.seed, workers=count, threads=threads,
                pool=pool, overwrite=overwrite, progress=progress, max_failures=max_failures,
                checksum_inputs=checksum_inputs, allow_unknown_labels=allow_unknown_labels,
                executor=executor,
            )
        else:
            summary = run_stage(
                step.stage,
                stage_input,
                pipeline.step_dir(step),
                workers=workers,
                seed=pipeline.seed,
                overwrite=overwrite,
                upstream=upstream(position),
                progress=progress,
                executor=executor,
                max_failures=max_failures,
                oversubscribe=oversubscribe,
                checksum_inputs=checksum_inputs,
                allow_unknown_labels=allow_unknown_labels,
                resources=step.resources,
                pool=pool,
            )
            summaries.append(summary)
            require_output(summary, where=f"stage {step.directory_name}")
        position = end + 1
