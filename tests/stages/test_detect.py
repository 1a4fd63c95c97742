"""detect: real vocalizations spliced into real speech are found at the right place; speech stays
clean; bad input does not crash; the user-checkpoint backends load."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from synpara.audio import (
    SAMPLE_RATE,
    decode,
    resample,
    to_mono,
    write_flac_atomic,
)
from synpara.errors import SynparaError
from synpara.manifest import alignment_item, items, write_cuts
from synpara.stage import RecordContext
from synpara.stages.detect import Detect, DetectConfig
from tests.conftest import REPO, cut_for_file

sys.path.insert(0, str(REPO / "scripts"))
import make_devset  # noqa: E402

# Onset errors measured on these mixtures (seed 0), in a pause: Classic_Laugh 0.010 s,
# laugh_wesnoth_dwarf 0.041 s, HillBilly_PoisonCough 0.006 s, Default_PoisonCough 0.001 s,
# gasp_oa_neko 0.004 s. Each test allows about twice its clip's error (at least 0.02 s).
ONSET_TOLERANCE_S = 0.02


def load(path: Path) -> np.ndarray:
    decoded = decode(path)
    return resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)


@pytest.fixture(scope="module")
def stage() -> Detect:
    stage = Detect(DetectConfig(detector="yamnet", threads=1))  # the rules; the head: its tests
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def vocals(shared_data: Path) -> dict[str, make_devset.Clip]:
    return {clip.name: clip for clip in make_devset.load_vocals(shared_data)}


@pytest.fixture(scope="module")
def host(shared_data: Path) -> make_devset.Host:
    librivox = "speech/pocketsphinx/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"
    return make_devset.load_hosts_from(shared_data, [librivox])[0]


def spans_of(stage: Detect, samples: np.ndarray):
    spans, background = stage.detect(samples)
    return spans, background


def check_well_formed(spans, duration: float) -> None:
    for span in spans:
        assert 0.0 <= span.start < span.end <= duration + 1e-6
    for label in {s.label for s in spans}:
        same = sorted((s for s in spans if s.label == label), key=lambda s: s.start)
        for a, b in zip(same, same[1:]):
            assert a.end <= b.start, f"{label} events overlap: {a} {b}"


@pytest.mark.slow
@pytest.mark.parametrize("clip_name, label, tolerance", [
    ("hedgewars_Classic_Laugh", "laughter", ONSET_TOLERANCE_S),
    ("laugh_wesnoth_dwarf", "laughter", 0.08),  # its first 40 ms are too quiet to tell
    ("hedgewars_HillBilly_PoisonCough", "cough", ONSET_TOLERANCE_S),
    ("hedgewars_Default_PoisonCough", "cough", ONSET_TOLERANCE_S),
    ("gasp_oa_neko", "gasp", ONSET_TOLERANCE_S),
])
def test_vocalization_in_a_pause_is_found_at_the_right_place(stage, vocals, host, clip_name, label,
                                                             tolerance):
    audio, start = make_devset.splice_in_pause(host, vocals[clip_name], np.random.default_rng(0))
    end = start + len(vocals[clip_name].samples)
    spans, _ = spans_of(stage, audio)
    check_well_formed(spans, len(audio) / SAMPLE_RATE)
    hits = [s for s in spans if s.label == label and s.start < end / SAMPLE_RATE
            and s.end > start / SAMPLE_RATE]
    assert hits, f"no {label} near {start / SAMPLE_RATE:.2f} s; got {spans}"
    # Default_PoisonCough opens with a quiet 0.35 s that YAMNet does not call cough (onset was
    # 0.35 s late); relabelling the whole sound as one put it at the true onset.
    assert abs(hits[0].start - start / SAMPLE_RATE) < tolerance
    # Nothing in the speech around it: every event lies on the vocalization (a cough's tail may
    # still get a second label, as HillBilly_PoisonCough's does: sneeze at 7.63-8.0 s).
    outside = [s for s in spans if s.end <= start / SAMPLE_RATE or s.start >= end / SAMPLE_RATE]
    assert outside == [], f"false alarms in the speech: {outside}"


@pytest.mark.slow
@pytest.mark.parametrize("clip_name, seed", [
    ("hedgewars_Classic_Laugh", 0),
    ("laugh_wesnoth_dwarf", 0),
])
def test_laughter_over_speech_is_found(stage, vocals, host, clip_name, seed):
    # The hardest case; at -6...0 dB against speech the dev set gives laughter recall 0.40 (6/15).
    # Both mixtures were missed before the raw laughter threshold and the fine look around
    # candidate windows (a regression guard for those two mechanisms).
    clip = vocals[clip_name]
    audio, start = make_devset.lay_over_speech(host, clip, np.random.default_rng(seed))
    spans, _ = spans_of(stage, audio)
    end = (start + len(clip.samples)) / SAMPLE_RATE
    assert any(s.label == "laughter" and s.start < end and s.end > start / SAMPLE_RATE
               for s in spans), spans


@pytest.mark.slow
@pytest.mark.parametrize("relative", [
    "speech/jfk/jfk.wav",
    "speech/pyannote_sample/sample.wav",
    "speech/mfa/wav/acoustic_corpus.wav",
    "speech/arctic/arctic_a0009.wav",
])
def test_speech_only_stays_clean(stage, shared_data, relative):
    samples = load(shared_data / relative)
    spans, _ = spans_of(stage, samples)
    # Measured: 0 false alarms in 4.2 min of speech-only dev controls.
    assert spans == []


@pytest.mark.slow
def test_real_breaths_between_words(stage, shared_data):
    samples = load(shared_data / "speech/mfa/wav/mfa_breaths.flac")
    spans, _ = spans_of(stage, samples)
    breaths = [s for s in spans if s.label == "breath"]
    # Breaths audible at about 1.0-1.6 s and 2.3-3.3 s (energy and YAMNet agree).
    assert any(s.start < 1.6 and s.end > 1.0 for s in breaths), spans
    assert any(s.start < 3.3 and s.end > 2.3 for s in breaths), spans


@pytest.mark.slow
def test_process_writes_events_in_recording_time_and_respects_words(stage, vocals, host, tmp_path):
    clip = vocals["hedgewars_Classic_Laugh"]
    audio, start = make_devset.splice_in_pause(host, clip, np.random.default_rng(0))
    path = tmp_path / "mix.flac"
    write_flac_atomic(path, audio)
    cut = cut_for_file(path, "mix")
    context = RecordContext(record_id=cut.id, seed=0, output_dir=tmp_path)

    out = stage.process(cut, context)
    events = items(out, "event")
    assert [e.symbol for e in events] == ["laughter"]
    assert abs(events[0].start - start / SAMPLE_RATE) < ONSET_TOLERANCE_S
    assert "background" in out.custom["synpara"]["detect"]

    # A confident word over the laugh suppresses it (score below word_factor x threshold).
    from lhotse import SupervisionSegment

    end = (start + len(clip.samples)) / SAMPLE_RATE
    word = alignment_item("haha", start / SAMPLE_RATE - 0.2, end + 0.2, 0.95)
    sup = SupervisionSegment(id="s", recording_id=cut.recording_id, start=0.0,
                             duration=cut.duration, alignment={"word": [word]})
    worded = cut_for_file(path, "mix")
    worded.supervisions = [sup]
    strict = Detect(DetectConfig(detector="yamnet", threads=1, word_factor=4.9))
    strict.detector, strict.classes, strict.vad = stage.detector, stage.classes, stage.vad
    assert [e.symbol for e in items(strict.process(worded, context), "event")] == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["silence", "clipped", "telephone", "tiny", "short"])
def test_bad_input_does_not_crash(stage, shared_data, vocals, host, tmp_path, kind):
    if kind == "silence":
        samples = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
        spans, background = spans_of(stage, samples)
        assert spans == [] and background == {"silence": 1.0}
        return
    if kind == "clipped":
        audio, _ = make_devset.splice_in_pause(host, vocals["hedgewars_Classic_Laugh"],
                                               np.random.default_rng(0))
        samples = np.clip(audio * 30.0, -1.0, 1.0)
    elif kind == "tiny":  # under 50 ms: not scored at all, said so
        spans, background = spans_of(stage, np.full(100, 0.1, dtype=np.float32))
        assert spans == [] and background == {"silence": 1.0}
        return
    elif kind == "short":  # 0.1 s of a laugh: one window, every step runs
        audio, start = make_devset.splice_in_pause(host, vocals["hedgewars_Classic_Laugh"],
                                                   np.random.default_rng(0))
        samples = audio[start + SAMPLE_RATE // 2:start + SAMPLE_RATE // 2 + SAMPLE_RATE // 10]
        assert len(stage.detector.score(stage.detector.prepare(samples), np.array([0.05]))) == 1
    else:
        cut = cut_for_file(shared_data / "speech/asterisk/vm-intro.wav")
        assert cut.sampling_rate == 8000
        out = stage.process(cut, RecordContext(record_id=cut.id, seed=0, output_dir=tmp_path))
        assert out.id == cut.id
        samples = load(shared_data / "speech/asterisk/vm-intro.wav")
    spans, _ = spans_of(stage, samples)
    check_well_formed(spans, len(samples) / SAMPLE_RATE)


def test_config_rejects_absurd_values():
    with pytest.raises(SynparaError, match="unknown label"):
        DetectConfig(thresholds={"laughs_a_lot": 0.3}).validate()
    with pytest.raises(SynparaError, match="KEY=VALUE"):
        Detect.from_params({"thresholds": ["laughter"]})
    with pytest.raises(SynparaError, match="not a float"):
        Detect.from_params({"thresholds": ["laughter=high"]})
    with pytest.raises(SynparaError, match="hop"):
        DetectConfig(hop=0.0).validate()
    with pytest.raises(SynparaError, match="raw threshold"):
        DetectConfig(raw_thresholds={"laughter": 0.0}).validate()
    with pytest.raises(SynparaError, match="detector"):
        DetectConfig(detector="beats").validate()
    with pytest.raises(SynparaError, match="pulse_factor"):
        DetectConfig(pulse_factor=2.0).validate()
    with pytest.raises(SynparaError, match="label_windows"):
        DetectConfig(label_windows=0).validate()
    config = Detect.from_params({"detector": "yamnet", "thresholds": ["laughter=0.5"]}).config
    assert config.threshold_map()["laughter"] == 0.5
    assert config.threshold_map()["cough"] == 0.2  # the other defaults stay
    # YAML gives a mapping; integers become floats
    config = Detect.from_params({"detector": "yamnet", "thresholds": {"laughter": 1},
                                 "min_event_durations": {"*": 0}}).config
    assert config.thresholds == {"laughter": 1.0} and config.min_duration_map()["*"] == 0.0


def test_rule_options_on_the_trained_head_are_an_error_not_ignored():
    # the head carries its own thresholds: a tuned rule option would silently do nothing
    with pytest.raises(SynparaError, match=r"word_factor, hysteresis tune\(s\) the YAMNet rules"):
        Detect.from_params({"hysteresis": 0.5, "word_factor": 3.0})
    with pytest.raises(SynparaError, match="thresholds tune.*--detector yamnet"):
        Detect.from_params({"detector": "head:my.pt", "thresholds": {"laughter": 0.4}})
    # the head keeps its own edges: snapping them is the rules' (it measured worse for the head)
    with pytest.raises(SynparaError, match="energy_edges tune"):
        Detect.from_params({"energy_edges": False})
    # what the head path does read stays open, and the defaults of the rest pass
    config = Detect.from_params({"merge_gap": 0.5, "min_event_durations": {"*": 0.1},
                                 "vad": False, "word_factor": 2.5}).config
    assert config.merge_gap == 0.5


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_on_a_manifest(shared_data, tmp_path):
    from click.testing import CliRunner

    from synpara.cli import cli

    manifest = tmp_path / "in" / "cuts.jsonl.gz"
    write_cuts(manifest, [cut_for_file(shared_data / "speech/mfa/wav/mfa_breaths.flac", "breaths"),
                          cut_for_file(shared_data / "speech/asterisk/hello-world.wav", "tel")])
    result = CliRunner().invoke(cli, ["detect", "-i", str(manifest), "-o", str(tmp_path / "out"),
                                       "--workers", "1", "--threshold", "laughter=0.3",
                                       "--detector", "yamnet"])
    assert result.exit_code == 0, result.output
    from synpara.manifest import iter_cuts

    cuts = list(iter_cuts(tmp_path / "out" / "cuts.jsonl.gz"))
    assert [c.id for c in cuts] == ["breaths", "tel"]
    assert "breath" in [e.symbol for e in items(cuts[0], "event")]
    history = cuts[0].custom["synpara"]["history"][-1]
    assert history["stage"] == "detect" and history["model"].startswith("yamnet")


def test_cli_rejects_a_bad_option(tmp_path, capsys):
    from synpara.cli import main

    manifest = tmp_path / "cuts.jsonl.gz"
    write_cuts(manifest, [])
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "-i", str(manifest), "-o", str(tmp_path / "o"),
              "--threshold", "laughter=2"])
    assert exit_info.value.code != 0
    assert "threshold" in capsys.readouterr().err
    assert not (tmp_path / "o" / "cuts.jsonl.gz").exists()


@pytest.mark.slow
def test_cli_on_an_ingest_only_manifest_writes_events(shared_data, tmp_path):
    """Events never depend on a supervision existing: a cut straight from ingest has none."""
    from synpara.cli import main
    from synpara.manifest import iter_cuts

    laugh = shared_data / "vocal/hedgewars_Classic_Laugh.ogg"
    main(["ingest", "-i", str(laugh), "-o", str(tmp_path / "ingest"), "--workers", "1"])
    (ingested,) = iter_cuts(tmp_path / "ingest" / "cuts.jsonl.gz")
    assert ingested.supervisions == []
    main(["detect", "-i", str(tmp_path / "ingest" / "cuts.jsonl.gz"),
          "-o", str(tmp_path / "detect"), "--workers", "1"])
    (cut,) = iter_cuts(tmp_path / "detect" / "cuts.jsonl.gz")
    events = items(cut, "event")
    assert [e.symbol for e in events] == ["laughter"]
    # The laugh fills the 1.67 s file; the default head's frames are 0.1 s (the rules: < 0.05).
    assert events[0].start <= 0.1 + 1e-6 and events[0].end > 1.3
    (holder,) = cut.supervisions  # a whole-cut supervision holds them; speaker unknown
    assert holder.start == 0.0 and holder.duration == cut.duration and holder.speaker is None
