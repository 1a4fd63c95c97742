"""Figures for insert: speed (audio seconds produced per second, one core) without and with the
quality gate, the gate's pass rate on bundled material, and the closed loop: the detect stage run
on the synthesized corpus and scored with ``synpara eval events`` against the inserted events.

Hosts are the bundled lines (``assets/synthesize/lines.txt``) spoken by espeak-ng in several
voices (one tts run per seed); the bank is the bundled clips unless ``--bank`` is given.

    OMP_NUM_THREADS=1 python benchmarks/insert.py                 # everything
    python benchmarks/insert.py --seeds 1 --no-gate               # quick: DSP speed only
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LINES = REPO / "assets" / "synthesize" / "lines.txt"
CATEGORIES = ["laughter", "cough", "sneeze", "sigh", "gasp", "breath"]


def _run_insert(stage, hosts, workdir: Path, seed: int) -> tuple[list, list, float, float]:
    """Process every host in this process; returns (cuts, rejects, audio seconds, wall seconds),
    the wall time without model loading."""
    from synpara.manifest import iter_cuts
    from synpara.stage import RecordContext, Reject

    cuts, rejects, produced, wall = [], [], 0.0, 0.0
    for host in iter_cuts(hosts):
        context = RecordContext(record_id=host.id, seed=seed, output_dir=workdir)
        started = time.perf_counter()
        result = stage.process(host, context)
        wall += time.perf_counter() - started
        if isinstance(result, Reject):
            rejects.append((host.id, result.reason))
        else:
            cuts.append(result)
            produced += result.duration
    return cuts, rejects, produced, wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="tts + insert runs (other voices)")
    parser.add_argument("--bank", help="bank manifest (default: bundled clips)")
    parser.add_argument("--events", type=int, default=2, help="events per utterance")
    parser.add_argument("--no-gate", action="store_true", help="skip the gated run")
    parser.add_argument("--no-detect", action="store_true", help="skip the closed loop")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from synpara.eval.events import format_table, load_events, score
    from synpara.executors.run import run_stage
    from synpara.manifest import write_cuts
    from synpara.stages.detect import Detect
    from synpara.stages.insert import Insert
    from synpara.stages.tts import Tts

    tmp = Path(tempfile.mkdtemp(prefix="synpara-insert-bench-"))
    hosts = []
    for seed in range(args.seeds):
        tts = Tts.from_params({"voice": ["en-us", "en-gb", "en-us+m3", "en-029"]})
        lines = tmp / f"lines{seed}.txt"  # the file name makes the record ids differ per seed
        lines.write_text(LINES.read_text(encoding="utf-8"), encoding="utf-8")
        run_stage(tts, [str(lines)], tmp / f"tts{seed}", workers=1, seed=seed, progress=False)
        hosts.append(tmp / f"tts{seed}" / "cuts.jsonl.gz")

    params = {
        "bank": args.bank,
        "categories": CATEGORIES,
        "events_per_utterance": args.events,
        "threads": 1,
    }
    plain = Insert.from_params({**params, "gate": "none"})
    plain.setup()
    all_cuts, produced, wall, rejected = [], 0.0, 0.0, 0
    for seed, host in enumerate(hosts):
        cuts, rejects, seconds, spent = _run_insert(plain, host, tmp / f"ins{seed}", seed)
        all_cuts += cuts
        produced, wall, rejected = produced + seconds, wall + spent, rejected + len(rejects)
    events = sum(len(c.custom["synpara"]["insert"]["events"]) for c in all_cuts)
    print(
        f"insert (DSP only): {len(all_cuts)} utterances, {events} events, {rejected} rejected; "
        f"{produced:.1f} audio s in {wall:.2f} s = {produced / wall:.1f}x real time (one core; "
        "first pass: each clip decoded and WORLD-analysed once)"
    )
    warm_produced, warm_wall = 0.0, 0.0
    for seed, host in enumerate(hosts):  # other placements, clips already analysed
        _, _, seconds, spent = _run_insert(plain, host, tmp / f"warm{seed}", seed + 100)
        warm_produced, warm_wall = warm_produced + seconds, warm_wall + spent
    print(f"insert (DSP only), warm: {warm_produced / warm_wall:.1f}x real time (one core)")

    if not args.no_gate:
        gated = Insert.from_params({**params, "gate": "wer,speaker,dnsmos"})
        gated.setup()
        gated.gate.dnsmos.overall(__import__("numpy").zeros(16000, "float32"))  # numba JIT
        kept, rejects, seconds, spent = [], [], 0.0, 0.0
        for seed, host in enumerate(hosts):
            k, r, s, w = _run_insert(gated, host, tmp / f"gate{seed}", seed)
            kept, rejects, seconds, spent = kept + k, rejects + r, seconds + s, spent + w
        total = len(kept) + len(rejects)
        print(
            f"insert + gate (wer, speaker, dnsmos): {seconds:.1f} audio s kept in {spent:.1f} s "
            f"= {(seconds + 1e-9) / spent:.2f}x real time; pass rate {len(kept)}/{total} "
            f"= {len(kept) / max(total, 1):.2f}"
        )
        reasons: dict[str, int] = {}
        host_too = 0
        for _, reason in rejects:
            key = reason.split(" ")[1] if reason.startswith("gate:") else reason[:40]
            reasons[key] = reasons.get(key, 0) + 1
            if "host alone" in reason:
                host_wer = float(reason.split("host alone ")[1].split(";")[0])
                host_too += host_wer > gated.config.max_wer
        print(f"  WER rejects whose host alone also fails the WER bar: {host_too}")
        print(f"  rejects by figure: {reasons}")

    if not args.no_detect:
        truth = tmp / "truth" / "cuts.jsonl.gz"
        write_cuts(truth, all_cuts)
        started = time.perf_counter()
        run_stage(Detect.from_params({}), str(truth), tmp / "detect", workers=1, progress=False)
        print(f"detect on the synthesized corpus: {time.perf_counter() - started:.1f} s")
        scores = score(load_events(truth), load_events(tmp / "detect" / "cuts.jsonl.gz"))
        print(format_table(scores))
    print(f"(work files in {tmp})")


if __name__ == "__main__":
    main()
