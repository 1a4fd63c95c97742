"""``detect --detector head:default``: the shipped trained head behind detect's interface, on real
speech with laughter timed by others (laughspeech) and on speech without any."""

from __future__ import annotations

import pytest

from synpara.detectors.base import load_detector
from synpara.detectors.head import DEFAULT_HEAD, HeadDetector
from synpara.errors import SynparaError
from synpara.manifest import items, iter_cuts


def test_the_shipped_head_loads_through_the_registry():
    assert DEFAULT_HEAD.is_file() and DEFAULT_HEAD.stat().st_size < 5_000_000
    detector = load_detector("head:default", threads=1, batch_size=8, window=0.96)
    assert isinstance(detector, HeadDetector)
    assert {"laughter", "cough", "sneeze"} <= set(detector.labels)
    with pytest.raises(SynparaError, match="no such head file"):
        load_detector("head:/nonexistent/head.pt", threads=1, batch_size=8, window=0.96)


@pytest.mark.slow
def test_detect_with_the_head_finds_real_laughter_and_nothing_in_plain_speech(
    shared_data, tmp_path
):
    from synpara.cli import main

    folder = shared_data / "speech/laughspeech"
    main(["ingest", "-i", str(folder / "laugh2.wav"), "-i", str(folder / "neut1.wav"),
          "-o", str(tmp_path / "ingest"), "--workers", "1"])
    main(["detect", "-i", str(tmp_path / "ingest" / "cuts.jsonl.gz"), "-o", str(tmp_path / "d"),
          "--detector", "head:default", "--workers", "1"])
    cuts = {cut.id: cut for cut in iter_cuts(tmp_path / "d" / "cuts.jsonl.gz")}
    (laugh,) = items(cuts["laugh2"], "event")
    # truth (the corpus authors'): laughter 4.902-6.618 s
    assert laugh.symbol == "laughter" and abs(laugh.start - 4.902) < 0.1 and laugh.end > 6.6
    assert items(cuts["neut1"], "event") == []


def test_the_shipped_head_is_what_its_script_pins():
    """scripts/train_default_head.py keeps the shipped head's recipe (retraining with it gave
    identical weights and thresholds); a recipe change must come with a new head file."""
    import importlib.util

    import torch

    from ..conftest import REPO

    spec = importlib.util.spec_from_file_location("train_default_head",
                                                  REPO / "scripts" / "train_default_head.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    config = torch.load(str(DEFAULT_HEAD), map_location="cpu",
                        weights_only=True)["provenance"]["config"]
    assert (config["seed"], config["feature"], config["train_mixtures"],
            config["dev_mixtures"]) == (script.SEED, script.FEATURE, script.TRAIN_MIXTURES,
                                        script.DEV_MIXTURES)
    assert config.get("fa_budget", "none") == script.FA_BUDGET
    assert config.get("word_model", "") == script.WORD_MODEL
    assert config.get("inside", "words") == script.INSIDE
    assert "vocal_nc" not in config["bank"] and config["bank"].endswith("vocal")
    # The mixtures too (options added since, at their "off" value, are not recorded).
    from synpara.training.mixtures import MixConfig, mix_recipe

    assert config["mix"] == mix_recipe(MixConfig(**script.MIX))


def test_the_heads_in_word_thresholds_apply_inside_the_cuts_confident_words(shared_data,
                                                                            tmp_path):
    """detect hands the cut's confident words to the head: a laugh the head finds stays found
    with no words or a word elsewhere, and needs the in-word threshold under a word."""
    import torch

    from synpara.stages.detect import Detect, DetectConfig
    from synpara.training.sources import load_mono

    state = torch.load(str(DEFAULT_HEAD), map_location="cpu", weights_only=True)
    state["word_thresholds"] = {"laughter": 1.01}  # never reached: laughter off inside words
    torch.save(state, str(tmp_path / "head.pt"))
    stage = Detect(DetectConfig(detector=f"head:{tmp_path / 'head.pt'}", threads=1))
    stage.setup()
    samples = load_mono(shared_data / "speech/laughspeech/laugh2.wav")  # laughter 4.90-6.62 s

    def labels(words):
        return [span.label for span in stage.detect(samples, words)[0]]

    assert "laughter" in labels(None)
    assert "laughter" in labels([(0.5, 2.0, 0.9)])
    assert "laughter" not in labels([(0.0, 8.2, 0.9)])  # one word over the whole file


def test_detect_with_the_head_keeps_the_background_tags_of_yamnet():
    """The head's features come from a YAMNet pass; detect's background tags come from the same
    pass, and agree with the rules' on white noise."""
    import numpy as np

    from synpara.stages.detect import Detect, DetectConfig

    noise = np.random.default_rng(0).normal(0, 0.1, 4 * 16000).astype(np.float32)
    tags = {}
    for spec in ("head:default", "yamnet"):
        stage = Detect(DetectConfig(detector=spec, threads=1))
        stage.setup()
        tags[spec] = stage.detect(noise)[1]
    assert list(tags["head:default"]) == list(tags["yamnet"]) == ["noise"]
    assert abs(tags["head:default"]["noise"] - tags["yamnet"]["noise"]) < 0.05
