"""Score detected nonverbal events against truth: ``synpara eval events --truth T --pred P``.

Both files may be either

* **event JSONL**, one line per recording (times in seconds from the start of the audio file)::

      {"id": "mix-3", "duration": 12.5, "events": [{"label": "laughter", "start": 3.2, "end": 4.1}]}

  ``duration`` is needed only for recordings without events (false alarms per minute); a line
  with ``"events": []`` marks event-free audio. Labels may be any spelling
  :func:`synpara.ontology.canonical_label` accepts (``"(laughs)"``, ``"Laughter"`` ...); or
* **a manifest** (``cuts.jsonl[.gz]``): events are read from ``alignment["event"]``
  (recording time).
  Cuts are keyed by their id and by their recording id, so a truth file keyed either way matches.

Matching: per recording and category, a prediction matches a truth event of the same category when
their spans overlap; each truth event is used at most once, and the pairing maximises total overlap.

Example::

    >>> truth = {"a": RecordingEvents("a", 60.0, [Event("laughter", 1.0, 2.0)])}
    >>> pred = {"a": RecordingEvents("a", 60.0, [Event("laughter", 1.1, 1.9)])}
    >>> score(truth, pred).categories["laughter"].f1
    1.0
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from synpara.errors import SynparaError
from synpara.ontology import canonical_label


@dataclass(frozen=True, slots=True)
class Event:
    label: str
    start: float
    end: float


@dataclass(slots=True)
class RecordingEvents:
    """The events of one recording (or cut) and its duration, as truth or prediction."""

    id: str
    duration: float | None
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class CategoryScore:
    """Detection quality for one category (``"all"`` pools every category)."""

    category: str
    truths: int = 0
    predictions: int = 0
    hits: int = 0
    onset_errors: list[float] = field(default_factory=list)
    offset_errors: list[float] = field(default_factory=list)
    false_alarms_event_free: int = 0

    @property
    def precision(self) -> float:
        return self.hits / self.predictions if self.predictions else float("nan")

    @property
    def recall(self) -> float:
        return self.hits / self.truths if self.truths else float("nan")

    @property
    def f1(self) -> float:
        total = self.truths + self.predictions
        return 2 * self.hits / total if total else float("nan")

    @property
    def median_onset_error(self) -> float:
        return float(np.median(np.abs(self.onset_errors))) if self.onset_errors else float("nan")

    @property
    def median_offset_error(self) -> float:
        return float(np.median(np.abs(self.offset_errors))) if self.offset_errors else float("nan")


@dataclass(slots=True)
class EventScores:
    categories: dict[str, CategoryScore]
    event_free_minutes: float
    recordings: int
    unmatched_ids: list[str]

    def false_alarms_per_minute(self, category: str = "all") -> float:
        if self.event_free_minutes <= 0:
            return float("nan")
        return self.categories[category].false_alarms_event_free / self.event_free_minutes

    def to_dict(self) -> dict[str, Any]:
        rows = {}
        for name, cat in self.categories.items():
            rows[name] = {
                "truths": cat.truths, "predictions": cat.predictions, "hits": cat.hits,
                "precision": _clean(cat.precision), "recall": _clean(cat.recall),
                "f1": _clean(cat.f1),
                "median_onset_error_s": _clean(cat.median_onset_error),
                "median_offset_error_s": _clean(cat.median_offset_error),
                "false_alarms_per_minute_event_free": _clean(self.false_alarms_per_minute(name)),
            }
        return {"recordings": self.recordings,
                "event_free_minutes": round(self.event_free_minutes, 3),
                "unmatched_ids": self.unmatched_ids, "categories": rows}


def _clean(value: float) -> float | None:
    return None if value != value else round(float(value), 4)


# --------------------------------------------------------------------------- reading


def _is_manifest_record(record: dict[str, Any]) -> bool:
    return record.get("type") in ("MonoCut", "MultiCut", "MixedCut") or "supervisions" in record


def load_events(path: str | Path) -> dict[str, RecordingEvents]:
    """Read an event JSONL or a manifest into ``{id: RecordingEvents}`` (manifests keyed by cut and
    recording id)."""
    from synpara.manifest import cut_from_dict, items, iter_json_lines

    found: dict[str, RecordingEvents] = {}
    for line_number, record in iter_json_lines(path):
        if _is_manifest_record(record):
            cut = cut_from_dict(record, path, line_number)
            events = [Event(canonical_label(item.symbol), item.start, item.end)
                      for item in items(cut, "event")]
            entry = RecordingEvents(cut.id, float(cut.duration), events)
            keys = {cut.id, getattr(cut, "recording_id", cut.id)}
        else:
            entry = _event_record(record, path, line_number)
            keys = {entry.id}
        for key in keys:
            if key in found and found[key] is not entry:
                found[key].events.extend(entry.events)
            else:
                found[key] = entry
    return found


def _event_record(record: dict[str, Any], path: str | Path, line: int) -> RecordingEvents:
    rec_id = record.get("id", record.get("recording_id"))
    if rec_id is None:
        raise SynparaError(f"line {line}: needs an 'id'", path)
    events = []
    for item in record.get("events", []):
        try:
            start, end = float(item["start"]), float(item["end"])
            label = canonical_label(str(item["label"]))
        except (KeyError, TypeError, ValueError) as error:
            raise SynparaError(f"line {line}: bad event {item!r} ({error})", path) from error
        except SynparaError as error:
            raise SynparaError(f"line {line}: {error.reason}", path) from error
        if end < start:
            raise SynparaError(f"line {line}: event ends before it starts ({item!r})", path)
        events.append(Event(label, start, end))
    duration = record.get("duration")
    return RecordingEvents(str(rec_id), None if duration is None else float(duration), events)


# --------------------------------------------------------------------------- matching


def match(truth: list[Event], pred: list[Event]) -> list[tuple[int, int]]:
    """Pairs ``(truth_index, pred_index)`` of overlapping spans: each used once, most overlap."""
    if not truth or not pred:
        return []
    from scipy.optimize import linear_sum_assignment

    overlap = np.array([[max(0.0, min(t.end, p.end) - max(t.start, p.start)) for p in pred]
                        for t in truth])
    # Zero-length events still match when they touch the other span.
    touch = np.array([[float(min(t.end, p.end) >= max(t.start, p.start)) for p in pred]
                      for t in truth])
    weight = overlap + 1e-6 * touch
    rows, cols = linear_sum_assignment(-weight)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if weight[r, c] > 0]


def score(truth: dict[str, RecordingEvents], pred: dict[str, RecordingEvents]) -> EventScores:
    """Per-category precision/recall/F1, timing errors and false alarms on event-free audio."""
    categories: dict[str, CategoryScore] = {"all": CategoryScore("all")}

    def cat(name: str) -> CategoryScore:
        return categories.setdefault(name, CategoryScore(name))

    seen, event_free_seconds, unmatched = set(), 0.0, []
    for rec_id, truth_rec in truth.items():
        if id(truth_rec) in seen:  # a manifest truth is stored under two keys
            continue
        seen.add(id(truth_rec))
        pred_rec = pred.get(rec_id)
        if pred_rec is None:
            unmatched.append(rec_id)
            pred_events: list[Event] = []
        else:
            pred_events = pred_rec.events
        if not truth_rec.events:
            duration = truth_rec.duration or (pred_rec.duration if pred_rec else None) or 0.0
            event_free_seconds += duration
            for event in pred_events:
                cat(event.label).false_alarms_event_free += 1
                categories["all"].false_alarms_event_free += 1
        labels = {e.label for e in truth_rec.events} | {e.label for e in pred_events}
        for label in sorted(labels):
            t = [e for e in truth_rec.events if e.label == label]
            p = [e for e in pred_events if e.label == label]
            pairs = match(t, p)
            for row in (cat(label), categories["all"]):
                row.truths += len(t)
                row.predictions += len(p)
                row.hits += len(pairs)
                row.onset_errors.extend(p[j].start - t[i].start for i, j in pairs)
                row.offset_errors.extend(p[j].end - t[i].end for i, j in pairs)
    ordered = dict(sorted(categories.items(), key=lambda kv: (kv[0] == "all", kv[0])))
    return EventScores(ordered, event_free_seconds / 60.0, len(seen), sorted(unmatched))


# --------------------------------------------------------------------------- report


def format_table(scores: EventScores) -> str:
    """The plain-text table ``synpara eval events`` prints."""

    def fmt(value: float, digits: int = 2) -> str:
        return "-" if value != value else f"{value:.{digits}f}"

    header = (f"{'category':<16}{'truth':>6}{'pred':>6}{'hit':>5}{'P':>7}{'R':>7}{'F1':>7}"
              f"{'onset_s':>9}{'offset_s':>9}{'FA/min':>8}")
    lines = [header, "-" * len(header)]
    for name, row in scores.categories.items():
        lines.append(
            f"{name:<16}{row.truths:>6}{row.predictions:>6}{row.hits:>5}"
            f"{fmt(row.precision):>7}{fmt(row.recall):>7}{fmt(row.f1):>7}"
            f"{fmt(row.median_onset_error):>9}{fmt(row.median_offset_error):>9}"
            f"{fmt(scores.false_alarms_per_minute(name)):>8}"
        )
    lines.append(f"{scores.recordings} recordings; {scores.event_free_minutes:.2f} min event-free "
                 "audio (FA/min counts predictions there); onset/offset: median |error|")
    if scores.unmatched_ids:
        lines.append(f"warning: {len(scores.unmatched_ids)} truth recordings have no prediction "
                     f"record (e.g. {scores.unmatched_ids[0]}); scored as no detections")
    return "\n".join(lines)


@click.command("events")
@click.option("--truth", "truth_path", required=True, type=click.Path(dir_okay=False),
              help="truth: event JSONL or a manifest")
@click.option("--pred", "pred_path", required=True, type=click.Path(dir_okay=False),
              help="predictions: a detect output manifest or event JSONL")
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON instead")
def command(truth_path: str, pred_path: str, as_json: bool) -> None:
    """Per-category precision, recall, F1, onset/offset error and false alarms per minute.

    Truth and predictions are event JSONL (one line per recording:
    {"id", "duration", "events": [{"label", "start", "end"}]}) or manifests.

    \b
    Example:
      synpara eval events --truth devset/truth.jsonl --pred output/detect/cuts.jsonl.gz
    """
    try:
        truth, pred = load_events(truth_path), load_events(pred_path)
        if not truth:
            raise SynparaError("no recordings in the truth file", truth_path)
        scores = score(truth, pred)
    except SynparaError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(scores.to_dict(), indent=2) if as_json else format_table(scores))


__all__ = ["Event", "RecordingEvents", "CategoryScore", "EventScores", "load_events", "match",
           "score", "format_table", "command"]
