"""Streaming statistics of a run: totals, rejects, distributions and bounded samples per label."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError
from synpara.manifest import (
    EVENT,
    MANIFEST_NAME,
    REJECTS_NAME,
    WORD,
    inserted_events,
    items,
    iter_cuts,
)

#: Values kept per distribution: enough for a histogram, bounded for any corpus size.
_MAX_VALUES = 20000


@dataclass
class Reservoir:
    """A uniform sample of at most ``size`` items from a stream (Algorithm R), seeded."""

    size: int
    rng: np.random.Generator
    seen: int = 0
    items: list[Any] = field(default_factory=list)

    def add(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            slot = int(self.rng.integers(self.seen))
            if slot < self.size:
                self.items[slot] = item


@dataclass
class RunStats:
    """What the page shows, gathered in one pass over each manifest."""

    stages: list[str] = field(default_factory=list)
    hours_in: float = 0.0
    hours_out: float = 0.0
    utterances: int = 0
    speakers: set[str] = field(default_factory=set)
    events: Counter = field(default_factory=Counter)
    inserted: int = 0
    mined: int = 0
    rejects: Counter = field(default_factory=Counter)  # (stage, reason) -> count
    distributions: dict[str, Reservoir] = field(default_factory=dict)
    samples: dict[str, Reservoir] = field(default_factory=dict)

    def value(self, name: str, value: float, rng: np.random.Generator) -> None:
        self.distributions.setdefault(name, Reservoir(_MAX_VALUES, rng)).add(float(value))


def stage_dirs(run_dir: Path) -> list[Path]:
    """The stage folders of a run, in pipeline order (a single stage's folder is its own run)."""
    if (run_dir / MANIFEST_NAME).exists():
        return [run_dir]
    found = sorted(p.parent for p in run_dir.glob(f"*/{MANIFEST_NAME}"))
    if not found:
        raise SynparaError(f"no {MANIFEST_NAME} in it or in its stage folders", run_dir)
    return found


def _short_reason(reason: str) -> str:
    # reasons often carry numbers ("SNR 3.1 dB < 10"): group by the words before the first digit.
    head = reason.split(":")[0] if len(reason) > 60 else reason
    return " ".join(head.split())[:80]


def gather(run_dir: Path, samples_per_label: int = 3, seed: int = 0) -> RunStats:
    """One pass over every stage's manifest and rejects; samples from the last stage."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    stats = RunStats()
    dirs = stage_dirs(run_dir)
    stats.stages = [d.name for d in dirs]
    for directory in dirs:
        rejects = directory / REJECTS_NAME
        if rejects.exists():
            with gzip.open(rejects, "rt", encoding="utf-8") as handle:
                for line in handle:
                    entry = json.loads(line)
                    stats.rejects[(entry["stage"], _short_reason(entry["reason"]))] += 1
    seen_recordings: set[str] = set()
    for cut in iter_cuts(dirs[0] / MANIFEST_NAME):
        if cut.recording_id not in seen_recordings:
            seen_recordings.add(cut.recording_id)
            stats.hours_in += cut.recording.duration / 3600
    final = dirs[-1] / MANIFEST_NAME
    for cut in tqdm(iter_cuts(final), desc="report", unit="cut", dynamic_ncols=True):
        stats.utterances += 1
        stats.hours_out += cut.duration / 3600
        stats.value("utterance duration (s)", cut.duration, rng)
        inserted = {(e.symbol, e.start) for e in inserted_events(cut)}
        for sup in cut.supervisions:
            if sup.speaker:
                stats.speakers.add(sup.speaker)
        words, events = items(cut, WORD), items(cut, EVENT)
        for word in words:
            if word.score is not None:
                stats.value("word score", word.score, rng)
        if words:
            stats.value("speaking rate (words/s)", len(words) / max(cut.duration, 1e-3), rng)
        for event in events:
            stats.events[event.symbol] += 1
            stats.value("event duration (s)", event.duration, rng)
            if event.score is not None:
                stats.value("event score", event.score, rng)
            if (event.symbol, event.start) in inserted:
                stats.inserted += 1
            else:
                stats.mined += 1
        meta = (cut.custom or {}).get("synpara") or {}
        for key in ("snr_db", "dnsmos"):
            value = (meta.get("refine") or {}).get(key, (meta.get("insert") or {}).get(key))
            if isinstance(value, (int, float)):
                stats.value(key, value, rng)
        for label in {e.symbol for e in events} or {"(no events)"}:
            stats.samples.setdefault(label, Reservoir(samples_per_label, rng)).add(cut)
    return stats
