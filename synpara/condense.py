"""condense: pick about H hours that cover the pseudo-label combinations as evenly as possible.

CPQA's data condensation: group utterances by their paralinguistic pseudo labels (events, pitch,
rate, gender ... from ``describe``) and fill the budget by always taking the next utterance of the
combination that has the fewest seconds so far. Every combination gets one utterance before any
gets a second; a combination is only missing from the output when the budget is smaller than one
utterance per combination, and then no combination has more than one. Within a combination the
order is a shuffle seeded by ``--seed``, so the same input, budget and seed give the same subset.

The selection is a pure function over ``(id, key, seconds)`` rows (:func:`select`); the command
reads the manifest twice (keys and durations, then the chosen cuts), so the corpus is never held
in memory. Output: ``DIR/cuts.jsonl.gz`` and the coverage table ``DIR/condense.json``.

Example::

    synpara condense -i output/describe/cuts.jsonl.gz -o output/condense --hours 100 \\
        --by events,pitch,rate,gender
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError
from synpara.manifest import MANIFEST_NAME, dumps, iter_json_lines, write_json_lines_atomic

logger = logging.getLogger(__name__)

REPORT_NAME = "condense.json"
#: --by names: the bins describe writes, the event labels, gender, and user classifiers' labels.
KEYS = ("events", "pitch", "rate", "loudness", "snr", "expressiveness", "gender", "emotion", "age")
VERSION = "1"


@dataclass(frozen=True, slots=True)
class Row:
    """One utterance as condense sees it."""

    id: str
    key: tuple[str, ...]
    seconds: float


def parse_by(text: str) -> tuple[str, ...]:
    """``"events,pitch"`` -> ``("events", "pitch")``, checked against :data:`KEYS`."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in KEYS]
    if not names or unknown or len(set(names)) != len(names):
        raise SynparaError(
            f"--by must be a comma-separated list of distinct names from {', '.join(KEYS)}, "
            f"got {text!r}"
        )
    return names


def _paralinguistics(record: dict[str, Any]) -> dict[str, Any] | None:
    """The described supervision of a manifest record: the longest one that describe filled."""
    described = [
        sup
        for sup in record.get("supervisions") or []
        if isinstance((sup.get("custom") or {}).get("paralinguistics"), dict)
    ]
    if not described:
        return None
    best = max(described, key=lambda sup: float(sup.get("duration", 0.0)))
    return best["custom"]["paralinguistics"]


def label_value(info: dict[str, Any], name: str, gender_confidence: float = 0.8) -> str:
    """One pseudo label of a described supervision (``"unknown"`` where it was not measured)."""
    classifiers = info.get("classifiers") or {}
    if name == "events":
        labels = sorted({event["label"] for event in info.get("events") or []})
        return "+".join(labels) if labels else "none"
    if name in ("emotion", "age"):
        return str((classifiers.get(name) or {}).get("label") or "unknown")
    if name == "gender":
        if classifiers.get("gender"):
            return str(classifiers["gender"]["label"])
        guess = info.get("gender") or {}
        sure = float(guess.get("confidence") or 0.0) >= gender_confidence
        return str(guess["label"]) if sure else "unknown"
    return str((info.get("bins") or {}).get(name) or "unknown")


def row_of(record: dict[str, Any], by: tuple[str, ...], path: str | Path, line: int) -> Row:
    info = _paralinguistics(record)
    if info is None:
        raise SynparaError(f"line {line}: no paralinguistics (run describe first)", path)
    try:
        return Row(
            str(record["id"]), tuple(label_value(info, n) for n in by), float(record["duration"])
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SynparaError(f"line {line}: malformed cut ({error})", path) from None


def select(rows: Iterable[Row], seconds: float, seed: int) -> set[str]:
    """Ids of about ``seconds`` of audio spread evenly over the combinations of ``rows``.

    Always takes the next utterance of the combination with the fewest selected seconds (ties:
    the smaller key); stops at the utterance that reaches the budget, so the total is within one
    utterance of it. Deterministic under ``seed``.
    """
    groups: dict[tuple[str, ...], list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.key].append(row)
    rng = np.random.default_rng(seed)
    queues: dict[tuple[str, ...], list[Row]] = {}
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda r: r.id)
        order = rng.permutation(len(members))
        queues[key] = [members[i] for i in order][::-1]  # pop() from the end
    heap = [(0.0, key) for key in sorted(queues)]
    heapq.heapify(heap)
    chosen: set[str] = set()
    total = 0.0
    while heap and total < seconds:
        taken, key = heapq.heappop(heap)
        row = queues[key].pop()
        chosen.add(row.id)
        total += row.seconds
        if queues[key]:
            heapq.heappush(heap, (taken + row.seconds, key))
    return chosen


def coverage(rows: Iterable[Row], chosen: set[str] | None = None) -> dict[tuple[str, ...], dict]:
    """Per combination: cuts and hours (only of ``chosen`` ids when given)."""
    table: dict[tuple[str, ...], dict[str, float]] = defaultdict(lambda: {"cuts": 0, "hours": 0.0})
    for row in rows:
        if chosen is None or row.id in chosen:
            table[row.key]["cuts"] += 1
            table[row.key]["hours"] += row.seconds / 3600
    return dict(table)


def coverage_table(by: tuple[str, ...], rows: list[Row], chosen: set[str]) -> list[dict[str, Any]]:
    before, after = coverage(rows), coverage(rows, chosen)
    empty = {"cuts": 0, "hours": 0.0}
    return [
        {
            "key": dict(zip(by, key)),
            "before": {"cuts": int(before[key]["cuts"]), "hours": round(before[key]["hours"], 4)},
            "after": {
                "cuts": int(after.get(key, empty)["cuts"]),
                "hours": round(after.get(key, empty)["hours"], 4),
            },
        }
        for key in sorted(before)
    ]


def format_table(by: tuple[str, ...], table: list[dict[str, Any]]) -> str:
    """The coverage table as aligned text (one line per combination)."""
    header = [*by, "cuts before", "hours before", "cuts after", "hours after"]
    lines = [
        [
            *(entry["key"][n] for n in by),
            str(entry["before"]["cuts"]),
            f"{entry['before']['hours']:.3f}",
            str(entry["after"]["cuts"]),
            f"{entry['after']['hours']:.3f}",
        ]
        for entry in table
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [header, *lines]
    )


def condense(
    input_path: str | Path,
    output_dir: str | Path,
    hours: float,
    by: tuple[str, ...],
    seed: int = 0,
) -> dict[str, Any]:
    """Select and write the subset; returns the report (also written to ``condense.json``)."""
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise SynparaError(f"--hours must be a positive number, got {hours!r}")
    input_path = Path(input_path)
    rows = [row_of(record, by, input_path, line) for line, record in iter_json_lines(input_path)]
    if not rows:
        raise SynparaError("manifest has no cuts", input_path)
    chosen = select(rows, hours * 3600, seed)
    config = {"hours": hours, "by": list(by), "seed": seed}
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    entry = {"stage": "condense", "version": VERSION, "config_hash": config_hash, "seed": seed}

    def selected_lines() -> Iterable[str]:
        for _, record in iter_json_lines(input_path):
            if str(record.get("id")) in chosen:
                custom = record.get("custom") or {}
                custom.setdefault("synpara", {}).setdefault("history", []).append(dict(entry))
                record["custom"] = custom
                yield dumps(record)

    output_dir = Path(output_dir)
    written = write_json_lines_atomic(output_dir / MANIFEST_NAME, selected_lines())
    report = {
        **config,
        "input": str(input_path),
        "cuts_before": len(rows),
        "cuts_after": written,
        "hours_before": round(sum(r.seconds for r in rows) / 3600, 4),
        "hours_after": round(sum(r.seconds for r in rows if r.id in chosen) / 3600, 4),
        "combinations": coverage_table(by, rows, chosen),
    }
    (output_dir / REPORT_NAME).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report
