"""describe's speed (audio seconds per second) and qa's pairs per utterance by type.

A corpus of espeak-ng sentences synthesized word by word with a real laugh or cough spliced in
(tests/paracorpus.py: exact word and event times) is described, then turned into QA pairs.

    python benchmarks/describe.py --utterances 24
    python benchmarks/describe.py --utterances 24 --f0-method harvest

Real vocalizations come from ../shared/data (set SYNPARA_SHARED_DATA when it lives elsewhere).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synpara.manifest import write_cuts  # noqa: E402
from synpara.qa import export_qa  # noqa: E402
from synpara.stage import RecordContext  # noqa: E402
from synpara.stages.describe import Describe, DescribeConfig  # noqa: E402
from tests.paracorpus import make_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument("--f0-method", default="dio", choices=["dio", "harvest"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cuts, _ = make_corpus(tmp, args.utterances, np.random.default_rng(args.seed))
        stage = Describe(DescribeConfig(f0_method=args.f0_method))
        stage.setup()
        audio_seconds = sum(c.duration for c in cuts)
        began = time.perf_counter()
        described = [stage.process(c, RecordContext(c.id, args.seed, tmp)) for c in cuts]
        seconds = time.perf_counter() - began
        manifest = tmp / "described.jsonl.gz"
        write_cuts(manifest, described)
        summary = export_qa(manifest, tmp / "qa", seed=args.seed)
    print(
        f"describe ({args.f0_method}): {audio_seconds:.1f} s of audio in {seconds:.2f} s = "
        f"{audio_seconds / seconds:.1f} audio s per s (one process, includes decoding)"
    )
    print(
        f"qa: {summary['pairs']} template pairs for {summary['utterances']} utterances "
        f"({summary['pairs'] / summary['utterances']:.2f} per utterance)"
    )
    for kind, per in summary["pairs_per_utterance"].items():
        print(f"  {kind:<9} {per:.2f} per utterance")


if __name__ == "__main__":
    main()
