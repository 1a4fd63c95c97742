"""Figures for the detect stage: the ``eval events`` table on the development set, and speed.

Builds the development set with ``scripts/make_devset.py`` (unless ``--devset`` points at one),
runs the detect stage at its defaults on every recording, prints the table of
``synpara eval events`` and the speed in audio seconds per second of wall time (one worker).

    python benchmarks/detect.py                       # default settings, dev set seed 0
    python benchmarks/detect.py --param hop=0.1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devset", type=Path, help="a directory made by scripts/make_devset.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--param", action="append", default=[],
                        help="KEY=VALUE detect option (repeat); list values with commas")
    parser.add_argument("--pred-out", type=Path, help="also write the predictions (event JSONL)")
    args = parser.parse_args(argv)

    from synpara.audio import SAMPLE_RATE, decode, resample, to_mono
    from synpara.eval.events import Event, RecordingEvents, format_table, load_events, score
    from synpara.stages.detect import Detect

    devset = args.devset
    if devset is None:
        sys.path.insert(0, str(REPO / "scripts"))
        from make_devset import build

        devset = Path(tempfile.mkdtemp(prefix="synpara-devset-"))
        build(REPO.parent / "shared" / "data", devset, args.seed, 3, 100)
    params: dict = {"threads": args.threads}
    for entry in args.param:
        key, _, value = entry.partition("=")
        if "," in value or key in ("thresholds", "raw_thresholds", "min_event_durations"):
            params[key] = [v for v in value.split(",") if v]
        else:
            params[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") \
                else value
    stage = Detect.from_params(params)
    stage.setup()

    truth = load_events(devset / "truth.jsonl")
    records = [json.loads(line) for line in open(devset / "truth.jsonl", encoding="utf-8")]
    pred, audio_seconds, wall = {}, 0.0, 0.0
    per_condition: dict[str, dict] = {}
    for record in records:
        decoded = decode(devset / record["audio"])
        samples = resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)
        started = time.perf_counter()
        spans, background = stage.detect(samples)
        wall += time.perf_counter() - started
        audio_seconds += len(samples) / SAMPLE_RATE
        pred[record["id"]] = RecordingEvents(record["id"], record["duration"],
                                       [Event(s.label, s.start, s.end) for s in spans])
        per_condition.setdefault(record["condition"], {})[record["id"]] = truth[record["id"]]
    if args.pred_out:
        with open(args.pred_out, "w", encoding="utf-8") as handle:
            for rec in pred.values():
                handle.write(json.dumps({"id": rec.id, "duration": rec.duration, "events": [
                    {"label": e.label, "start": round(e.start, 3), "end": round(e.end, 3)}
                    for e in rec.events]}) + "\n")
    print(f"detect settings: {stage.config.to_dict()}")
    print("\n== all recordings ==")
    print(format_table(score(truth, pred)))
    for condition, subset in sorted(per_condition.items()):
        if condition == "control":
            continue
        print(f"\n== {condition} only ==")
        print(format_table(score(subset, {k: pred[k] for k in subset})))
    print(f"\nspeed: {audio_seconds:.0f} s of audio in {wall:.1f} s = "
          f"{audio_seconds / wall:.1f} audio seconds per second "
          f"({args.threads} threads, one worker)")


if __name__ == "__main__":
    main()
