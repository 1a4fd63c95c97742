"""Mixture labels land on the samples of the event; frame features have the promised shape."""

from __future__ import annotations

import numpy as np
import pytest

from synpara.training.mixtures import MixConfig, make_mixture

SR = 16000


@pytest.mark.parametrize("overlay", [0.0, 1.0])
def test_mixture_labels_cover_exactly_the_event(overlay):
    rng = np.random.default_rng(0)
    host = (0.001 * rng.standard_normal(3 * SR)).astype(np.float32)
    host[SR // 2: SR] += 0.2 * np.sin(np.arange(SR // 2) / 5.0)  # some "speech" to level against
    burst = np.zeros(int(0.6 * SR), np.float32)
    burst[int(0.2 * SR): int(0.4 * SR)] = rng.standard_normal(int(0.2 * SR))  # 0.2 s of sound
    config = MixConfig(speed=(1.0, 1.0), overlay_fraction=overlay)
    mix, events = make_mixture(host, [("cough", burst), (None, burst)], rng, config)
    assert len(events) == 1 and events[0]["label"] == "cough"
    assert events[0]["overlay"] is bool(overlay)
    start, end = events[0]["start"], events[0]["end"]
    assert end - start == pytest.approx(0.2, abs=0.03)
    # The labelled span is where the mixture got louder than the host.
    inside = mix[int(start * SR): int(end * SR)]
    assert np.sqrt(np.mean(inside ** 2)) > 5 * 0.001
    if not overlay:  # spliced into a pause: the mixture is longer by the event and its gaps
        assert len(mix) > len(host) + 0.2 * SR


def test_yamnet_embedding_graph_scores_like_the_tagger(shared_data):
    from synpara.detectors.features import (
        FRAME_SECONDS,
        PRIOR_CLASSES,
        YamnetEmbedding,
        load_features,
    )
    from synpara.models import load_yamnet, yamnet_log_mel
    from synpara.training.mixtures import load_mono

    samples = load_mono(shared_data / "speech" / "jfk" / "jfk.wav")
    embedding, logits = YamnetEmbedding(threads=1)(samples)
    frames = int(np.ceil(len(samples) / SR / FRAME_SECONDS))
    assert embedding.shape == (frames, 1024) and logits.shape == (frames, 521)
    # Frame 14 (centred at 1.45 s) is the patch of log-mel frames 97..192; the tagger the rules
    # use gives the same class scores for it.
    patch = yamnet_log_mel(samples)[97:193]
    probs = load_yamnet(threads=1).predict(patch[None])[0]
    ours = 1 / (1 + np.exp(-logits[14]))
    np.testing.assert_allclose(ours, probs, atol=1e-4)
    assert np.argmax(ours) == 0  # Speech
    features = load_features("yamnet", threads=1)(samples)
    assert features.shape == (frames, 1024 + len(PRIOR_CLASSES))


def test_whisper_states_are_frames_of_512(shared_data):
    from synpara.detectors.features import WhisperStates
    from synpara.training.mixtures import load_mono

    samples = load_mono(shared_data / "speech" / "jfk" / "jfk.wav")[: 4 * SR]
    states = WhisperStates(threads=1)
    one = states(samples)
    assert one.shape == (40, 512) and np.isfinite(one).all()
    packed = states.many([samples[: 2 * SR], samples[2 * SR:]])
    assert [p.shape for p in packed] == [(20, 512), (20, 512)]
