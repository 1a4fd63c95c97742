"""Mixture labels land on the samples of the event; frame features have the promised shape."""

from __future__ import annotations

from dataclasses import replace

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
    from synpara.training.sources import load_mono

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
    from synpara.training.sources import load_mono

    samples = load_mono(shared_data / "speech" / "jfk" / "jfk.wav")[: 4 * SR]
    states = WhisperStates(threads=1)
    one = states(samples)
    assert one.shape == (40, 512) and np.isfinite(one).all()
    packed = states.many([samples[: 2 * SR], samples[2 * SR:]])
    assert [p.shape for p in packed] == [(20, 512), (20, 512)]


def _share_above(x: np.ndarray, hz: float) -> float:
    """Share of ``x``'s energy above ``hz``."""
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float(power[np.fft.rfftfreq(len(x), 1 / SR) > hz].sum() / (power.sum() + 1e-20))


def test_band_limits_take_the_energy_above_4_khz_from_events_and_hosts(shared_data, tmp_path):
    import soundfile

    from synpara.training.mixtures import read_truth, write_mixtures
    from synpara.training.sources import BankClip

    # A full-band game laugh spliced into pauses of full-band speech, no other domain change.
    clip = BankClip(shared_data / "vocal" / "hedgewars_Default_Laugh.ogg", "laughter", "hw")
    host = shared_data / "speech" / "arctic" / "arctic_a0009.wav"
    plain = MixConfig(negative_fraction=0.0, crosstalk_p=0.0, overlay_fraction=0.0, reverb_p=0.0,
                      telephone_p=0.0, codec_p=0.0, noise_p=0.0, max_events=1)
    runs = {}
    for name, config in {"off": plain, "event": replace(plain, event_band_p=1.0),
                         "both": replace(plain, event_band_p=1.0, host_band_p=1.0)}.items():
        truth = read_truth(write_mixtures(tmp_path / name, [clip], [host], 3, seed=5,
                                          config=config))
        runs[name] = [(soundfile.read(tmp_path / name / f"{t['id']}.flac")[0], t) for t in truth]
    for (off, t_off), (event, t_event), (both, t_both) in zip(*runs.values()):
        # Band limits draw from their own stream: the events land where they did without them
        # (give or take the edges of the audible part, measured on the band-limited clip).
        assert t_off["domain"] == {k: v for k, v in t_both["domain"].items()
                                   if k != "host_band_hz"} == t_event["domain"]
        assert "host_band_hz" not in t_event["domain"] and t_both["domain"]["host_band_hz"] <= 4000
        for e_off, e_event, e_both in zip(t_off["events"], t_event["events"], t_both["events"],
                                          strict=True):
            assert abs(e_off["start"] - e_event["start"]) < 0.05
            assert abs(e_off["start"] - e_both["start"]) < 0.05
            span = slice(int(e_off["start"] * SR), int(e_off["end"] * SR))
            assert _share_above(off[span], 4200) > 0.002  # the laugh has a top band ...
            span = slice(int(e_event["start"] * SR), int(e_event["end"] * SR))
            assert _share_above(event[span], 4200) < 0.01 * _share_above(off[span], 4200)
        # ... the host speech (all but the events, give or take 0.2 s) keeps its own, unless
        # host_band_p limits it too.
        host = np.ones(len(off), bool)
        for e in t_off["events"]:
            host[max(0, int((e["start"] - 0.2) * SR)): int((e["end"] + 0.2) * SR)] = False
        assert _share_above(event[host], 4200) == pytest.approx(_share_above(off[host], 4200),
                                                                rel=0.05)
        assert _share_above(both[host], 4200) < 0.05 * _share_above(off[host], 4200)
