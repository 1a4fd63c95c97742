"""Peak memory of a stage over a small and a large manifest: streaming must keep it flat.

Each (stage, record count) runs in a fresh child process, one worker in that process (so the peak
RSS, ``ru_maxrss``, holds the driver, the stage and its models together). Records are cheap: short
cuts of one real recording (``--seconds`` each, laid end to end and wrapping round). The issue's
aim: the large manifest's peak within 1.2x of the small one's.

    python benchmarks/memory.py                                   # detect, 100 vs 10,000 records
    python benchmarks/memory.py --stages detect,transcribe --records 100,2000

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SYNPARA_SHARED_DATA", REPO.parent / "shared" / "data"))
AUDIO = SHARED / "speech/silero_vad/test.wav"  # 60 s, one speaker


def build_stage(name: str):  # type: ignore[no-untyped-def]
    from synpara.stages.detect import Detect, DetectConfig
    from synpara.stages.diarize import Diarize, DiarizeConfig
    from synpara.stages.transcribe import Transcribe, TranscribeConfig

    if name == "detect":
        return Detect(DetectConfig())
    if name == "diarize":
        return Diarize(DiarizeConfig(num_speakers=1))
    if name == "transcribe":
        return Transcribe(TranscribeConfig(model="tiny.en", beam_size=1, min_duration=0.0))
    raise SystemExit(f"unknown stage {name!r} (detect, diarize, transcribe)")


def child(stage: str, records: int, seconds: float, workdir: str) -> dict:
    from scale import make_manifest

    from synpara.executors.run import run_stage

    folder = Path(workdir) / f"{stage}-{records}"
    manifest = make_manifest(folder, AUDIO, records, seconds)
    started = time.perf_counter()
    summary = run_stage(build_stage(stage), str(manifest), folder / "out", workers=1,
                        progress=False)
    return {"cuts": summary.cuts, "seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default="detect")
    parser.add_argument("--records", default="100,10000", help="two record counts")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per record")
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "benchmarks"))
    if args.child:
        stage, records, seconds, workdir = args.child
        print(json.dumps(child(stage, int(records), float(seconds), workdir)))
        return
    workdir = tempfile.mkdtemp(prefix="synpara-memory-")
    counts = [int(n) for n in args.records.split(",")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    lines = ["| stage | records | seconds | peak RSS MB | vs smallest |",
             "|---|---:|---:|---:|---:|"]
    for stage in args.stages.split(","):
        first = None
        for count in counts:
            result = subprocess.run(
                [sys.executable, __file__, "--child", stage, str(count), str(args.seconds),
                 workdir], env=env, check=True, stdout=subprocess.PIPE, text=True)
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            first = first or figures["peak_rss_mb"]
            lines.append(f"| {stage} | {count} | {figures['seconds']:.1f} | "
                         f"{figures['peak_rss_mb']:.0f} | {figures['peak_rss_mb'] / first:.2f} |")
            print(lines[-1], file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
