"""The local runner: worker processes on this machine, each with its stage set up once.

``workers == 1`` runs in the calling process (no pickling; easy to debug; it sets that process's
math-library threads to the cores, as a worker's would be). Otherwise a spawn-context
process pool gets a bounded window of records, so the input is streamed, never queued whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from synpara.errors import SynparaError
from synpara.executors.base import (
    Job,
    record_line,
)
from synpara.stage import Record

# One job (with its set-up stage) per worker process, set by the pool initializer.
_WORKER: dict[str, Any] = {}


def limit_threads(threads: int) -> None:
    """Set the math-library threads of this process (see :attr:`Job.threads`)."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def _init_worker(job: Job) -> None:
    limit_threads(job.threads)
    job.stage.setup(job.threads)
    _WORKER["job"] = job


def _worker_task(record: Record) -> str:
    # Serialised in the worker: a JSON string pickles faster than a tree of lhotse objects.
    return record_line(_WORKER["job"], record)


def run_records(
    job: Job, records: Iterator[tuple[int, Record]], on_done: Callable[[int, str], None]
) -> None:
    """Process ``records`` with ``job.workers`` processes; ``on_done`` runs in this process."""
    if job.workers == 1:
        limit_threads(job.threads)
        job.stage.setup(job.threads)
        for index, record in records:
            on_done(index, record_line(job, record))
        return

    import multiprocessing

    # spawn, not fork: a forked copy of a parent that touched torch/OpenMP can deadlock.
    context = multiprocessing.get_context("spawn")
    max_in_flight = job.workers * 4
    try:
        with ProcessPoolExecutor(
            job.workers, mp_context=context, initializer=_init_worker, initargs=(job,)
        ) as pool:
            in_flight: dict[Future[str], int] = {}

            def drain(block_until: int) -> None:
                while len(in_flight) > block_until:
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        on_done(in_flight.pop(future), future.result())

            for index, record in records:
                drain(max_in_flight - 1)
                in_flight[pool.submit(_worker_task, record)] = index
            drain(0)
    except BrokenProcessPool as error:
        raise SynparaError(
            f"{job.stage.name}: a worker process died ({error}); likely out of memory, or a script "
            "that runs synpara without an `if __name__ == '__main__':` guard. Finished records "
            "are kept: run again to resume",
            job.output_dir,
        ) from error
