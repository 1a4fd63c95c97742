"""Expected time of a large run, computed from the per-stage rates that pipeline.py measured.

Reads the ``--json`` file of ``pipeline.py`` (its streamed run when it holds one). Per stage, the
measured **cost** is core-seconds per audio second: the workers' busy seconds in that stage
(set-up and records, from the run's trace) x each worker's cores / the audio's seconds (model
loads and the stage's own signal processing included, a worker's idle time not: on a cluster's
many records the tails vanish); for a JSON without a trace, the stage's seconds x the machine's
cores. A CPU stage on a cluster of ``--cpu-cores`` then processes ``cores / cost`` audio seconds
per second. A GPU stage (``--gpu-stages``) runs at an *assumed* real-time factor per GPU
(``--gpu-rt``: no GPU was lent to measure it; the defaults are stated in the README with their
sources) times ``--gpus``. ``--efficiency`` discounts the cluster for stragglers, start-up and I/O.

Two totals: **one by one** (``executor: {stream: false}``), the stages' hours add up; **streamed**
(the default: on Ray one Ray Data chain, each stage on actors of its own), the CPU stages share the
CPU cores while the GPU stages share the GPUs at the same time, so the run takes the longer of the
two pools' sums (the pipeline's fill and drain, one record's time, is negligible against 1,000 h).

    python benchmarks/plan.py bench.json --model base --hours 1000 --cpu-cores 256 --gpus 8

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", help="the --json file of benchmarks/pipeline.py")
    parser.add_argument("--model", default="base", help="the Whisper model row to use")
    parser.add_argument("--hours", type=float, default=1000.0, help="hours of audio")
    parser.add_argument("--cores", type=int, default=2, help="cores of the measuring machine")
    parser.add_argument("--cpu-cores", type=int, default=256, help="CPU cores of the cluster")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs of the cluster")
    parser.add_argument("--gpu-stages", default="diarize,transcribe")
    parser.add_argument("--gpu-rt", default="diarize=40,transcribe=100",
                        help="assumed audio seconds per second per GPU, per stage")
    parser.add_argument("--efficiency", type=float, default=0.8)
    args = parser.parse_args()
    figures = json.loads(Path(args.figures).read_text())
    rows = [r for r in figures["rows"] if r["model"] == args.model]
    row = next((r for r in rows if r["pipeline"].get("stream", True)), rows[0])
    busy = row["pipeline"].get("busy")
    cores_per_worker = args.cores / row["workers"]
    audio_s, total_s = figures["audio_s"], args.hours * 3600
    gpu_stages = set(filter(None, args.gpu_stages.split(",")))
    gpu_rt = {k: float(v) for k, v in (item.split("=") for item in args.gpu_rt.split(",") if item)}
    lines = [f"{args.hours:g} h of audio, Whisper {args.model}; cluster: {args.cpu_cores} CPU "
             f"cores, {args.gpus} GPUs, efficiency {args.efficiency:g}", "",
             "| stage | measured core-s per audio-s | runs on | cluster audio-s per s | hours |",
             "|---|---:|---|---:|---:|"]
    hours_total = 0.0
    pool_hours = {"CPU": 0.0, "GPU": 0.0}
    for stage, seconds in row["pipeline"]["stages"].items():
        cost = (busy[stage] * cores_per_worker if busy else seconds * args.cores) / audio_s
        on_gpu = stage in gpu_stages and args.gpus > 0
        if on_gpu:
            rate, where = gpu_rt[stage] * args.gpus, f"{args.gpus} GPUs (assumed)"
        else:
            rate, where = args.cpu_cores / cost, f"{args.cpu_cores} cores"
        hours = total_s / (rate * args.efficiency) / 3600
        hours_total += hours
        pool_hours["GPU" if on_gpu else "CPU"] += hours
        lines.append(f"| {stage} | {cost:.3f} | {where} | {rate:.0f} | {hours:.1f} |")
    lines.append(f"| **all, one by one** | | | | **{hours_total:.1f}** |")
    lines.append(f"| **all, streamed** (CPU stages {pool_hours['CPU']:.1f} h beside GPU stages "
                 f"{pool_hours['GPU']:.1f} h) | | | | **{max(pool_hours.values()):.1f}** |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
