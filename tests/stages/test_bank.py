"""bank: labels from folders, file names and a CSV; duplicates, silence and unlabelled clips are
rejects with reasons; mined events become clips; measures and licences are recorded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from synpara.bank import bundled_bank, label_for_path, licence_for, load_bank
from synpara.cli import main
from synpara.manifest import alignment_item, iter_json_lines, write_cuts
from tests.conftest import SHARED_DATA, cut_for_file
from tests.synth import write_wav

VOCAL = SHARED_DATA / "vocal"


def _run(args: list[str]) -> None:
    main(args)  # returns on success, exits non-zero on an error


def _rejects(out: Path) -> dict[str, str]:
    return {r["id"]: r["reason"] for _, r in iter_json_lines(out / "rejects.jsonl.gz")}


def test_label_sources_and_licences(tmp_path: Path) -> None:
    assert label_for_path(Path("in/throat-clearing/a.wav")) == ("throat_clearing", "folder")
    assert label_for_path(Path("in/x/hedgewars_Default_PoisonMoan.ogg")) == ("groan", "file name")
    assert label_for_path(Path("in/x/take_03.wav"), {"take_03.wav": "sigh"})[0] == "sigh"
    assert label_for_path(Path("in/x/take_03.wav"))[0] is None
    # INDEX.csv names one licence per file pack: the clip gets its own pack's
    licence = licence_for(VOCAL / "gasp_oa_neko.ogg")
    assert licence is not None and licence.startswith("GPL-2+") and "GFDL" not in licence


def test_bank_cli_folders_names_duplicates_silence(tmp_path: Path) -> None:
    clips = tmp_path / "in"
    (clips / "laughter").mkdir(parents=True)
    (clips / "misc").mkdir()
    shutil.copy(VOCAL / "laugh_scratch_female.wav", clips / "laughter" / "a.wav")
    shutil.copy(VOCAL / "hedgewars_Default_PoisonCough.ogg", clips / "misc")
    shutil.copy(VOCAL / "hedgewars_Default_Laugh.ogg", clips / "misc")
    shutil.copy(VOCAL / "hedgewars_Classic_Laugh.ogg", clips / "misc")  # same bytes as Default
    shutil.copy(VOCAL / "sneeze_scratch_male.wav", clips / "misc" / "take_03.wav")
    write_wav(clips / "laughter" / "silent.wav", np.zeros(16000, dtype=np.float32))
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\ntake_03.wav,sneezing\n")
    write_wav(clips / "misc" / "take_04.wav", np.zeros(800, dtype=np.float32) + 0.1)
    out = tmp_path / "bank"
    _run(
        [
            "bank",
            "-i",
            str(clips),
            "-o",
            str(out),
            "--labels",
            str(labels),
            "--workers",
            "1",
            "--no-embedding",
        ]
    )
    bank = {clip.id: clip for clip in load_bank(out / "cuts.jsonl.gz")}
    assert {c.label for c in bank.values()} == {"laughter", "cough", "sneeze"}
    assert bank["take_03"].label == "sneeze"  # from the CSV
    rejects = _rejects(out)
    assert "duplicate" in rejects["hedgewars_Default_Laugh"]
    assert "silent" in rejects["silent"]
    assert "no label" in rejects["take_04"]
    laugh = bank["a"]
    assert laugh.licence is None or "CC-BY-SA" in laugh.licence
    # trimmed to its sound, measured
    assert laugh.duration < 1.23 and laugh.loudness_lufs > -30 and laugh.f0_hz > 150
    samples = laugh.load()
    assert len(samples) == round(laugh.duration * laugh.sample_rate)


def test_bank_from_mined_manifest_with_embedding(tmp_path: Path) -> None:
    from lhotse import SupervisionSegment

    from synpara.audio import decode, to_mono

    vocal = to_mono(decode(VOCAL / "laugh_scratch_male1.wav").samples)
    vocal16 = np.interp(np.arange(0, len(vocal), 11025 / 16000), np.arange(len(vocal)), vocal)
    host = np.concatenate([np.zeros(16000), vocal16, np.zeros(16000)]).astype(np.float32)
    cut = cut_for_file(write_wav(tmp_path / "mined.wav", host), "mined")
    duration = len(vocal16) / 16000
    cut.supervisions = [
        SupervisionSegment(
            id="mined-0",
            recording_id="mined",
            start=0.0,
            duration=cut.duration,
            alignment={
                "word": [alignment_item("hello", 0.1, 0.5, 0.9)],
                "event": [
                    alignment_item("laughter", 1.0, 1.0 + duration, 0.8),
                    alignment_item("cough", 0.3, 0.6, 0.9),  # overlaps a word: skipped
                    alignment_item("sigh", 2.0, 2.3, 0.2),
                ],  # under min-score: skipped
            },
        )
    ]
    manifest = tmp_path / "detect" / "cuts.jsonl.gz"
    write_cuts(manifest, [cut])
    out = tmp_path / "bank"
    _run(["bank", "-i", str(manifest), "-o", str(out), "--workers", "1", "--min-score", "0.5"])
    (clip,) = load_bank(out / "cuts.jsonl.gz")
    assert clip.label == "laughter" and clip.id == "mined-ev001"
    assert abs(clip.duration - duration) < 0.1
    assert clip.embedding is not None and len(clip.embedding) == 192
    assert abs(float(np.linalg.norm(clip.embedding)) - 1.0) < 1e-3


def test_bank_no_input_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["bank", "-i", str(empty), "-o", str(tmp_path / "out"), "--no-embedding"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "out" / "cuts.jsonl.gz").exists()


def test_bundled_bank_covers_the_main_categories() -> None:
    clips = bundled_bank()
    assert {"laughter", "cough", "sneeze", "sigh", "gasp", "breath"} <= {c.label for c in clips}
    assert all(c.licence for c in clips)
    for clip in clips:
        assert len(clip.load()) == round(clip.duration * clip.sample_rate)
