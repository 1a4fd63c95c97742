"""The manifest: one lhotse CutSet in JSONL (``cuts.jsonl.gz``) and the conventions stages keep.

Conventions (``tests/test_manifest.py`` pins each of them):

* **Seconds everywhere.** Sample indices appear only in names ending in ``_sample``.
* **One cut per recording after ingest**; later stages may split it (refine).
* **One supervision per speaker turn or segment.** ``supervision.start`` is relative to the *cut*,
  as lhotse defines it; ``supervision.speaker`` is stable within a recording.
* **Word and event times are in recording time**: ``alignment["word"]`` and ``alignment["event"]``
  hold lhotse :class:`~lhotse.supervision.AlignmentItem` (symbol, start, duration, score) whose
  ``start`` counts from the start of the *recording*. lhotse does not shift alignment items when a
  cut is truncated (it only moves ``supervision.start``), so recording time is the only frame that
  stays true across truncation. Use :func:`to_cut_time` to get cut-relative times.
* Event symbols are canonical labels from :mod:`synpara.ontology`.
* An event belongs to the supervision it overlaps most, else the nearest (:func:`attach_events`).
* ``cut.custom["synpara"]`` holds our metadata: ``source`` (from ingest: path, sha256, source rate,
  channels), ``history`` (one provenance entry per stage: stage, version, model, config_hash, seed),
  and per-stage extras under the stage's name.
* Rejected records go to ``rejects.jsonl.gz``: ``{"id", "source", "stage", "reason"}``.

Files are gzip JSONL written with a fixed gzip timestamp, so the same content gives the same bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synpara.errors import SynparaError
from synpara.intervals import best_match

if TYPE_CHECKING:  # lhotse is imported lazily: `synpara --help` must stay fast.
    from lhotse.cut import Cut
    from lhotse.supervision import AlignmentItem

MANIFEST_NAME = "cuts.jsonl.gz"
REJECTS_NAME = "rejects.jsonl.gz"
WORD = "word"
EVENT = "event"
#: Times are rounded to this many decimals (0.1 microsecond) so JSON is stable across platforms.
TIME_DECIMALS = 7


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _umask_mode()


# --------------------------------------------------------------------------- JSON lines


def _json_default(value: Any) -> Any:
    # numpy scalars (faster-whisper returns np.float64 word times) are not JSON serialisable.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(record: dict[str, Any]) -> str:
    """One JSON line; equal input gives equal text (the dict's key order, floats as repr)."""
    return json.dumps(record, ensure_ascii=False, default=_json_default)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Stream ``(line_number, record)`` from a JSONL(.gz) file without loading it whole."""
    path = Path(path)
    if not path.exists():
        raise SynparaError("no such file", path)
    try:
        with _open_text(path) as lines:
            for line_number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    reason = f"line {line_number}: not valid JSON ({error.msg})"
                    raise SynparaError(reason, path) from None
                if not isinstance(record, dict):
                    raise SynparaError(f"line {line_number}: expected a JSON object", path)
                yield line_number, record
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise SynparaError(f"cannot read manifest ({error})", path) from error


def write_json_lines_atomic(path: str | Path, lines: Iterable[str]) -> int:
    """Write already-serialised JSON lines to ``path`` (gzip when it ends in .gz), atomically.

    The file appears complete or not at all: it is written beside the target and renamed into place.
    Returns the number of lines written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp_name, _FILE_MODE)  # mkstemp makes 0600; a manifest is as readable as any file
    count = 0
    try:
        with os.fdopen(handle, "wb") as raw:
            # mtime=0 and no file name in the header: equal content gives byte-identical files.
            # Only the gzip wrapper is closed here: the file itself must stay open for the fsync.
            stream = (
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0)
                if path.suffix == ".gz"
                else contextlib.nullcontext(raw)
            )
            with stream as out:
                for line in lines:
                    out.write(line.encode("utf-8"))
                    out.write(b"\n")
                    count += 1
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return count


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` so it appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp_name, _FILE_MODE)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- cuts


def cut_from_dict(record: dict[str, Any], path: str | Path = "<memory>", line: int = 0) -> Cut:
    """Turn one manifest record into a lhotse cut, with a clear error for a malformed one."""
    from lhotse.serialization import deserialize_item

    try:
        return deserialize_item(record)
    except Exception as error:  # lhotse raises KeyError/TypeError/ValueError for bad records
        where = f"line {line}: " if line else ""
        reason = f"{where}not a lhotse cut ({type(error).__name__}: {error})"
        raise SynparaError(reason, path) from None


def iter_cuts(path: str | Path) -> Iterator[Cut]:
    """Stream the cuts of a manifest (lazily, like ``CutSet.from_jsonl_lazy``)."""
    for line_number, record in iter_json_lines(path):
        yield cut_from_dict(record, path, line_number)


def cut_to_json(cut: Cut) -> str:
    """Serialise a cut as one manifest line."""
    return dumps(cut.to_dict())


def write_cuts(path: str | Path, cuts: Iterable[Cut]) -> int:
    """Write cuts to a manifest atomically; returns how many were written."""
    return write_json_lines_atomic(path, (cut_to_json(cut) for cut in cuts))


# --------------------------------------------------------------------------- validation

#: Slack for "inside the recording" checks: times are stored to 0.1 us, durations from samples.
_SPAN_TOLERANCE = 1e-3


def validate_cut(cut: Cut, *, allow_unknown_labels: bool = False) -> str | None:
    """The first way ``cut`` breaks the conventions above, as a one-line reason naming the field,
    or None. Checked once per record as a stage reads it, so no stage meets NaN times, items
    outside the recording, negative durations or labels outside the ontology.
    """
    from synpara.ontology import LABELS

    def not_finite(name: str, value: Any) -> str | None:
        try:
            if math.isfinite(float(value)):
                return None
        except (TypeError, ValueError):
            pass
        return f"{name}: not a finite number ({value!r})"

    problem = not_finite("start", cut.start) or not_finite("duration", cut.duration)
    if problem:
        return problem
    if cut.start < 0:
        return f"start: negative ({cut.start} s)"
    if cut.duration <= 0:
        return f"duration: must be positive ({cut.duration} s)"
    recording = getattr(cut, "recording", None)
    if recording is None:
        span_end, span_name = cut.end, "the cut"
    else:
        span_end, span_name = float(recording.duration), f"recording {recording.id}"
    if cut.end > span_end + _SPAN_TOLERANCE:
        return f"end: {cut.end:g} s is past the end of {span_name} ({span_end:g} s)"

    def outside(name: str, start: float, end: float) -> str | None:
        if start < -_SPAN_TOLERANCE or end > span_end + _SPAN_TOLERANCE:
            return (
                f"{name}: {start:g}-{end:g} s (recording time) is outside the recording "
                f"(0-{span_end:g} s)"
            )
        return None

    for index, sup in enumerate(cut.supervisions):
        where = f"supervisions[{index}]"
        problem = not_finite(f"{where}.start", sup.start) or not_finite(
            f"{where}.duration", sup.duration
        )
        if problem:
            return problem
        if sup.duration <= 0:
            return f"{where}.duration: must be positive ({sup.duration} s)"
        problem = outside(where, cut.start + sup.start, cut.start + sup.end)
        if problem:
            return problem
        for kind, alignment in (sup.alignment or {}).items():
            for position, item in enumerate(alignment):
                name = f"{where}.alignment.{kind}[{position}] ({item.symbol!r})"
                problem = not_finite(f"{name}.start", item.start) or not_finite(
                    f"{name}.duration", item.duration
                )
                if problem:
                    return problem
                if item.duration < 0:
                    return f"{name}.duration: negative ({item.duration} s), ends before it starts"
                problem = outside(name, item.start, item.end)
                if problem:
                    return problem
                if kind == EVENT and not allow_unknown_labels and item.symbol not in LABELS:
                    return (
                        f"{name}.symbol: not a label of the ontology "
                        "(--allow-unknown-labels keeps it)"
                    )
    return None


def file_cut(
    cut_id: str,
    path: str | Path,
    sample_rate: int,
    num_samples: int,
    supervisions: Iterable[Any] = (),
    custom: dict[str, Any] | None = None,
) -> Cut:
    """A cut spanning a whole mono audio file a stage wrote (ingest's working copy, a tts line,
    an insert output, a bank clip, an exported utterance): the recording shares the cut's id."""
    from lhotse import Recording
    from lhotse.audio import AudioSource
    from lhotse.cut import MonoCut

    duration = num_samples / sample_rate
    recording = Recording(
        id=cut_id,
        sources=[AudioSource(type="file", channels=[0], source=str(path))],
        sampling_rate=sample_rate,
        num_samples=num_samples,
        duration=duration,
    )
    return MonoCut(
        id=cut_id,
        start=0.0,
        duration=duration,
        channel=0,
        recording=recording,
        supervisions=list(supervisions),
        custom=custom,
    )


def written_source(path: str | Path, sample_rate: int, duration: float) -> dict[str, Any]:
    """``custom["synpara"]["source"]`` for a mono FLAC a stage wrote itself (tts, insert)."""
    from synpara.audio import sha256_file

    return {
        "path": str(path),
        "sha256": sha256_file(path),
        "sample_rate": sample_rate,
        "channels": 1,
        "duration": round(duration, 6),
        "decoder": "soundfile",
    }


# --------------------------------------------------------------------------- alignment helpers


def round_time(seconds: float) -> float:
    """Round a time for storage (cast from numpy on the way)."""
    return round(float(seconds), TIME_DECIMALS)


def alignment_item(
    symbol: str, start: float, end: float, score: float | None = None
) -> AlignmentItem:
    """Build an AlignmentItem from recording-time ``start``/``end`` seconds."""
    from lhotse.supervision import AlignmentItem

    start_s, end_s = round_time(start), round_time(end)
    if end_s < start_s:
        raise SynparaError(f"alignment item {symbol!r} ends before it starts ({start_s} > {end_s})")
    return AlignmentItem(
        symbol=symbol,
        start=start_s,
        duration=round_time(end_s - start_s),
        score=None if score is None else round(float(score), 4),
    )


def items(cut: Cut, kind: str) -> list[AlignmentItem]:
    """All alignment items of one kind (``"word"`` or ``"event"``) in a cut, in time order."""
    found: list[AlignmentItem] = []
    for supervision in cut.supervisions:
        if supervision.alignment and kind in supervision.alignment:
            found.extend(supervision.alignment[kind])
    return sorted(found, key=lambda item: (item.start, item.end, item.symbol))


def inserted_events(cut: Cut) -> list[AlignmentItem]:
    """The events of ``cut`` that ``insert`` made (exact by construction), not mined ones.

    insert records each event's first sample in its output file (``custom["synpara"]["insert"]
    ["events"][i]["start_sample"]`` at the rate of ``custom["synpara"]["source"]``); an event item
    with that label starting there is an inserted one. Export moves times by its cut's start,
    recorded as ``export.source_offset``.
    """
    meta = (cut.custom or {}).get("synpara") or {}
    recorded = ((meta.get("insert") or {}).get("events")) or []
    rate = float((meta.get("source") or {}).get("sample_rate") or cut.sampling_rate)
    starts = {(e.get("label"), e["start_sample"]) for e in recorded if "start_sample" in e}
    shift = float((meta.get("export") or {}).get("source_offset") or 0.0)
    return [e for e in items(cut, EVENT) if (e.symbol, round((e.start + shift) * rate)) in starts]


def to_cut_time(cut: Cut, recording_time: float) -> float:
    """Convert a recording-time second (as stored in alignments) to the cut's own time axis."""
    return recording_time - cut.start


def attach_events(cut: Cut, events: list[AlignmentItem]) -> Cut:
    """Return ``cut`` with ``events`` (recording-time items) placed in ``alignment["event"]``.

    Each event goes to the supervision it overlaps most, else the nearest one. A cut without
    supervisions gets one spanning the whole cut (speaker and text unknown), so no event is lost.
    Existing events are replaced.
    """
    from lhotse.supervision import SupervisionSegment

    supervisions = list(cut.supervisions)
    if not supervisions and events:
        supervisions = [
            SupervisionSegment(
                id=f"{cut.id}-events",
                recording_id=cut.recording_id,
                start=0.0,
                duration=cut.duration,
                channel=0,
            )
        ]
    buckets: list[list[AlignmentItem]] = [[] for _ in supervisions]
    spans = [(cut.start + sup.start, cut.start + sup.start + sup.duration) for sup in supervisions]
    for event in events:
        buckets[best_match(event.start, event.end, spans)].append(event)
    updated = [
        sup.with_alignment(EVENT, sorted(bucket, key=lambda item: (item.start, item.symbol)))
        for sup, bucket in zip(supervisions, buckets)
    ]
    return cut.copy(supervisions=updated)


# --------------------------------------------------------------------------- provenance


def synpara_meta(cut: Cut) -> dict[str, Any]:
    """The ``custom["synpara"]`` dict of a cut, created when missing (mutates the cut)."""
    if cut.custom is None:
        cut.custom = {}
    return cut.custom.setdefault("synpara", {})


def add_provenance(
    cut: Cut,
    *,
    stage: str,
    version: str,
    config_hash: str,
    seed: int,
    model: str | None = None,
) -> Cut:
    """Append a provenance entry to ``custom["synpara"]["history"]`` (mutates, returns ``cut``)."""
    entry = {"stage": stage, "version": version, "config_hash": config_hash, "seed": seed}
    if model is not None:
        entry["model"] = model
    synpara_meta(cut).setdefault("history", []).append(entry)
    return cut
