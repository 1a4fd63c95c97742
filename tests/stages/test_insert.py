"""insert: clips found at their recorded samples, words moved by exactly the inserted length with
their host samples untouched, determinism, pitch and loudness matching, bad input, and the
inserted events as truth for ``synpara eval events``."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from synpara.cli import cli, main
from synpara.manifest import items, iter_cuts, iter_json_lines, write_json_lines_atomic
from synpara.placement import find_slots, load_rules, plan_events
from synpara.splice import (
    f0_median_hz,
    loudness_lufs,
    match_loudness,
    pitch_shift,
    room_tone,
    semitones_toward,
    splice_stretch,
)
from tests.conftest import SHARED_DATA
from tests.stages.test_tts import _lines

LINES = (
    "So that was the plan, and then he told me the whole story.\n"
    "Honestly, I did not expect it, but we stayed until the end.\n"
    "Well, the train was late again, so we took a taxi home.\n"
)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("hosts")
    main(
        [
            "tts",
            "-i",
            str(_lines(tmp, LINES)),
            "-o",
            str(tmp / "tts"),
            "--workers",
            "1",
            "--voice",
            "en-us",
            "--voice",
            "en-gb",
        ]
    )
    return tmp / "tts" / "cuts.jsonl.gz"


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bank")
    clips = tmp / "in"
    (clips / "laughter").mkdir(parents=True)
    (clips / "cough").mkdir()
    shutil.copy(SHARED_DATA / "vocal" / "hedgewars_Classic_Laugh.ogg", clips / "laughter")
    shutil.copy(SHARED_DATA / "vocal" / "laugh_scratch_male1.wav", clips / "laughter")
    shutil.copy(SHARED_DATA / "vocal" / "cough_scratch_male.wav", clips / "cough")
    main(["bank", "-i", str(clips), "-o", str(tmp / "bank"), "--workers", "1", "--no-embedding"])
    return tmp / "bank" / "cuts.jsonl.gz"


def _insert(hosts: Path, bank: Path | None, out: Path, *extra: str) -> Path:
    args = ["insert", "-i", str(hosts), "-o", str(out), "--gate", "none", "--workers", "1"]
    main(args + (["--bank", str(bank)] if bank else []) + list(extra))
    return out


def _read(path: str | Path) -> np.ndarray:
    return soundfile.read(str(path), dtype="int16")[0]


def test_clips_words_and_samples_are_exact(hosts: Path, bank: Path, tmp_path: Path) -> None:
    out = _insert(
        hosts,
        bank,
        tmp_path / "ins",
        "--events-per-utterance",
        "2",
        "--save-clips",
        "--categories",
        "laughter",
        "--categories",
        "cough",
        "--seed",
        "3",
    )
    host_cuts = {c.id: c for c in iter_cuts(hosts)}
    cuts = list(iter_cuts(out / "cuts.jsonl.gz"))
    assert len(cuts) == 3
    for cut in cuts:
        host = host_cuts[cut.id]
        assert cut.sampling_rate == 22050  # never above the host's own rate
        rate = cut.sampling_rate
        audio, host_audio = (
            _read(cut.recording.sources[0].source),
            _read(host.recording.sources[0].source),
        )
        info = cut.custom["synpara"]["insert"]["events"]
        assert len(info) == 2 and all(e["inserted"] for e in info)
        assert len(audio) == len(host_audio) + sum(e["inserted_samples"] for e in info)
        # each clip sits at its recorded start (cross-correlation peak within one sample)
        for index, event in enumerate(info):
            clip = soundfile.read(out / "clips" / f"{cut.id}-{index}.flac", dtype="float32")[0]
            start = event["start_sample"]
            lo = start - 200
            window = audio[lo : start + len(clip) + 200].astype(np.float64) / 32768
            corr = np.correlate(window, clip.astype(np.float64), mode="valid")
            assert abs(lo + int(np.argmax(corr)) - start) <= 1
            got = audio[start : start + len(clip)].astype(np.float64) / 32768
            assert np.corrcoef(got, clip)[0, 1] > 0.99  # the processed clip (plus room tone)
        # words: later ones move by exactly what was inserted before them, host samples intact
        host_words, words = items(host, "word"), items(cut, "word")
        assert [w.symbol for w in words] == [w.symbol for w in host_words]
        for old, new in zip(host_words, words):
            before = sum(
                e["inserted_samples"]
                for e in info
                if e["insertion_sample"] <= round(old.start * rate)
            )
            assert new.start == pytest.approx(old.start + before / rate, abs=1e-6)
            assert new.duration == pytest.approx(old.duration, abs=1e-6)
            a, b = round(old.start * rate), round(old.end * rate)
            assert np.array_equal(audio[a + before : b + before], host_audio[a:b])
        events = items(cut, "event")
        assert [e.symbol for e in events] == [e["label"] for e in info]
        for item, event in zip(events, info):
            assert round(item.start * rate) == event["start_sample"]
            assert round(item.duration * rate) == event["clip_samples"]
        tagged = cut.supervisions[0].custom["tagged_text"]
        assert sum(f"[{e['label']}]" in tagged for e in info) >= 1
        assert (
            tagged.replace("[laughter] ", "")
            .replace("[cough] ", "")
            .replace(" [laughter]", "")
            .replace(" [cough]", "")
            == cut.supervisions[0].text
        )
        assert np.max(np.abs(audio)) < 32767  # nothing at full scale


def test_same_seed_same_bytes_other_seed_other_places(
    hosts: Path, bank: Path, tmp_path: Path
) -> None:
    a = _insert(hosts, bank, tmp_path / "a", "--seed", "5")
    b = _insert(hosts, bank, tmp_path / "b", "--seed", "5", "--workers", "2")
    c = _insert(hosts, bank, tmp_path / "c", "--seed", "6")

    def manifest(path: Path) -> str:
        return (
            gzip.decompress((path / "cuts.jsonl.gz").read_bytes())
            .decode()
            .replace(str(path.resolve()), "OUT")
        )

    assert manifest(a) == manifest(b)
    for flac in sorted((a / "audio").glob("*.flac")):
        assert flac.read_bytes() == (b / "audio" / flac.name).read_bytes()

    def places(path: Path) -> list:
        return [
            (e["label"], e["insertion_sample"], e.get("clip_id"))
            for cut in iter_cuts(path / "cuts.jsonl.gz")
            for e in cut.custom["synpara"]["insert"]["events"]
        ]

    assert places(a) != places(c)


def test_pitch_and_loudness_matching() -> None:
    from synpara.audio import decode, resample, to_mono

    decoded = decode(SHARED_DATA / "vocal" / "hedgewars_Classic_Laugh.ogg")
    laugh = resample(to_mono(decoded.samples), decoded.sample_rate, 24000)
    before = f0_median_hz(laugh, 24000)
    assert 330 < before < 410
    shifted = pitch_shift(laugh, 24000, semitones_toward(before, 110.0, 24.0), 0.8)
    assert abs(f0_median_hz(shifted, 24000) - 110.0) < 11.0
    assert np.max(np.abs(shifted)) < 1.0
    # the bounded shift stops at its limit
    assert semitones_toward(before, 110.0, 12.0) == -12.0
    # the clip goes to the loudness of the words near the insertion point plus the offsets...
    rng = np.random.default_rng(0)
    host = np.concatenate([0.01 * rng.standard_normal(24000), 0.3 * rng.standard_normal(24000)])
    words = [(0, 24000), (24000, 48000)]  # a quiet word, then a loud one
    near_quiet = match_loudness(laugh, 24000, host, words, 12000, 6000, (-3.0, 1.0))
    assert near_quiet.target_lufs == pytest.approx(near_quiet.speech_lufs - 2.0)
    assert loudness_lufs(near_quiet.samples, 24000) == pytest.approx(near_quiet.target_lufs,
                                                                      abs=0.5)
    # ... and a clip that would pass the ceiling there is turned down until its peak is under it
    near_loud = match_loudness(laugh, 24000, host, words, 36000, 6000, (12.0,), ceiling=0.5)
    assert near_loud.peak_limit_db < 0 and np.max(np.abs(near_loud.samples)) <= 0.5 + 1e-6
    assert near_loud.speech_lufs > near_quiet.speech_lufs + 20


def test_stage_pitch_loudness_records(hosts: Path, bank: Path, tmp_path: Path) -> None:
    # the clearly voiced 373 Hz game laugh only (a breathy laugh's F0 is not measurable after)
    one = _bank_variant(
        bank,
        tmp_path / "one.jsonl.gz",
        lambda r: r if r["id"] == "hedgewars_Classic_Laugh" else None,
    )
    out = _insert(
        hosts,
        one,
        tmp_path / "p",
        "--categories",
        "laughter",
        "--max-pitch-shift",
        "24",
        "--save-clips",
    )
    for cut in iter_cuts(out / "cuts.jsonl.gz"):
        (event,) = cut.custom["synpara"]["insert"]["events"]
        clip = soundfile.read(out / "clips" / f"{cut.id}-0.flac", dtype="float32")[0]
        if event["peak_limit_db"] == 0.0:
            assert abs(loudness_lufs(clip, cut.sampling_rate) - event["target_lufs"]) < 1.0
        host_f0 = event["host_f0_hz"]
        assert event["clip_f0_hz"] > 330 and 70 < host_f0 < 200
        got = f0_median_hz(clip, cut.sampling_rate)
        assert got is not None and abs(got - host_f0) / host_f0 < 0.1


def test_room_tone_and_joins() -> None:
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal(24000)).astype(np.float32)
    tone = room_tone(noise[:2400], 4800, rng)
    assert abs(np.sqrt(np.mean(tone**2)) - 0.01) < 0.002
    assert not np.any(room_tone(np.zeros(100, np.float32), 50, rng))  # silence stays silence
    host = noise.copy()
    clip = np.full(1000, 0.2, dtype=np.float32)
    stretch = splice_stretch(host, 12000, clip, tone[:3000], 240, 1000, 1000)
    joined = np.concatenate([host[:12000], stretch.samples, host[12000:]])
    # continuity: the first stretch sample continues host[12000], the last leads into it
    assert abs(joined[12000] - host[12000]) < 0.02
    assert abs(joined[12000 + 3000 - 1] - host[11999]) < 0.02
    assert np.array_equal(joined[:12000], host[:12000])
    assert np.array_equal(joined[15000:], host[12000:])


def test_placement_rules_and_slots() -> None:
    rules = load_rules()
    assert set(rules["sigh"].slots) == {"start", "end"}
    slots = find_slots(
        [(8000, 12000), (13000, 16000), (22000, 26000)],
        30000,
        16000,
        min_pause=0.2,
        clause_pause=0.3,
        guard_samples=200,
    )
    # the 1000-sample gap is under min_pause: no slot there
    assert [s.kinds for s in slots] == [("start",), ("pause", "clause"), ("end",)]
    rng = np.random.default_rng(0)
    placed = plan_events(slots, rules, ["sigh"], 3, rng)
    assert {p.slot.kinds[0] for p in placed} == {"start", "end"}  # at most one per slot
    assert plan_events(slots, rules, ["laughter"], 5, rng)[0].slot.kinds != ("start",)


def _bank_variant(bank: Path, out: Path, change) -> Path:
    lines = [change(dict(record)) for _, record in iter_json_lines(bank)]
    write_json_lines_atomic(out, [json.dumps(r) for r in lines if r is not None])
    return out


def test_bad_input_gives_per_record_reasons(hosts: Path, bank: Path, tmp_path: Path) -> None:
    def rejects(out: Path) -> list[str]:
        return [r["reason"] for _, r in iter_json_lines(out / "rejects.jsonl.gz")]

    def all_rejected(hosts: Path, bank: Path, out: Path, *extra: str) -> Path:
        # a stage that keeps nothing exits non-zero (nothing for later stages); reasons stay
        with pytest.raises(SystemExit) as stopped:
            _insert(hosts, bank, out, *extra)
        assert stopped.value.code != 0
        return out

    empty = _bank_variant(bank, tmp_path / "empty.jsonl.gz", lambda r: None)
    assert all("no usable clips" in r for r in rejects(all_rejected(hosts, empty, tmp_path / "e")))
    out = all_rejected(hosts, bank, tmp_path / "nosneeze", "--categories", "sneeze")
    assert len(rejects(out)) == 3 and "no sneeze clips" in rejects(out)[0]
    out = all_rejected(
        hosts, bank, tmp_path / "long", "--categories", "laughter", "--max-clip-duration", "0.3"
    )
    assert "longer than max_clip_duration" in rejects(out)[0]

    def silent(record: dict) -> dict:
        record["custom"]["synpara"]["bank"]["loudness_lufs"] = -70.0
        return record

    quiet = _bank_variant(bank, tmp_path / "silent.jsonl.gz", silent)
    assert "silent" in rejects(all_rejected(hosts, quiet, tmp_path / "q"))[0]

    # hosts without words, and without any pause or silence around the words
    def strip(record: dict, keep_words: bool) -> dict:
        sup = record["supervisions"][0]
        words = sup["alignment"]["word"]
        if not keep_words:
            sup["alignment"]["word"] = []
        else:  # words back to back over the whole cut
            step = record["duration"] / len(words)
            sup["alignment"]["word"] = [[w[0], i * step, step, 1.0] for i, w in enumerate(words)]
        return record

    no_words = _bank_variant(hosts, tmp_path / "nowords.jsonl.gz", lambda r: strip(r, False))
    tight = _bank_variant(hosts, tmp_path / "tight.jsonl.gz", lambda r: strip(r, True))
    assert all("no timed words" in r for r in rejects(all_rejected(no_words, bank, tmp_path / "w")))
    reasons = rejects(all_rejected(tight, bank, tmp_path / "t"))
    assert len(reasons) == 3 and all("no pause" in r for r in reasons)


def test_inserted_events_are_truth_for_eval(hosts: Path, bank: Path, tmp_path: Path) -> None:
    out = _insert(hosts, bank, tmp_path / "ev", "--categories", "laughter")
    manifest = str(out / "cuts.jsonl.gz")
    result = CliRunner().invoke(
        cli, ["eval", "events", "--truth", manifest, "--pred", manifest, "--json"]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert "laughter" in json.dumps(scores)
    assert '"recall": 1.0' in json.dumps(scores)


def test_quality_gate_records_figures_and_rejects(hosts: Path, bank: Path, tmp_path: Path) -> None:
    from synpara.gate import word_error_rate

    assert word_error_rate(["so", "that", "was"], ["So,", "that", "was."]) == 0.0
    assert word_error_rate(["a", "b", "c", "d"], ["a", "x", "c"]) == 0.5
    out = tmp_path / "g"
    main(
        [
            "insert",
            "-i",
            str(hosts),
            "-o",
            str(out),
            "--bank",
            str(bank),
            "--workers",
            "1",
            "--gate",
            "wer,speaker",
            "--max-wer",
            "0.5",
            "--categories",
            "cough",
        ]
    )
    cuts = list(iter_cuts(out / "cuts.jsonl.gz"))
    reasons = [r["reason"] for _, r in iter_json_lines(out / "rejects.jsonl.gz")]
    assert len(cuts) + len(reasons) == 3 and all(r.startswith("gate: ") for r in reasons)
    for cut in cuts:
        insert = cut.custom["synpara"]["insert"]
        assert insert["gate"]["wer"] <= 0.5 and insert["gate"]["transcript"]
        (event,) = insert["events"]
        assert -1 <= event["gate"]["speaker_similarity_after"] <= 1
    # an impossible DNSMOS demand: every utterance is a reject naming the figure, audio removed
    strict = tmp_path / "strict"
    with pytest.raises(SystemExit):  # nothing kept: the stage exits non-zero, reasons written
        main(
            [
                "insert",
                "-i",
                str(hosts),
                "-o",
                str(strict),
                "--bank",
                str(bank),
                "--workers",
                "1",
                "--gate",
                "dnsmos",
                "--max-dnsmos-drop",
                "-5",
            ]
        )
    reasons = [r["reason"] for _, r in iter_json_lines(strict / "rejects.jsonl.gz")]
    assert len(reasons) == 3 and all("DNSMOS overall" in r for r in reasons)
    assert not list((strict / "audio").glob("*.flac"))


def test_converter_torchscript_and_python(hosts: Path, bank: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    class Reverse(torch.nn.Module):
        def forward(self, clip: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
            return torch.flip(clip, dims=[1]) * 0.5

    model = tmp_path / "reverse.pt"
    torch.jit.script(Reverse()).save(str(model))
    module = tmp_path / "my_vc.py"
    module.write_text("import numpy as np\n\ndef convert(clip, reference, rate):\n"
                      "    assert len(reference) > rate // 2\n    return -clip\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plain = _insert(hosts, bank, tmp_path / "plain", "--categories", "cough", "--save-clips")
    for spec, name in [(str(model), "ts"), ("python:my_vc:convert", "py")]:
        out = _insert(hosts, bank, tmp_path / name, "--categories", "cough", "--save-clips",
                      "--converter", spec)
        for cut in iter_cuts(out / "cuts.jsonl.gz"):
            assert cut.custom["synpara"]["insert"]["events"][0]["converter"] == spec
            got = soundfile.read(out / "clips" / f"{cut.id}-0.flac", dtype="float32")[0]
            ref = soundfile.read(tmp_path / "plain" / "clips" / f"{cut.id}-0.flac",
                                 dtype="float32")[0]
            expected = ref[::-1] if name == "ts" else -ref
            # same clip, same loudness target: the converter's change is all that differs
            assert np.corrcoef(got, expected)[0, 1] > 0.98
    assert plain.exists()
    with pytest.raises(SystemExit):
        main(["insert", "-i", str(hosts), "-o", str(tmp_path / "bad"), "--gate", "none",
              "--converter", str(tmp_path / "missing.pt")])


def test_events_per_minute_and_detector_gate(hosts: Path, bank: Path, tmp_path: Path) -> None:
    out = _insert(hosts, bank, tmp_path / "rate", "--events-per-minute", "40")
    cuts = list(iter_cuts(out / "cuts.jsonl.gz"))
    counts = [len(c.custom["synpara"]["insert"]["events"]) for c in cuts]
    assert len(counts) == 3 and all(n >= 1 for n in counts) and max(counts) >= 2
    # the closed-loop check: the detect stage looks for each inserted event at its place
    gated = tmp_path / "det"
    main(["insert", "-i", str(hosts), "-o", str(gated), "--bank", str(bank), "--workers", "1",
          "--gate", "detector", "--categories", "laughter"])
    kept = list(iter_cuts(gated / "cuts.jsonl.gz"))
    reasons = [r["reason"] for _, r in iter_json_lines(gated / "rejects.jsonl.gz")]
    assert len(kept) + len(reasons) == 3
    assert all("detector did not find laughter" in r for r in reasons)
    for cut in kept:
        (event,) = cut.custom["synpara"]["insert"]["events"]
        assert event["gate"]["detected"] and event["gate"]["onset_error_s"] <= 0.3
