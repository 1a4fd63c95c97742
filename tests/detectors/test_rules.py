"""The heuristic steps of detection, on known signals and hand-made evidence (no model)."""

from __future__ import annotations

import sys

import numpy as np

from synpara.audio import SAMPLE_RATE, envelope_pulses
from synpara.detectors import rules
from synpara.detectors.rules import Detection, runs_with_hysteresis
from tests.conftest import REPO


def test_envelope_pulses_tell_a_train_from_a_single_sound():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 220 * t)
    train = tone * (np.sin(2 * np.pi * 5 * t) > 0.5)  # "ha-ha-ha" at 5 per second
    swell = tone * np.exp(-(((t - 0.5) / 0.15) ** 2))  # one smooth moan-like rise and fall
    assert len(envelope_pulses(train.astype(np.float32))) == 5
    assert len(envelope_pulses(swell.astype(np.float32))) == 1
    assert len(envelope_pulses(np.zeros(SAMPLE_RATE, dtype=np.float32))) == 0


def test_envelope_pulses_on_real_vocalizations(shared_data):
    sys.path.insert(0, str(REPO / "scripts"))
    import make_devset

    vocals = make_devset.load_vocals(shared_data)
    counts = {clip.name: len(envelope_pulses(clip.samples)) for clip in vocals}
    # Measured: the laughs have 4-13 pulses; the moan and the gasp are one sound each.
    assert all(n >= 4 for name, n in counts.items() if "Laugh" in name or "laugh_" in name)
    assert counts["hedgewars_Default_PoisonMoan"] == 1 and counts["gasp_oa_neko"] == 1


def test_relabel_keeps_one_label_per_sound_in_a_pause():
    # Pure decision logic: no model needed.
    knobs = {"gap": 0.1, "label_windows": 2, "min_pulses": 2, "pulse_factor": 0.3}
    centres = np.arange(20) * 0.05
    evidence = {  # laughter fires on the onset window only; cough holds over the sound
        "laughter": (np.where(np.arange(20) == 3, 0.5, 0.0), np.full(20, 0.2)),
        "cough": (np.where((np.arange(20) >= 4) & (np.arange(20) < 12), 0.45, 0.0),
                  np.full(20, 0.2)),
    }
    spans = [Detection("laughter", 0.1, 0.2, 0.5, 2.5, 1.0, (3, 3)),
             Detection("cough", 0.2, 0.6, 0.45, 2.25, 1.0, (4, 11))]
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    burst = (np.sin(2 * np.pi * 300 * t) * np.exp(-(((t - 0.3) / 0.1) ** 2))).astype(np.float32)
    out = rules.relabel(spans, centres, evidence, np.zeros(20, dtype=np.float32), burst,
                        **knobs)
    assert [(s.label, s.start, s.end) for s in out] == [("cough", 0.1, 0.6)]
    # A lone smooth burst is no laugh: with laughter alone, its evidence drops below threshold.
    lone = [Detection("laughter", 0.1, 0.6, 0.5, 2.5, 1.0, (3, 11))]
    out = rules.relabel(lone, centres, {"laughter": evidence["laughter"]},
                        np.zeros(20, dtype=np.float32), burst, **knobs)
    assert out == []




def test_hysteresis_runs_on_a_known_signal():
    score = np.array([0.0, 0.25, 0.5, 0.35, 0.25, 0.1, 0.35, 0.0])
    limit = np.full(len(score), 0.4)
    # Starts only where 0.4 is reached, continues down to 0.6 * 0.4 = 0.24.
    assert runs_with_hysteresis(score, limit, 0.6) == [(1, 4)]
