"""The mining graph as a user runs it, against the bare time of its models on the same audio.

Builds ``--minutes`` of real speech from ``../shared/data/speech`` (concatenated into files of about
``--file-minutes`` each, so several workers have work), then per Whisper model:

1. **pipeline**: ``synpara.pipeline.run_pipeline`` over ingest -> diarize -> transcribe ->
   detect -> refine (the stage options of ``pipelines/demo.yaml``), timed as a whole (wall,
   real-time factor = audio seconds / wall seconds, higher is faster), streamed (records go on
   to the next stage as soon as they are done, the default) and with the stages one by one
   (``--stream``); per stage, the executor's seconds (from the run's start to the stage's end
   when streamed) and the *worker seconds*: set-up and records, summed over the workers, from the
   workers' trace (``SYNPARA_TRACE``); *workers busy* = worker seconds / (workers x wall);
2. **bare**: in a fresh child process with one worker's threads (cores / workers), each stage's
   models called directly on the same audio, no executor, no manifest: the pyannote pipeline on
   each file's waveform; faster-whisper ``transcribe`` with word timestamps and VAD; detect's
   model call on each cut (the trained head: YAMNet's encoder pass and the head's network; with
   the rules, YAMNet on exactly the patches detect scored, recorded by running the stage once,
   plus Silero VAD); Silero VAD plus the Whisper calls refine made to validate splits (recorded
   the same way). Model load
   times are listed apart.

**overhead** = pipeline wall / ideal, where ideal = sum of bare model times / workers (the models
alone, spread perfectly over the same workers; 1.0: the executor, manifests, model loads and the
stages' own signal processing cost nothing; the issue's aim is <= 1.10); **overhead, loads in
ideal** counts the models' load times as model time too (each worker loads each model once, the
workers at the same time: ideal + the sum of load times). Also times ``synpara --help``.

    python benchmarks/pipeline.py                                  # 10 min, base and tiny.en
    python benchmarks/pipeline.py --minutes 2 --models tiny.en     # quick look
    python benchmarks/pipeline.py --device cuda --workers 1        # on a GPU machine
    python benchmarks/pipeline.py --executor ray --no-bare         # on a local Ray cluster

Prints a table (and ``--json FILE``); asserts nothing.
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if "--repo" in sys.argv:  # measure another checkout's synpara (e.g. main, for before/after)
    REPO = Path(sys.argv[sys.argv.index("--repo") + 1]).resolve()
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SYNPARA_SHARED_DATA", REPO.parent / "shared" / "data"))
#: Real recordings, longest first; concatenated (and repeated when needed) into the test files.
SOURCES = [
    "speech/silero_vad/aepyx.wav",
    "speech/silero_vad/test.wav",
    "speech/pyannote_sample/sample.wav",
    "speech/mfa/wav/acoustic_corpus.wav",
    "speech/mfa/wav/cold_corpus.wav",
    "speech/mfa/wav/cold_corpus3.wav",
    "speech/pocketsphinx/misc/chan3.wav",
    "speech/jfk/jfk.wav",
]
STAGE_NAMES = ("ingest", "diarize", "transcribe", "detect", "refine")


def stage_options(model: str, device: str, batch_size: int = 1, max_cut_s: float = 0.0
                  ) -> list[dict[str, Any]]:
    """The demo's stages (pipelines/demo.yaml) with the given Whisper model and device (and
    ingest's ``max_cut_duration``: 0 = one cut per file)."""
    transcribe = {"model": model, "verbatim": True, "device": device}
    if batch_size > 1:
        transcribe["batch_size"] = batch_size
    return [
        {"ingest": {"max_cut_duration": max_cut_s} if max_cut_s else {}},
        {"diarize": {"device": device}},
        {"transcribe": transcribe},
        {"detect": {}},
        {"refine": {"min_utterance": 2.0, "max_utterance": 30.0, "validate_splits": True,
                    "max_overlap": 0.5, "asr_model": model}},
    ]


def make_audio(folder: Path, minutes: float, file_minutes: float) -> list[Path]:
    """``minutes`` of real speech as 16 kHz mono WAV files of about ``file_minutes`` each.

    The recordings (half a second apart) form one loop; file k is the next stretch of it, so files
    differ from each other (ingest would skip a duplicate) even when the loop has to repeat.
    """
    import numpy as np
    import soundfile

    from synpara.audio import SAMPLE_RATE, decode, resample, to_mono

    folder.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    pieces = []
    for relative in SOURCES:
        decoded = decode(SHARED / relative)
        pieces += [resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE), gap]
    loop = np.concatenate(pieces)
    total, per_file = int(minutes * 60 * SAMPLE_RATE), int(file_minutes * 60 * SAMPLE_RATE)
    files, written, starts = [], 0, set()
    while written < total:
        size = min(per_file, total - written)
        start = written % len(loop)
        while start in starts:  # the loop came round to a stretch already used: move on 1 s
            start = (start + SAMPLE_RATE) % len(loop)
        starts.add(start)
        samples = np.take(loop, np.arange(start, start + size), mode="wrap")
        path = folder / f"speech{len(files):02d}.wav"
        soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
        files.append(path)
        written += size
    return files


def help_seconds(repeat: int = 3) -> float:
    """Best of ``repeat`` wall times of ``python -m synpara --help`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "synpara", "--help"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def run_graph(files: list[Path], output: Path, model: str, device: str, workers: int | None,
              batch_size: int = 1, max_cut_s: float = 0.0, stream: bool = True,
              executor: str = "local") -> dict[str, Any]:
    """The pipeline as ``synpara run`` runs it: wall seconds, each stage's seconds (from the
    run's start to the stage's end when streamed) and the workers' busy seconds per stage."""
    from synpara.executors.worker import TRACE_VARIABLE
    from synpara.pipeline import pipeline_from_dict, run_pipeline

    pipeline = pipeline_from_dict({
        "name": f"bench-{model}", "input": [str(f) for f in files], "output": str(output),
        "seed": 0, "executor": {"type": executor, "workers": workers, "stream": stream},
        "stages": stage_options(model, device, batch_size, max_cut_s),
    })
    output.mkdir(parents=True, exist_ok=True)
    trace = output / "trace.jsonl"
    trace.unlink(missing_ok=True)
    os.environ[TRACE_VARIABLE] = str(trace)  # the workers, spawned by the run, inherit it
    if executor == "ray":  # Ray's workers get their environment from the cluster's start
        import ray

        from synpara.executors.worker import available_cores

        ray.init(num_cpus=available_cores(), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {TRACE_VARIABLE: str(trace)}})
    try:
        started = time.perf_counter()
        summaries = run_pipeline(pipeline, overwrite=True, progress=False)
        wall = time.perf_counter() - started
    finally:
        del os.environ[TRACE_VARIABLE]
        if executor == "ray":
            ray.shutdown()
    return {"wall": wall, "stream": stream, "executor": executor,
            "stages": {s.stage: s.seconds for s in summaries},
            "cuts": {s.stage: s.cuts for s in summaries}, **busy_seconds(trace)}


def busy_seconds(trace: Path) -> dict[str, Any]:
    """From the workers' trace (``SYNPARA_TRACE``): seconds spent per stage (set-up and records,
    summed over workers) and in all; the rest of workers x wall is time a worker waited."""
    per_stage: dict[str, float] = {}
    for line in trace.read_text().splitlines():
        entry = json.loads(line)
        per_stage[entry["stage"]] = (per_stage.get(entry["stage"], 0.0)
                                     + entry["end"] - entry["start"])
    return {"busy": per_stage, "busy_total": sum(per_stage.values())}


# --------------------------------------------------------------------------- bare (child process)


class _WhisperRecorder:
    """Stands in for a WhisperModel inside a stage: records each call's audio and options."""

    def __init__(self, model: Any) -> None:
        self.model, self.calls = model, []

    def transcribe(self, audio: Any, **kwargs: Any) -> Any:
        self.calls.append((audio.copy(), kwargs))
        return self.model.transcribe(audio, **kwargs)


def _timed(function: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def _decode_all(model: Any, audio: Any, kwargs: dict[str, Any]) -> int:
    segments, _ = model.transcribe(audio, **kwargs)
    return sum(len(segment.words or []) for segment in segments)


def bare(spec: dict[str, Any]) -> dict[str, Any]:
    """Each stage's models called directly on the pipeline's audio (runs in a child process)."""
    import numpy as np
    import torch

    from synpara.asr import VERBATIM_PROMPT
    from synpara.audio import load_cut_audio, silero_speech_probs
    from synpara.detectors.rules import active
    from synpara.manifest import iter_cuts
    from synpara.models.files import torch_device
    from synpara.models.pyannote import build_offline_diarization
    from synpara.models.vad import load_silero_vad
    from synpara.models.whisper import load_whisper
    from synpara.stage import RecordContext
    from synpara.stages.detect import Detect, DetectConfig
    from synpara.stages.diarize import diarize_samples
    from synpara.stages.refine import Refine, RefineConfig

    threads, device = spec["threads"], spec["device"]
    torch.set_num_threads(threads)
    out = Path(spec["output"])
    cuts = {name: list(iter_cuts(out / f"{i:02d}-{name}" / "cuts.jsonl.gz"))
            for i, name in enumerate(STAGE_NAMES, start=1)}
    audio = [load_cut_audio(cut) for cut in cuts["ingest"]]
    load: dict[str, float] = {}
    model_s: dict[str, float] = {}

    load["pyannote"], diarization = _timed(build_offline_diarization, device=device)
    model_s["diarize"] = sum(_timed(diarize_samples, diarization, samples)[0] for samples in audio)
    del diarization

    load["whisper"], whisper = _timed(load_whisper, spec["model"], device, "auto", threads)
    kwargs = dict(beam_size=5, word_timestamps=True, vad_filter=True,
                  initial_prompt=VERBATIM_PROMPT, condition_on_previous_text=False)
    decoder = whisper
    if spec["batch_size"] > 1:  # as transcribe --batch-size runs it
        from faster_whisper import BatchedInferencePipeline

        decoder = BatchedInferencePipeline(whisper)
        kwargs.pop("condition_on_previous_text")
        kwargs["batch_size"] = spec["batch_size"]
    model_s["transcribe"] = sum(_timed(_decode_all, decoder, samples, kwargs)[0]
                                for samples in audio)

    # detect: the trained head (the default): its encoder pass and network on each cut, the
    # model call the stage makes; the rules (`--detector yamnet`): the windows the stage scores
    # (recorded by running it), then YAMNet on them and Silero VAD.
    load["yamnet"], detect = _timed(lambda: Detect(DetectConfig()))
    seconds, _ = _timed(detect.setup, threads)
    load["yamnet"] += seconds
    context = RecordContext(record_id="bench", seed=0, output_dir=Path(tempfile.gettempdir()))
    patches = 0
    analyse = getattr(detect.detector, "analyse", None)
    if analyse is not None:
        model_s["detect"] = 0.0
        for cut in cuts["transcribe"]:
            samples = load_cut_audio(cut)
            words = [(a, b) for a, b, _ in detect._words(cut)]
            model_s["detect"] += _timed(analyse, samples, words)[0]
            patches += int(np.ceil(len(samples) / 1600))  # encoder frames at the 0.1 s hop
        load["silero"], vad = _timed(load_silero_vad)  # refine's
    else:
        windows: list[Any] = []
        model = detect.detector.predict

        def recording_predict(batch: Any) -> Any:
            windows.append(batch)
            return model(batch)

        detect.detector.predict = recording_predict  # type: ignore[method-assign]
        for cut in cuts["transcribe"]:
            detect.process(cut, context)
        load["silero"], vad = _timed(load_silero_vad)
        yamnet = sum(_timed(model, batch)[0] for batch in windows)
        energy = np.zeros(1, np.float32)
        silero = sum(_timed(active, samples, energy, len(samples) / 16000, vad)[0]
                     for samples in audio)
        model_s["detect"] = yamnet + silero
        patches = sum(len(batch) for batch in windows)
    del detect

    # refine: Silero speech probabilities over each cut, plus the Whisper calls split validation
    # made (recorded by running the stage)
    refine = Refine(RefineConfig(min_utterance=2.0, max_utterance=30.0, validate_splits=True,
                                 max_overlap=0.5, asr_model=spec["model"]))
    refine.setup(threads)
    recorder = _WhisperRecorder(whisper)
    refine.whisper = recorder
    for cut in cuts["detect"]:
        refine.process(cut, context)
    silero = sum(_timed(silero_speech_probs, vad, samples)[0] for samples in audio)
    validation = sum(_timed(_decode_all, whisper, a, k)[0] for a, k in recorder.calls)
    model_s["refine"] = silero + validation
    return {
        "load": load, "model": model_s, "patches": patches, "validations": len(recorder.calls),
        "device": torch_device(device),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_bare(output: Path, model: str, device: str, threads: int, batch_size: int
             ) -> dict[str, Any]:
    spec = {"output": str(output), "model": model, "device": device, "threads": threads,
            "batch_size": batch_size}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, __file__, "--repo", str(REPO), "--child", json.dumps(spec)]
    result = subprocess.run(command, env=env,
                            check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- table


def table(rows: list[dict[str, Any]], audio_s: float, help_s: float, machine: str) -> str:
    lines = [f"{machine}; {audio_s / 60:.1f} min of real speech; `synpara --help` {help_s:.2f} s",
             "",
             "| model | run | stage | stage s | worker s | bare model s | load s (bare) |",
             "|---|---|---|---:|---:|---:|---:|"]
    loads = {"diarize": ["pyannote"], "transcribe": ["whisper"], "detect": ["yamnet", "silero"],
             "refine": []}
    for row in rows:
        bare = row["bare"] or {"model": {}, "load": {}}
        run = _run_name(row)
        for stage in STAGE_NAMES:
            model_s = bare["model"].get(stage)
            load = sum(bare["load"].get(k, 0.0) for k in loads.get(stage, []))
            busy = row["pipeline"]["busy"].get(stage, 0.0)
            lines.append(f"| {row['model']} | {run} | {stage} | "
                         f"{row['pipeline']['stages'][stage]:.1f} | {busy:.1f} | "
                         f"{'-' if model_s is None else f'{model_s:.1f}'} | "
                         f"{f'{load:.1f}' if load else '-'} |")
    lines += ["", "| model | run | batch | workers | wall s | x real time | workers busy | "
              "sum bare s | loads s | ideal s | overhead | overhead, loads in ideal | "
              "YAMNet frames | split validations |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        wall, bare, workers = row["pipeline"]["wall"], row["bare"], row["workers"]
        run = _run_name(row)
        busy = row["pipeline"]["busy_total"] / (workers * wall)
        figures = "- | - | - | - | - | - | -"
        if bare and bare["model"]:
            bare_sum = sum(bare["model"].values())
            loads_s = sum(bare["load"].values())
            ideal = bare_sum / workers
            # every worker loads every model once, all workers at the same time
            figures = (f"{bare_sum:.1f} | {loads_s:.1f} | {ideal:.1f} | {wall / ideal:.2f} | "
                       f"{wall / (ideal + loads_s):.2f} | {bare['patches']} | "
                       f"{bare['validations']}")
        lines.append(f"| {row['model']} | {run} | {row['batch_size']} | {workers} | "
                     f"{wall:.1f} | {audio_s / wall:.2f} | {busy:.0%} | {figures} |")
    return "\n".join(lines)


def _run_name(row: dict[str, Any]) -> str:
    run = "streamed" if row["pipeline"].get("stream", True) else "one by one"
    return f"{run}, Ray" if row["pipeline"].get("executor") == "ray" else run


def machine_line(device: str) -> str:
    load = os.getloadavg()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cores} cores, device {device}, load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of speech in all")
    parser.add_argument("--file-minutes", type=float, default=2.5, help="minutes per input file")
    parser.add_argument("--models", default="base,tiny.en", help="Whisper models, comma-separated")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--workdir", default=None, help="default: a temporary directory")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="transcribe --batch-size (faster-whisper's batched pipeline if > 1)")
    parser.add_argument("--no-bare", action="store_true", help="the pipeline only")
    parser.add_argument("--max-cut-minutes", type=float, default=0.0,
                        help="ingest --max-cut-duration (minutes; 0: one cut per file)")
    parser.add_argument("--stream", choices=("on", "off", "both"), default="both",
                        help="stream records from stage to stage, run stages one by one, or both")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local worker processes, or a local Ray cluster (Ray Data actors)")
    parser.add_argument("--repo", default=None,
                        help="the synpara checkout to measure (default: this one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(bare(json.loads(args.child))))
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    from synpara.executors.run import worker_counts

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="synpara-bench-"))
    files = make_audio(workdir / "audio", args.minutes, args.file_minutes)
    audio_s = args.minutes * 60
    cores = len(os.sched_getaffinity(0))
    workers, _ = worker_counts(args.workers)
    rows = []
    for model in args.models.split(","):
        bare_figures = None
        for stream in {"on": [True], "off": [False], "both": [False, True]}[args.stream]:
            output = workdir / f"run-{model}-{args.executor}{'' if stream else '-staged'}"
            print(f"# {model}: pipeline over {len(files)} files (stream {stream}) ...",
                  file=sys.stderr)
            pipeline = run_graph(files, output, model, args.device, args.workers,
                                 args.batch_size, args.max_cut_minutes * 60, stream,
                                 args.executor)
            print(f"# {model}: {pipeline['wall']:.1f} s", file=sys.stderr)
            if bare_figures is None and not args.no_bare:
                # The bare models get one worker's threads: sum / workers is then the ideal wall
                # time of the same parallel layout with nothing but the models running.
                print(f"# {model}: bare models ...", file=sys.stderr)
                bare_figures = run_bare(output, model, args.device, max(1, cores // workers),
                                        args.batch_size)
            rows.append({"model": model, "workers": workers, "pipeline": pipeline,
                         "bare": bare_figures, "batch_size": args.batch_size})
    help_s = help_seconds()
    text = table(rows, audio_s, help_s, machine_line(args.device))
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"audio_s": audio_s, "help_s": help_s,
                                               "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
