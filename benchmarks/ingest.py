"""Ingest speed: audio seconds per wall second, 1 and N workers, on the real files in shared/data.

    .venv/bin/python benchmarks/ingest.py [--workers N] [--data ../shared/data]

Prints figures; asserts nothing. Each run starts from an empty output directory.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from synpara.executors.run import run_stage
from synpara.executors.worker import available_cores as default_workers
from synpara.manifest import iter_cuts
from synpara.stages.ingest import Ingest

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    print(f"ingest of {args.data}")
    print(f"{'workers':>8} {'files':>6} {'audio s':>9} {'wall s':>8} {'audio s / wall s':>17}")
    for workers in sorted({1, args.workers}):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            summary = run_stage(Ingest(), [args.data], out, workers=workers, progress=False)
            wall = time.perf_counter() - started
            audio = sum(cut.duration for cut in iter_cuts(summary.manifest))
        print(f"{workers:>8} {summary.cuts:>6} {audio:>9.1f} {wall:>8.2f} {audio / wall:>17.1f}")


if __name__ == "__main__":
    main()
