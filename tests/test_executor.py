"""The executor (run, journal, worker): resume after SIGKILL, completion keyed by the input's
content, failures apart from rejects, manifest validation, worker caps, the finalise hook."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synpara.audio import load_cut_audio
from synpara.errors import SynparaError
from synpara.executors.journal import DONE_FILE, PARTS_DIR, SUCCESS_FILE
from synpara.executors.run import run_stage, worker_counts
from synpara.executors.worker import available_cores
from synpara.manifest import alignment_item, iter_json_lines, write_cuts
from synpara.stage import FinaliseContext, Stage, StageConfig
from synpara.stages.ingest import Ingest
from tests.conftest import cut_for_file, synpara_command, write_pipeline

N_FILES = 48


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory) -> Path:
    """Distinct 20 s stereo 48 kHz files: slow enough to ingest that a kill lands mid-stage."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    rate = 48000
    t = np.arange(rate * 20) / rate
    for index in range(N_FILES):
        tone = 0.3 * np.sin(2 * np.pi * (200 + 10 * index) * t)
        noise = 0.05 * rng.standard_normal((len(t), 2))
        soundfile.write(
            folder / f"file{index:02d}.wav", (tone[:, None] + noise).astype(np.float32), rate
        )
    return folder


def _pipeline_file(tmp_path: Path, inputs: list[str], output: Path, workers: int = 1) -> Path:
    return write_pipeline(tmp_path, inputs, output, workers)


def _manifest_text(directory: Path) -> str:
    """Manifest content with the output directory blanked (working-copy paths are absolute)."""
    with gzip.open(directory / "cuts.jsonl.gz", "rt") as handle:
        return handle.read().replace(str(directory.resolve()), "<DIR>")


_synpara = synpara_command


def test_killed_run_resumes_without_redoing_work(tmp_path, audio_folder):
    killed_out = tmp_path / "killed"
    pipe = _pipeline_file(tmp_path, [str(audio_folder)], killed_out)
    process = subprocess.Popen(_synpara("run", str(pipe)), stderr=subprocess.DEVNULL)
    done_log = killed_out / "01-ingest" / PARTS_DIR / DONE_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if done_log.exists() and done_log.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = done_log.read_bytes().count(b"\n")
    assert 5 <= done_before < N_FILES, "the kill must land mid-stage"
    assert not (killed_out / "01-ingest" / SUCCESS_FILE).exists()

    subprocess.run(_synpara("run", str(pipe)), check=True, capture_output=True)
    marker = json.loads((killed_out / "01-ingest" / SUCCESS_FILE).read_text())
    # every record processed exactly once over the two runs
    assert marker["resumed"] >= done_before - 1  # a half-written last line is redone
    assert marker["resumed"] + marker["processed"] == N_FILES

    clean_out = tmp_path / "clean"
    clean_pipe = _pipeline_file(tmp_path, [str(audio_folder)], clean_out, workers=2)
    subprocess.run(_synpara("run", str(clean_pipe)), check=True, capture_output=True)
    # killed + resumed (1 worker) == uninterrupted (2 workers), line for line
    assert _manifest_text(killed_out / "01-ingest") == _manifest_text(clean_out / "01-ingest")


def test_finished_stage_is_skipped_and_other_config_refused(tmp_path, shared_data):
    inputs = [str(shared_data / "speech/jfk/jfk.wav")]
    out = tmp_path / "out"
    first = run_stage(Ingest(), inputs, out, workers=1, progress=False)
    assert first.cuts == 1 and not first.skipped
    again = run_stage(Ingest(), inputs, out, workers=1, progress=False)
    assert again.skipped
    with pytest.raises(SynparaError, match="another ingest config"):
        run_stage(Ingest.from_params({"sample_rate": 8000}), inputs, out, workers=1, progress=False)
    with pytest.raises(SynparaError, match="another ingest config"):
        run_stage(Ingest(), inputs, out, workers=1, seed=1, progress=False)
    replaced = run_stage(
        Ingest.from_params({"sample_rate": 8000}),
        inputs,
        out,
        workers=1,
        overwrite=True,
        progress=False,
    )
    assert replaced.cuts == 1 and not replaced.skipped


# --------------------------------------------------------------------------- a small test stage


@dataclass(frozen=True)
class _LoudnessConfig(StageConfig):
    fail_ids: tuple[str, ...] = field(default=(), metadata={"help": "ids that raise a bug"})
    reject_ids: tuple[str, ...] = field(default=(), metadata={"help": "ids rejected"})


class _Loudness(Stage[_LoudnessConfig]):
    """Reads each cut's audio and stores its peak: a model-free stage with real audio I/O."""

    name = "loudness"
    version = "1"
    Config = _LoudnessConfig
    setup_threads: int | None = None

    def setup(self, threads: int = 1) -> None:
        self.setup_threads = threads

    def process(self, cut, context):
        if cut.id in self.config.fail_ids:
            raise RuntimeError(f"a bug on {cut.id}\nsecond line of the message")
        if cut.id in self.config.reject_ids:
            raise SynparaError("too quiet\nlibrary detail that must not reach the manifest")
        samples = load_cut_audio(cut)
        cut.custom = {**(cut.custom or {}), "peak": round(float(np.abs(samples).max()), 4)}
        return cut


@pytest.fixture
def eight_cuts(tmp_path, shared_data) -> Path:
    """A manifest of 8 cuts, each over its own copy of a short recording."""
    audio = tmp_path / "audio"
    audio.mkdir()
    cuts = []
    for index in range(8):
        copy = audio / f"rec{index}.wav"
        shutil.copy(shared_data / "speech/praatio/bobby.wav", copy)
        cuts.append(cut_for_file(copy, f"rec{index}"))
    manifest = tmp_path / "in" / "cuts.jsonl.gz"
    write_cuts(manifest, cuts)
    return manifest


def _ids(path: Path) -> list[str]:
    return [record["id"] for _, record in iter_json_lines(path)]


def _rejects(directory: Path) -> list[dict]:
    return [record for _, record in iter_json_lines(directory / "rejects.jsonl.gz")]


def _rewrite(manifest: Path, records: list[dict]) -> None:
    with gzip.open(manifest, "wt") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)


# --------------------------------------------------------------------------- stale input


def test_a_file_added_to_the_ingest_folder_is_processed(tmp_path, shared_data):
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(shared_data / "speech/praatio/bobby.wav", folder)
    out = tmp_path / "ingest"
    first = run_stage(Ingest(), [str(folder)], out, workers=1, progress=False)
    assert first.cuts == 1
    shutil.copy(shared_data / "speech/praatio/mary.wav", folder)
    second = run_stage(Ingest(), [str(folder)], out, workers=1, progress=False)
    assert not second.skipped
    assert (second.cuts, second.resumed, second.processed) == (2, 1, 1)
    assert _ids(out / "cuts.jsonl.gz") == ["bobby", "mary"]
    (folder / "bobby.wav").unlink()
    third = run_stage(Ingest(), [str(folder)], out, workers=1, progress=False)
    assert (third.cuts, third.dropped, third.processed) == (1, 1, 0)
    assert _ids(out / "cuts.jsonl.gz") == ["mary"]
    assert run_stage(Ingest(), [str(folder)], out, workers=1, progress=False).skipped


def test_cutting_the_input_manifest_to_one_cut_gives_one_cut(tmp_path, eight_cuts):
    out = tmp_path / "loudness"
    assert run_stage(_Loudness(), eight_cuts, out, workers=1, progress=False).cuts == 8
    records = [record for _, record in iter_json_lines(eight_cuts)]
    _rewrite(eight_cuts, records[:1])
    again = run_stage(_Loudness(), eight_cuts, out, workers=1, progress=False)
    assert not again.skipped
    assert (again.cuts, again.resumed, again.dropped, again.processed) == (1, 1, 7, 0)
    assert _ids(out / "cuts.jsonl.gz") == ["rec0"]


def test_a_changed_record_is_redone_and_the_others_kept(tmp_path, eight_cuts):
    out = tmp_path / "loudness"
    run_stage(_Loudness(), eight_cuts, out, workers=1, progress=False)
    records = [record for _, record in iter_json_lines(eight_cuts)]
    records[3]["duration"] = 1.0
    _rewrite(eight_cuts, records)
    again = run_stage(_Loudness(), eight_cuts, out, workers=1, progress=False)
    assert (again.processed, again.resumed, again.cuts) == (1, 7, 8)
    durations = [record["duration"] for _, record in iter_json_lines(out / "cuts.jsonl.gz")]
    assert durations[3] == 1.0 and durations[2] != 1.0


# --------------------------------------------------------------------------- failures


def test_a_bug_fails_the_stage_and_a_rerun_retries_only_that_record(tmp_path, eight_cuts):
    out = tmp_path / "loudness"
    buggy = _Loudness.from_params({"fail_ids": ["rec2"]})
    with pytest.raises(SynparaError, match=r"1 of 8 records failed \(1x RuntimeError: a bug on"):
        run_stage(buggy, eight_cuts, out, workers=1, progress=False)
    assert not (out / SUCCESS_FILE).exists() and not (out / "cuts.jsonl.gz").exists()
    # the same config resumes: the 7 done are kept, only rec2 is tried again
    allowed = run_stage(buggy, eight_cuts, out, workers=1, progress=False, max_failures=1)
    assert (allowed.failed, allowed.cuts, allowed.processed, allowed.resumed) == (1, 7, 0, 7)
    assert "1 FAILED (1x RuntimeError: a bug on rec2)" in allowed.line()
    assert json.loads((out / SUCCESS_FILE).read_text())["failed"] == 1
    # a finished stage with failures is not complete: the next run retries what failed
    with pytest.raises(SynparaError, match="1 of 8 records failed"):
        run_stage(buggy, eight_cuts, out, workers=1, progress=False, max_failures=0.1)
    tolerant = run_stage(buggy, eight_cuts, out, workers=1, progress=False, max_failures=0.2)
    assert tolerant.failed == 1


def test_a_missing_audio_file_restored_is_retried(tmp_path, eight_cuts, caplog):
    caplog.set_level(logging.DEBUG, logger="synpara")  # what -v shows
    out = tmp_path / "loudness"
    audio = eight_cuts.parent.parent / "audio"
    (audio / "rec5.wav").rename(tmp_path / "away.wav")
    with pytest.raises(SynparaError, match="FileNotFoundError: .*rec5.wav: audio file not found"):
        run_stage(_Loudness(), eight_cuts, out, workers=2, progress=False)
    assert "Traceback (most recent call last)" in caplog.text  # from the worker process
    (tmp_path / "away.wav").rename(audio / "rec5.wav")
    rerun = run_stage(_Loudness(), eight_cuts, out, workers=2, progress=False)
    assert (rerun.processed, rerun.resumed, rerun.cuts, rerun.failed) == (1, 7, 8, 0)


def test_rejects_keep_one_line_and_are_counted_by_reason(tmp_path, eight_cuts, caplog):
    caplog.set_level(logging.DEBUG, logger="synpara")  # what -v shows
    out = tmp_path / "loudness"
    audio = eight_cuts.parent.parent / "audio"
    (audio / "rec1.wav").write_bytes(b"RIFF not really a wave file")
    stage = _Loudness.from_params({"reject_ids": ["rec6", "rec7"]})
    summary = run_stage(stage, eight_cuts, out, workers=1, progress=False)
    rejects = {reject["id"]: reject["reason"] for reject in _rejects(out)}
    assert set(rejects) == {"rec1", "rec6", "rec7"}
    assert all("\n" not in reason for reason in rejects.values())
    assert rejects["rec6"] == "too quiet"
    assert rejects["rec1"].startswith(f"{audio / 'rec1.wav'}: cannot load audio of cut rec1")
    assert len(rejects["rec1"]) < 300
    assert summary.reject_reasons["too quiet"] == 2
    assert "2x too quiet" in summary.line()
    # the whole library message is for -v, not for the manifest or the journal
    assert "library detail that must not reach the manifest" in caplog.text
    journal = gzip.open(out / PARTS_DIR / "done.jsonl.gz", "rt").read()
    assert "library detail" not in journal


def test_bad_manifest_records_are_rejected_naming_the_field(tmp_path, eight_cuts):
    records = [record for _, record in iter_json_lines(eight_cuts)]
    records[0]["start"] = -1.0
    records[1]["duration"] = 0.0
    word = ["far", 50.0, 0.5, None]
    event = list(alignment_item("not_a_label", 0.1, 0.2))
    for index, alignment in ((2, {"word": [word]}), (3, {"event": [event]})):
        records[index]["supervisions"] = [
            {
                "id": "s",
                "recording_id": f"rec{index}",
                "start": 0.0,
                "duration": 1.0,
                "alignment": alignment,
            }
        ]
    _rewrite(eight_cuts, records)
    out = tmp_path / "loudness"
    summary = run_stage(_Loudness(), eight_cuts, out, workers=1, progress=False)
    reasons = {reject["id"]: reject["reason"] for reject in _rejects(out)}
    assert summary.cuts == 4
    assert reasons["rec0"].startswith("start: negative")
    assert reasons["rec1"].startswith("duration: must be positive")
    assert "alignment.word[0] ('far')" in reasons["rec2"]
    assert "not a label of the ontology" in reasons["rec3"]
    lenient = run_stage(
        _Loudness(),
        eight_cuts,
        tmp_path / "lenient",
        workers=1,
        progress=False,
        allow_unknown_labels=True,
    )
    assert lenient.cuts == 5


# --------------------------------------------------------------------------- options


def test_seed_must_not_be_negative(tmp_path, eight_cuts):
    with pytest.raises(SynparaError, match="seed must be an integer >= 0"):
        run_stage(_Loudness(), eight_cuts, tmp_path / "o", seed=-7, progress=False)
    assert not (tmp_path / "o").exists()


def test_workers_are_capped_at_cores_and_at_records(tmp_path, shared_data):
    cores = available_cores()
    assert worker_counts(1000) == (cores, 1)
    assert worker_counts(1000, oversubscribe=True) == (1000, 1)
    assert worker_counts(None) == (cores, 1)
    assert worker_counts(1) == (1, cores)
    with pytest.raises(SynparaError, match="workers must be >= 1"):
        worker_counts(0)
    # one record with many workers: no process pool at all, the record runs here
    manifest = tmp_path / "one.jsonl.gz"
    write_cuts(manifest, [cut_for_file(shared_data / "speech/praatio/bobby.wav")])
    stage = _Loudness()
    summary = run_stage(stage, manifest, tmp_path / "o", workers=1000, progress=False)
    assert summary.cuts == 1
    assert stage.setup_threads == 1  # set up in this process, threads as for `cores` workers


def test_setup_gets_the_thread_count(tmp_path, eight_cuts):
    stage = _Loudness()
    run_stage(stage, eight_cuts, tmp_path / "o", workers=1, progress=False)
    assert stage.setup_threads == available_cores()


# --------------------------------------------------------------------------- finalise


class _Listing(_Loudness):
    """Writes a list of its cut ids once all records are done (a corpus-wide step)."""

    name = "listing"

    def finalise(self, context: FinaliseContext) -> None:
        calls = context.output_dir / "finalise_calls"
        calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
        if (context.output_dir / "crash_in_finalise").exists():
            raise RuntimeError("killed during finalise")
        ids = _ids(context.manifest)
        (context.output_dir / "list.txt").write_text("\n".join(ids) + "\n")
        write_cuts(context.manifest, [])  # a corpus-wide filter may drop cuts: here all of them


def test_finalise_runs_once_after_all_records_and_again_when_cut_short(tmp_path, eight_cuts):
    out = tmp_path / "listing"
    out.mkdir()
    (out / "crash_in_finalise").touch()
    with pytest.raises(RuntimeError, match="killed during finalise"):
        run_stage(_Listing(), eight_cuts, out, workers=1, progress=False)
    assert not (out / SUCCESS_FILE).exists() and not (out / "list.txt").exists()
    (out / "crash_in_finalise").unlink()
    summary = run_stage(_Listing(), eight_cuts, out, workers=1, progress=False)
    assert (summary.resumed, summary.processed) == (8, 0)  # records not redone
    assert (out / "list.txt").read_text().split() == [f"rec{i}" for i in range(8)]
    assert summary.cuts == 0  # counted after finalise filtered the manifest
    assert (out / "finalise_calls").read_text() == "xx"
    assert run_stage(_Listing(), eight_cuts, out, workers=1, progress=False).skipped
    assert (out / "finalise_calls").read_text() == "xx"  # a finished finalise is not redone


def test_a_finished_stage_without_an_input_key_is_refused_not_served(tmp_path, shared_data):
    inputs = [str(shared_data / "speech/jfk/jfk.wav")]
    out = tmp_path / "out"
    run_stage(Ingest(), inputs, out, workers=1, progress=False)
    stage_file = out / "stage.json"
    info = json.loads(stage_file.read_text())
    del info["input_key"]  # as an older synpara wrote it: what it read is unknown
    stage_file.write_text(json.dumps(info))
    with pytest.raises(SynparaError, match="did not record what it read; pass --overwrite"):
        run_stage(Ingest(), inputs, out, workers=1, progress=False)
    assert run_stage(Ingest(), inputs, out, workers=1, progress=False, overwrite=True).cuts == 1


def test_worker_processes_start_with_their_share_of_math_threads(monkeypatch):
    # numpy/torch size their thread pools when a spawned worker imports them, before any code of
    # ours runs there: the variables must already be set when the worker starts (unset, two
    # workers on two cores each ran one BLAS thread per core and detect's CPU per record doubled).
    import os

    from synpara.executors.local import WorkerPool
    from synpara.executors.worker import THREAD_VARIABLES

    for variable in THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with WorkerPool(2, threads=1) as pool:
        seen = [pool.executor().submit(os.getenv, v).result() for v in THREAD_VARIABLES]
    assert seen == ["1"] * len(THREAD_VARIABLES)
    assert all(v not in os.environ for v in THREAD_VARIABLES)  # the driver's own are restored
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # what a user set is theirs
    with WorkerPool(2, threads=1) as pool:
        assert pool.executor().submit(os.getenv, "OMP_NUM_THREADS").result() == "3"
    assert os.environ["OMP_NUM_THREADS"] == "3"


def _print_and_register(text: str) -> None:
    """In a worker: output without a newline, and an exit handler as a library adds one."""
    import atexit
    import sys

    sys.stdout.write(text)
    atexit.register(print, f"{text}-at-exit", file=sys.stderr)


def test_workers_exit_without_losing_output_or_exit_handlers(capfd):
    # Workers end with os._exit, skipping the interpreter's teardown (1.4 s for one that imported
    # pyannote.audio): through a real pool, they still exit cleanly, and what they wrote and the
    # exit handlers their libraries registered still reach the parent (the flush itself is checked
    # by the test below, without PYTHONUNBUFFERED).
    from synpara.executors.local import WorkerPool

    with WorkerPool(2, threads=1) as pool:
        executor = pool.executor()
        executor.submit(_print_and_register, "worker-said").result()
        processes = list(executor._processes.values())  # spawned on demand
    assert processes and all(process.exitcode == 0 for process in processes)
    captured = capfd.readouterr()
    assert "worker-said" in captured.out
    assert "worker-said-at-exit" in captured.err


def test_a_worker_exit_skips_the_teardown_but_not_later_handlers_or_buffered_output():
    # What runs before a worker's exit hook is the interpreter's own (and multiprocessing's) part
    # of the teardown: skipped. Handlers registered after it (libraries a stage imports) run, and
    # output still in a pipe's buffer is flushed, as the normal exit would.
    import os
    import sys

    script = ("import atexit; atexit.register(print, 'registered-before')\n"
              "from synpara.executors.local import _worker_start; _worker_start()\n"
              "atexit.register(print, 'registered-after')\n"
              "print('buffered', end='')\n")
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, env=environment)
    assert "registered-after" in result.stdout and "buffered" in result.stdout
    assert "registered-before" not in result.stdout
