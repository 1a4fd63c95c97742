"""Where the detectors' false alarms fall on speech-only audio: per label, inside confidently
transcribed words or in the gaps between them, and on which hosts.

Every event a detector raises on speech-only audio is a false alarm. The detectors run through
the detect stage's own code (``Detect.detect(samples, words)``) with the cut's confident Whisper
words (Whisper base, as ``synpara transcribe`` runs it; cached in ``--out``), so a detector that
uses words (the rules; a head with in-word thresholds) gets them as in a pipeline.

Sets (each only audio nothing was tuned on):

* ``hosts``: the real host files the first ``--head`` did *not* train on (its provenance's
  ``dev_hosts``, espeak voices left out), raw and full length;
* ``neutral``: ``laughspeech/neut*.wav`` (real speech with no laughter, labelled by others);
* ``mixtures``: the speech-only mixtures of ``--mixtures`` (e.g. ``OUT/mixtures/dev``; by
  default the second half, dev-test, which no threshold was tuned on; ``--part tune|all``).

    python benchmarks/head_false_alarms.py --head synpara/data/heads/default.pt \\
        --mixtures output/default_head/mixtures/dev
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

SHARED_DATA = Path(os.environ.get("SYNPARA_SHARED_DATA", "../shared/data"))
#: A word counts as confident from this probability (detect's ``word_confidence``).
CONFIDENT = 0.5


def confident_words(samples: Any, model: Any) -> list[tuple[float, float, float]]:
    from synpara.asr import WhisperOptions, transcribe_words

    return [(w.start, w.end, w.probability) for w in transcribe_words(model, samples,
                                                                        WhisperOptions())
            if w.probability >= CONFIDENT]


def in_words(start: float, end: float, words: list[tuple[float, float, float]]) -> float:
    """Share of ``[start, end]`` covered by confident words."""
    covered = sum(max(0.0, min(end, b) - max(start, a)) for a, b, _ in words)
    return covered / max(end - start, 1e-9)


def speech_only_sets(head_path: str, mixtures: Path | None, part: str
                     ) -> dict[str, list[tuple[str, Path]]]:
    """``set name -> [(family, file)]``."""
    import torch

    state = torch.load(head_path, map_location="cpu", weights_only=True)
    speech = SHARED_DATA / "speech"
    hosts = []
    for host in state["provenance"]["dev_hosts"]:
        path = Path(host)
        if "espeak" in path.name or not path.exists():
            continue
        parts = path.parts
        hosts.append((parts[parts.index("speech") + 1] if "speech" in parts else "?", path))
    sets = {"hosts": hosts,
            "neutral": [("laughspeech", p) for p in
                        sorted((speech / "laughspeech").glob("neut*.wav"))]}
    if mixtures is not None:
        from synpara.training.mixtures import read_truth

        truth = read_truth(mixtures / "truth.jsonl")
        half = len(truth) // 2
        truth = {"all": truth, "tune": truth[:half], "test": truth[half:]}[part]
        sets["mixtures"] = [("espeak" if "espeak" in str(line.get("host", "")) else "real",
                             mixtures / f"{line['id']}.flac") for line in truth
                            if not line["events"]]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--head", action="append", default=[],
                        help="head file (repeatable; the first one's dev hosts are the real set)")
    parser.add_argument("--mixtures", type=Path, help="dev mixtures (OUT/mixtures/dev)")
    parser.add_argument("--part", choices=("test", "tune", "all"), default="test",
                        help="which half of --mixtures (dev-test, dev-tune) or all of it")
    parser.add_argument("--no-rules", action="store_true")
    parser.add_argument("--no-words", action="store_true",
                        help="run the detectors without Whisper words (as on a cut with none)")
    parser.add_argument("--out", type=Path, default=Path("output/head_false_alarms"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from synpara.detectors.head import DEFAULT_HEAD
    from synpara.stages.detect import Detect, DetectConfig
    from synpara.training.sources import load_mono

    heads = args.head or [str(DEFAULT_HEAD)]
    sets = speech_only_sets(heads[0], args.mixtures, args.part)
    args.out.mkdir(parents=True, exist_ok=True)
    cache_path = args.out / "words.json"
    cache: dict[str, list[list[float]]] = (json.loads(cache_path.read_text())
                                          if cache_path.exists() else {})
    whisper = None
    detectors: dict[str, Detect] = {}
    specs = ([] if args.no_rules else [("rules", "yamnet")]) + [
        (f"head:{Path(h).parent.name if Path(h).name == 'head.pt' else Path(h).stem}", f"head:{h}")
        for h in heads]
    for name, spec in specs:
        detectors[name] = Detect(DetectConfig(detector=spec, threads=args.threads))
        detectors[name].setup()
    summary: dict[str, Any] = {}
    for set_name, files in sets.items():
        minutes: Counter[str] = Counter()
        counts: dict[str, Counter[tuple[str, str, str]]] = defaultdict(Counter)
        for family, path in files:
            samples = load_mono(path)
            minutes[family] += len(samples) / 16000 / 60
            key = str(path)
            if key not in cache:
                if whisper is None:
                    from synpara.models.whisper import load_whisper

                    whisper = load_whisper("base", threads=args.threads)
                cache[key] = [list(w) for w in confident_words(samples, whisper)]
                cache_path.write_text(json.dumps(cache))
            words = [] if args.no_words else [tuple(w) for w in cache[key]]
            for name, stage in detectors.items():
                for span in stage.detect(samples, words)[0]:  # type: ignore[arg-type]
                    share = in_words(span.start, span.end, cache[key])  # type: ignore[arg-type]
                    where = "word" if share >= 0.5 else "gap"
                    counts[name][(span.label, where, family)] += 1
        total = sum(minutes.values())
        print(f"\n== {set_name}: {len(files)} files, {total:.2f} min "
              f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(minutes.items()))})")
        summary[set_name] = {"minutes": dict(minutes), "detectors": {}}
        for name in detectors:
            c = counts[name]
            n = sum(c.values())
            in_word = sum(v for (_, w, _), v in c.items() if w == "word")
            labels = Counter()
            for (label, where, _), v in c.items():
                labels[f"{label}/{where}"] += v
            families = Counter()
            for (_, _, family), v in c.items():
                families[family] += v
            print(f"{name:<22} {n:>4} FA = {n / max(total, 1e-9):.2f}/min; in words {in_word}, "
                  f"in gaps {n - in_word}")
            print(f"{'':<22} by label: {dict(sorted(labels.items()))}")
            print(f"{'':<22} by host: {dict(sorted(families.items()))}")
            summary[set_name]["detectors"][name] = {
                "false_alarms": n, "per_minute": n / max(total, 1e-9), "in_words": in_word,
                "by_label": dict(labels), "by_host": dict(families)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
