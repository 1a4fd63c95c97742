"""AudioSet class names -> our labels, for detectors whose outputs are AudioSet classes (YAMNet,
AST, PANNs). The mapping is data: ``synpara/data/audioset_to_ontology.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

from synpara.detectors.base import ClassMap
from synpara.errors import SynparaError
from synpara.ontology import LABELS

MAPPING_FILE = Path(__file__).resolve().parents[1] / "data" / "audioset_to_ontology.csv"


def read_mapping(path: Path = MAPPING_FILE) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    for row in rows:
        if row["kind"] == "event" and row["label"] not in LABELS:
            raise SynparaError(f"unknown label {row['label']!r} in the class mapping", path)
    return rows


def class_map(class_names: list[str], rows: list[dict[str, str]] | None = None) -> ClassMap:
    """Match mapping rows to a detector's outputs by AudioSet display name (case-insensitive)."""
    rows = rows if rows is not None else read_mapping()
    by_name = {name.strip().lower(): index for index, name in enumerate(class_names)}
    events: dict[str, list[int]] = {}
    background: dict[str, list[int]] = {}
    speech: list[int] = []
    for row in rows:
        index = by_name.get(row["display_name"].strip().lower())
        if index is None:
            continue
        if row["kind"] == "event":
            events.setdefault(row["label"], []).append(index)
        elif row["kind"] == "against":
            speech.append(index)
        elif row["kind"] == "background":
            background.setdefault(row["label"], []).append(index)
    if not events:
        raise SynparaError("the detector's class names match no AudioSet class in the mapping "
                           f"({MAPPING_FILE.name}); is it an AudioSet tagger?")
    return ClassMap(events, speech, background)
