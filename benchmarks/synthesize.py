"""The synthesize graph as a user runs it (``pipelines/synthesize.yaml``: tts -> insert -> export),
against the bare time of each stage's own work on the same records.

Builds ``--lines`` host lines (the bundled ``assets/synthesize/lines.txt`` repeated; each copy is
its own record, so voices and insertions differ), then:

1. **pipeline**: ``synpara.pipeline.run_pipeline`` over the YAML's stages (its options, the gate
   included unless ``--gate``), timed as a whole (wall; x real time = seconds of synthesized
   speech written / wall) and per stage (the executor's seconds: worker start-up, model loads,
   journal and manifests included; from the run's start when streamed) and the workers' seconds on
   its records; streamed (the default) and with the stages one by one (``--stream``);
2. **bare**: in a fresh child process with one worker's threads, each stage built from the same
   options, ``setup()`` timed apart (model loads: Whisper, CAM++, DNSMOS for the gate), then
   ``process()`` called directly on the records the pipeline fed it (no executor, no manifest, no
   journal), and export's ``finalise`` (corpus-wide files, serial by design).

Unlike the mining graph, most of this graph's work is not a model's: espeak-ng runs word by word,
insert's WORLD pitch matching, loudness matching and joins are signal processing. So *bare* here is
each stage's own compute, and **overhead** = wall / ideal, ideal = sum of bare ``process`` seconds /
workers + finalise seconds: what the executor, manifests and model loads add.

    python benchmarks/synthesize.py                       # 96 lines, gate on (~5 min on 2 cores)
    python benchmarks/synthesize.py --lines 24 --gate none

Prints a table (and ``--json FILE``); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PIPELINE = REPO / "pipelines" / "synthesize.yaml"
LINES = REPO / "assets" / "synthesize" / "lines.txt"


def make_lines(folder: Path, count: int) -> Path:
    """``count`` host lines: the bundled ones, round and round."""
    bundled = [line.strip() for line in LINES.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lines.txt"
    path.write_text("".join(bundled[i % len(bundled)] + "\n" for i in range(count)),
                    encoding="utf-8")
    return path


def stage_options(gate: str | None) -> list[dict[str, Any]]:
    """The stages of pipelines/synthesize.yaml, with ``gate`` replaced when given."""
    import yaml

    stages = yaml.safe_load(PIPELINE.read_text(encoding="utf-8"))["stages"]
    for entry in stages:
        if "insert" in entry and gate is not None:
            entry["insert"]["gate"] = gate
    return stages


def run_graph(lines: Path, output: Path, stages: list[dict[str, Any]], workers: int | None,
              stream: bool = True) -> dict[str, Any]:
    from synpara.pipeline import pipeline_from_dict, run_pipeline

    pipeline = pipeline_from_dict({
        "name": "bench-synthesize", "input": [str(lines)], "output": str(output), "seed": 0,
        "executor": {"type": "local", "workers": workers, "stream": stream}, "stages": stages,
    })
    started = time.perf_counter()
    summaries = run_pipeline(pipeline, overwrite=True, progress=False)
    wall = time.perf_counter() - started
    return {"wall": wall, "stream": stream, "stages": {s.stage: s.seconds for s in summaries},
            "worker_s": {s.stage: s.worker_seconds for s in summaries},
            "cuts": {s.stage: s.cuts for s in summaries}}


def speech_seconds(manifest: Path) -> float:
    from synpara.manifest import iter_cuts

    return sum(cut.duration for cut in iter_cuts(manifest))


# --------------------------------------------------------------------------- bare (child process)


def bare(spec: dict[str, Any]) -> dict[str, Any]:
    """Each stage's ``setup`` and ``process`` called directly (runs in a child process)."""
    import torch

    from synpara.stage import FinaliseContext, RecordContext, Stage
    from synpara.stages import stage_class

    torch.set_num_threads(spec["threads"])
    out, work = Path(spec["output"]), Path(spec["work"])
    inputs: Any = [spec["lines"]]
    load, process, finalise = {}, {}, {}
    for index, entry in enumerate(spec["stages"], start=1):
        ((name, options),) = entry.items()
        stage = stage_class(name).from_params(options)
        started = time.perf_counter()
        stage.setup(spec["threads"])
        load[name] = time.perf_counter() - started
        target = work / name
        target.mkdir(parents=True, exist_ok=True)
        spent = 0.0
        for record in stage.iter_records(inputs):
            context = RecordContext(record_id=record.id, seed=0, output_dir=target)
            started = time.perf_counter()
            stage.process(record.payload, context)
            spent += time.perf_counter() - started
        process[name] = spent
        if type(stage).finalise is not Stage.finalise:
            # on a copy of the pipeline's own output of this stage (finalise reads a manifest
            # and writes corpus files beside it), so the run's files stay as the run left them
            done = work / f"{name}-finalise"
            shutil.copytree(out / f"{index:02d}-{name}", done, dirs_exist_ok=True)
            started = time.perf_counter()
            stage.finalise(FinaliseContext(output_dir=done, manifest=done / "cuts.jsonl.gz",
                                           rejects=done / "rejects.jsonl.gz", seed=0))
            finalise[name] = time.perf_counter() - started
        # the next stage reads what the pipeline wrote, so both runs see the same records
        inputs = str(out / f"{index:02d}-{name}" / "cuts.jsonl.gz")
    return {"load": load, "process": process, "finalise": finalise}


def run_bare(spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    result = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(runs: list[dict[str, Any]], bare_figures: dict[str, Any] | None, speech_s: float,
          workers: int, lines: int, gate: str) -> str:
    load = os.getloadavg()
    out = [f"{len(os.sched_getaffinity(0))} cores, load average {load[0]:.2f} {load[1]:.2f} "
           f"{load[2]:.2f} at the end; {lines} lines, {speech_s / 60:.1f} min of synthesized "
           f"speech; gate {gate}; {workers} workers", "",
           "| run | stage | stage s | worker s | bare process s | bare load s | finalise s "
           "| cuts |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        name_of_run = "streamed" if run["stream"] else "one by one"
        for name, seconds in run["stages"].items():
            figures = ("- | - | -" if bare_figures is None else
                       f"{bare_figures['process'][name]:.1f} | {bare_figures['load'][name]:.1f} | "
                       f"{bare_figures['finalise'].get(name, 0.0):.1f}")
            out.append(f"| {name_of_run} | {name} | {seconds:.1f} | {run['worker_s'][name]:.1f} | "
                       f"{figures} | {run['cuts'][name]} |")
    out += ["", "| run | wall s | x real time | ideal s (process / workers + finalise) | "
            "overhead |", "|---|---:|---:|---:|---:|"]
    for run in runs:
        wall, name_of_run = run["wall"], "streamed" if run["stream"] else "one by one"
        if bare_figures is None:
            out.append(f"| {name_of_run} | {wall:.1f} | {speech_s / wall:.2f} | - | - |")
            continue
        ideal = (sum(bare_figures["process"].values()) / workers
                 + sum(bare_figures["finalise"].values()))
        out.append(f"| {name_of_run} | {wall:.1f} | {speech_s / wall:.2f} | {ideal:.1f} | "
                   f"{wall / ideal:.2f} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=96, help="host lines (records)")
    parser.add_argument("--gate", default=None,
                        help="insert's gate (default: the YAML's, wer,speaker,dnsmos; none: off)")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--workdir", default=None, help="default: a temporary directory")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--no-bare", action="store_true", help="the pipeline only")
    parser.add_argument("--stream", choices=("on", "off", "both"), default="both",
                        help="stream records from stage to stage, run stages one by one, or both")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(bare(json.loads(args.child))))
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    from synpara.executors.run import worker_counts

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="synpara-bench-synth-"))
    lines = make_lines(workdir, args.lines)
    stages = stage_options(args.gate)
    gate = next(e["insert"].get("gate", "") for e in stages if "insert" in e)
    workers, _ = worker_counts(args.workers)
    runs = []
    for stream in {"on": [True], "off": [False], "both": [False, True]}[args.stream]:
        output = workdir / ("run" if stream else "run-staged")
        print(f"# pipeline: {args.lines} lines, {workers} workers, stream {stream} ...",
              file=sys.stderr)
        runs.append(run_graph(lines, output, stages, workers, stream))
    run = runs[-1]
    insert_dir = next(output.glob("*-insert"))
    speech_s = speech_seconds(insert_dir / "cuts.jsonl.gz")
    bare_figures = None
    if not args.no_bare:
        print(f"# pipeline {run['wall']:.1f} s; bare stages ...", file=sys.stderr)
        cores = len(os.sched_getaffinity(0))
        bare_figures = run_bare({"output": str(output), "work": str(workdir / "bare"),
                                 "lines": str(lines), "stages": stages,
                                 "threads": max(1, cores // workers)})
    text = table(runs, bare_figures, speech_s, workers, args.lines, str(gate))
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"pipeline": run, "runs": runs, "bare": bare_figures,
                                               "speech_s": speech_s, "workers": workers}, indent=1))


if __name__ == "__main__":
    main()
