"""The Ray runner: the same stage, set up once per Ray Data actor, on any Ray cluster.

``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` or starts a local one. The driver keeps
the done log, resumption and final manifest as with the local runner, so output is identical;
workers write audio (ingest/insert) under the stage's output directory, which must therefore be on
storage every node sees. Records go to Ray in chunks so the driver never holds the whole input;
each chunk starts its own actor pool (one model load per actor per chunk).
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any

from synpara.executors.base import Job, default_workers, record_line
from synpara.stage import Record

#: Records per Ray dataset. Large enough that actor start-up (model loading) is amortised.
CHUNK_RECORDS = 10_000


class _StageActor:
    """A Ray Data callable class: holds one set-up stage for its lifetime."""

    def __init__(self, job: Job) -> None:
        from synpara.executors.local import limit_threads

        self.job = job
        limit_threads(job.threads)  # as many threads as a local worker: the same numerics
        job.stage.setup(job.threads)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        lines = [record_line(self.job, pickle.loads(blob)) for blob in batch["record"]]
        return {"index": list(batch["index"]), "line": lines}


def _ensure_ray() -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:  # a local cluster on this machine's cores; actors take job.threads cores each
        ray.init(num_cpus=default_workers(), include_dashboard=False, log_to_driver=False)


def run_records(
    job: Job, records: Iterator[tuple[int, Record]], on_done: Callable[[int, str], None]
) -> None:
    """Process ``records`` on Ray Data actors (``job.workers`` of them); results stream back."""
    import ray

    _ensure_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's tqdm bar already counts records
    while True:
        chunk = list(itertools.islice(records, CHUNK_RECORDS))
        if not chunk:
            return
        rows = [{"index": index, "record": pickle.dumps(record)} for index, record in chunk]
        dataset = ray.data.from_items(rows).map_batches(
            _StageActor,
            fn_constructor_args=(job,),
            batch_size=1,
            concurrency=job.workers,
            num_cpus=job.threads,
        )
        for row in dataset.iter_rows():
            on_done(int(row["index"]), row["line"])
