"""Trained event head vs. the YAMNet rules (``synpara detect --detector yamnet``), on the same
audio.

Scores, through ``synpara eval events`` (files written to ``--out`` so the command can be rerun):

* ``--mixtures DIR``: held-out mixtures written by ``synpara train-detector`` (``DIR/truth.jsonl``,
  ``DIR/<id>.flac``; e.g. ``OUT/mixtures/dev``). The head's thresholds were tuned on the first half;
  only the second half (dev-test) is scored.
* ``--real DIR``: real recordings with a ``truth.jsonl`` keyed by ``file`` (default
  ``../shared/data/speech/laughspeech``: laughter inside speech, labelled by its authors - for
  checking, never tuning).

Prints per-label P/R/F1, onset error and false alarms per minute, and speed (audio s per s).
``--through-detect`` also runs each head through the detect stage (``detect-head-NAME``), i.e.
the events ``synpara detect`` writes.
With ``--words``, both detectors get each file's confident Whisper base words, as in a pipeline
after ``synpara transcribe`` (real files: transcribe's beam of 5, cached in ``--out``; mixtures:
the greedy words training tuned on, cached in ``OUT/words/base/``; not counted in the speed).

    python benchmarks/detector_head.py --head synpara/data/heads/default.pt \\
        --mixtures output/head/mixtures/dev
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from synpara.eval.events import format_table, load_events, score
from synpara.training.mixtures import read_truth
from synpara.training.sources import load_mono

SHARED_DATA = Path(os.environ.get("SYNPARA_SHARED_DATA", "../shared/data"))
LAUGHSPEECH = SHARED_DATA / "speech" / "laughspeech"


def real_truth(directory: Path, out: Path) -> tuple[Path, dict[str, Path]]:
    """``truth.jsonl`` keyed by ``file`` -> event JSONL keyed by ``id`` (the file stem)."""
    lines, files = [], {}
    for line in read_truth(directory / "truth.jsonl"):
        stem = Path(line["file"]).stem
        files[stem] = directory / line["file"]
        lines.append({"id": stem, "duration": line["duration"], "events": line["events"]})
    path = out / "truth.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path, files


def mixture_truth(directory: Path, out: Path, whole: bool = False
                  ) -> tuple[Path, dict[str, Path]]:
    truth = read_truth(directory / "truth.jsonl")
    test = truth if whole else truth[len(truth) // 2:]  # the half thresholds were not tuned on
    path = out / "truth.jsonl"
    path.write_text("".join(json.dumps({k: x[k] for k in ("id", "duration", "events")}) + "\n"
                            for x in test))
    return path, {x["id"]: directory / f"{x['id']}.flac" for x in test}


def file_words(files: dict[str, Path], cache: Path, threads: int) -> dict[str, list]:
    """Confident Whisper base words per file (cached by path)."""
    from synpara.training.train import WORD_CONFIDENCE

    stored = json.loads(cache.read_text()) if cache.exists() else {}
    model = None
    for path in files.values():
        if str(path) not in stored:
            from synpara.asr import WhisperOptions, transcribe_words
            from synpara.models.whisper import load_whisper

            model = model or load_whisper("base", threads=threads)
            stored[str(path)] = [(w.start, w.end, w.probability) for w in transcribe_words(
                model, load_mono(path), WhisperOptions()) if w.probability >= WORD_CONFIDENCE]
            cache.write_text(json.dumps(stored))
    return {rec_id: [tuple(w) for w in stored[str(path)]] for rec_id, path in files.items()}


def run_detector(name: str, detect, files: dict[str, Path], out: Path,
                 words: dict[str, list] | None = None) -> tuple[Path, float]:
    """Predictions as event JSONL; returns the file and audio seconds per second."""
    lines, audio_s, spent = [], 0.0, 0.0
    for rec_id, path in files.items():
        samples = load_mono(path)
        start = time.perf_counter()
        events = detect(samples, (words or {}).get(rec_id))
        spent += time.perf_counter() - start
        audio_s += len(samples) / 16000
        lines.append({"id": rec_id, "duration": len(samples) / 16000,
                      "events": [{"label": e[0], "start": round(float(e[1]), 3),
                                  "end": round(float(e[2]), 3)} for e in events]})
    path = out / f"pred_{name}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path, audio_s / max(spent, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--head", action="append", default=[],
                        help="head file (repeatable; default: the shipped one)")
    parser.add_argument("--mixtures", type=Path, help="held-out mixtures (OUT/mixtures/dev)")
    parser.add_argument("--whole", action="store_true",
                        help="score every mixture in --mixtures (a set nothing was tuned on, "
                             "e.g. held-out speech-only audio), not only the second half")
    parser.add_argument("--real", type=Path, default=LAUGHSPEECH)
    parser.add_argument("--no-rules", action="store_true", help="skip the YAMNet rules")
    parser.add_argument("--labels", default="", help="score only these labels (comma list)")
    parser.add_argument("--out", type=Path, default=Path("output/bench_head"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--through-detect", action="store_true",
                        help="also run each head through the detect stage: its events merged "
                             "and filtered by minimum duration, as `synpara detect` writes them")
    parser.add_argument("--words", action="store_true",
                        help="give both detectors the files' confident Whisper base words")
    args = parser.parse_args()

    from synpara.detectors.head import DEFAULT_HEAD, EventHead

    heads = {Path(h).stem if Path(h).name != "head.pt" else Path(h).parent.name: EventHead.load(
        h, args.threads) for h in (args.head or [str(DEFAULT_HEAD)])}
    detectors = {f"head-{name}": head.events for name, head in heads.items()}
    from synpara.stages.detect import Detect, DetectConfig

    def through_detect(detector: str):  # the stage's events as (label, start, end)
        stage = Detect(DetectConfig(detector=detector, threads=args.threads))
        stage.setup()
        return lambda x, w: [(s.label, s.start, s.end) for s in stage.detect(x, w)[0]]

    if args.through_detect:
        for name, path in zip(heads, args.head or [str(DEFAULT_HEAD)]):
            detectors[f"detect-head-{name}"] = through_detect(f"head:{path}")
    if not args.no_rules:
        detectors["rules"] = through_detect("yamnet")
    keep = set(filter(None, args.labels.split(",")))
    sets = []
    if args.mixtures:
        sets.append("mixtures")
    if args.real and (args.real / "truth.jsonl").exists():
        sets.append("real")
    if not sets:
        parser.error(f"nothing to score: no --mixtures and no {args.real}/truth.jsonl")
    for set_name in sets:
        out = args.out / set_name
        out.mkdir(parents=True, exist_ok=True)
        truth_path, files = (mixture_truth(args.mixtures, out, args.whole)
                             if set_name == "mixtures" else real_truth(args.real, out))
        truth = load_events(truth_path)
        words = None
        if args.words and set_name == "mixtures":  # the words training tuned on (cached there)
            from synpara.training.train import mixture_words

            every = mixture_words(args.mixtures, "base", args.threads,
                                  args.mixtures.parents[1] / "words" / "base" /
                                  f"{args.mixtures.name}.json")
            words = {i: every[i] for i in files}
        elif args.words:
            words = file_words(files, args.out / "words.json", args.threads)
        for name, detect in detectors.items():
            pred_path, speed = run_detector(name, detect, files, out, words)
            pred = load_events(pred_path)
            if keep or set_name == "real":  # the real set labels laughter only
                wanted = keep or {e.label for r in truth.values() for e in r.events}
                for rec in list(truth.values()) + list(pred.values()):
                    rec.events = [e for e in rec.events if e.label in wanted]
            print(f"\n== {set_name}: {name} ({speed:.1f} audio s per s)\n"
                  f"   synpara eval events --truth {truth_path} --pred {pred_path}")
            print(format_table(score(truth, pred)))


if __name__ == "__main__":
    main()
