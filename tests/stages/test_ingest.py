"""ingest on every real format in ../shared/data, and on broken files among good ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from synpara.audio import decode
from synpara.errors import SynparaError
from synpara.executors.run import run_stage
from synpara.manifest import iter_cuts, iter_json_lines
from synpara.stage import RecordContext
from synpara.stages.ingest import Ingest, expand_inputs

FORMAT_SAMPLES = [
    "speech/jfk/jfk.wav",  # wav 16 kHz
    "speech/praatio/bobby.wav",  # wav 48 kHz
    "speech/asterisk/hello-world.wav",  # wav 8 kHz telephone
    "speech/mfa/wav/13697_11991_000000.opus",  # opus
    "speech/mfa/wav/common_voice_en_22058264.mp3",  # mp3 48 kHz
    "vocal/hedgewars_Classic_Laugh.ogg",  # ogg vorbis, stereo 44.1 kHz
    "speech/mfa/wav/michaelandsickmichael.wav",  # two channels
]


def _ffprobe(path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=sample_rate,channels,duration:format=duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    stream = data["streams"][0]
    duration = float(stream.get("duration") or data["format"]["duration"])
    return {
        "rate": int(stream["sample_rate"]),
        "channels": int(stream["channels"]),
        "duration": duration,
    }


@pytest.fixture(scope="module")
def m4a_file(tmp_path_factory, shared_data):
    """No m4a ships in shared/data: make one from a real recording with ffmpeg's AAC encoder."""
    target = tmp_path_factory.mktemp("m4a") / "jfk.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(shared_data / "speech/jfk/jfk.wav"),
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            str(target),
        ],
        check=True,
    )
    return target


def _ingest_one(path, tmp_path):
    stage = Ingest()
    source = next(iter(stage.iter_records([path]))).payload
    return stage.process(source, RecordContext(record_id="x", seed=0, output_dir=tmp_path))


@pytest.mark.parametrize("relative", FORMAT_SAMPLES)
def test_every_format_matches_ffprobe(relative, shared_data, tmp_path):
    path = shared_data / relative
    probe = _ffprobe(path)
    cut = _ingest_one(path, tmp_path)
    source = cut.custom["synpara"]["source"]
    # Opus always decodes at 48 kHz in ffmpeg; libsndfile reports the encoder's input rate.
    # Either is a true rate of the file: trust the decoder that read it.
    expected_rate = (
        soundfile.info(str(path)).samplerate if source["decoder"] == "soundfile" else probe["rate"]
    )
    assert source["sample_rate"] == expected_rate
    assert source["channels"] == probe["channels"]
    # compressed formats pad/trim a few ms (encoder delay); wav must be exact
    tolerance = 1e-3 if path.suffix == ".wav" else 0.06
    assert source["duration"] == pytest.approx(probe["duration"], abs=tolerance)
    assert cut.duration == pytest.approx(source["duration"], abs=1e-3)
    info = soundfile.info(cut.recording.sources[0].source)
    assert info.samplerate == 16000 and info.channels == 1
    assert info.frames == cut.recording.num_samples


def test_m4a_goes_through_ffmpeg(m4a_file, tmp_path):
    cut = _ingest_one(m4a_file, tmp_path)
    assert cut.custom["synpara"]["source"]["decoder"] == "ffmpeg"
    assert cut.duration == pytest.approx(11.0, abs=0.1)


def test_resampling_keeps_a_tone_in_place(tmp_path):
    rate = 44100
    t = np.arange(rate * 2) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    stereo = np.stack([tone, tone], axis=1)
    soundfile.write(tmp_path / "tone.wav", stereo, rate)
    cut = _ingest_one(tmp_path / "tone.wav", tmp_path)
    samples = cut.load_audio()[0]
    assert len(samples) == 32000
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * 16000 / len(samples) == pytest.approx(440, abs=1)
    assert np.max(np.abs(samples)) == pytest.approx(0.5, abs=0.01)


def _write_bad_files(folder, shared_data):
    folder.mkdir()
    good = ["speech/jfk/jfk.wav", "speech/asterisk/hello-world.wav", "vocal/gasp_oa_neko.ogg"]
    for relative in good:
        shutil.copy(shared_data / relative, folder)
    (folder / "empty.wav").write_bytes(b"")
    jfk = (shared_data / "speech/jfk/jfk.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(jfk[: len(jfk) // 3])
    flac = (shared_data / "speech/mfa/wav/mfa_breaths.flac").read_bytes()
    (folder / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    (folder / "random.mp3").write_bytes(np.random.default_rng(0).bytes(20000))
    soundfile.write(folder / "zero.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    nan = np.full(16000, np.nan, dtype=np.float32)
    soundfile.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    shutil.copy(shared_data / "speech/jfk/jfk.wav", folder / "jfk_copy.wav")  # same sha256
    return good


def test_bad_files_are_rejected_and_good_ones_finish(tmp_path, shared_data):
    folder = tmp_path / "in"
    good = _write_bad_files(folder, shared_data)
    summary = run_stage(Ingest(), [str(folder)], tmp_path / "out", workers=2, progress=False)
    cut_ids = sorted(cut.id for cut in iter_cuts(summary.manifest))
    assert cut_ids == sorted(p.split("/")[-1].rsplit(".", 1)[0] for p in good)
    rejects = {r["id"]: r for _, r in iter_json_lines(summary.rejects)}
    expected = {
        "empty": "empty file",
        "truncated-": "truncated",  # two truncated files share a stem: ids get a path hash
        "random": "not decodable|corrupt",
        "zero": "zero length",
        "nan": "NaN",
        "jfk_copy": "duplicate of .*jfk.wav",
    }
    assert len(rejects) == 7
    for prefix, pattern in expected.items():
        matching = [r for key, r in rejects.items() if key.startswith(prefix)]
        assert matching, f"no reject for {prefix}: {rejects}"
        for reject in matching:
            assert reject["stage"] == "ingest" and reject["source"].startswith(str(folder))
            import re

            assert re.search(pattern, reject["reason"]), reject


def test_decode_errors_name_the_file(tmp_path):
    with pytest.raises(SynparaError, match="missing.wav: no such file"):
        decode(tmp_path / "missing.wav")
    with pytest.raises(SynparaError, match="no such file or directory"):
        expand_inputs([str(tmp_path / "nope")])


def test_list_files_and_globs(tmp_path, shared_data):
    listing = tmp_path / "files.txt"
    listing.write_text(f"{shared_data}/speech/jfk/jfk.wav\n# comment\n\n")
    pattern = str(shared_data / "speech/praatio/*.wav")
    paths = expand_inputs([str(listing), pattern])
    assert [p.name for p in paths] == ["jfk.wav", "bobby.wav", "mary.wav"]  # sorted by path


def test_cli_missing_input_is_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "synpara",
            "ingest",
            "-i",
            str(tmp_path / "nothere.wav"),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nothere.wav: no such file or directory" in lines[0]
    assert not (tmp_path / "out").exists()


def test_long_recording_splits_into_cuts_at_pauses(tmp_path, shared_data):
    # Real speech with real pauses, ~75 s at 8 kHz (the working rate differs from the VAD's).
    from synpara.audio import resample, to_mono

    pieces = []
    for relative in ("speech/jfk/jfk.wav", "speech/pyannote_sample/sample.wav",
                     "speech/arctic/arctic_a0009.wav", "speech/jfk/jfk.wav"):
        decoded = decode(shared_data / relative)
        pieces += [resample(to_mono(decoded.samples), decoded.sample_rate, 8000),
                   np.zeros(4000, np.float32)]
    samples = np.concatenate(pieces)
    soundfile.write(tmp_path / "long.wav", samples, 8000, subtype="FLOAT")
    out = tmp_path / "out"
    stage = Ingest.from_params({"sample_rate": 8000, "max_cut_duration": 20})
    run_stage(stage, [str(tmp_path / "long.wav")], out, workers=1)
    cuts = list(iter_cuts(out / "cuts.jsonl.gz"))
    assert len(cuts) >= 4
    assert [c.id for c in cuts] == [f"long-{i:03d}" for i in range(len(cuts))]
    assert {c.recording_id for c in cuts} == {"long"}
    # consecutive, whole samples, covering the recording exactly
    assert cuts[0].start == 0 and cuts[-1].end == pytest.approx(len(samples) / 8000, abs=1e-9)
    for before, after in zip(cuts, cuts[1:]):
        assert after.start == pytest.approx(before.end, abs=1e-9)
        assert round(after.start * 8000, 6) == round(after.start * 8000)
    assert all(c.duration <= 20 + 1e-9 for c in cuts)
    # each boundary lies in a pause: quieter than the speech around it
    loud = float(np.sqrt(np.mean(samples ** 2)))
    for cut in cuts[1:]:
        at = round(cut.start * 8000)
        assert float(np.sqrt(np.mean(samples[at - 400: at + 400] ** 2))) < 0.2 * loud
    # each cut's audio is that stretch of the working copy
    middle = cuts[1]
    np.testing.assert_allclose(middle.load_audio()[0], samples[round(middle.start * 8000):
                                                               round(middle.end * 8000)],
                               atol=1e-4)


@pytest.mark.parametrize("value", [5, -1])
def test_absurd_max_cut_duration_is_refused(value):
    with pytest.raises(SynparaError, match="max_cut_duration"):
        Ingest.from_params({"max_cut_duration": value})
