"""Where insert puts events: slots found from word times, category rules read from data.

A *slot* is a point between two host samples inside a silence: the middle of a pause between
words (kind ``pause``, and ``clause`` when the pause is at least ``clause_pause`` long), or the
middle of the silence before the first word (``start``) or after the last (``end``). A category's
rule (``synpara/data/placement.yaml``) lists the slot kinds it may use. At most one event per
slot; every choice comes from the record's generator.

>>> rules = load_rules()
>>> rules["laughter"].slots
('clause', 'end')
>>> slots = find_slots([(8000, 12000), (20000, 24000)], 40000, 16000, min_pause=0.2,
...                    clause_pause=0.3, guard_samples=800)
>>> [(s.kinds, s.at_sample) for s in slots]
[(('start',), 4000), (('pause', 'clause'), 16000), (('end',), 32000)]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synpara.errors import SynparaError
from synpara.ontology import LABELS

RULES_PATH = Path(__file__).resolve().parent / "data" / "placement.yaml"
SLOT_KINDS = ("start", "end", "clause", "pause")


@dataclass(frozen=True)
class Rule:
    """How one category is placed and matched."""

    label: str
    slots: tuple[str, ...]
    gain_db: float = 0.0
    pitch: bool = False
    length: tuple[float, float] = (0.4, 0.9)  # ``pause`` only: seconds of room tone


@dataclass(frozen=True)
class Slot:
    """A place for one event: insert between ``at_sample - 1`` and ``at_sample`` (host samples)."""

    kinds: tuple[str, ...]
    at_sample: int
    after_word: int  # index of the last word before the slot (-1: before the first)


@dataclass(frozen=True)
class Placement:
    label: str
    slot: Slot


def load_rules(path: str | Path | None = None) -> dict[str, Rule]:
    """Category rules from a YAML table (default: the bundled ``placement.yaml``)."""
    import yaml

    path = Path(path) if path else RULES_PATH
    if not path.is_file():
        raise SynparaError("no such placement rules file", path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SynparaError("placement rules must map a label to its rule", path)
    rules = {}
    for label, entry in data.items():
        if label not in LABELS:
            raise SynparaError(f"unknown label {label!r} in placement rules", path)
        if not isinstance(entry, dict) or not entry.get("slots"):
            raise SynparaError(f"{label}: a rule needs a list of slots", path)
        slots = tuple(entry["slots"])
        unknown = set(slots) - set(SLOT_KINDS)
        extra = set(entry) - {"slots", "gain_db", "pitch", "length"}
        if unknown or extra:
            raise SynparaError(
                f"{label}: unknown slot kinds or keys {sorted(unknown | extra)}", path
            )
        rules[label] = Rule(
            label=label,
            slots=slots,
            gain_db=float(entry.get("gain_db", 0.0)),
            pitch=bool(entry.get("pitch", False)),
            length=tuple(entry.get("length", (0.4, 0.9))),
        )  # type: ignore[arg-type]
    return rules


def find_slots(
    word_spans: list[tuple[int, int]],
    num_samples: int,
    sample_rate: int,
    *,
    min_pause: float,
    clause_pause: float,
    guard_samples: int,
) -> list[Slot]:
    """Slots of a host whose words occupy ``word_spans`` (``[start, end)`` samples, in order).

    A slot keeps ``guard_samples`` of silence on each side (the cross-fades live there), so a
    silence shorter than ``2 * guard_samples`` (or than ``min_pause``, between words) gives none.
    """
    slots: list[Slot] = []
    if not word_spans:
        return slots
    need = 2 * guard_samples
    first_start = word_spans[0][0]
    if first_start >= need:
        slots.append(Slot(("start",), first_start // 2, -1))
    for index in range(len(word_spans) - 1):
        end, start = word_spans[index][1], word_spans[index + 1][0]
        gap = start - end
        if gap >= max(need, int(round(min_pause * sample_rate))):
            kinds = ("pause", "clause") if gap >= clause_pause * sample_rate else ("pause",)
            slots.append(Slot(kinds, end + gap // 2, index))
    last_end = word_spans[-1][1]
    if num_samples - last_end >= need:
        slots.append(Slot(("end",), last_end + (num_samples - last_end) // 2, len(word_spans) - 1))
    return slots


def plan_events(
    slots: list[Slot],
    rules: dict[str, Rule],
    categories: list[str],
    count: int,
    rng: np.random.Generator,
) -> list[Placement]:
    """Up to ``count`` events, each a category from ``categories`` in a free slot its rule
    allows; categories are tried in an order drawn from ``rng``, slots drawn among those allowed.
    Returned in time order."""
    free = list(slots)
    placed: list[Placement] = []
    for _ in range(count):
        order = [categories[i] for i in rng.permutation(len(categories))]
        for label in order:
            allowed = [s for s in free if set(s.kinds) & set(rules[label].slots)]
            if allowed:
                slot = allowed[int(rng.integers(len(allowed)))]
                free.remove(slot)
                placed.append(Placement(label, slot))
                break
        else:
            break
    return sorted(placed, key=lambda p: p.slot.at_sample)


def no_slot_reason(
    slots: list[Slot], categories: list[str], rules: dict[str, Rule], min_pause: float
) -> str:
    """Why :func:`plan_events` placed nothing (for the rejects manifest)."""
    if not slots:
        return f"no pause of at least {min_pause} s and no silence at the start or end"
    kinds = sorted({k for s in slots for k in s.kinds})
    wanted = sorted({k for c in categories for k in rules[c].slots})
    return f"no slot for {', '.join(categories)}: they need {wanted}, the host has {kinds}"
