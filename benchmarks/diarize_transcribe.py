"""Real-time factor and peak memory of diarize and transcribe, alone and chained, per Whisper model.

Each measurement runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own. RTF is
processing seconds / audio seconds (lower is faster), timed after ``setup()`` and after a 5 s
warm-up run, the best of ``--repeat`` runs (the cores are shared: the minimum is the least noisy);
"bare" rows call faster-whisper directly, to show what the stage adds.

    python benchmarks/diarize_transcribe.py                      # the 30 s pyannote sample call
    python benchmarks/diarize_transcribe.py --long-minutes 60    # + an hour of real speech
    python benchmarks/diarize_transcribe.py --threads 2 --only diarize --long-minutes 60

Figures printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
SAMPLE = SHARED / "speech/pyannote_sample/sample.wav"
#: Real recordings concatenated (and repeated) into the long test file.
LONG_SOURCES = [
    "speech/silero_vad/aepyx.wav",
    "speech/pyannote_sample/sample.wav",
    "speech/silero_vad/test.wav",
    "speech/pocketsphinx/misc/chan3.wav",
]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(spec: dict) -> dict:
    """Run one measurement in this (child) process; returns the figures."""
    from synpara.stage import RecordContext
    from synpara.stages.diarize import Diarize, DiarizeConfig
    from synpara.stages.transcribe import Transcribe, TranscribeConfig
    from tests.conftest import cut_for_file

    cut = cut_for_file(spec["audio"])
    warm = cut.truncate(duration=min(5.0, cut.duration))
    context = RecordContext(record_id=cut.id, seed=0, output_dir=Path(tempfile.gettempdir()))
    stages = []
    if spec["kind"] in ("diarize", "both"):
        stages.append(Diarize(DiarizeConfig(threads=spec["threads"])))
    if spec["kind"] in ("transcribe", "both"):
        stages.append(Transcribe(TranscribeConfig(model=spec["model"], beam_size=spec["beam"],
                                                  threads=spec["threads"])))
    if spec["kind"] == "bare":
        from synpara.audio import load_cut_audio
        from synpara.models import load_whisper

        model = load_whisper(spec["model"], threads=spec["threads"])
        list(model.transcribe(load_cut_audio(warm), beam_size=spec["beam"])[0])
        setup_rss = _peak_rss_mb()
        elapsed = float("inf")
        for _ in range(spec["repeat"]):
            start = time.perf_counter()
            samples = load_cut_audio(cut)
            segments, _ = model.transcribe(samples, beam_size=spec["beam"], word_timestamps=True,
                                           vad_filter=True, condition_on_previous_text=False)
            words = sum(len(s.words or []) for s in segments)
            elapsed = min(elapsed, time.perf_counter() - start)
        return {"seconds": elapsed, "rtf": elapsed / cut.duration, "setup_rss_mb": setup_rss,
                "peak_rss_mb": _peak_rss_mb(), "words": words, "duration": cut.duration}
    for stage in stages:
        stage.setup()
        stage.process(warm, context)
    setup_rss = _peak_rss_mb()
    elapsed, per_stage = float("inf"), {}
    for _ in range(spec["repeat"]):
        start = time.perf_counter()
        result, times = cut, {}
        for stage in stages:
            stage_start = time.perf_counter()
            result = stage.process(result, context)
            times[stage.name] = time.perf_counter() - stage_start
        if time.perf_counter() - start < elapsed:
            elapsed, per_stage = time.perf_counter() - start, times
    supervisions = getattr(result, "supervisions", [])
    return {
        "seconds": elapsed,
        "rtf": elapsed / cut.duration,
        "per_stage_rtf": {name: s / cut.duration for name, s in per_stage.items()},
        "setup_rss_mb": setup_rss,
        "peak_rss_mb": _peak_rss_mb(),
        "speakers": len({s.speaker for s in supervisions}),
        "words": sum(len((s.alignment or {}).get("word", [])) for s in supervisions),
        "duration": cut.duration,
    }


def _run_child(spec: dict) -> dict:
    output = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                            capture_output=True, text=True, cwd=REPO)
    if output.returncode != 0:
        raise RuntimeError(output.stderr[-2000:])
    return json.loads(output.stdout.strip().splitlines()[-1])


def make_long_file(minutes: float, directory: Path) -> Path:
    """Concatenate real speech (with 1 s pauses) until ``minutes`` long, as 16 kHz FLAC."""
    from synpara.audio import SAMPLE_RATE, decode, resample, to_mono, write_flac_atomic

    pieces = []
    for relative in LONG_SOURCES:
        decoded = decode(SHARED / relative)
        pieces += [resample(to_mono(decoded.samples), decoded.sample_rate),
                   np.zeros(SAMPLE_RATE, np.float32)]
    block = np.concatenate(pieces)
    target = int(minutes * 60 * SAMPLE_RATE)
    samples = np.tile(block, target // len(block) + 1)[:target]
    path = directory / f"long_{minutes:g}min.flac"
    write_flac_atomic(path, samples)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure (best kept)")
    parser.add_argument("--long-minutes", type=float, default=0.0,
                        help="also measure on this many minutes of concatenated real speech")
    parser.add_argument("--only", choices=["diarize", "transcribe", "both", "bare"],
                        action="append", help="measure only these (repeatable)")
    parser.add_argument("--models", default="base,tiny.en")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return

    kinds = args.only or ["diarize", "bare", "transcribe", "both"]
    with tempfile.TemporaryDirectory() as tmp:
        files = [SAMPLE]
        if args.long_minutes:
            files.append(make_long_file(args.long_minutes, Path(tmp)))
        print(f"threads={args.threads} beam={args.beam}  (RTF = processing s / audio s)")
        print(f"{'audio':>16} {'what':>24} {'RTF':>7} {'diar RTF':>8} {'trans RTF':>9} "
              f"{'setup MB':>8} {'peak MB':>8} {'spk':>4} {'words':>6}")
        for audio in files:
            for kind in kinds:
                models = [None] if kind == "diarize" else args.models.split(",")
                for model in models:
                    spec = {"audio": str(audio), "kind": kind, "model": model, "beam": args.beam,
                            "threads": args.threads,
                            "repeat": args.repeat if audio == SAMPLE else 1}
                    figures = _run_child(spec)
                    per = figures.get("per_stage_rtf", {})
                    what = kind if model is None else f"{kind} {model}"
                    print(f"{audio.name[:16]:>16} {what:>24} {figures['rtf']:7.3f} "
                          f"{per.get('diarize', float('nan')):8.3f} "
                          f"{per.get('transcribe', float('nan')):9.3f} "
                          f"{figures['setup_rss_mb']:8.0f} {figures['peak_rss_mb']:8.0f} "
                          f"{figures.get('speakers', '-'):>4} {figures['words']:>6}", flush=True)


if __name__ == "__main__":
    main()
