"""A stage's output directory: the done-journal, the lock, and when a directory counts as complete.

Layout::

    stage.json             what produced it: stage, version, config, seed, config hash, input key
    .lock                  held (flock) while a run writes here
    _parts/done.jsonl      one line per finished input record, appended as records finish
    _parts/done.jsonl.gz   the same journal, compacted, once the stage has finished
    cuts.jsonl.gz          final manifest, in input order, renamed into place atomically
    rejects.jsonl.gz       {"id", "source", "stage", "reason"} per rejected record or part of one
    _SUCCESS               completion marker: counts, reasons, the manifest's sha256

The **config hash** (stage, version, config, seed, upstream config) decides whether journalled
records can be reused at all: another config is refused unless ``--overwrite``. The **input key**
(the input manifest's sha256, or the audio files' paths, sizes and mtimes) decides whether a
finished stage is still complete: when it changed, the stage is reopened from its journal, records
done and unchanged are kept, new or changed ones are processed, removed ones are dropped.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.manifest import MANIFEST_NAME, REJECTS_NAME, write_json_lines_atomic

log = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
SUCCESS_FILE = "_SUCCESS"
PARTS_DIR = "_parts"
DONE_FILE = "done.jsonl"
ARCHIVE_FILE = "done.jsonl.gz"
LOCK_FILE = ".lock"
# Lines appended since the last fsync before we fsync again: bounds what a power cut can lose
# (a killed process loses nothing that was flushed).
_FSYNC_EVERY = 64


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def read_success(output_dir: Path) -> dict[str, Any] | None:
    """The ``_SUCCESS`` marker of a finished stage, or None."""
    try:
        return json.loads((output_dir / SUCCESS_FILE).read_text())
    except (OSError, ValueError):
        return None


def manifest_digest(path: Path) -> str:
    """sha256 of a manifest: taken from its stage's ``_SUCCESS`` when the file is unchanged since
    (same size and mtime), else read from the file."""
    stat = path.stat()
    marker = read_success(path.parent)
    if (
        path.name == MANIFEST_NAME
        and marker
        and marker.get("manifest_size") == stat.st_size
        and marker.get("manifest_mtime_ns") == stat.st_mtime_ns
        and marker.get("manifest_sha256")
    ):
        return str(marker["manifest_sha256"])
    return sha256_of(path)


def input_key(files: Iterable[Path], kind: str, checksum: bool = False) -> str:
    """What the stage read, as a short hash: a manifest's content; audio files' path, size and
    mtime (and content when ``checksum``)."""
    parts: list[Any] = []
    for path in files:
        if kind == "manifest":
            parts.append(manifest_digest(path))
            continue
        stat = path.stat()
        entry = [str(path), stat.st_size, stat.st_mtime_ns]
        parts.append(entry + [sha256_of(path)] if checksum else entry)
    return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:16]


class DoneLog:
    """The append-only journal of finished input records, with byte offsets for the final pass.

    A later line for the same id (the record changed and was redone) replaces the earlier one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: dict[str, int] = {}
        self.fingerprints: dict[str, str] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._restore_archive()
        self._recover()
        self._handle = open(path, "ab")
        self._unsynced = 0

    @property
    def archive(self) -> Path:
        return self.path.with_name(ARCHIVE_FILE)

    def _restore_archive(self) -> None:
        # A finished stage keeps its journal compacted; reopening it (changed input) starts there.
        if self.path.exists() or not self.archive.exists():
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with gzip.open(self.archive, "rb") as source, open(tmp, "wb") as target:
            shutil.copyfileobj(source, target)
        os.replace(tmp, self.path)
        self.archive.unlink()

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
                self.fingerprints[entry["id"]] = entry.get("fingerprint", "")
                good_end = handle.tell()
        with open(self.path, "r+b") as handle:
            handle.truncate(good_end)

    def is_done(self, record_id: str, fingerprint: str) -> bool:
        return record_id in self.offsets and self.fingerprints[record_id] == fingerprint

    def append(self, index: int, record_id: str, fingerprint: str, line: str) -> None:
        # index goes first in the object so the line stays a plain JSON object for tools like jq.
        entry = f'{{"index": {index}, {line[1:]}'
        offset = self._handle.tell()
        self._handle.write(entry.encode("utf-8") + b"\n")
        self._handle.flush()
        self._unsynced += 1
        if self._unsynced >= _FSYNC_EVERY:
            os.fsync(self._handle.fileno())
            self._unsynced = 0
        self.offsets[record_id] = offset
        self.fingerprints[record_id] = fingerprint

    def close(self) -> None:
        if self._handle.closed:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def entries(self, ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The journal entries of ``ids`` (each must be done), in that order."""
        with open(self.path, "rb") as handle:
            for record_id in ids:
                handle.seek(self.offsets[record_id])
                yield json.loads(handle.readline())

    def compact(self, ids: list[str]) -> None:
        """Keep only ``ids``' entries, gzipped (``ARCHIVE_FILE``), for a later reopening."""
        self.close()
        lines = (json.dumps(entry, ensure_ascii=False) for entry in self.entries(ids))
        write_json_lines_atomic(self.archive, lines)
        self.path.unlink()


class OutputLock:
    """An exclusive flock on the output directory for the length of a run."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / LOCK_FILE

    def __enter__(self) -> OutputLock:
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


def _clear(output_dir: Path) -> None:
    for name in os.listdir(output_dir):
        if name == LOCK_FILE:
            continue
        target = output_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()


def prepare_directory(output_dir: Path, stage_info: dict[str, Any], overwrite: bool) -> bool:
    """Check what ``output_dir`` holds; returns True when the stage is already complete there.

    Same config, finished, same input key and no failed records: complete. Same config otherwise:
    resumed (or reopened: the outputs are removed, the journal is kept). Another config: refused
    unless ``overwrite``.
    """
    stage_file = output_dir / STAGE_FILE
    if stage_file.exists():
        previous = json.loads(stage_file.read_text())
        same = previous.get("config_hash") == stage_info["config_hash"]
        if not same and not overwrite:
            raise SynparaError(
                f"holds output of another {previous.get('stage')} config "
                f"(hash {previous.get('config_hash')}, now {stage_info['config_hash']}); "
                "pass --overwrite to replace it or choose another output directory",
                output_dir,
            )
        marker = read_success(output_dir)
        if same and not overwrite and marker is not None:
            if previous.get("input_key") == stage_info["input_key"] and not marker.get("failed"):
                return True
            if "input_key" not in previous:
                raise SynparaError(
                    "was finished by an older synpara that did not record what it read; "
                    "pass --overwrite to redo it",
                    output_dir,
                )
            if not (output_dir / PARTS_DIR / ARCHIVE_FILE).exists():
                raise SynparaError(
                    f"finished on another input than {stage_info['input']} and keeps no journal "
                    "to update from; pass --overwrite to redo it",
                    output_dir,
                )
            why = "records failed last time" if marker.get("failed") else "its input changed"
            log.info("%s: reopened (%s): unchanged records are kept", output_dir.name, why)
            # never leave a stale manifest beside a journal that no longer matches it
            for name in (SUCCESS_FILE, MANIFEST_NAME, REJECTS_NAME):
                (output_dir / name).unlink(missing_ok=True)
    elif (output_dir / MANIFEST_NAME).exists() and not overwrite:
        raise SynparaError(
            f"holds a {MANIFEST_NAME} that synpara did not write; pass --overwrite to replace it",
            output_dir,
        )
    if overwrite:
        _clear(output_dir)
    _write_stage_file(output_dir, stage_info)
    return False


def _write_stage_file(output_dir: Path, info: dict[str, Any]) -> None:
    tmp = output_dir / f".{STAGE_FILE}.tmp"
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, output_dir / STAGE_FILE)


def set_input_key(output_dir: Path, key: str) -> None:
    """Record in ``stage.json`` what a streamed stage read, once that is known (``stream.py``)."""
    info = json.loads((output_dir / STAGE_FILE).read_text())
    _write_stage_file(output_dir, {**info, "input_key": key})
