"""Consecutive stages at once: a record goes on to the next stage when it is done.

Run one after the other, each stage waits at its end for its slowest record while the other
workers idle, and the next stage starts only once the manifest is written (on the mining graph
over 4 files and 2 workers, a per-record trace showed a worker idle 1-4 s at each stage's end;
streamed, both end within 0.6 s: benchmarks/README.md). Here, on the local pool, the driver sends
each record of stage k+1 to the pool as soon as stage k journals the cut it comes from. Records
further down the chain go first, so records waiting for the next stage never pile up in the driver
(a test holds its memory to the in-flight window). On Ray (``executor="ray"``) the stages are one
Ray Data chain instead (``ray_stream.py``); the driver's side below is the same.

Nothing else changes: each stage keeps its own directory, journal, manifest, rejects and
``_SUCCESS``, byte for byte what the stages run one by one write (a test compares them); a killed
run resumes record by record in every stage; a rerun skips finished stages. What makes that hold:

* a stage's records are the cuts of the stage before, taken from its journal lines, which hold the
  same JSON as its manifest: same ids, same fingerprints, same validation as reading the manifest;
* manifests are written at the end in input order: a record of stage k+1 is sorted by the key of
  the record of stage k it came from, then by its place among that record's cuts;
* a stage streams only after one without ``finalise`` (which may rewrite a finished manifest) and
  only when it reads the default manifest input (:func:`can_stream`);
* a streamed stage's input key (what it read) is known once the stage before has written its
  manifest: ``stage.json`` says "streamed" until then, so a run killed before that reopens the
  stage from its journal instead of taking it for complete.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synpara.executors.journal import input_key, set_input_key
from synpara.executors.local import IN_FLIGHT_PER_WORKER, WorkerPool, job_key, worker_task
from synpara.executors.run import (
    RunSummary,
    StageOutput,
    pending_records,
    primed,
    record_of,
    require_output,
    stage_info,
)
from synpara.executors.worker import Job, record_line, setup_stage, shippable
from synpara.manifest import MANIFEST_NAME
from synpara.stage import Record, Stage

log = logging.getLogger(__name__)

#: ``stage.json``'s input key of a streamed stage until the stage before it has finished.
STREAMED_KEY = "streamed: set when the stage before finishes"


def can_stream(previous: Stage, stage: Stage) -> bool:
    """Whether ``stage`` can take ``previous``'s cuts one by one instead of its manifest."""
    return (
        stage.input_kind == "manifest"
        and type(stage).iter_records is Stage.iter_records
        and type(previous).finalise is Stage.finalise
    )


@dataclass(frozen=True)
class StreamStep:
    """One stage of a streamed run: configured, where it writes, the upstream config it hashes."""

    stage: Stage
    output_dir: Path
    upstream: str
    where: str  # how errors name it, e.g. "stage 02-diarize"
    #: what each Ray actor of the stage reserves (the pipeline YAML's ``resources``)
    resources: dict[str, float] = field(default_factory=dict)


def run_streamed(
    steps: list[StreamStep],
    input_path: Any,
    *,
    seed: int,
    workers: int,
    threads: int,
    pool: WorkerPool | None,
    overwrite: bool = False,
    progress: bool = True,
    max_failures: float = 0,
    checksum_inputs: bool = False,
    allow_unknown_labels: bool = False,
    executor: str = "local",
) -> list[RunSummary]:
    """Run ``steps`` (each one :func:`can_stream` after the one before) over ``input_path``, the
    first step's input; one :class:`RunSummary` per step, as :func:`run_stage` gives.
    ``executor``: ``local`` (``pool``'s workers) or ``ray`` (a Ray Data chain: ``ray_stream.py``).
    """
    summaries: list[RunSummary] = []
    with ExitStack() as stack:
        # Steps already complete are skipped as run_stage skips them; streaming starts at the
        # first step with work to do, on the manifest of the last complete one.
        while True:
            if not steps:
                return summaries
            first = steps[0]
            # read the first record before touching the directory: a bad input fails here
            records = primed(first.stage.iter_records(input_path))
            key = input_key(first.stage.input_files(input_path), first.stage.input_kind,
                            checksum_inputs)
            info = stage_info(first.stage, seed, first.upstream, input_path, key)
            output = stack.enter_context(StageOutput(first.stage, first.output_dir, info))
            if not output.open(overwrite, progress=False):  # the stream's bar counts for it
                break
            summaries.append(output.summary)
            require_output(output.summary, where=first.where)
            input_path = str(output.output_dir / MANIFEST_NAME)
            steps = steps[1:]
        # One bar for the stream (records done per stage after it): bars of their own would need
        # a terminal to stack, and in a log their cursor moves are noise.
        bar = stack.enter_context(_StreamBar([step.stage.name for step in steps], progress))
        output.set_bar(bar.counter(0))
        output.summary.streamed = len(steps) > 1
        outputs = [output]
        for step in steps[1:]:
            step_input = str(outputs[-1].output_dir / MANIFEST_NAME)
            info = stage_info(step.stage, seed, step.upstream, step_input, STREAMED_KEY)
            outputs.append(StageOutput(step.stage, step.output_dir, info))

        def open_output(position: int) -> None:
            # A later step's directory is opened when its first record comes: a step before it
            # that leaves nothing stops the run with no trace of the steps it never fed.
            stack.enter_context(outputs[position])
            outputs[position].open(overwrite, progress, bar=bar.counter(position))
            outputs[position].summary.streamed = True

        flow: Any
        if executor == "ray":
            from synpara.executors.ray_stream import RayChain

            flow = RayChain(outputs, open_output, seed, workers, threads, allow_unknown_labels,
                            [step.resources for step in steps])
        else:
            flow = _Flow(outputs, open_output, seed, workers, threads, allow_unknown_labels)
        try:
            flow.run(records, pool)
        finally:
            for output in outputs:
                output.close_journal()
        for position, (step, output) in enumerate(zip(steps, outputs)):
            if position:
                flow.require_open(position)
                manifest = outputs[position - 1].output_dir / MANIFEST_NAME
                set_input_key(output.output_dir, input_key([manifest], "manifest"))
            summaries.append(output.finish(max_failures, seed))
            require_output(output.summary, where=step.where)
    return summaries


class _StreamBar:
    """A tqdm bar over every record of a stream, with each stage's count after it."""

    def __init__(self, names: list[str], progress: bool) -> None:
        from tqdm import tqdm

        self.names = names
        self.counts = [0] * len(names)
        self.bar = tqdm(desc=" + ".join(names), unit="rec", disable=not progress,
                        dynamic_ncols=True)

    def counter(self, position: int) -> _StageCounter:
        return _StageCounter(self, position)

    def update(self, position: int) -> None:
        self.counts[position] += 1
        self.bar.set_postfix_str(
            " ".join(f"{name} {count}" for name, count in zip(self.names, self.counts)),
            refresh=False)
        self.bar.update(1)

    def __enter__(self) -> _StreamBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


@dataclass
class _StageCounter:
    """What a stage's output counts its records with, in a stream: the stream's bar."""

    stream: _StreamBar
    position: int

    def update(self, count: int = 1) -> None:
        for _ in range(count):
            self.stream.update(self.position)

    def close(self) -> None:
        """The stream closes its bar."""


class _Flow:
    """The driver's side of a streamed run: which record of which step runs next, and what a
    finished one feeds to the step after it."""

    def __init__(self, outputs: list[StageOutput], open_output: Callable[[int], None], seed: int,
                 workers: int, threads: int, allow_unknown_labels: bool) -> None:
        self.outputs = outputs
        self._open_output = open_output
        self.opened = {0}
        self.workers = workers
        self.allow_unknown_labels = allow_unknown_labels
        self.jobs = [
            Job(stage=output.stage, seed=seed, output_dir=output.output_dir,
                config_hash=output.summary.config_hash, workers=workers, threads=threads)
            for output in outputs
        ]
        #: (-position, order, position, journal index, sort key, record): later steps first
        self.ready: list[tuple[int, int, int, int, tuple[int, ...], Record]] = []
        self._order = itertools.count()

    # ---- what runs next ----------------------------------------------------------------------

    def offer(self, position: int, parent_key: tuple[int, ...], cuts: list[dict[str, Any]]
              ) -> None:
        """The cuts a record of step ``position - 1`` became, as records of step ``position``."""
        if position >= len(self.outputs) or not cuts:
            return
        self.require_open(position)
        output = self.outputs[position]
        keyed = ((parent_key + (place,), record_of(data, output.info["input"]))
                 for place, data in enumerate(cuts))
        for key, record in pending_records(
                keyed, output, "manifest", self.allow_unknown_labels,
                on_resumed=lambda key, record: self.resume(position, record.id, key)):
            self._push(position, key, record)

    def require_open(self, position: int) -> None:
        if position not in self.opened:
            self._open_output(position)
            self.opened.add(position)

    def resume(self, position: int, record_id: str, key: tuple[int, ...]) -> None:
        """A record step ``position`` did in an earlier run: its journalled cuts go on."""
        (entry,) = self.outputs[position].journal.entries([record_id])
        self.offer(position + 1, key, entry["cuts"])

    def _push(self, position: int, key: tuple[int, ...], record: Record) -> None:
        heapq.heappush(self.ready, (-position, next(self._order), position, key[0], key, record))

    def done(self, position: int, index: int, key: tuple[int, ...], line: str) -> None:
        entry = self.outputs[position].on_done(index, line)
        if entry is not None:
            self.offer(position + 1, key, entry["cuts"])

    # ---- running -----------------------------------------------------------------------------

    def run(self, records: Iterator[Record], pool: WorkerPool | None) -> None:
        first = self.outputs[0]
        pending = pending_records(
            enumerate(records), first, first.stage.input_kind, self.allow_unknown_labels,
            on_resumed=lambda index, record: self.resume(0, record.id, (index,)),
        )

        def next_item() -> tuple[int, int, tuple[int, ...], Record] | None:
            if not self.ready:
                # reading on may meet records done in an earlier run: their cuts become ready
                item = next(pending, None)
                if item is not None:
                    index, record = item
                    return 0, index, (index,), record
            if not self.ready:
                return None
            _, _, position, index, key, record = heapq.heappop(self.ready)
            return position, index, key, record

        if self.workers == 1 or pool is None:
            self._run_here(next_item)
        else:
            self._run_on(pool, next_item)

    def _run_here(self, next_item: Callable[[], Any]) -> None:
        for job in self.jobs:
            setup_stage(job)
        while (item := next_item()) is not None:
            position, index, key, record = item
            self.done(position, index, key, record_line(self.jobs[position], record))

    def _run_on(self, pool: WorkerPool, next_item: Callable[[], Any]) -> None:
        keys = tuple(job_key(job) for job in self.jobs)
        pickles = [pickle.dumps(shippable(job)) for job in self.jobs]
        max_in_flight = self.workers * IN_FLIGHT_PER_WORKER
        in_flight: dict[Future[str], tuple[int, int, tuple[int, ...]]] = {}
        try:
            executor = pool.executor()
            first_batch = True
            while True:
                while len(in_flight) < max_in_flight and (item := next_item()) is not None:
                    position, index, key, record = item
                    future = executor.submit(worker_task, keys[position], pickles[position],
                                             record, keys)
                    in_flight[future] = (position, index, key)
                if not in_flight:
                    return
                if first_batch and len(self.outputs) > 1:
                    # The first finished record is read back as a lhotse cut; importing lhotse
                    # (and torch: 2 s) then would leave both workers waiting, so it happens now,
                    # while they start.
                    import lhotse  # noqa: F401
                first_batch = False
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    position, index, key = in_flight.pop(future)
                    self.done(position, index, key, future.result())
        except BrokenProcessPool as error:
            names = "+".join(output.stage.name for output in self.outputs)
            raise pool.broken(names, self.outputs[0].output_dir, error) from error
