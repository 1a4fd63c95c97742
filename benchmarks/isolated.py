"""Isolated real vocalizations, one per clip: is the clip's vocalization named right?

The issue's "isolated clips" figure (aim: >= 80 % right; the shipped default at least the rules'):
``../shared/data/vocal_nc/`` holds 256 clips by speakers no shipped head heard (Korean phone
recordings; 10 categories, plus nose blowing and lip smacking as negatives). CC BY-NC-ND: measured
here, never trained into a shipped head. Each detector runs through the detect stage's own code
(``Detect.detect(samples)``, no words: an isolated clip has none) and a clip is scored as the
SynParaSpeech paper scores detection, one label per clip:

* **named**: the label of the clip's events with the most seconds in all ("none" without events);
  right when it is the folder's category, or "none" for a negative;
* **found**: the share of vocalization clips with any event (of any label);
* **right when found**: named right among the clips with an event.

Categories a detector cannot name (the shipped head has no tsk or yawn) stay in the total: they
count as wrong, as they would for a user.

    python benchmarks/isolated.py                                  # head:default vs yamnet rules
    python benchmarks/isolated.py --detectors head:default,head:OUT/head.pt
    python benchmarks/isolated.py --forced-choice      # + each head forced to name every clip
    python benchmarks/isolated.py --detectors head:default,yamnet,head:NC/head.pt \
        --unseen-by NC/head.pt            # a researcher's head trained on vocal_nc itself

``--unseen-by HEAD`` keeps only the clips of speakers that HEAD did not train on: the training
split is recomputed from the head's own provenance (bank, seed, dev share), with the training
code's ``split_bank``, so a head trained on ``vocal_nc`` is measured on voices it never heard.

``--forced-choice`` adds a row per head in which every clip is named by the label whose frame
probability stands highest over that label's own threshold (max over frames of p / threshold):
a measurement of what the head knows when it must choose, not what detect writes.

Prints a table (and ``--json FILE``); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SYNPARA_SHARED_DATA", REPO.parent / "shared" / "data"))
#: Folders of vocal_nc that are not vocalizations of the ontology: right when nothing is found.
NEGATIVES = ("nose_blowing", "lip_smacking")


def clips(folder: Path) -> list[tuple[str, Path]]:
    """``(category, file)`` for every clip, in a fixed order."""
    return [(sub.name, path) for sub in sorted(p for p in folder.iterdir() if p.is_dir())
            for path in sorted(sub.glob("*.flac"))]


def named(spans: list[Any]) -> str:
    """The label with the most event seconds in the clip, or "none"."""
    seconds: Counter[str] = Counter()
    for span in spans:
        seconds[span.label] += span.end - span.start
    return seconds.most_common(1)[0][0] if seconds else "none"


def forced_label(head: Any, samples: Any) -> str:
    """The head's label with the highest max-over-frames probability / its threshold."""
    peaks = head.frame_probs(samples).max(axis=0)
    ratios = [peak / head.thresholds.get(label, 0.5) for label, peak in zip(head.labels, peaks)]
    return str(head.labels[max(range(len(ratios)), key=ratios.__getitem__)])


def unseen_by(head_file: Path, items: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """The clips of ``items`` whose speaker is not among ``head_file``'s training groups."""
    from synpara.detectors.head import EventHead
    from synpara.training.sources import clip_label_and_group, scan_bank, split_bank

    config = EventHead.load(head_file).state["provenance"]["config"]
    bank = Path(config["bank"])
    if not bank.is_absolute():  # train-detector records the path as given, from the repo root
        bank = REPO / bank
    train, _ = split_bank(scan_bank(bank), config["dev_fraction"], config["seed"])
    heard = {clip.group for clip in train}
    return [(category, path) for category, path in items
            if clip_label_and_group(path, path.parents[1])[1] not in heard]


def run(detector: str, items: list[tuple[str, Path]], threads: int,
        forced: bool = False) -> list[dict[str, Any]]:
    from tqdm import tqdm

    from synpara.audio import SAMPLE_RATE, decode, resample, to_mono
    from synpara.stages.detect import Detect, DetectConfig

    stage = Detect(DetectConfig(detector=detector, threads=threads))
    stage.setup(threads)
    rows = []
    for category, path in tqdm(items, desc=detector, unit="clip"):
        decoded = decode(path)
        samples = resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)
        spans, _ = stage.detect(samples)
        rows.append({"category": category, "file": path.name, "named": named(spans),
                     "labels": sorted({s.label for s in spans})})
        if forced:
            rows[-1]["forced"] = forced_label(stage.detector.head, samples)
    return rows


def with_forced(results: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """``results`` plus a "NAME (forced choice)" entry for each detector that has forced labels."""
    extra = {f"{name} (forced choice)": [{**row, "named": row["forced"]} for row in rows]
             for name, rows in results.items() if rows and "forced" in rows[0]}
    return {**results, **extra}


def scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def right(row: dict[str, Any]) -> bool:
        wanted = "none" if row["category"] in NEGATIVES else row["category"]
        return row["named"] == wanted

    vocal = [r for r in rows if r["category"] not in NEGATIVES]
    found = [r for r in vocal if r["named"] != "none"]
    per: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        per[row["category"]].append(right(row))
    return {
        "all": sum(map(right, rows)) / len(rows),
        "vocalizations": sum(map(right, vocal)) / max(len(vocal), 1),
        "found": len(found) / max(len(vocal), 1),
        "right_when_found": sum(map(right, found)) / max(len(found), 1),
        "per_category": {k: sum(v) / len(v) for k, v in sorted(per.items())},
        "confusions": Counter(f"{r['category']}->{r['named']}" for r in rows
                              if not right(r)).most_common(8),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, default=SHARED / "vocal_nc")
    parser.add_argument("--detectors", default="head:default,yamnet")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write every clip's result here")
    parser.add_argument("--forced-choice", action="store_true",
                        help="also score each head forced to name every clip")
    parser.add_argument("--unseen-by", type=Path, default=None, metavar="HEAD",
                        help="only the clips of speakers this head file did not train on")
    args = parser.parse_args()
    items = clips(args.clips)
    if args.unseen_by:
        items = unseen_by(args.unseen_by, items)
    results = with_forced({
        name: run(name, items, args.threads, args.forced_choice and name.startswith("head:"))
        for name in args.detectors.split(",")})
    figures = {name: scores(rows) for name, rows in results.items()}
    categories = sorted({c for c, _ in items})
    unseen = f", speakers {args.unseen_by} did not train on" if args.unseen_by else ""
    lines = [f"{len(items)} clips in {args.clips}{unseen} ({len(categories)} folders; "
             f"negatives: {', '.join(NEGATIVES)})", "",
             "| detector | all right | vocalizations right | found | right when found | "
             + " | ".join(categories) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(categories)]
    for name, figure in figures.items():
        per = figure["per_category"]
        lines.append(f"| {name} | {figure['all']:.0%} | {figure['vocalizations']:.0%} | "
                     f"{figure['found']:.0%} | {figure['right_when_found']:.0%} | "
                     + " | ".join(f"{per[c]:.0%}" for c in categories) + " |")
    lines.append("")
    for name, figure in figures.items():
        lines.append(f"{name}, commonest errors: "
                     + ", ".join(f"{pair} {count}" for pair, count in figure["confusions"]))
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": figures, "clips": results}, indent=1))


if __name__ == "__main__":
    main()
