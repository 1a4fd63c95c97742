"""export: utterance audio cut from the source at the output rate, every format read back by its
own library and compared with the manifest, tag styles, bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synpara.errors import SynparaError
from synpara.executors.run import run_stage
from synpara.manifest import EVENT, WORD, alignment_item, items, iter_cuts, write_cuts
from synpara.stages.export import Export
from synpara.stages.ingest import Ingest

SOURCE_RATE = 48000
WORDS = [("so", 0.62, 0.9), ("that", 0.95, 1.2), ("was", 1.25, 1.4), ("funny", 1.45, 1.8)]
EVENT_SPAN = ("laughter", 1.95, 2.35)
UTTERANCE = (0.5, 2.5)  # recording seconds


def _source(folder: Path) -> Path:
    """A 3 s stereo 48 kHz file: tones that differ per channel, so a wrong mixdown shows."""
    t = np.arange(3 * SOURCE_RATE) / SOURCE_RATE
    rng = np.random.default_rng(0)
    left = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(len(t))
    right = 0.2 * np.sin(2 * np.pi * 9000 * t)  # above 8 kHz: gone in the 16 kHz working copy
    path = folder / "talk.wav"
    soundfile.write(path, np.stack([left, right], axis=1).astype(np.float32), SOURCE_RATE)
    return path


@pytest.fixture(scope="module")
def utterances(tmp_path_factory) -> Path:
    """A refine-like manifest: one utterance cut out of an ingested 48 kHz recording."""
    folder = tmp_path_factory.mktemp("export_in")
    ingested = run_stage(
        Ingest(), [str(_source(folder))], folder / "ingest", workers=1, progress=False
    )
    (recording_cut,) = list(iter_cuts(ingested.manifest))
    start, end = UTTERANCE
    cut = recording_cut.truncate(offset=start, duration=end - start, preserve_id=True)
    from lhotse import SupervisionSegment

    supervision = SupervisionSegment(
        id="talk-0000",
        recording_id=cut.recording_id,
        start=0.0,
        duration=end - start,
        text=" ".join(w for w, *_ in WORDS),
        speaker="talk-S0",
        language="en",
        alignment={
            WORD: [alignment_item(w, a, b, 0.9) for w, a, b in WORDS],
            EVENT: [alignment_item(EVENT_SPAN[0], EVENT_SPAN[1], EVENT_SPAN[2], 0.8)],
        },
    )
    cut = cut.copy(id="talk-0000", supervisions=[supervision])
    path = folder / "utterances.jsonl.gz"
    write_cuts(path, [cut])
    return path


def _export(manifest: Path, out: Path, **params) -> Path:
    summary = run_stage(Export.from_params(params), str(manifest), out, workers=1, progress=False)
    return Path(summary.manifest)


def test_utterance_audio_is_the_source_at_the_output_rate(utterances, tmp_path):
    import soxr

    manifest = _export(utterances, tmp_path / "out", sample_rate=24000)
    (cut,) = list(iter_cuts(manifest))
    audio, rate = soundfile.read(cut.recording.sources[0].source, dtype="float32")
    assert rate == 24000 and len(audio) == round(2.0 * 24000)
    source, _ = soundfile.read(tmp_path.parent / "export_in0" / "talk.wav", dtype="float32")
    start, end = (round(t * SOURCE_RATE) for t in UTTERANCE)
    expected = soxr.resample(source[start:end].mean(axis=1), SOURCE_RATE, 24000, quality="VHQ")
    assert np.max(np.abs(audio - expected)) < 2e-4  # 16-bit FLAC rounding
    # the 9 kHz tone survives: cut from the 48 kHz source, not the 16 kHz working copy
    spectrum = np.abs(np.fft.rfft(audio))
    assert spectrum[round(9000 * len(audio) / 24000)] > 100 * np.median(spectrum)
    # words and events moved into the file's own time
    assert [round(w.start, 6) for w in items(cut, WORD)] == [round(a - 0.5, 6) for _, a, _ in WORDS]
    (event,) = items(cut, EVENT)
    assert (round(event.start, 6), round(event.end, 6)) == (1.45, 1.85)


def test_never_upsampled_unless_asked(utterances, tmp_path):
    (cut,) = list(iter_cuts(_export(utterances, tmp_path / "a", sample_rate=96000)))
    assert cut.sampling_rate == SOURCE_RATE
    (cut,) = list(iter_cuts(_export(utterances, tmp_path / "b", sample_rate=96000, upsample=True)))
    assert cut.sampling_rate == 96000


def test_every_format_reads_back_with_its_own_library(utterances, tmp_path):
    out = tmp_path / "out"
    formats = ["lhotse", "shar", "hf", "nemo", "csv", "jsonl", "kaldi", "pipe", "textgrid"]
    manifest = _export(utterances, out, formats=formats, tags="orpheus", sample_rate=16000)
    (cut,) = list(iter_cuts(manifest))
    text = "so that was funny <laugh>"
    one_sample = 1 / 16000

    from lhotse import CutSet

    (loaded,) = list(CutSet.from_jsonl(manifest))
    assert loaded.load_audio().shape == (1, 32000)
    (sharded,) = list(CutSet.from_shar(in_dir=out / "shar"))
    assert np.array_equal(sharded.load_audio(), loaded.load_audio())
    assert sharded.supervisions[0].custom["tagged_text"] == text

    import datasets

    dataset = datasets.load_from_disk(str(out / "hf"))
    row = dataset[0]
    samples = row["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape[-1] == 32000
    assert row["tagged_text"] == text and row["speaker"] == "talk-S0"
    assert (
        abs(row["events"][0]["start"] - 1.45) < one_sample
        and row["events"][0]["label"] == "laughter"
    )
    assert datasets.Dataset.from_parquet(str(out / "hf.parquet"))[0]["text"] == "so that was funny"

    nemo = [json.loads(line) for line in (out / "nemo_manifest.json").read_text().splitlines()]
    assert abs(nemo[0]["duration"] - 2.0) < one_sample and nemo[0]["tagged_text"] == text

    with open(out / "metadata.csv", newline="") as handle:
        (csv_row,) = list(csv.DictReader(handle))
    assert abs(float(csv_row["duration"]) - 2.0) < one_sample
    assert json.loads(csv_row["events"])[0]["end"] == pytest.approx(1.85, abs=one_sample)

    assert (out / "wav.scp").read_text().split() == ["talk-0000", cut.recording.sources[0].source]
    assert (out / "text").read_text().strip() == f"talk-0000 {text}"
    assert (out / "utt2spk").read_text().strip() == "talk-0000 talk-S0"
    path, speaker, line = (out / "filelist.txt").read_text().strip().split("|")
    assert Path(path).is_file() and speaker == "talk-S0" and line == text

    from praatio import textgrid

    grid = textgrid.openTextgrid(str(out / "textgrid" / "talk-0000.TextGrid"), True)
    words = [entry.label for entry in grid.getTier("words").entries if entry.label]
    assert words == ["so", "that", "was", "funny"]
    (event_entry,) = [e for e in grid.getTier("events").entries if e.label]
    assert (event_entry.start, event_entry.end, event_entry.label) == (1.45, 1.85, "laughter")


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("canonical", "so that was funny [laughter]"),
        ("synparaspeech", "so that was funny [laugh]"),
        ("nvspeech", "so that was funny [Laughter]"),
        ("dia", "so that was funny (laughs)"),
    ],
)
def test_tag_styles_render_a_known_cut(utterances, tmp_path, style, expected):
    (cut,) = list(iter_cuts(_export(utterances, tmp_path / style, tags=style, audio="none")))
    assert cut.supervisions[0].custom["tagged_text"] == expected


def test_a_label_the_style_cannot_spell_is_a_reject_naming_it(utterances, tmp_path):
    style = tmp_path / "mine.yaml"
    style.write_text("cough: '{cough}'\n")
    summary = run_stage(
        Export.from_params({"tags": str(style), "audio": "none"}),
        str(utterances),
        tmp_path / "out",
        workers=1,
        progress=False,
    )
    assert summary.cuts == 0
    (reject,) = [json.loads(line) for line in _gz_lines(summary.rejects)]
    assert "'laughter'" in reject["reason"] and "mine" in reject["reason"]


def _gz_lines(path: Path) -> list[str]:
    import gzip

    return gzip.open(path, "rt").read().splitlines()


def test_rerun_is_skipped_and_files_are_stable(utterances, tmp_path):
    out = tmp_path / "out"
    first = _export(utterances, out, formats=["kaldi"])
    audio = next((out / "audio").iterdir()).read_bytes()
    assert _export(utterances, out, formats=["kaldi"]) == first
    assert next((out / "audio").iterdir()).read_bytes() == audio


def test_bad_options_and_input(utterances, tmp_path):
    with pytest.raises(SynparaError, match="unknown format"):
        Export.from_params({"formats": ["parquet2"]})
    with pytest.raises(SynparaError, match="unknown tag style"):
        Export.from_params({"tags": "klingon"})
    with pytest.raises(SynparaError, match="sample_rate"):
        Export.from_params({"sample_rate": 10})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "synpara",
            "export",
            "-i",
            str(tmp_path / "missing.jsonl.gz"),
            "-o",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "missing.jsonl.gz" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_file_covers_every_supervision_when_the_cut_is_not_whole_samples(tmp_path):
    """6.1346562 s at 16 kHz is 98154.5 samples: the file gets 98155, never ends early."""
    source = _source(tmp_path)
    ingested = run_stage(Ingest(), [str(source)], tmp_path / "ingest", workers=1, progress=False)
    (recording_cut,) = list(iter_cuts(ingested.manifest))
    import dataclasses

    from lhotse import SupervisionSegment

    # refine writes times to 0.1 us (7 decimals): a cut need not be whole samples long
    cut = dataclasses.replace(recording_cut, start=0.2, duration=2.0000312)
    sup = SupervisionSegment("odd-0", cut.recording_id, 0.0, cut.duration, text="so",
                             alignment={WORD: [alignment_item("so", 0.3, 2.2000312, 0.9)]})
    write_cuts(tmp_path / "odd.jsonl.gz", [cut.copy(id="odd", supervisions=[sup])])
    (out,) = list(iter_cuts(_export(tmp_path / "odd.jsonl.gz", tmp_path / "out",
                                    sample_rate=16000)))
    assert out.recording.num_samples == 32001
    assert all(s.end <= out.duration + 1e-9 for s in out.supervisions)
    assert all(w.end <= out.duration + 1e-9 for w in items(out, WORD))
