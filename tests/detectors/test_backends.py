"""The detector registry and the detectors behind it: YAMNet's mapping, user AST and PANNs
checkpoints (tiny models the tests make), and a detector trained on our own labels."""

from __future__ import annotations

import numpy as np
import pytest

from synpara.audio import SAMPLE_RATE
from synpara.detectors.audioset import class_map, read_mapping
from synpara.detectors.base import DETECTORS, Detector
from synpara.errors import SynparaError
from synpara.stages.detect import Detect, DetectConfig
from tests.stages.test_detect import check_well_formed


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

    stage = Detect(DetectConfig(detector=f"ast:{tmp_path / 'ast'}", vad=False, threads=1,
                                hop=0.5, fine_hop=0.0, window=1.0))
    stage.setup()
    assert stage.detector.labels == AUDIOSET_NAMES
    assert set(stage.classes.events) == {"laughter", "cough"}
    samples = np.random.default_rng(0).normal(0, 0.1, 2 * SAMPLE_RATE).astype(np.float32)
    probs = stage.detector.score(stage.detector.prepare(samples), np.array([0.5, 1.5]))
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

    stage = Detect(DetectConfig(detector=f"panns:{tmp_path / 'cnn14.pth'}", vad=False,
                                threads=1, hop=0.5, fine_hop=0.0))
    stage.setup()
    samples = np.random.default_rng(0).normal(0, 0.1, 2 * SAMPLE_RATE).astype(np.float32)
    probs = stage.detector.score(stage.detector.prepare(samples), np.array([0.5, 1.5]))
    assert probs.shape == (2, 4) and np.all((probs >= 0) & (probs <= 1))

    torch.save({"model": {"x": torch.zeros(1)}}, tmp_path / "bad.pth")
    with pytest.raises(SynparaError, match="not a PANNs"):
        Detect(DetectConfig(detector=f"panns:{tmp_path / 'bad.pth'}", vad=False)).setup()


# --------------------------------------------------------------------------- our own labels


class LoudnessHead(Detector):
    """A detector with our own labels (as a trained head will have): "laughter" is how loud a
    window is, "speech" never fires. Real arithmetic, no model file."""

    labels = ["speech", "laughter"]

    def __init__(self, window: float) -> None:
        self.width = int(round(window * SAMPLE_RATE))

    def predict(self, windows: np.ndarray) -> np.ndarray:
        loudness = np.sqrt(np.mean(np.square(windows), axis=1))
        return np.stack([np.zeros(len(windows)), np.minimum(1.0, 20 * loudness)], axis=1)


def load_loudness_head(path: str, threads: int, batch_size: int, window: float) -> Detector:
    return LoudnessHead(window)


def test_a_detector_with_our_own_labels_plugs_in_with_one_registry_line(monkeypatch):
    monkeypatch.setitem(DETECTORS, "head:FILE",
                        "tests.detectors.test_backends:load_loudness_head")
    with pytest.raises(SynparaError, match="needs a path"):
        DetectConfig(detector="head").validate()
    stage = Detect(DetectConfig(detector="head:unused.pt", vad=False, window=0.2))
    stage.setup()
    assert stage.classes.events == {"laughter": [1]} and stage.classes.speech == [0]
    # 1 s of a "ha-ha-ha" (a 220 Hz tone gated at 5 Hz) between two seconds of room noise
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    train = 0.5 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 5 * t) > 0.5)
    silence = np.zeros(2 * SAMPLE_RATE)
    noise = np.random.default_rng(0).normal(0, 1e-3, 5 * SAMPLE_RATE)
    samples = (np.concatenate([silence, train, silence]) + noise).astype(np.float32)
    spans, _ = stage.detect(samples)
    laughs = [s for s in spans if s.label == "laughter"]
    assert laughs and all(1.8 < s.start and s.end < 3.2 for s in laughs), spans
    assert [s.label for s in spans] == ["laughter"]


def test_unknown_detector_kinds_are_refused_with_the_known_ones():
    with pytest.raises(SynparaError, match="yamnet, ast:DIR, panns:FILE"):
        DetectConfig(detector="beats:/x").validate()


def test_setup_threads_reach_the_detector_and_torch():
    import torch

    before = torch.get_num_threads()
    try:
        stage = Detect(DetectConfig(detector="yamnet", vad=False))
        stage.setup(threads=1)
        options = stage.detector.model.session.get_session_options()
        assert options.intra_op_num_threads == 1 and torch.get_num_threads() == 1
        # The option wins.
        Detect(DetectConfig(detector="yamnet", vad=False, threads=2)).setup(threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
