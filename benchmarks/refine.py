"""Word boundary error before and after refine, and refine's speed.

espeak-ng sentences synthesized word by word (exact truth; random gaps, several voices, a faint
noise floor) are transcribed by faster-whisper base; refine snaps the words to the signal.

    python benchmarks/refine.py --sentences 20 --noise-db -58
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synpara.eval.words import TimedWord, score_words  # noqa: E402
from synpara.manifest import items  # noqa: E402
from synpara.models import load_whisper  # noqa: E402
from synpara.stage import RecordContext  # noqa: E402
from synpara.stages.refine import Refine, RefineConfig  # noqa: E402
from synpara.stages.transcribe import WhisperOptions, transcribe_words  # noqa: E402
from tests.stages.test_refine import _cut  # noqa: E402
from tests.synth import random_sentence  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--noise-db", type=float, default=-58.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    whisper = load_whisper("base", threads=2)
    variants = {
        "signal+vad": RefineConfig(segment=False),
        "signal": RefineConfig(segment=False, vad=False),
        "full (segment+validate)": RefineConfig(min_duration=1.0),
    }
    stages = {name: Refine(config) for name, config in variants.items()}
    for stage in stages.values():
        stage.setup()
    truth, raw = {}, {}
    refined: dict[str, dict[str, list[TimedWord]]] = {name: {} for name in stages}
    seconds = {name: 0.0 for name in stages}
    audio = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.sentences):
            sentence = random_sentence(rng, noise_db=args.noise_db)
            words = transcribe_words(whisper, sentence.samples, WhisperOptions(language="en"))
            name = f"s{index}"
            cut = _cut(Path(tmp), name, sentence.samples,
                       [(w.text, w.start, w.end, w.probability) for w in words])
            truth[name] = [TimedWord(w.text, w.start, w.end) for w in sentence.words]
            raw[name] = [TimedWord(w.text, w.start, w.end) for w in words]
            audio += sentence.duration
            for variant, stage in stages.items():
                start = time.perf_counter()
                out = stage.process(cut, RecordContext(name, 0, Path(tmp)))
                seconds[variant] += time.perf_counter() - start
                outs = out if isinstance(out, list) else [out] if hasattr(out, "id") else []
                refined[variant][name] = [TimedWord(w.symbol, w.start, w.end)
                                          for c in outs for w in items(c, "word")]
    print(f"{args.sentences} sentences, {audio:.1f} s of audio, noise floor {args.noise_db} dBFS")
    print(f"{'whisper base (raw)':26s} {score_words(truth, raw).summary()}")
    for variant in stages:
        print(f"{variant:26s} {score_words(truth, refined[variant]).summary()}")
    for variant in stages:
        print(f"speed {variant:26s} {seconds[variant] / audio:.4f} x real time "
              f"({audio / seconds[variant]:.0f}x faster than real time)")


if __name__ == "__main__":
    main()
