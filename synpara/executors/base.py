"""Run one stage over a manifest: resumable per record, on a local pool or a Ray cluster.

Layout of a stage's output directory::

    stage.json           what produced it: stage, version, config, seed, config hash
    .lock                held (flock) while a run writes here
    _parts/done.jsonl    one line per finished input record, appended as records finish
    cuts.jsonl.gz        final manifest, in input order, renamed into place atomically
    rejects.jsonl.gz     {"id", "source", "stage", "reason"} per rejected record or part of one
    _SUCCESS             completion marker with counts; a finished stage is skipped whole

A killed run leaves ``_parts/done.jsonl``; the next run drops a half-written last line, skips
every id already there and processes the rest. Only the driver process writes files, so lines never
interleave; the runners (``local.py``: worker processes, ``ray.py``: Ray Data actors) only
compute. Output order and content do not depend on the worker count: records are put back in
input order at the end, and each record's randomness comes from (seed, record id).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.manifest import MANIFEST_NAME, REJECTS_NAME, dumps, write_json_lines_atomic
from synpara.stage import Record, RecordContext, Reject, Stage

log = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
SUCCESS_FILE = "_SUCCESS"
PARTS_DIR = "_parts"
DONE_FILE = "done.jsonl"
LOCK_FILE = ".lock"
# Lines appended since the last fsync before we fsync again: bounds what a power cut can lose
# (a killed process loses nothing that was flushed).
_FSYNC_EVERY = 64


@dataclass
class RunSummary:
    """What one stage run did (also written into ``_SUCCESS``)."""

    stage: str
    output_dir: str
    config_hash: str
    processed: int = 0  # records processed by this run
    resumed: int = 0  # records found done from an earlier, interrupted run
    rejected: int = 0  # reject lines in total (records, or parts of records; all runs)
    cuts: int = 0  # cuts in the final manifest
    seconds: float = 0.0
    skipped: bool = False  # the whole stage was already complete

    @property
    def manifest(self) -> Path:
        return Path(self.output_dir) / MANIFEST_NAME

    @property
    def rejects(self) -> Path:
        return Path(self.output_dir) / REJECTS_NAME


@dataclass(frozen=True)
class Job:
    """Everything a runner needs besides the records: picklable, shipped to workers."""

    stage: Stage
    seed: int
    output_dir: Path
    config_hash: str
    workers: int

    @property
    def threads(self) -> int:
        """Math-library threads per worker: the cores shared out, so workers x threads <= cores.

        Multithreaded float reductions (torch, CTranslate2) sum in a thread-dependent order, so
        bit-identical output needs the same threads per worker; every runner uses this value.
        """
        return max(1, default_workers() // self.workers)


#: A runner computes the pending records and calls ``on_done(input_index, json_line)`` in the
#: driver for each one as it finishes (in any order).
Runner = Callable[[Job, Iterator[tuple[int, Record]], Callable[[int, str], None]], None]
EXECUTORS = ("local", "ray")


def default_workers() -> int:
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


# --------------------------------------------------------------------------- per record


def _process_record(
    stage: Stage, record: Record, seed: int, output_dir: Path, config_hash: str
) -> dict[str, Any]:
    """Run ``stage`` on one record; always returns the line to write, never raises for bad data.

    The line is ``{"id", "source", "cuts": [cut dicts], "rejects": [{"id", "reason"}]}``.
    """
    base = {"id": record.id, "source": record.source}

    def rejected(reason: str) -> dict[str, Any]:
        return {**base, "cuts": [], "rejects": [{"id": record.id, "reason": reason}]}

    if isinstance(record.payload, Reject):
        return rejected(record.payload.reason)
    context = RecordContext(record_id=record.id, seed=seed, output_dir=output_dir)
    try:
        result = stage.process(record.payload, context)
    except SynparaError as error:
        return rejected(str(error))
    except Exception as error:  # a bug or a library failure on this record: keep the batch going
        log.warning(
            "%s: %s failed on %s:\n%s",
            stage.name,
            type(error).__name__,
            record.id,
            traceback.format_exc(),
        )
        return rejected(f"{type(error).__name__}: {error}")
    if isinstance(result, Reject):
        return rejected(result.reason)
    from synpara.manifest import add_provenance

    results = result if isinstance(result, list) else [result]
    cuts = [item for item in results if not isinstance(item, Reject)]
    parts_rejected = [
        {"id": item.id or record.id, "reason": item.reason}
        for item in results
        if isinstance(item, Reject)
    ]
    for cut in cuts:
        add_provenance(
            cut,
            stage=stage.name,
            version=stage.version,
            config_hash=config_hash,
            seed=seed,
            model=stage.model_id,
        )
    return {**base, "cuts": [cut.to_dict() for cut in cuts], "rejects": parts_rejected}


def record_line(job: Job, record: Record) -> str:
    """Process one record with an already set-up stage; the JSON line for the done log."""
    return dumps(_process_record(job.stage, record, job.seed, job.output_dir, job.config_hash))


# --------------------------------------------------------------------------- parent side


class _DoneLog:
    """The append-only record of finished input records, with byte offsets for the final pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: dict[str, int] = {}
        self.order: list[tuple[int, str]] = []  # (input index, id)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._handle = open(path, "ab")
        self._unsynced = 0

    def _recover(self) -> None:
        if not self.path.exists():
            return
        good_end = 0
        with open(self.path, "rb") as handle:
            while True:
                offset = handle.tell()
                line = handle.readline()
                if not line:
                    break
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("incomplete line")
                    entry = json.loads(line)
                except ValueError:
                    # A kill mid-write leaves a partial last line: drop it, that record is redone.
                    log.info("dropping a half-written line at byte %d of %s", offset, self.path)
                    break
                self.offsets[entry["id"]] = offset
                self.order.append((entry["index"], entry["id"]))
                good_end = handle.tell()
        with open(self.path, "r+b") as handle:
            handle.truncate(good_end)

    def append(self, index: int, line: str) -> None:
        # index goes first in the object so the line stays a plain JSON object for tools like jq.
        entry = f'{{"index": {index}, {line[1:]}'
        offset = self._handle.tell()
        self._handle.write(entry.encode("utf-8") + b"\n")
        self._handle.flush()
        self._unsynced += 1
        if self._unsynced >= _FSYNC_EVERY:
            os.fsync(self._handle.fileno())
            self._unsynced = 0
        record_id = json.loads(line)["id"]
        self.offsets[record_id] = offset
        self.order.append((index, record_id))

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def entries_in_input_order(self) -> Iterator[dict[str, Any]]:
        with open(self.path, "rb") as handle:
            for _, record_id in sorted(self.order):
                handle.seek(self.offsets[record_id])
                yield json.loads(handle.readline())


class _OutputLock:
    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / LOCK_FILE

    def __enter__(self) -> _OutputLock:
        self._handle = open(self.path, "w")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise SynparaError(
                "another synpara run is writing to this directory", self.path.parent
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _prepare_directory(output_dir: Path, stage_info: dict[str, Any], overwrite: bool) -> bool:
    """Check what ``output_dir`` holds; returns True when the stage is already complete there."""
    stage_file = output_dir / STAGE_FILE
    if stage_file.exists():
        previous = json.loads(stage_file.read_text())
        same = previous.get("config_hash") == stage_info["config_hash"]
        if same and not overwrite:
            return (output_dir / SUCCESS_FILE).exists()
        if not overwrite:
            raise SynparaError(
                f"holds output of another {previous.get('stage')} config "
                f"(hash {previous.get('config_hash')}, now {stage_info['config_hash']}); "
                "pass --overwrite to replace it or choose another output directory",
                output_dir,
            )
    elif (output_dir / MANIFEST_NAME).exists() and not overwrite:
        raise SynparaError(
            f"holds a {MANIFEST_NAME} that synpara did not write; pass --overwrite to replace it",
            output_dir,
        )
    if overwrite:
        for name in os.listdir(output_dir):
            if name == LOCK_FILE:
                continue
            target = output_dir / name
            shutil.rmtree(
                target
            ) if target.is_dir() and not target.is_symlink() else target.unlink()
    stage_file_tmp = output_dir / f".{STAGE_FILE}.tmp"
    stage_file_tmp.write_text(json.dumps(stage_info, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(stage_file_tmp, stage_file)
    return False


def run_stage(
    stage: Stage,
    input_path: Any,
    output_dir: str | Path,
    *,
    workers: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
    upstream: str | None = None,
    progress: bool = True,
    executor: str = "local",
) -> RunSummary:
    """Run ``stage`` over ``input_path`` (a manifest; for ingest, audio inputs) into ``output_dir``.

    ``upstream`` identifies the input for the config hash (the previous stage's hash in a pipeline);
    by default it is the input path itself. ``executor`` is ``"local"`` (worker processes here) or
    ``"ray"`` (Ray Data on the cluster ``ray.init()`` finds); the output is the same either way.
    """
    from tqdm import tqdm

    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise SynparaError(f"workers must be >= 1, got {workers}")
    runner = _runner(executor)
    # Read the first record before touching the output directory: a missing or malformed input
    # fails here, with nothing written.
    records = _primed(stage.iter_records(input_path))
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    upstream = upstream if upstream is not None else json.dumps(input_path, default=str)
    config_hash = stage.config_hash(seed, upstream)
    summary = RunSummary(stage=stage.name, output_dir=str(output_dir), config_hash=config_hash)
    stage_info = {
        "stage": stage.name,
        "version": stage.version,
        "config": stage.config.to_dict(),
        "seed": seed,
        "config_hash": config_hash,
        "input": input_path,
    }
    started = time.monotonic()
    with _OutputLock(output_dir):
        if _prepare_directory(output_dir, stage_info, overwrite):
            log.info("%s: already complete in %s, skipped", stage.name, output_dir)
            summary.skipped = True
            done = json.loads((output_dir / SUCCESS_FILE).read_text())
            summary.cuts, summary.rejected = done.get("cuts", 0), done.get("rejected", 0)
            return summary

        done_log = _DoneLog(output_dir / PARTS_DIR / DONE_FILE)
        summary.resumed = len(done_log.offsets)
        if summary.resumed:
            log.info("%s: resuming, %d records already done", stage.name, summary.resumed)
        bar = tqdm(
            desc=stage.name,
            unit="rec",
            initial=summary.resumed,
            disable=not progress,
            dynamic_ncols=True,
        )

        def on_done(index: int, line: str) -> None:
            done_log.append(index, line)
            summary.processed += 1
            bar.update(1)

        job = Job(
            stage=stage, seed=seed, output_dir=output_dir, config_hash=config_hash, workers=workers
        )
        try:
            runner(job, _pending_records(records, done_log), on_done)
        finally:
            bar.close()
            done_log.close()
        summary.cuts, summary.rejected = _finalise(stage, output_dir, done_log)
        summary.seconds = round(time.monotonic() - started, 3)
        marker = {k: v for k, v in asdict(summary).items() if k != "output_dir"}
        (output_dir / SUCCESS_FILE).write_text(json.dumps(marker, indent=2) + "\n")
        shutil.rmtree(output_dir / PARTS_DIR, ignore_errors=True)
    log.info(
        "%s: %d cuts, %d rejected, %.1f s",
        stage.name,
        summary.cuts,
        summary.rejected,
        summary.seconds,
    )
    return summary


def _runner(executor: str) -> Runner:
    if executor == "local":
        from synpara.executors.local import run_records
    elif executor == "ray":
        from synpara.executors.ray import run_records
    else:
        raise SynparaError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    return run_records


def _primed(records: Iterator[Record]) -> Iterator[Record]:
    first = next(records, None)
    return iter(()) if first is None else itertools.chain([first], records)


def _pending_records(records: Iterator[Record], done_log: _DoneLog) -> Iterator[tuple[int, Record]]:
    seen: set[str] = set()
    for index, record in enumerate(records):
        if record.id in seen:
            # The first record keeps the id; the duplicate is rejected under an id of its own.
            reason = Reject(f"duplicate record id {record.id!r}")
            record = Record(f"{record.id}#dup{index}", record.source, reason)
        seen.add(record.id)
        if record.id not in done_log.offsets:
            yield index, record


def _finalise(stage: Stage, output_dir: Path, done_log: _DoneLog) -> tuple[int, int]:
    counts = {"cuts": 0, "rejected": 0}

    def cut_lines() -> Iterator[str]:
        for entry in done_log.entries_in_input_order():
            for cut in entry["cuts"]:
                counts["cuts"] += 1
                yield dumps(cut)

    def reject_lines() -> Iterator[str]:
        for entry in done_log.entries_in_input_order():
            for reject in entry["rejects"]:
                counts["rejected"] += 1
                yield dumps(
                    {
                        "id": reject["id"],
                        "source": entry["source"],
                        "stage": stage.name,
                        "reason": reject["reason"],
                    }
                )

    write_json_lines_atomic(output_dir / REJECTS_NAME, reject_lines())
    write_json_lines_atomic(output_dir / MANIFEST_NAME, cut_lines())
    return counts["cuts"], counts["rejected"]
