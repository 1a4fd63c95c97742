"""The local runner: worker processes on this machine, each with its stage set up once.

``workers == 1`` runs in the calling process (no pickling; easy to debug; it sets that process's
math-library threads as a worker's would be). Otherwise a spawn-context process pool gets a bounded
window of records, so the input is streamed, never queued whole.

A :class:`WorkerPool` can outlive one stage: ``run_pipeline`` keeps one for all its stages, so each
worker process starts and imports torch, lhotse and friends once per run instead of once per stage
(seconds per stage on a small machine). A worker sets up the stage of the first record it gets and
keeps it while records of that stage come; a record of the next stage drops it (and its models)
before setting that one up, so a worker holds one stage's models at a time, or, in a streamed run
(``stream.py``), the models of the stages streamed together.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.executors.worker import (
    THREAD_VARIABLES,
    Job,
    available_cores,
    record_line,
    setup_stage,
    shippable,
)
from synpara.stage import Record

#: In a worker process: the jobs whose stages are set up there, by key.
_WORKER: dict[str, Job] = {}
#: Records in flight per worker: enough to keep each busy while the driver journals results.
IN_FLIGHT_PER_WORKER = 4


def _worker_start() -> None:
    """Runs first in every worker process: makes its exit skip the interpreter's teardown."""
    atexit.register(_exit_now)


def _exit_now() -> None:
    """A worker's last act. Everything it made is already with the driver (results travel back
    before a record counts as done; files are written and closed inside the record), so tearing
    down its modules would only cost time: a worker that imported pyannote.audio took 1.4 s to
    exit, 0.06 s this way, and the driver waits for every worker at the end of a run. Handlers
    registered after this one (the libraries a stage imports) have run by now (last in, first
    out); logging and the standard streams are flushed here."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing left to keep
            pass
    os._exit(0)


def job_key(job: Job) -> str:
    return f"{job.config_hash} {job.output_dir} {job.threads}"


def worker_task(key: str, job_pickle: bytes, record: Record, keep: tuple[str, ...] = ()) -> str:
    """Process ``record`` with the stage of ``key``, set up here on first use.

    The job comes with each record (pickled once by the driver: a configured, not set-up stage of
    a few kB), so one pool can serve stage after stage; it is unpickled and set up only when this
    worker does not hold it yet. Held stages other than ``key`` and ``keep`` are dropped first, so
    a worker holds the models of one stage (or of the stages a streamed run keeps busy) at a time.
    """
    if key not in _WORKER:
        dropped = [held for held in _WORKER if held not in keep]
        for held in dropped:
            del _WORKER[held]
        if dropped:  # free the previous stage's models before loading the next ones; a full
            gc.collect()  # collection costs 0.24 s once pyannote and torch are imported
        job = pickle.loads(job_pickle)
        setup_stage(job)
        _WORKER[key] = job
    # Serialised in the worker: a JSON string pickles faster than a tree of lhotse objects.
    return record_line(_WORKER[key], record)


class WorkerPool:
    """Spawn-context worker processes, started on first use and kept until :meth:`close`.

    >>> with WorkerPool(2) as pool:                                     # doctest: +SKIP
    ...     run_stage(Ingest(), inputs, "out/ingest", workers=2, pool=pool)
    ...     run_stage(Detect(), "out/ingest/cuts.jsonl.gz", "out/detect", workers=2, pool=pool)
    """

    def __init__(self, workers: int, threads: int | None = None) -> None:
        self.workers = workers
        #: math-library threads per worker: the worker's share of the cores
        self.threads = threads or max(1, available_cores() // max(1, workers))
        self._executor: ProcessPoolExecutor | None = None
        self._saved_environment: dict[str, str | None] = {}

    def executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            import multiprocessing

            # A spawned worker loads numpy (OpenBLAS) and torch (OpenMP) before it runs a line of
            # ours, and they size their thread pools from these variables then: unset, every
            # worker starts one thread per core and two workers on two cores fight over them
            # (measured: detect's CPU per record doubled, 2 workers no faster than 1). Workers are
            # spawned on demand, so the variables stay set in this process until close(); a value
            # the user set is kept.
            for variable in THREAD_VARIABLES:
                if variable not in os.environ:
                    self._saved_environment[variable] = None
                    os.environ[variable] = str(self.threads)
            # spawn, not fork: a forked copy of a parent that touched torch/OpenMP can deadlock.
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context,
                                                 initializer=_worker_start)
        return self._executor

    def broken(self, what: str, where: Path, error: BaseException) -> SynparaError:
        """Close a pool whose worker died (it takes no more work; the next stage starts a fresh
        one); the error to raise."""
        self.close()
        return SynparaError(
            f"{what}: a worker process died ({error}); likely out of memory, or a script that "
            "runs synpara without an `if __name__ == '__main__':` guard. Finished records are "
            "kept: run again to resume",
            where,
        )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for variable in self._saved_environment:
            os.environ.pop(variable, None)
        self._saved_environment = {}

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_records(
    job: Job,
    records: Iterator[tuple[int, Record]],
    on_done: Callable[[int, str], Any],
    pool: WorkerPool | None = None,
) -> None:
    """Process ``records`` with ``job.workers`` processes; ``on_done`` runs in this process.

    ``pool``: worker processes to use (and leave running) instead of a pool of this stage's own.
    """
    if job.workers == 1:
        setup_stage(job)
        for index, record in records:
            on_done(index, record_line(job, record))
        return
    own = pool is None
    pool = pool or WorkerPool(job.workers, job.threads)
    max_in_flight = job.workers * IN_FLIGHT_PER_WORKER
    try:
        executor = pool.executor()
        key, job_pickle = job_key(job), pickle.dumps(shippable(job))
        in_flight: dict[Future[str], int] = {}

        def drain(block_until: int) -> None:
            while len(in_flight) > block_until:
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    on_done(in_flight.pop(future), future.result())

        for index, record in records:
            drain(max_in_flight - 1)
            in_flight[executor.submit(worker_task, key, job_pickle, record)] = index
        drain(0)
    except BrokenProcessPool as error:
        raise pool.broken(job.stage.name, job.output_dir, error) from error
    finally:
        if own:
            pool.close()
