"""How a stage scales: the local executor with 1 vs 2 workers and Ray with 1 vs 2 actors, on the
same input, in one run (so the ratios share the machine's load).

Two inputs, cut from real speech (``../shared/data/speech``, concatenated): many short records
(``--short`` records of ``--short-seconds``) and few long ones (``--long`` records of
``--long-minutes``). The stage is detect (YAMNet + Silero VAD) by default; ``--stage transcribe``
runs Whisper tiny.en. Threads per worker are pinned to cores / 2 in every run, so each run
computes the same thing (the manifests are compared) and only the parallelism differs.

    python benchmarks/scale.py                                     # 200 x 5 s and 3 x 2 min
    python benchmarks/scale.py --short 1000 --long 3 --long-minutes 10 --stage transcribe

Each run is timed in a fresh child process. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def make_manifest(folder: Path, audio: Path, records: int, seconds: float) -> Path:
    """``records`` cuts of ``seconds`` each, laid end to end over ``audio`` (wrapping round)."""
    from lhotse import Recording

    from synpara.manifest import write_cuts

    recording = Recording.from_file(str(audio), recording_id=audio.stem)
    whole = recording.to_cut()
    count = max(1, int(whole.duration // seconds))
    cuts = (whole.truncate(offset=(index % count) * seconds, duration=seconds).with_id(
        f"{audio.stem}-{index:05d}") for index in range(records))
    manifest = folder / f"{records}x{seconds:g}s" / "cuts.jsonl.gz"
    write_cuts(manifest, cuts)
    return manifest


def build_stage(name: str, threads: int) -> Any:
    from synpara.stages.detect import Detect, DetectConfig
    from synpara.stages.transcribe import Transcribe, TranscribeConfig

    if name == "detect":
        return Detect(DetectConfig(threads=threads))
    return Transcribe(TranscribeConfig(model="tiny.en", beam_size=1, threads=threads))


def manifest_text(directory: Path) -> str:
    with gzip.open(directory / "cuts.jsonl.gz", "rt") as handle:
        return handle.read().replace(str(directory.resolve()), "<DIR>")


def run_one(stage: str, threads: int, manifest: Path, output: Path, executor: str, workers: int,
            cores: int) -> float:
    """One run in a fresh child process, timed there: a run must not inherit what the one before
    left in the driver (a stage run in-process by ``workers=1`` loads its libraries' thread pools
    into the driver, which then slowed a later 2-worker run by 70 %)."""
    import json
    import subprocess

    spec = json.dumps({"stage": stage, "threads": threads, "manifest": str(manifest),
                       "output": str(output), "executor": executor, "workers": workers,
                       "cores": cores})
    result = subprocess.run([sys.executable, __file__, "--child", spec], check=True,
                            stdout=subprocess.PIPE, text=True)
    return float(result.stdout.strip().splitlines()[-1])


def child(spec: dict[str, Any]) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    from synpara.executors.run import run_stage

    if spec["executor"] == "ray":
        import ray

        ray.init(num_cpus=spec["cores"], include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    started = time.perf_counter()
    run_stage(build_stage(spec["stage"], spec["threads"]), spec["manifest"], spec["output"],
              workers=spec["workers"], executor=spec["executor"], progress=False,
              overwrite=True, oversubscribe=True)
    print(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default="detect", choices=("detect", "transcribe"))
    parser.add_argument("--short", type=int, default=200, help="short records")
    parser.add_argument("--short-seconds", type=float, default=5.0)
    parser.add_argument("--long", type=int, default=3, help="long records")
    parser.add_argument("--long-minutes", type=float, default=2.0)
    parser.add_argument("--no-ray", action="store_true", help="local executor only")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import json

        child(json.loads(args.child))
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    from pipeline import make_audio


    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="synpara-scale-"))
    minutes = max(args.long_minutes, 1.0)
    (audio,) = make_audio(workdir / "audio", minutes, minutes)
    inputs = {
        f"{args.short} x {args.short_seconds:g} s": make_manifest(
            workdir, audio, args.short, args.short_seconds),
        f"{args.long} x {args.long_minutes:g} min": make_manifest(
            workdir, audio, args.long, args.long_minutes * 60),
    }
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores // 2)
    runs = [("local", 1), ("local", 2)] + ([] if args.no_ray else [("ray", 1), ("ray", 2)])
    lines = [f"{args.stage}, {threads} thread(s) per worker, {cores} cores, load average "
             f"{os.getloadavg()[0]:.2f} at the start", "",
             "| input | executor | workers | seconds | speed-up vs 1 | same manifest |",
             "|---|---|---:|---:|---:|---|"]
    for label, manifest in inputs.items():
        reference_text, one = None, {}
        for executor, workers in runs:
            output = workdir / f"out-{manifest.parent.name}-{executor}{workers}"
            seconds = run_one(args.stage, threads, manifest, output, executor, workers, cores)
            text = manifest_text(output)
            reference_text = reference_text or text
            one.setdefault(executor, seconds)
            lines.append(f"| {label} | {executor} | {workers} | {seconds:.1f} | "
                         f"{one[executor] / seconds:.2f} | {text == reference_text} |")
            print(lines[-1], file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
