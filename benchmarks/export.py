"""Export speed (utterances per second) and report render time, on N short utterances of one real
recording (default 10,000 × 2 s cut from the 169 s broadcast in shared/data).

    .venv/bin/python benchmarks/export.py [--utterances 10000] [--formats hf nemo kaldi]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path

from synpara.executors.run import run_stage
from synpara.formats import WRITERS
from synpara.manifest import iter_cuts, write_cuts
from synpara.stages.export import Export
from synpara.stages.ingest import Ingest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "speech" / "silero_vad" / "aepyx.wav"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=10000)
    parser.add_argument("--formats", nargs="+", default=["lhotse", "hf", "nemo", "kaldi", "pipe"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--source", default=str(SOURCE), help="the real recording to cut from")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from lhotse import SupervisionSegment

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ingest = run_stage(
            Ingest(), [args.source], root / "run" / "01-ingest", workers=1, progress=False
        )
        (recording,) = list(iter_cuts(ingest.manifest))
        span = recording.duration - 2.0

        def utterances():
            for index in range(args.utterances):
                start = round(index * 0.37 % span, 3)
                cut = recording.truncate(offset=start, duration=2.0, preserve_id=True)
                sup = SupervisionSegment(
                    f"u{index:06d}",
                    cut.recording_id,
                    0.0,
                    2.0,
                    text="words",
                    speaker="S0",
                    custom={"tagged_text": "words"},
                )
                yield cut.copy(id=f"u{index:06d}", supervisions=[sup])

        write_cuts(root / "run" / "02-refine" / "cuts.jsonl.gz", utterances())
        # the lhotse format is the manifest itself: the run times the per-utterance work alone
        stage = Export.from_params({"formats": ["lhotse"], "sample_rate": 24000})
        started = time.perf_counter()
        run_stage(
            stage,
            str(root / "run" / "02-refine" / "cuts.jsonl.gz"),
            root / "run" / "03-export",
            workers=args.workers,
            progress=False,
        )
        per_record = time.perf_counter() - started
        started = time.perf_counter()
        export_dir = root / "run" / "03-export"
        for name in args.formats:
            WRITERS[name](export_dir / "cuts.jsonl.gz", export_dir)
        corpus_wide = time.perf_counter() - started
        n = args.utterances
        print(
            f"export of {n} utterances (2 s each, from a {recording.duration:.0f} s recording), "
            f"{args.workers} worker(s), formats {' '.join(args.formats)}"
        )
        print(
            f"  per-utterance audio + manifest: {per_record:7.1f} s  ({n / per_record:7.1f} utt/s)"
        )
        print(
            f"  corpus-wide files (finalise):   {corpus_wide:7.1f} s  "
            f"({n / corpus_wide:7.1f} utt/s)"
        )
        from synpara.report import render_report

        started = time.perf_counter()
        page = render_report(root / "run", root / "report.html")
        render = time.perf_counter() - started
        size = page.stat().st_size + sum(
            p.stat().st_size for p in (root / "report_files").iterdir()
        )
        print(
            f"  report render:                  {render:7.1f} s  "
            f"(page + assets {size / 1e6:.1f} MB)"
        )
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"  peak RSS of this process:       {peak_gb:7.2f} GB")


if __name__ == "__main__":
    main()
