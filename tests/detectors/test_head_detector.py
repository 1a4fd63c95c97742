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
    assert config.get("fa_budget", "none") == script.FA_BUDGET  # trained before budgets
    assert "vocal_nc" not in config["bank"] and config["bank"].endswith("vocal")
