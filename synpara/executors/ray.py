"""The Ray runner: the same stage, set up once per Ray Data actor, on any Ray cluster. (Stages
streamed into each other run as one Ray Data chain: ``ray_stream.py``.)

``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` or starts a local one. The driver keeps
the done log, resumption and final manifest as with the local runner, so output is identical;
workers write audio (ingest, tts, insert, export) under the stage's output directory, which must
therefore be on storage every node sees. Records go to Ray in chunks so the driver never holds the
whole input; each chunk starts its own actor pool (one model load per actor per chunk). Each actor
call gets a batch of records (``map_batches``), so a stage that batches on a GPU can later take
them at once.

Each actor reserves ``job.resources`` (from the stage's ``resources`` in the pipeline YAML:
``num_cpus``, ``num_gpus``, ``memory``), by default the worker's share of the cores. A reservation
no node of the cluster can meet is refused before anything starts: Ray would wait for it forever.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any

from synpara.errors import SynparaError
from synpara.executors.worker import (
    Job,
    available_cores,
    record_line,
    setup_stage,
    shippable,
)
from synpara.stage import Record

#: Records per Ray dataset. Large enough that actor start-up (model loading) is amortised.
CHUNK_RECORDS = 10_000
#: Most records per actor call; fewer when a chunk would otherwise leave actors idle.
BATCH_RECORDS = 16


def setup_error(job: Job) -> str:
    """Set up ``job.stage`` in this actor; a :class:`SynparaError` (a model that cannot load, a
    bank that is empty) comes back as "stage: message", to be sent with every row so the driver
    raises it as the local runner does: one line. Raised here, Ray would report an actor's death
    with tracebacks."""
    try:
        setup_stage(job)  # as many threads as a local worker: the same numerics
    except SynparaError as error:
        return f"{job.stage.name}: {error}"
    return ""


class _StageActor:
    """A Ray Data callable class: holds one set-up stage for its lifetime."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.error = setup_error(job)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        blobs = batch["record"]
        lines = ([""] * len(blobs) if self.error else
                 [record_line(self.job, pickle.loads(blob)) for blob in blobs])
        return {"index": list(batch["index"]), "line": lines, "error": [self.error] * len(blobs)}


def ensure_ray() -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:  # a local cluster on this machine's cores; actors take job.threads cores each
        ray.init(num_cpus=available_cores(), include_dashboard=False, log_to_driver=False)


def actor_resources(job: Job) -> dict[str, Any]:
    """``map_batches`` keyword arguments reserving what one actor of ``job`` needs."""
    wanted = {"num_cpus": float(job.threads), **job.resources}
    return {key: (int(value) if key == "memory" else value) for key, value in wanted.items()
            if value or key == "num_cpus"}


def check_cluster(job: Job, reservation: dict[str, Any], nodes: list[dict[str, float]]) -> None:
    """Refuse a per-actor reservation that no node (``nodes``: each node's total resources, Ray's
    names) can meet."""
    names = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    needed = {names[key]: float(value) for key, value in reservation.items() if value}
    if any(all(node.get(name, 0.0) >= amount for name, amount in needed.items())
           for node in nodes):
        return
    have = "; ".join(", ".join(f"{k} {node.get(k, 0):g}" for k in needed) for node in nodes)
    raise SynparaError(
        f"{job.stage.name}: each Ray actor needs "
        f"{', '.join(f'{k} {v:g}' for k, v in needed.items())}, but no node has that "
        f"({have or 'no nodes'}); change the stage's resources in the pipeline YAML"
    )


def node_totals() -> list[dict[str, float]]:
    import ray

    return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]


def run_records(
    job: Job, records: Iterator[tuple[int, Record]], on_done: Callable[[int, str], Any]
) -> None:
    """Process ``records`` on Ray Data actors (``job.workers`` of them); results stream back."""
    import ray

    ensure_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's tqdm bar already counts records
    reservation = actor_resources(job)
    check_cluster(job, reservation, node_totals())
    while True:
        chunk = list(itertools.islice(records, CHUNK_RECORDS))
        if not chunk:
            return
        rows = [{"index": index, "record": pickle.dumps(record)} for index, record in chunk]
        dataset = ray.data.from_items(rows).map_batches(
            _StageActor,
            fn_constructor_args=(shippable(job),),
            batch_size=batch_size(len(chunk), job.workers),
            compute=ray.data.ActorPoolStrategy(size=job.workers),
            **reservation,
        )
        for row in dataset.iter_rows():
            if row["error"]:
                raise SynparaError(row["error"])
            on_done(int(row["index"]), row["line"])


def batch_size(records: int, workers: int) -> int:
    """Records per actor call: up to ``BATCH_RECORDS``, but enough batches for every actor."""
    return max(1, min(BATCH_RECORDS, math.ceil(records / workers)))
