"""Word boundary error before and after refine, and refine's speed.

espeak-ng sentences synthesized word by word (exact truth; random gaps, several voices, a faint
noise floor) are transcribed by faster-whisper base; refine snaps the words to the signal.

    python benchmarks/refine.py --sentences 20 --noise-db -58
    python benchmarks/refine.py --sweep --sentences 8   # one row per condition

``--sweep`` varies one thing at a time away from a default build: voices (with espeak's +f
variants, whose words trail off in a faint breathy tail), speaking rate, gap length, noise floor
and the definition of a word's true extent (its file trimmed to within 40/50/60 dB of its loudest
millisecond, or espeak's file untrimmed: ~13 ms of leading and ~330 ms of trailing silence).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synpara.asr import (  # noqa: E402
    WhisperOptions,
    Word,  # noqa: E402
    transcribe_words,
)
from synpara.eval.words import score_words  # noqa: E402
from synpara.manifest import items  # noqa: E402
from synpara.models import load_whisper  # noqa: E402
from synpara.stage import RecordContext  # noqa: E402
from synpara.stages.refine import Refine, RefineConfig  # noqa: E402
from tests.stages.test_refine import _cut  # noqa: E402
from tests.synth import SENTENCES, VOICES, random_sentence, synth_sentence  # noqa: E402

#: espeak-ng voices of the sweep: accents, male and female variants without an echo.
WIDE_VOICES = (
    "en-us", "en-gb", "en-gb-scotland", "en-029", "en", "en+m3", "en-us+f1", "en-gb-x-rp+f1",
)
#: Variants with espeak's echo (``echo 120 10`` in +f3: copies of the word 20 and 40 dB down,
#: 120 ms apart): a word's sound goes on under the noise floor for a quarter of a second.
ECHO_VOICES = ("en-us+f3", "en+f2", "en+f4", "en-us+f5")
_DEFAULT = {"voices": WIDE_VOICES, "wpm": (165, 165), "gaps": (0.03, 0.45), "noise_db": -58.0,
            "range_db": 60.0}
#: name -> what differs from _DEFAULT.
CONDITIONS: dict[str, dict] = {
    "test voices (tests.synth)": {"voices": VOICES},
    "wide voices": {},
    "rate 130": {"wpm": (130, 130)},
    "rate 200": {"wpm": (200, 200)},
    "gaps 0-0.05": {"gaps": (0.0, 0.05)},
    "gaps 0.3-0.8": {"gaps": (0.3, 0.8)},
    "noise -65": {"noise_db": -65.0},
    "noise -50": {"noise_db": -50.0},
    "noise -40": {"noise_db": -40.0},
    "truth -40 dB": {"range_db": 40.0},
    "truth -50 dB": {"range_db": 50.0},
    "truth untrimmed file": {"range_db": None},
    "mix 130-200 wpm, gaps 0-0.8": {"wpm": (130, 200), "gaps": (0.0, 0.8), "noise_db": -50.0},
    "echo voices": {"voices": ECHO_VOICES},
    "echo voices, truth -40 dB": {"voices": ECHO_VOICES, "range_db": 40.0},
    "echo voices, truth -50 dB": {"voices": ECHO_VOICES, "range_db": 50.0},
    "echo voices, noise -65": {"voices": ECHO_VOICES, "noise_db": -65.0},
    "echo voices, noise -80": {"voices": ECHO_VOICES, "noise_db": -80.0},
}


def _transcribe(whisper, samples: np.ndarray, cache: Path | None) -> list[tuple]:
    """faster-whisper's (text, start, end, probability) words, cached on disk by audio hash."""
    import hashlib
    import pickle

    path = cache / f"{hashlib.sha1(samples.tobytes()).hexdigest()}.pkl" if cache else None
    if path is not None and path.exists():
        return pickle.loads(path.read_bytes())
    words = [(w.text, float(w.start), float(w.end), float(w.probability))
             for w in transcribe_words(whisper, samples, WhisperOptions(language="en"))]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(words))
    return words


def sweep(sentences: int, seed: int, cache: Path | None, only: str | None) -> None:
    whisper = load_whisper("base", threads=2)
    stage = Refine(RefineConfig(segment=False))
    stage.setup()
    print(f"{sentences} sentences per condition; errors in ms, median/p90")
    print(f"{'condition':31s} {'matched':>7s}  {'whisper start':>13s} {'refined start':>13s} "
          f"{'refined end':>11s}  bias start/end")
    failures = []
    for name, change in CONDITIONS.items():
        if only and only not in name:
            continue
        spec = {**_DEFAULT, **change}
        rng = np.random.default_rng(seed)
        truth, raw, refined = {}, {}, {}
        with tempfile.TemporaryDirectory() as tmp:
            for index in range(sentences):
                text = SENTENCES[int(rng.integers(len(SENTENCES)))]
                voice = spec["voices"][int(rng.integers(len(spec["voices"])))]
                wpm = int(rng.integers(spec["wpm"][0], spec["wpm"][1] + 1))
                sentence = synth_sentence(text.split(), rng, voice=voice, gap_range=spec["gaps"],
                                          noise_db=spec["noise_db"], words_per_minute=wpm,
                                          range_db=spec["range_db"])
                words = _transcribe(whisper, sentence.samples, cache)
                key = f"s{index}"
                out = stage.process(_cut(Path(tmp), key, sentence.samples, words),
                                    RecordContext(key, 0, Path(tmp)))
                truth[key] = [Word(w.text, w.start, w.end) for w in sentence.words]
                raw[key] = [Word(t, s, e) for t, s, e, _ in words]
                refined[key] = [Word(w.symbol, w.start, w.end) for w in items(out, "word")]
        before, after = score_words(truth, raw), score_words(truth, refined)
        ok = (max(after.start_median_ms, after.end_median_ms) <= 30
              and max(after.start_p90_ms, after.end_p90_ms) <= 80)
        if not ok:
            failures.append(name)
        print(f"{name:31s} {after.matched:3d}/{after.truth_words:<3d}  "
              f"{before.start_median_ms:6.0f}/{before.start_p90_ms:<6.0f} "
              f"{after.start_median_ms:6.0f}/{after.start_p90_ms:<6.0f} "
              f"{after.end_median_ms:5.0f}/{after.end_p90_ms:<5.0f}  "
              f"{after.start_bias_ms:+4.0f}/{after.end_bias_ms:+4.0f}{'' if ok else '  FAIL'}",
              flush=True)
    print("all conditions within 30 ms median / 80 ms p90" if not failures
          else f"over the bar: {', '.join(failures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--noise-db", type=float, default=-58.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="one table row per condition")
    parser.add_argument("--only", help="sweep only the conditions whose name contains this")
    parser.add_argument("--cache", type=Path, help="keep Whisper's words here between runs")
    args = parser.parse_args()
    if args.sweep:
        sweep(args.sentences, args.seed, args.cache, args.only)
        return

    rng = np.random.default_rng(args.seed)
    whisper = load_whisper("base", threads=2)
    variants = {
        "signal+vad": RefineConfig(segment=False),
        "signal": RefineConfig(segment=False, vad=False),
        "full (segment+validate)": RefineConfig(min_utterance=1.0),
    }
    stages = {name: Refine(config) for name, config in variants.items()}
    for stage in stages.values():
        stage.setup()
    truth, raw = {}, {}
    refined: dict[str, dict[str, list[Word]]] = {name: {} for name in stages}
    seconds = {name: 0.0 for name in stages}
    audio = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.sentences):
            sentence = random_sentence(rng, noise_db=args.noise_db)
            words = transcribe_words(whisper, sentence.samples, WhisperOptions(language="en"))
            name = f"s{index}"
            cut = _cut(Path(tmp), name, sentence.samples,
                       [(w.text, w.start, w.end, w.probability) for w in words])
            truth[name] = [Word(w.text, w.start, w.end) for w in sentence.words]
            raw[name] = [Word(w.text, w.start, w.end) for w in words]
            audio += sentence.duration
            for variant, stage in stages.items():
                start = time.perf_counter()
                out = stage.process(cut, RecordContext(name, 0, Path(tmp)))
                seconds[variant] += time.perf_counter() - start
                outs = out if isinstance(out, list) else [out] if hasattr(out, "id") else []
                refined[variant][name] = [Word(w.symbol, w.start, w.end)
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
