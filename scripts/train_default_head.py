"""Reproduce the shipped default event head, ``synpara/data/heads/default.pt``.

Trained on permissively licensed material only: the vocalizations in ``../shared/data/vocal/``
(game voice packs, Debian sound folders; see ../shared/data/README.md) mixed into the speech in
``../shared/data/speech/`` (``laughspeech/`` is held out) and espeak-ng voices in twelve languages.
Categories with no clip there (throat clearing, sniff, cry) are scored from YAMNet's own AudioSet
classes; tsk and yawn are not scored at all. Never point this at ``vocal_nc`` (CC BY-NC-ND).

    python scripts/train_default_head.py            # ~10 min on 2 cores; prints the dev figures
    python scripts/train_default_head.py --check    # retrain into output/ and compare, no copy
    python scripts/train_default_head.py --seed 1   # a second draw of the recipe (never copied)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SYNPARA_SHARED_DATA", REPO.parent / "shared" / "data"))
#: The recipe of the shipped head: change it only together with the committed file.
SEED = 0
FEATURE = "yamnet"
TRAIN_MIXTURES = 600
DEV_MIXTURES = 200
#: Fewer speech-only mixtures than train-detector's defaults, no crosstalk, two espeak voices per
#: language (the larger budgeted recipe lost on cough, sneeze and laughspeech: docs/detector.md).
#: Thresholds: for F1 on dev-tune, then raised where it costs the least F1 per false alarm
#: removed until the false alarms per minute on dev-tune's and 200 calib mixtures' speech-only
#: audio are at most the YAMNet rules' on that same audio.
MIX = {"negative_fraction": 0.2, "crosstalk_p": 0.0}
ESPEAK_VOICES = 2
FA_BUDGET = "rules"
#: One threshold per label. A second one where YAMNet hears speech (``inside="speech"``) raised
#: dev-test F1 on both seeds (0.37 -> 0.42, 0.28 -> 0.31) but also the events on 15 min of real
#: speech-only audio (21 -> 22, 32 -> 42: the thresholds left low in pauses fire there;
#: docs/detector.md).
#: Not inside Whisper words either (``inside="words"`` with ``word_model="base"``): transcribing
#: the 400 dev and calib mixtures took 12-30 s per 5 s mixture on the 2 shared cores.
INSIDE = "words"
WORD_MODEL = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="working directory (default output/default_head[_seedN])")
    parser.add_argument("--check", action="store_true", help="train and report, do not copy")
    parser.add_argument("--seed", type=int, default=SEED,
                        help=f"another draw of the recipe to measure (only seed {SEED} is copied)")
    args = parser.parse_args()
    if args.out is None:  # relative to the checkout: the head's provenance names no home dir
        os.chdir(REPO)
        args.out = Path("output") / ("default_head" if args.seed == SEED
                                     else f"default_head_seed{args.seed}")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    sys.path.insert(0, str(REPO))
    from synpara.detectors.head import DEFAULT_HEAD
    from synpara.training.mixtures import MixConfig
    from synpara.training.train import TrainConfig, format_report, train_detector

    report = train_detector(TrainConfig(
        bank=str(SHARED / "vocal"), hosts=(str(SHARED / "speech"),), out=str(args.out),
        seed=args.seed, feature=FEATURE, train_mixtures=TRAIN_MIXTURES, dev_mixtures=DEV_MIXTURES,
        mix=MixConfig(**MIX), espeak_voices=ESPEAK_VOICES, fa_budget=FA_BUDGET,
        inside=INSIDE, word_model=WORD_MODEL))
    print(format_report(report))
    if not args.check and args.seed == SEED:
        DEFAULT_HEAD.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "head.pt", DEFAULT_HEAD)
        print(f"copied to {DEFAULT_HEAD}")


if __name__ == "__main__":
    main()
