"""Run one stage over its input: resumable per record, on a local pool or a Ray cluster.

The driver (this module) reads the input, skips records the journal (``journal.py``) already holds,
hands the rest to a runner (``RUNNERS``) and journals each result as it comes back. Only the driver
writes files, so journal lines never interleave; runners only compute. Output order and content do
not depend on the worker count: records are put back in input order at the end, and each record's
randomness comes from (seed, record id).

A record that fails (not bad input: see ``worker.py``) is not journalled: the run ends with an
error and no ``_SUCCESS`` unless ``max_failures`` allows it, and a rerun retries it.
"""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.executors import RUNNERS
from synpara.executors.journal import (
    DONE_FILE,
    PARTS_DIR,
    SUCCESS_FILE,
    DoneLog,
    OutputLock,
    input_key,
    prepare_directory,
    read_success,
    sha256_of,
)
from synpara.executors.worker import Job, available_cores, first_line
from synpara.manifest import (
    MANIFEST_NAME,
    REJECTS_NAME,
    cut_from_dict,
    dumps,
    validate_cut,
    write_json_lines_atomic,
)
from synpara.stage import FinaliseContext, Record, Reject, Stage, cut_source, fingerprint_of

log = logging.getLogger(__name__)

#: A runner computes the pending records and calls ``on_done(input_index, json_line)`` in the
#: driver for each one as it finishes (in any order).
Runner = Callable[[Job, Iterator[tuple[int, Record]], Callable[[int, str], Any]], None]
#: Reasons listed per kind in the summary line.
TOP_REASONS = 3
_FIGURES = re.compile(r"\d+(?:\.\d+)?")


@dataclass
class RunSummary:
    """What one stage run did (also written into ``_SUCCESS``)."""

    stage: str
    output_dir: str
    config_hash: str
    inputs: int = 0  # records in the input
    processed: int = 0  # records processed by this run (done or rejected)
    resumed: int = 0  # records found done by an earlier run and kept
    dropped: int = 0  # journalled records no longer in the input
    rejected: int = 0  # reject lines in total (records, or parts of records; all runs)
    failed: int = 0  # records that failed (not journalled: a rerun retries them)
    cuts: int = 0  # cuts in the final manifest
    seconds: float = 0.0
    #: run streamed with the stage before it: ``seconds`` then counts from the stream's start
    streamed: bool = False
    #: seconds the workers spent on this run's records (streamed stages overlap in ``seconds``)
    worker_seconds: float = 0.0
    skipped: bool = False  # the whole stage was already complete
    reject_reasons: dict[str, int] = field(default_factory=dict)  # the most frequent, counted
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def manifest(self) -> Path:
        return Path(self.output_dir) / MANIFEST_NAME

    @property
    def rejects(self) -> Path:
        return Path(self.output_dir) / REJECTS_NAME

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        if self.skipped:
            return f"{self.stage}: already complete in {self.output_dir} (skipped)"
        resumed = f", {self.resumed} resumed" if self.resumed else ""
        dropped = f", {self.dropped} dropped (gone from the input)" if self.dropped else ""
        failed = (
            f", {self.failed} FAILED ({_reasons_text(self.failure_reasons)})" if self.failed else ""
        )
        rejected = f" ({_reasons_text(self.reject_reasons)})" if self.rejected else ""
        return (
            f"{self.stage}: {self.cuts} cuts from {self.inputs} records, "
            f"{self.rejected} rejected{rejected}{failed}{resumed}{dropped} "
            f"-> {self.manifest} ({'done at ' if self.streamed else ''}{self.seconds:.1f} s"
            f"{' of the stream' if self.streamed else ''}; {self.worker_seconds:.1f} s in workers)"
        )


def _reasons_text(reasons: dict[str, int]) -> str:
    """``3x utterance 3.1-4.0 s: too short (0.9 s < 2.0 s)``: how many reasons of one kind, shown
    by the first of them."""
    return "; ".join(f"{count}x {reason}" for reason, count in reasons.items())


def _reason_kind(reason: str, source: str, record_id: str) -> tuple[str, str]:
    """``(kind, example)``: the reason without what is particular to the record (its path and
    id), and that with its figures masked so equal causes count together
    (``utterance #-# s: too short (# s < # s)``)."""
    example = (reason.replace(source, "").replace(record_id, "").lstrip(":, ").strip()
               or reason)[:80]
    return _FIGURES.sub("#", example), example


def runner(name: str) -> Runner:
    """The ``run_records`` function of executor ``name`` (imported only when used)."""
    try:
        target = RUNNERS[name]
    except KeyError:
        raise SynparaError(f"unknown executor {name!r}; known: {', '.join(RUNNERS)}") from None
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def parse_max_failures(value: str | float | int | None) -> float:
    """``N`` (records) or a fraction below 1 (of the input's records); None means 0."""
    if value is None:
        return 0.0
    try:
        number = float(value)
    except ValueError:
        raise SynparaError(f"max failures must be a count or a fraction, got {value!r}") from None
    if not number >= 0 or math.isinf(number):
        raise SynparaError(f"max failures must be >= 0, got {value!r}")
    return number


def worker_counts(workers: int | None, oversubscribe: bool = False) -> tuple[int, int]:
    """(worker processes, threads per worker) for a requested count on this machine's cores."""
    cores = available_cores()
    wanted = cores if workers is None else workers
    if wanted < 1:
        raise SynparaError(f"workers must be >= 1, got {workers}")
    if wanted > cores and not oversubscribe:
        log.warning("%d workers capped at %d cores (--oversubscribe runs more)", wanted, cores)
        wanted = cores
    return wanted, max(1, cores // wanted)


def require_output(summary: RunSummary, where: str | None = None) -> None:
    """Refuse to go on from a stage that turned non-empty input into no cuts at all."""
    if summary.cuts == 0 and summary.inputs > 0:
        reasons = _reasons_text(summary.reject_reasons) or "no reason recorded"
        raise SynparaError(
            f"{where or summary.stage}: no cuts from {summary.inputs} records ({reasons}); "
            f"nothing left for later stages, reasons in {summary.rejects}"
        )


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
    max_failures: float = 0,
    oversubscribe: bool = False,
    checksum_inputs: bool = False,
    allow_unknown_labels: bool = False,
    resources: dict[str, float] | None = None,
    pool: Any = None,
) -> RunSummary:
    """Run ``stage`` over ``input_path`` (a manifest; for ingest, audio inputs) into ``output_dir``.

    ``upstream`` identifies the input's config for the config hash (the previous stage's hash in a
    pipeline; by default the input path itself); the input's *content* is checked separately (see
    ``journal.py``). ``executor`` is a key of ``RUNNERS``; the output is the same on each.
    ``max_failures``: records allowed to fail (``N``, or a fraction of the input below 1) before
    the stage ends in an error without ``_SUCCESS``. ``workers`` is capped at the cores unless
    ``oversubscribe``, and at the records to do. ``checksum_inputs``: audio inputs are keyed by
    content, not only size and mtime. ``resources``: what each Ray actor reserves (see
    ``synpara.pipeline``); the local runner ignores it. ``pool``: a
    :class:`synpara.executors.local.WorkerPool` the local runner uses (and leaves running) instead
    of starting worker processes of its own.
    """
    if not isinstance(seed, int) or seed < 0:
        raise SynparaError(f"seed must be an integer >= 0, got {seed!r}")
    max_failures = parse_max_failures(max_failures)
    workers, threads = worker_counts(workers, oversubscribe)
    run = runner(executor)
    # Read the first record before touching the output directory: a missing or malformed input
    # fails here, with nothing written.
    records = primed(stage.iter_records(input_path))
    key = input_key(stage.input_files(input_path), stage.input_kind, checksum_inputs)
    upstream = upstream if upstream is not None else json.dumps(input_path, default=str)
    output = StageOutput(stage, Path(output_dir), stage_info(stage, seed, upstream, input_path,
                                                             key))
    with output:
        if output.open(overwrite, progress):
            return output.summary
        pending = pending_records(enumerate(records), output, stage.input_kind,
                                  allow_unknown_labels)
        # Start no more workers than there are records to do (and none when all are done).
        head = list(itertools.islice(pending, workers))
        job = Job(
            stage=stage,
            seed=seed,
            output_dir=output.output_dir,
            config_hash=output.summary.config_hash,
            workers=max(1, len(head)),
            threads=threads,
            resources=dict(resources or {}),
        )
        try:
            if head:
                extra = {"pool": pool} if pool is not None and executor == "local" else {}
                run(job, itertools.chain(head, pending), output.on_done, **extra)
            else:
                for _ in pending:  # nothing to process; still read the input to the end
                    pass
        finally:
            output.close_journal()
        return output.finish(max_failures, seed)


def stage_info(stage: Stage, seed: int, upstream: str, input_path: Any, key: str
               ) -> dict[str, Any]:
    """What ``stage.json`` records: what produced the directory and what it read."""
    return {
        "stage": stage.name,
        "version": stage.version,
        "config": stage.config.to_dict(),
        "seed": seed,
        "config_hash": stage.config_hash(seed, upstream),
        "input": input_path,
        "input_key": key,
    }


class StageOutput:
    """One stage's output directory while a run writes it: its lock, its journal, its counts.

    :func:`run_stage` drives one at a time; ``stream.py`` drives several at once. Used as a
    context manager: the lock is held from :meth:`open` until the ``with`` block ends.
    """

    def __init__(self, stage: Stage, output_dir: Path, info: dict[str, Any]) -> None:
        self.stage = stage
        self.output_dir = output_dir.resolve()
        self.info = info
        self.summary = RunSummary(stage=stage.name, output_dir=str(self.output_dir),
                                  config_hash=info["config_hash"])
        #: id -> sort key (input index, or a tuple of them), of every record in today's input
        self.present: dict[str, Any] = {}
        self.failures: Counter[str] = Counter()
        self.done_log: DoneLog | None = None
        self.started = time.monotonic()
        self._lock = OutputLock(self.output_dir)
        self._bar: Any = None

    def __enter__(self) -> StageOutput:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._lock.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_journal()
        self._lock.__exit__()

    def open(self, overwrite: bool, progress: bool, bar: Any = None) -> bool:
        """Check the directory; True when the stage is already complete there (then
        ``summary`` holds its counts). Otherwise the journal is open for :meth:`on_done`.
        ``bar``: what counts finished records (``update(1)``, ``close()``) instead of a tqdm bar
        of the stage's own."""
        from tqdm import tqdm

        if prepare_directory(self.output_dir, self.info, overwrite):
            log.info("%s: already complete in %s, skipped", self.stage.name, self.output_dir)
            _skipped_summary(self.summary, self.output_dir)
            return True
        self.done_log = DoneLog(self.output_dir / PARTS_DIR / DONE_FILE)
        self._bar = bar or tqdm(desc=self.stage.name, unit="rec", disable=not progress,
                                dynamic_ncols=True)
        return False

    @property
    def journal(self) -> DoneLog:
        if self.done_log is None:
            raise RuntimeError(f"{self.stage.name}: the output is not open")
        return self.done_log

    def on_done(self, index: int, line: str) -> dict[str, Any] | None:
        """Journal one record's result line; returns its entry, or None when it failed."""
        entry = json.loads(line)
        self._bar.update(1)
        self.summary.worker_seconds = round(self.summary.worker_seconds
                                            + entry.get("seconds", 0.0), 3)
        if "failed" in entry:
            log.warning("%s: %s failed: %s", self.stage.name, entry["id"], entry["failed"])
            log.debug("%s", entry.get("traceback", ""))
            self.failures[entry["failed"]] += 1
            return None
        if "detail" in entry:  # one line in the rejects manifest, the whole text under -v
            log.debug("%s: %s rejected:\n%s", self.stage.name, entry["id"], entry.pop("detail"))
            line = dumps(entry)
        self.journal.append(index, entry["id"], entry.get("fingerprint", ""), line)
        self.summary.processed += 1
        return entry

    def set_bar(self, bar: Any) -> None:
        """Count records with ``bar`` from now on (the stage's own bar is closed)."""
        if self._bar is not None:
            self._bar.close()
        self._bar = bar

    def close_journal(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.done_log is not None:
            self.done_log.close()

    def finish(self, max_failures: float, seed: int) -> RunSummary:
        """After every record came back: refuse too many failures, else write the manifest and
        the rejects in input order, run ``finalise``, compact the journal, write ``_SUCCESS``."""
        self.close_journal()
        summary, done_log = self.summary, self.journal
        summary.inputs = len(self.present)
        summary.dropped = sum(1 for record_id in done_log.offsets
                              if record_id not in self.present)
        summary.failed = sum(self.failures.values())
        summary.failure_reasons = dict(self.failures.most_common(TOP_REASONS))
        if summary.resumed:
            log.info("%s: %d records already done, kept", self.stage.name, summary.resumed)
        allowed = max_failures if max_failures >= 1 else math.floor(max_failures * summary.inputs)
        if summary.failed > allowed:
            kept = len(done_log.offsets) - summary.dropped
            raise SynparaError(
                f"{self.stage.name}: {summary.failed} of {summary.inputs} records failed "
                f"({_reasons_text(summary.failure_reasons)}); the {kept} done are kept: fix the "
                "cause and run again to retry the rest (-v shows tracebacks; --max-failures "
                "accepts some)",
                self.output_dir,
            )
        ids = [record_id for record_id, _ in sorted(self.present.items(), key=lambda i: i[1])]
        done_ids = [record_id for record_id in ids if record_id in done_log.offsets]
        _write_outputs(self.stage, self.output_dir, done_log, done_ids, summary)
        _run_finalise(self.stage, self.output_dir, seed, summary)
        done_log.compact(done_ids)
        summary.seconds = round(time.monotonic() - self.started, 3)
        _write_success(self.output_dir, summary)
        log.debug("%s", summary.line())
        return summary


def _skipped_summary(summary: RunSummary, output_dir: Path) -> RunSummary:
    summary.skipped = True
    marker = read_success(output_dir) or {}
    for name in ("inputs", "cuts", "rejected", "reject_reasons"):
        if name in marker:
            setattr(summary, name, marker[name])
    return summary


def primed(records: Iterator[Record]) -> Iterator[Record]:
    first = next(records, None)
    return iter(()) if first is None else itertools.chain([first], records)


def pending_records(
    keyed: Iterable[tuple[Any, Record]],
    output: StageOutput,
    input_kind: str,
    allow_unknown_labels: bool,
    on_resumed: Callable[[Any, Record], None] | None = None,
) -> Iterator[tuple[Any, Record]]:
    """The records ``output``'s journal does not hold yet, checked, with their sort keys.

    ``keyed``: ``(key, record)`` in input order; the key is the input index (or, in a stream, a
    tuple: see ``stream.py``). Each record is noted in ``output.present``; ``on_resumed`` hears of
    those done in an earlier run.
    """
    present, done_log, summary = output.present, output.journal, output.summary
    for key, record in keyed:
        if record.id in present:
            # The first record keeps the id; the duplicate is rejected under an id of its own.
            where = key if isinstance(key, int) else ".".join(map(str, key))
            reason = Reject(f"duplicate record id {record.id!r}")
            record = Record(f"{record.id}#dup{where}", record.source, reason, record.fingerprint)
        present[record.id] = key
        if done_log.is_done(record.id, record.fingerprint):
            summary.resumed += 1
            if on_resumed is not None:
                on_resumed(key, record)
            continue
        yield key, checked(record, input_kind, allow_unknown_labels)


def record_of(data: dict[str, Any], source: str) -> Record:
    """A cut's journal JSON as the record the next stage reads, as from its manifest line."""
    cut = cut_from_dict(data, source)
    return Record(cut.id, cut_source(cut), cut, fingerprint_of(data))


def checked(record: Record, input_kind: str, allow_unknown_labels: bool) -> Record:
    """``record``, or a rejected one when its cut breaks the manifest conventions."""
    if input_kind == "manifest" and not isinstance(record.payload, Reject):
        problem = validate_cut(record.payload, allow_unknown_labels=allow_unknown_labels)
        if problem:
            return Record(record.id, record.source, Reject(problem), record.fingerprint)
    return record


def _write_outputs(
    stage: Stage, output_dir: Path, done_log: DoneLog, ids: list[str], summary: RunSummary
) -> None:
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}  # kind -> its first reason, shown in the summary

    def cut_lines() -> Iterator[str]:
        for entry in done_log.entries(ids):
            for cut in entry["cuts"]:
                summary.cuts += 1
                yield dumps(cut)

    def reject_lines() -> Iterator[str]:
        for entry in done_log.entries(ids):
            for reject in entry["rejects"]:
                summary.rejected += 1
                reason = first_line(reject["reason"])
                kind, example = _reason_kind(reason, entry["source"], reject["id"])
                reasons[kind] += 1
                examples.setdefault(kind, example)
                yield dumps(
                    {
                        "id": reject["id"],
                        "source": entry["source"],
                        "stage": stage.name,
                        "reason": reason,
                    }
                )

    write_json_lines_atomic(output_dir / REJECTS_NAME, reject_lines())
    write_json_lines_atomic(output_dir / MANIFEST_NAME, cut_lines())
    summary.reject_reasons = {examples[k]: n for k, n in reasons.most_common(TOP_REASONS)}


def _run_finalise(stage: Stage, output_dir: Path, seed: int, summary: RunSummary) -> None:
    """Call the stage's corpus-wide step. It runs before ``_SUCCESS`` is written, so a finished
    one is never redone (the stage is skipped whole) and one cut short runs again."""
    if type(stage).finalise is Stage.finalise:
        return
    manifest = output_dir / MANIFEST_NAME
    stage.finalise(FinaliseContext(output_dir, manifest, output_dir / REJECTS_NAME, seed))
    summary.cuts = sum(1 for _ in _lines(manifest))  # finalise may have filtered the manifest


def _lines(path: Path) -> Iterator[bytes]:
    import gzip

    with gzip.open(path, "rb") as handle:
        yield from (line for line in handle if line.strip())


def _write_success(output_dir: Path, summary: RunSummary) -> None:
    manifest = output_dir / MANIFEST_NAME
    stat = manifest.stat()
    marker = {k: v for k, v in asdict(summary).items() if k != "output_dir"}
    # recorded so the next stage can key its input without reading the manifest again
    marker.update(
        manifest_sha256=sha256_of(manifest),
        manifest_size=stat.st_size,
        manifest_mtime_ns=stat.st_mtime_ns,
    )
    tmp = output_dir / f".{SUCCESS_FILE}.tmp"
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    tmp.replace(output_dir / SUCCESS_FILE)
