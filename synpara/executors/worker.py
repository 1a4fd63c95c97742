"""What happens to one record inside a worker: process it and say how it ended.

Three outcomes, told apart here and nowhere else:

* **done**: the stage returned cuts (and perhaps per-part rejects); the driver journals the record.
* **rejected**: the input is bad (a :class:`SynparaError`, or a :class:`Reject` returned or made
  when the record was read); also journalled, so a rerun does not redo it.
* **failed**: anything else (a bug, a missing file, a library crash, out of memory in a model). The
  driver does *not* journal it, so a rerun retries it, and the stage ends without ``_SUCCESS``.

Runners (``local.py``, ``ray.py``) call :func:`setup_stage` once per worker and :func:`record_line`
per record; they import this module and nothing else of the package's executors.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.manifest import add_provenance, dumps
from synpara.stage import Record, RecordContext, Reject, Stage


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Job:
    """Everything a runner needs besides the records: picklable, shipped to workers.

    ``threads`` is the math-library threads per worker, the cores shared out among the *requested*
    workers (not the ones actually started for a short input): multithreaded float reductions
    (torch, CTranslate2) sum in a thread-dependent order, so bit-identical output needs the same
    threads per worker whatever the number of pending records.
    """

    stage: Stage
    seed: int
    output_dir: Path
    config_hash: str
    workers: int
    threads: int = 1
    #: Per-actor reservation on Ray (``num_cpus``, ``num_gpus``, ``memory``); the local runner
    #: ignores it.
    resources: dict[str, float] = field(default_factory=dict)


def shippable(job: Job) -> Job:
    """``job`` with a fresh copy of its stage, fit to send to other processes: the caller's stage
    may have been set up already (models do not pickle); only its config travels."""
    return replace(job, stage=type(job.stage)(job.stage.config))


#: A file every process appends per-record timings to, when set (benchmarks only).
TRACE_VARIABLE = "SYNPARA_TRACE"
#: What OpenMP, MKL and OpenBLAS read, once, when they load (numpy loads OpenBLAS on import).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Cap this process's math-library threads (libraries a stage does not configure itself).

    Setting the variables here only reaches libraries loaded later and child processes; a worker
    process must find them set when it starts (:class:`synpara.executors.local.WorkerPool` does).
    """
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def setup_stage(job: Job) -> None:
    """Set up ``job.stage`` in this worker with the worker's share of the cores."""
    started = time.time()
    limit_threads(job.threads)
    job.stage.setup(job.threads)
    _trace(job.stage.name, "(setup)", started)


def _trace(stage: str, what: str, started: float) -> None:
    """Append one timing line to ``$SYNPARA_TRACE`` (when set): which process spent which wall
    seconds on what, so a benchmark can say where a run's time went (see benchmarks/pipeline.py)."""
    path = os.environ.get(TRACE_VARIABLE)
    if path:
        line = json.dumps({"stage": stage, "id": what, "pid": os.getpid(), "start": started,
                           "end": time.time()})
        with open(path, "a", encoding="utf-8") as handle:  # one short line: appends atomically
            handle.write(line + "\n")


def first_line(text: str) -> str:
    """The first non-empty line of ``text``: a reason fit for one line of a rejects manifest."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


def process_record(job: Job, record: Record) -> dict[str, Any]:
    """Run the stage on one record; never raises for a per-record problem.

    Returns ``{"id", "source", "fingerprint", "cuts": [...], "rejects": [{"id", "reason"}]}`` for
    a done or rejected record (plus ``"detail"``: a multi-line reason in full, not journalled), or
    ``{"id", "source", "fingerprint", "failed": reason, "traceback": text}`` for a failure.
    """
    stage = job.stage
    base = {"id": record.id, "source": record.source, "fingerprint": record.fingerprint}

    def rejected(reason: str) -> dict[str, Any]:
        return {**base, "cuts": [], "rejects": [{"id": record.id, "reason": first_line(reason)}]}

    if isinstance(record.payload, Reject):
        return rejected(record.payload.reason)
    context = RecordContext(record_id=record.id, seed=job.seed, output_dir=job.output_dir)
    try:
        result = stage.process(record.payload, context)
    except SynparaError as error:
        line = rejected(str(error))
        if "\n" in str(error):  # a wrapped library message: the driver logs it whole under -v
            line["detail"] = str(error)
        return line
    except Exception as error:  # not bad input: a bug, a missing file, a library failure
        reason = first_line(f"{type(error).__name__}: {error}")
        return {**base, "failed": reason, "traceback": traceback.format_exc()}
    if isinstance(result, Reject):
        return rejected(result.reason)
    results = result if isinstance(result, list) else [result]
    cuts = [item for item in results if not isinstance(item, Reject)]
    parts_rejected = [
        {"id": item.id or record.id, "reason": first_line(item.reason)}
        for item in results
        if isinstance(item, Reject)
    ]
    for cut in cuts:
        add_provenance(
            cut,
            stage=stage.name,
            version=stage.version,
            config_hash=job.config_hash,
            seed=job.seed,
            model=stage.model_id,
        )
    return {**base, "cuts": [cut.to_dict() for cut in cuts], "rejects": parts_rejected}


def record_line(job: Job, record: Record) -> str:
    """Process one record with an already set-up stage; the JSON line sent back to the driver.

    Serialised in the worker: a JSON string pickles faster than a tree of lhotse objects. Carries
    the seconds the worker spent on it (journalled, never in a manifest): stages streamed into
    each other overlap in time, so their cost is told by these, summed.
    """
    started = time.time()
    outcome = process_record(job, record)
    outcome["seconds"] = round(time.time() - started, 3)
    line = dumps(outcome)
    _trace(job.stage.name, record.id, started)
    return line
