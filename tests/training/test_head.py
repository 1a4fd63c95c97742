"""The trained event head: bank split, labels, post-processing, a tiny retrain that must learn,
the head file round trip, and ``synpara train-detector`` on bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from synpara.detectors.head import EventHead, frames_to_events
from synpara.errors import SynparaError
from synpara.training.mixtures import MixConfig
from synpara.training.sources import BankClip, clip_label_and_group, scan_bank, split_bank
from synpara.training.train import TrainConfig, frame_targets, train_detector

from ..conftest import REPO


def test_labels_and_groups_come_from_folders_and_file_names(shared_data):
    bank = shared_data / "vocal"
    assert clip_label_and_group(bank / "hedgewars_Default_PoisonCough.ogg", bank)[:2] == (
        "cough", "hedgewars_Default")
    assert clip_label_and_group(bank / "snicker_xemacs.wav", bank)[:2] == ("giggle", "xemacs")
    nc = shared_data / "vocal_nc"
    label, group, _ = clip_label_and_group(nc / "breath" / "2FYX_10_8_0_20_0_0_0.flac", nc)
    assert (label, group) == ("breath", "2FYX")
    label, _, in_folder = clip_label_and_group(next((nc / "nose_blowing").iterdir()), nc)
    assert label is None and in_folder  # a negative folder: mixed in, never labelled


def test_split_keeps_every_voice_on_one_side(shared_data):
    clips = scan_bank(shared_data / "vocal_nc")
    train, dev = split_bank(clips, 0.3, seed=3)
    assert {c.group for c in train}.isdisjoint({c.group for c in dev})
    assert len(train) + len(dev) == len(clips)
    for label in {c.label for c in clips if c.label}:  # every label on both sides
        assert any(c.label == label for c in train) and any(c.label == label for c in dev)
    one = [BankClip(clips[0].path, "sigh", "only-voice")]
    assert split_bank(one, 0.3, 0) == (one, [])  # a single voice trains, never dev


def test_frame_targets_and_post_processing_agree():
    labels = ["laughter", "cough"]
    target = frame_targets([{"label": "cough", "start": 1.0, "end": 1.5}], 30, labels)
    assert target[10:15, 2].all() and not target[:10, 2].any() and not target[15:, 2].any()
    assert (target[:, 0] == 1 - target[:, 2]).all()  # `none` where no event
    probs = np.zeros((30, 2), np.float32)
    probs[10:15, 1] = 0.9
    probs[12, 1] = 0.4  # a dip the median filter and hysteresis bridge
    events = frames_to_events(probs, labels, {"laughter": 0.5, "cough": 0.5})
    assert len(events) == 1 and events[0][0] == "cough"
    assert events[0][1] == pytest.approx(1.0) and events[0][2] == pytest.approx(1.5)


def test_one_sound_gets_one_label_by_seconds_not_by_its_sharpest_frame():
    labels = ["laughter", "cough"]
    probs = np.zeros((60, 2), np.float32)
    probs[10:30, 0] = 0.6  # a 2 s laugh, just over its threshold
    probs[18:21, 1] = 0.99  # three of its frames also fire `cough`, far over threshold
    probs[45:50, 1] = 0.9  # a separate cough later
    events = frames_to_events(probs, labels, {"laughter": 0.5, "cough": 0.3})
    assert [e[0] for e in events] == ["laughter", "cough"]
    assert events[0][1] == pytest.approx(1.0) and events[0][2] == pytest.approx(3.0)
    assert events[1][1] == pytest.approx(4.5) and events[1][2] == pytest.approx(5.0)
    # Overlapping spans of equal length: the one further above its own threshold names it.
    probs[18:21, 1] = 0.0
    probs[10:30, 1] = 0.6
    assert [e[0] for e in frames_to_events(probs[:40], labels,
                                           {"laughter": 0.5, "cough": 0.3})] == ["cough"]


@pytest.fixture(scope="module")
def tiny_head(tmp_path_factory, shared_data):
    """A head retrained on a few clips: two labels, four voices each, two host files."""
    root = tmp_path_factory.mktemp("tiny")
    bank = root / "bank"
    bank.mkdir()
    for name in ("laugh_scratch_female.wav", "laugh_scratch_male1.wav", "laugh_xemacs.wav",
                 "hedgewars_Default_Laugh.ogg", "hedgewars_HillBilly_Laugh.ogg",
                 "cough_scratch_female.wav", "cough_scratch_male.wav",
                 "hedgewars_Default_PoisonCough.ogg", "hedgewars_HillBilly_PoisonCough.ogg"):
        shutil.copy(shared_data / "vocal" / name, bank / name)
    speech = shared_data / "speech"
    hosts = (str(speech / "jfk" / "jfk.wav"), str(speech / "silero_vad" / "test.wav"),
             str(speech / "pocketsphinx" / "librivox"))
    config = TrainConfig(bank=str(bank), hosts=hosts, out=str(root / "out"), seed=1,
                         train_mixtures=60, dev_mixtures=24, epochs=15, espeak=False,
                         # A dozen tuning mixtures are too few for a false-alarm budget, and
                         # 60 training mixtures too few to spend many on speech only.
                         fa_budget="none", mix=MixConfig(negative_fraction=0.2, crosstalk_p=0.0))
    return train_detector(config), root


def test_tiny_head_learns_above_chance(tiny_head):
    report, root = tiny_head
    from synpara.training.mixtures import read_truth
    from synpara.training.train import extract_features

    out = root / "out"
    truth = read_truth(out / "mixtures" / "dev" / "truth.jsonl")
    frames = extract_features(out / "mixtures" / "dev", "yamnet", 1,
                              out / "features" / "yamnet" / "dev.npz")  # cached by training
    head = EventHead.load(out / "head.pt", threads=1)
    labels = head.trained_labels
    predicted = np.concatenate([head.probs_from_features(f)[:, :len(labels)] for f in frames])
    target = np.concatenate([frame_targets(x["events"], len(f), labels)[:, 1:]
                             for x, f in zip(truth, frames)])

    def f1(guess: np.ndarray) -> float:
        hits = float((guess * target).sum())
        return 2 * hits / float(guess.sum() + target.sum())

    # Chance: every frame claimed for every label (the best constant guess for F1).
    chance = f1(np.ones_like(target))
    learned = f1((predicted >= 0.5).astype(np.float32))
    assert learned > chance + 0.15, (learned, chance)
    events_f1 = report["dev_test"]["categories"]["all"]["f1"]
    assert events_f1 is not None and events_f1 > 0.3
    assert report["labels"]["laughter"]["status"] == "trained"
    assert report["labels"]["tsk"]["status"] == "no clips: not trained"
    assert report["labels"]["sigh"]["status"].startswith("no clips: not trained (YAMNet prior")


def test_false_alarm_budget_holds_on_the_speech_only_mixtures(tiny_head):
    """Thresholds held to a false-alarm budget only go up, and meet it where they were tuned;
    training records the budget the rules set (their own rate on the same audio)."""
    report, root = tiny_head
    from synpara.training.mixtures import read_truth
    from synpara.training.thresholds import (
        FA_GRID,
        constrain_false_alarms,
        events_of,
        score_events,
    )
    from synpara.training.train import extract_features, fa_budget_of

    out = root / "out"
    truth = read_truth(out / "mixtures" / "dev" / "truth.jsonl")
    assert any(not line["events"] for line in truth)  # speech-only mixtures to count on
    frames = extract_features(out / "mixtures" / "dev", "yamnet", 1,
                              out / "features" / "yamnet" / "dev.npz")
    head = EventHead.load(out / "head.pt", threads=1)
    ids = [line["id"] for line in truth]
    loose = {label: 0.2 for label in head.labels}  # fires a lot: false alarms to remove
    before = score_events(truth, events_of(head, frames, ids, loose))
    chosen, in_words = constrain_false_alarms(head, frames, truth, loose, budget=0.0)
    assert in_words == {}  # no words given: one threshold per label
    after = score_events(truth, events_of(head, frames, ids, chosen))
    assert after.false_alarms_per_minute() == 0.0
    assert all(chosen[label] >= loose[label] and chosen[label] in FA_GRID for label in chosen)
    if before.false_alarms_per_minute() > 0:
        assert chosen != loose
    assert constrain_false_alarms(head, frames, truth, loose, budget=1e9) == (loose, {})
    assert report["false_alarm_budget_dev_tune"] is None  # the fixture trained without one
    assert head.state["provenance"]["false_alarm_budget"]["per_minute"] is None
    # The default budget: the YAMNet rules' own false alarms on the same speech-only audio.
    config = TrainConfig(bank="unused", hosts=(), out=str(root / "rules"), fa_budget="rules")
    rules_rate = fa_budget_of(config, [(out / "mixtures" / "dev", truth)])
    assert rules_rate is not None and rules_rate >= 0
    assert (root / "rules" / "rules_false_alarms.json").is_file()  # cached for the rerun
    assert fa_budget_of(replace(config, fa_budget="0.5"), []) == 0.5
    with pytest.raises(SynparaError, match="fa_budget"):
        fa_budget_of(replace(config, fa_budget="lots"), [])


def test_word_thresholds_need_more_inside_words():
    """Frames inside a confident word need the label's in-word threshold; the same evidence
    outside words (or with no words at all) is an event."""
    from synpara.detectors.head import word_frames

    labels = ["laughter", "cough"]
    probs = np.zeros((40, 2), np.float32)
    probs[5:10, 0] = 0.7  # inside the word below
    probs[25:30, 0] = 0.7  # in a gap
    inside = word_frames(40, [(0.3, 1.2, 0.9)])
    assert inside[3:12].all() and not inside[:3].any() and not inside[12:].any()
    thresholds = {"laughter": 0.5, "cough": 0.5}
    words_high = {"laughter": 0.9}
    events = frames_to_events(probs, labels, thresholds, word_thresholds=words_high,
                              in_word=inside)
    assert [(e[0], round(e[1], 2)) for e in events] == [("laughter", 2.5)]
    assert len(frames_to_events(probs, labels, thresholds, word_thresholds=words_high)) == 2
    assert len(frames_to_events(probs, labels, thresholds, word_thresholds=words_high,
                                in_word=word_frames(40, []))) == 2
    # An in-word threshold below the threshold never lowers it.
    assert len(frames_to_events(probs, labels, {"laughter": 0.8}, word_thresholds={
        "laughter": 0.1}, in_word=inside)) == 0


def test_false_alarm_budget_can_raise_thresholds_inside_words_only(tiny_head):
    """Given each mixture's confident words, the budget may raise a label inside words alone;
    what it chose holds the budget when the events are made with those words."""
    _report, root = tiny_head
    from synpara.training.mixtures import read_truth
    from synpara.training.thresholds import constrain_false_alarms, events_of, score_events
    from synpara.training.train import extract_features, mixture_words

    out = root / "out"
    truth = read_truth(out / "mixtures" / "dev" / "truth.jsonl")
    frames = extract_features(out / "mixtures" / "dev", "yamnet", 1,
                              out / "features" / "yamnet" / "dev.npz")
    words = mixture_words(out / "mixtures" / "dev", "tiny.en", 1, root / "words.json")
    assert set(words) == {line["id"] for line in truth}
    assert sum(len(w) for w in words.values()) > 20  # the hosts are speech: words are found
    assert mixture_words(out / "mixtures" / "dev", "tiny.en", 1, root / "words.json") == words
    head = EventHead.load(out / "head.pt", threads=1)
    ids = [line["id"] for line in truth]
    loose = {label: 0.2 for label in head.labels}
    rate = score_events(truth, events_of(head, frames, ids, loose, words)
                        ).false_alarms_per_minute()
    chosen, in_words = constrain_false_alarms(head, frames, truth, loose, budget=rate / 2,
                                              words=words)
    head.word_thresholds = in_words
    after = score_events(truth, events_of(head, frames, ids, chosen, words))
    assert after.false_alarms_per_minute() <= rate / 2 + 1e-9
    assert all(in_words[label] > chosen[label] for label in in_words)


def test_speech_frames_are_where_yamnet_hears_speech(shared_data):
    """An ``inside: speech`` head's second thresholds apply where YAMNet hears speech: most of
    a real speech file, little of a real laugh in silence."""
    from synpara.detectors.features import load_features
    from synpara.detectors.head import speech_frames
    from synpara.training.sources import load_mono

    features = load_features("yamnet", threads=1)
    speech = speech_frames(features(load_mono(shared_data / "speech" / "jfk" / "jfk.wav")))
    laugh = speech_frames(features(load_mono(shared_data / "vocal" / "laugh_xemacs.wav")))
    assert speech.mean() > 0.8 and laugh.mean() < 0.4, (speech.mean(), laugh.mean())


def test_false_alarm_budget_can_raise_thresholds_in_speech_frames_without_words(tiny_head):
    """An ``inside: speech`` head needs no words: where a label fires on plain speech and also
    finds a real event out of speech, the budget raises it in speech frames only, and detect's
    way of making events (no words given) keeps the event and drops the false alarm.

    The frames are made by hand: the head scores ``sniff`` (a YAMNet prior label) from its
    trailing Sniff log-odds, and its speech frames are where the Speech log-odds are positive."""
    _report, root = tiny_head
    from synpara.detectors.features import PRIOR_CLASSES
    from synpara.training.thresholds import constrain_false_alarms, events_of, score_events

    head = EventHead({**EventHead.load(root / "out" / "head.pt").state, "inside": "speech"},
                     threads=1)
    assert "sniff" in head.prior_labels
    prior = list(PRIOR_CLASSES)

    def frames(speech: float, sniff: slice) -> np.ndarray:
        x = np.zeros((50, int(head.state["dim_in"])), np.float32)  # 5 s
        x[:, -len(prior):] = -5.0  # every other YAMNet class quiet ...
        x[:, -len(prior) + prior.index("Speech")] = speech
        x[sniff, -len(prior) + prior.index("Sniff")] = 5.0  # ... but a sniff
        return x

    features = [frames(5.0, slice(20, 26)), frames(-5.0, slice(10, 16))]
    truth = [{"id": "talk", "duration": 5.0, "events": []},
             {"id": "sniff", "duration": 5.0,
              "events": [{"label": "sniff", "start": 1.0, "end": 1.6}]}]
    loose = {label: 1.01 for label in head.labels} | {"sniff": 0.5}  # sniff alone is on
    ids = ["talk", "sniff"]
    before = events_of(head, features, ids, loose)
    assert [e[0] for e in before["talk"]] == ["sniff"] and [e[0] for e in before["sniff"]] == [
        "sniff"]
    chosen, in_speech = constrain_false_alarms(head, features, truth, loose, budget=0.0)
    assert chosen["sniff"] == 0.5 and in_speech["sniff"] > 0.5, (chosen, in_speech)
    head.thresholds, head.word_thresholds = chosen, in_speech
    after = events_of(head, features, ids)
    assert after["talk"] == [] and [e[0] for e in after["sniff"]] == ["sniff"]
    assert score_events(truth, after).false_alarms_per_minute() == 0.0
    import torch

    torch.save({**head.state, "inside": "elsewhere"}, str(root / "bad_inside.pt"))
    with pytest.raises(SynparaError, match="damaged"):
        EventHead.load(root / "bad_inside.pt")
    with pytest.raises(SynparaError, match="inside"):
        train_detector(TrainConfig(bank="unused", hosts=(), out=str(root / "x"),
                                   inside="elsewhere"))


def test_head_file_loads_and_predicts_with_its_label_list(tiny_head):
    report, root = tiny_head
    head = EventHead.load(root / "out" / "head.pt", threads=1)
    assert head.trained_labels == ["laughter", "cough"]
    assert "sigh" in head.prior_labels and "tsk" not in head.labels
    assert set(head.thresholds) == set(head.labels)
    assert head.state["provenance"]["train_clips"] == {"laughter": 4, "cough": 3} or \
        sum(head.state["provenance"]["train_clips"].values()) >= 4
    windows = np.random.default_rng(0).normal(0, 0.01, (2, 16000)).astype(np.float32)
    probs = head.predict(windows)
    assert probs.shape == (2, len(head.labels)) and ((probs >= 0) & (probs <= 1)).all()
    assert (root / "out" / "head.pt").stat().st_size < 5_000_000


def test_bad_head_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "head.pt"
    bad.write_text("not a head")
    with pytest.raises(SynparaError, match="head"):
        EventHead.load(bad)


def test_train_detector_on_an_empty_bank_is_one_line_and_fails(tmp_path):
    (tmp_path / "bank").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "synpara", "train-detector", "--bank", str(tmp_path / "bank"),
         "--hosts", str(tmp_path), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no labelled audio clips" in lines[0], result.stderr
    assert not (tmp_path / "out" / "head.pt").exists()
