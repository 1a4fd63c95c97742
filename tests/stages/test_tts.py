"""tts: one cut per line, word times exact (each word's own samples sit where the manifest says),
pauses at punctuation, deterministic under the seed, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synpara.cli import main
from synpara.manifest import items, iter_cuts
from synpara.models.tts import load_engine


def _lines(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lines.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_tts_word_times_are_exact(tmp_path: Path) -> None:
    lines = _lines(tmp_path, "# comment\nSo that was funny, and then she left.\n\nHello there.\n")
    out = tmp_path / "tts"
    main(
        [
            "tts",
            "-i",
            str(lines),
            "-o",
            str(out),
            "--workers",
            "1",
            "--voice",
            "en-us",
            "--noise-db",
            "-70",
        ]
    )
    cuts = list(iter_cuts(out / "cuts.jsonl.gz"))
    assert [c.id for c in cuts] == ["lines-0002", "lines-0004"]
    cut = cuts[0]
    words = items(cut, "word")
    assert [w.symbol for w in words] == "So that was funny and then she left".split()
    assert cut.supervisions[0].custom["tagged_text"] == "So that was funny and then she left"
    assert cut.supervisions[0].language == "en"  # insert's gate decodes in it, not detecting it
    assert cut.custom["synpara"]["source"]["sample_rate"] == 22050
    audio, rate = soundfile.read(cut.recording.sources[0].source, dtype="float32")
    assert rate == 22050
    engine = load_engine("espeak-ng")
    for word in words[:3]:
        a = round(word.start * rate)
        expected = engine.word(word.symbol, "en-us")
        got = audio[a : a + len(expected)]
        assert len(got) == round(word.duration * rate)
        # the word's own samples (plus a -70 dB floor and 16-bit rounding) are where it says
        assert np.corrcoef(got, expected)[0, 1] > 0.999
    # a comma gives a pause of at least clause_pause[0]
    funny, after = words[3], words[4]
    assert after.start - funny.end >= 0.3 - 1e-6
    assert words[1].start - words[0].end < 0.13


def test_tts_same_seed_same_bytes(tmp_path: Path) -> None:
    lines = _lines(tmp_path, "One two, three.\n")
    for name in ("a", "b"):
        main(["tts", "-i", str(lines), "-o", str(tmp_path / name), "--workers", "1"])
    a = (tmp_path / "a" / "audio" / "lines-0001.flac").read_bytes()
    assert a == (tmp_path / "b" / "audio" / "lines-0001.flac").read_bytes()


@pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival not installed")
def test_tts_festival(tmp_path: Path) -> None:
    lines = _lines(tmp_path, "Good morning, everyone.\n")
    main(
        [
            "tts",
            "-i",
            str(lines),
            "-o",
            str(tmp_path / "f"),
            "--engine",
            "festival",
            "--workers",
            "1",
        ]
    )
    (cut,) = iter_cuts(tmp_path / "f" / "cuts.jsonl.gz")
    assert cut.sampling_rate == 16000
    assert [w.symbol for w in items(cut, "word")] == ["Good", "morning", "everyone"]


def test_tts_bad_input(tmp_path: Path) -> None:
    lines = _lines(tmp_path, "# only a comment\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["tts", "-i", str(lines), "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["tts", "-i", str(lines), "-o", str(tmp_path / "out"), "--engine", "nope"])
    assert not (tmp_path / "out" / "cuts.jsonl.gz").exists()


def test_voice_language_reaches_whisper() -> None:
    from synpara.asr import whisper_language

    assert load_engine("espeak-ng").language("en-us+m3") == "en"
    assert load_engine("espeak-ng").language("cmn") == "cmn"
    assert load_engine("festival").language("kal_diphone") == "en"
    assert [whisper_language(t) for t in ("en", "en-US", "cmn", "fr_FR", "xx", None)] == [
        "en", "en", "zh", "fr", None, None]
