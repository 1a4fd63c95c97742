"""Consecutive stages at once on Ray: one Ray Data chain, each stage its own actors and resources.

The local stream (``stream.py``) sends each record of stage k+1 to a shared pool as stage k
journals the cut it comes from. On a cluster the stages want different machines (transcribe on
GPUs, refine on CPUs), so here each stage is one ``map_batches`` operator of a single Ray Data
dataset, with actors that reserve that stage's ``resources`` from the pipeline YAML; Ray Data's
streaming executor runs the operators side by side and holds back an operator whose output piles
up. Nothing is scheduled by hand.

A row of the dataset is one record of the stream's first stage (or, on a resumed run, a record of
a later stage the driver found pending) *with everything it becomes*: the records still to do
(``items``: ``(position, key, record)``, the frontier). The actor of stage k processes the items at
position k and puts their cuts back as items of position k+1; it passes the others through. Each
result line (an *event*) goes to the driver at once through a Ray queue, before the row moves on,
so the queue holds a cut's line after the line of the record it came from; a thread of the driver
replays the events into each stage's journal exactly as ``stream.py`` journals its results: same
journals, same manifests, same resumption, and a killed run redoes only the records a stage was
working on. The price: the cuts one record becomes go through later stages in one actor, one
after the other (parallelism is across records).
"""

from __future__ import annotations

import itertools
import json
import pickle
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from synpara.errors import SynparaError
from synpara.executors.ray import (
    CHUNK_RECORDS,
    actor_resources,
    check_cluster,
    ensure_ray,
    node_totals,
    setup_error,
)
from synpara.executors.run import StageOutput, checked, pending_records, record_of
from synpara.executors.worker import Job, record_line, shippable
from synpara.stage import Record

#: ``(position, key, record)``: a record waiting for the stage at ``position``; ``key`` sorts it
#: into that stage's manifest (see ``stream.py``).
Item = tuple[int, tuple[int, ...], Record]
#: ``(position, key, line)``: the result line the stage at ``position`` gave the record ``key``.
Event = tuple[int, tuple[int, ...], str]


class _ChainActor:
    """A Ray Data callable class: one stage of the chain, set up once for the actor's life."""

    def __init__(self, job: Job, position: int, next_input: str | None,
                 allow_unknown_labels: bool, events: Any) -> None:
        self.job = job
        self.position = position
        self.events = events  # a ray.util.queue.Queue the driver journals from
        #: the next stage's input (how its records name their source); None for the last stage
        self.next_input = next_input
        self.allow_unknown_labels = allow_unknown_labels
        self.error = setup_error(job)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows: dict[str, list[Any]] = {"items": [], "error": []}
        for items_blob, error in zip(batch["items"], batch["error"]):
            rows["error"].append(error or self.error)
            if rows["error"][-1]:
                rows["items"].append(items_blob)
                continue
            items: list[Item] = pickle.loads(items_blob)
            events: list[Event] = []
            frontier: list[Item] = []
            for position, key, record in items:
                if position != self.position:
                    frontier.append((position, key, record))
                    continue
                line = record_line(self.job, record)
                events.append((position, key, line))
                if self.next_input is None:
                    continue
                for place, data in enumerate(json.loads(line).get("cuts", ())):
                    # checked here as the local stream's driver checks it before sending it on
                    child = checked(record_of(data, self.next_input), "manifest",
                                    self.allow_unknown_labels)
                    frontier.append((position + 1, key + (place,), child))
            if events:  # journalled before the row goes on: causal order in the queue
                self.events.put(events)
            rows["items"].append(pickle.dumps(frontier))
        return rows


class RayChain:
    """The driver's side of a stream on Ray: which rows go in, and what their events journal."""

    def __init__(self, outputs: list[StageOutput], open_output: Callable[[int], None], seed: int,
                 workers: int, threads: int, allow_unknown_labels: bool,
                 resources: list[dict[str, float]]) -> None:
        self.outputs = outputs
        self._open_output = open_output
        self.opened = {0}
        self.allow_unknown_labels = allow_unknown_labels
        # Each stage's actors hold one stage's models, so with no reservation given the stages
        # share the worker's cores: the chain then fits where the local stream's workers would.
        share = threads / len(outputs)
        self.jobs = [
            Job(stage=output.stage, seed=seed, output_dir=output.output_dir,
                config_hash=output.summary.config_hash, workers=workers, threads=threads,
                resources=stage_resources or {"num_cpus": share})
            for output, stage_resources in zip(outputs, resources)
        ]
        #: records of later stages found pending while resuming, not yet sent
        self._queued: deque[Item] = deque()
        #: keys of records replaced by a duplicate-id reject: their descendants' events are void
        self._void: set[tuple[int, ...]] = set()

    def require_open(self, position: int) -> None:
        if position not in self.opened:
            self._open_output(position)
            self.opened.add(position)

    # ---- what goes in ------------------------------------------------------------------------

    def _items(self, records: Iterator[Record]) -> Iterator[Item]:
        """The first stage's pending records, and the pending records of later stages under the
        records an earlier run finished (found through the journals, as ``stream.py`` does)."""
        first = self.outputs[0]
        pending = pending_records(
            enumerate(records), first, first.stage.input_kind, self.allow_unknown_labels,
            on_resumed=lambda index, record: self._resume(0, record.id, (index,)))
        for index, record in pending:
            yield from self._drain()
            yield 0, (index,), record
        yield from self._drain()

    def _drain(self) -> Iterator[Item]:
        while self._queued:
            yield self._queued.popleft()

    def _resume(self, position: int, record_id: str, key: tuple[int, ...]) -> None:
        (entry,) = self.outputs[position].journal.entries([record_id])
        if position + 1 >= len(self.outputs) or not entry["cuts"]:
            return
        self.require_open(position + 1)
        output = self.outputs[position + 1]
        keyed = ((key + (place,), record_of(data, output.info["input"]))
                 for place, data in enumerate(entry["cuts"]))
        for child_key, record in pending_records(
                keyed, output, "manifest", self.allow_unknown_labels,
                on_resumed=lambda k, r: self._resume(position + 1, r.id, k)):
            self._queued.append((position + 1, child_key, record))

    # ---- what comes out ----------------------------------------------------------------------

    def replay(self, events: list[Event]) -> None:
        """Journal events in their (causal) order."""
        for position, key, line in events:
            if any(key[:n] in self._void for n in range(1, len(key) + 1)):
                continue
            self.require_open(position)
            output = self.outputs[position]
            if position:
                line = self._registered(output, key, line)
            entry = output.on_done(key[0], line)
            if entry is None or position + 1 >= len(self.outputs):
                continue
            if entry["cuts"]:
                self.require_open(position + 1)
            following = self.outputs[position + 1]
            for place, data in enumerate(entry["cuts"]):
                # noted for the manifest's order; the chain has already sent them on
                following.present.setdefault(data["id"], key + (place,))

    def _registered(self, output: StageOutput, key: tuple[int, ...], line: str) -> str:
        """``line``, or a duplicate-id reject when another record took its id first (the
        local stream rejects it before running it; here it ran, and its result is dropped)."""
        entry = json.loads(line)
        if output.present.get(entry["id"], key) == key:
            output.present[entry["id"]] = key
            return line
        self._void.add(key)
        dup_id = f"{entry['id']}#dup{'.'.join(map(str, key))}"
        output.present[dup_id] = key
        reason = f"duplicate record id {entry['id']!r}"
        return json.dumps({"id": dup_id, "source": entry["source"],
                           "fingerprint": entry.get("fingerprint", ""), "cuts": [],
                           "rejects": [{"id": dup_id, "reason": reason}]})

    # ---- running -----------------------------------------------------------------------------

    def run(self, records: Iterator[Record], pool: Any = None) -> None:
        import ray
        from ray.util.queue import Queue

        ensure_ray()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the stream's tqdm bar counts records
        reservations = [actor_resources(job) for job in self.jobs]
        nodes = node_totals()
        for job, reservation in zip(self.jobs, reservations):
            check_cluster(job, reservation, nodes)
        events = Queue(actor_options={"num_cpus": 0})
        items = self._items(records)
        while True:
            chunk = list(itertools.islice(items, CHUNK_RECORDS))
            if not chunk:
                return
            rows = [{"items": pickle.dumps([item]), "error": ""} for item in chunk]
            # one block per row: an actor works through a block as one task whose output goes on
            # only when it ends, so a record would wait for the others packed with it
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
            for position, (job, reservation) in enumerate(zip(self.jobs, reservations)):
                following = (self.outputs[position + 1].info["input"]
                             if position + 1 < len(self.outputs) else None)
                dataset = dataset.map_batches(
                    _ChainActor,
                    fn_constructor_args=(shippable(job), position, following,
                                         self.allow_unknown_labels, events),
                    batch_size=1,  # a row is a record and all it becomes: seconds of work
                    # Ray Data grows a stage's pool while rows wait for it
                    compute=ray.data.ActorPoolStrategy(min_size=1, max_size=job.workers),
                    **reservation,
                )
            # The rows only drive the chain: results reach the journals through the queue.
            with _Journaller(self, events) as journaller:
                for row in dataset.iter_rows():
                    if row["error"]:  # a stage could not be set up: one line, as locally
                        raise SynparaError(row["error"])
                    journaller.check()


class _Journaller:
    """A thread of the driver that replays the events in the queue as they come; on leaving, it
    journals what is left (all of it: every actor puts its events before its row goes on) and
    raises what went wrong in it."""

    def __init__(self, chain: RayChain, events: Any) -> None:
        self.chain, self.events = chain, events
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="synpara-journal", daemon=True)

    def _run(self) -> None:
        from ray.util.queue import Empty

        try:
            while True:
                try:
                    batch = self.events.get(timeout=0.1)
                except Empty:
                    if self.stop.is_set():
                        return
                    continue
                self.chain.replay(batch)
        except BaseException as error:  # raised in the driver's thread by check() / __exit__
            self.error = error

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def __enter__(self) -> _Journaller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        if exc[0] is None:
            self.check()
