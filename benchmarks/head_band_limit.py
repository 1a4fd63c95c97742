"""Does a head's giggle (or any label) fire on band-limited speech? Speech-only audio, so every
event is a false alarm.

The only permissive giggle clip is an 8 kHz snicker; a head that learned "no energy above 4 kHz =
giggle" fires on telephone-band speech. Per head, on the real host files it did *not* train on
(its provenance's ``dev_hosts``, espeak voices left out) and ``laughspeech/neut*.wav``:

* ``native <=11k``: the files recorded at 11.025 kHz or less (asterisk, codec2), as they are;
* ``full band``: the files recorded at 16 kHz or more, as they are;
* ``low-passed``: those same files through an 8 kHz sample rate (nothing above 4 kHz), the
  one difference from ``full band``;
* ``telephone``: those same files in the 300-3400 Hz band (training's ``telephone_p`` filter).

Prints false alarms at the head's thresholds (all labels, and giggle alone), giggle events at a
plain 0.5 threshold (what the weights say before any threshold tuning turns giggle down), and
the mean over files of the highest giggle frame probability.

    python benchmarks/head_band_limit.py --head synpara/data/heads/default.pt \\
        --head output/default_head_seed1/head.pt
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

import numpy as np

SHARED_DATA = Path(os.environ.get("SYNPARA_SHARED_DATA", "../shared/data"))


def held_out_files(head_path: str) -> list[Path]:
    import torch

    state = torch.load(head_path, map_location="cpu", weights_only=True)
    hosts = [Path(h) for h in state["provenance"]["dev_hosts"]
             if "espeak" not in Path(h).name and Path(h).exists()]
    return hosts + sorted((SHARED_DATA / "speech" / "laughspeech").glob("neut*.wav"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--head", action="append", default=[], help="head file (repeatable)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import soundfile
    from scipy.signal import resample_poly

    from synpara.detectors.head import DEFAULT_HEAD, EventHead, frames_to_events
    from synpara.training.mixtures import _telephone
    from synpara.training.sources import SAMPLE_RATE, load_mono

    for head_path in args.head or [str(DEFAULT_HEAD)]:
        head = EventHead.load(head_path, args.threads)
        plain = {**head.thresholds, "giggle": 0.5}
        sets: dict[str, list[np.ndarray]] = {"native <=11k": [], "full band": [],
                                             "low-passed": [], "telephone": []}
        for path in held_out_files(head_path):
            samples = load_mono(path)
            if soundfile.info(str(path)).samplerate <= 11025:
                sets["native <=11k"].append(samples)
            else:
                sets["full band"].append(samples)
                narrow = resample_poly(resample_poly(samples, 1, 2), 2, 1)[: len(samples)]
                sets["low-passed"].append(narrow.astype(np.float32))
                sets["telephone"].append(_telephone(samples))
        print(f"\n== {head_path} (giggle threshold {head.thresholds.get('giggle')})")
        print(f"{'set':<14}{'files':>6}{'min':>6}{'FA':>5}{'FA/min':>8}{'giggle':>8}"
              f"{'giggle@0.5':>12}{'max p(giggle)':>15}  by label")
        for name, audio in sets.items():
            minutes = sum(len(a) for a in audio) / SAMPLE_RATE / 60
            labels: Counter[str] = Counter()
            at_half, peaks = 0, []
            for samples in audio:
                probs = head.frame_probs(samples)
                for event in frames_to_events(probs, head.labels, head.thresholds, head.post):
                    labels[event[0]] += 1
                at_half += sum(e[0] == "giggle" for e in
                               frames_to_events(probs, head.labels, plain, head.post))
                if "giggle" in head.labels:
                    peaks.append(float(probs[:, head.labels.index("giggle")].max()))
            total = sum(labels.values())
            print(f"{name:<14}{len(audio):>6}{minutes:>6.2f}{total:>5}"
                  f"{total / max(minutes, 1e-9):>8.2f}{labels['giggle']:>8}{at_half:>12}"
                  f"{np.mean(peaks) if peaks else float('nan'):>15.2f}  {dict(labels)}")


if __name__ == "__main__":
    main()
