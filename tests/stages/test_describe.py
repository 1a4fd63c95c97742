"""describe: measurements on a corpus with exact truth, the user classifier path, the CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from synpara.audio import SAMPLE_RATE, load_cut_audio
from synpara.errors import SynparaError
from synpara.manifest import write_cuts
from synpara.stage import RecordContext
from synpara.stages.describe import (
    TEMPLATES,
    Describe,
    DescribeConfig,
    describe_sentence,
    load_bins,
)
from tests.paracorpus import make_corpus
from tests.synth import have_espeak

pytestmark = pytest.mark.skipif(not have_espeak(), reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"), 6, np.random.default_rng(5))


def _describe(stage: Describe, cut, seed: int = 0):
    out = stage.process(cut, RecordContext(record_id=cut.id, seed=seed, output_dir=Path(".")))
    return out.supervisions[0].custom["paralinguistics"]


def test_measures_events_and_bins_on_exact_corpus(corpus):
    cuts, truths = corpus
    stage = Describe()
    stage.setup()
    for cut, truth in zip(cuts, truths):
        info = _describe(stage, cut)
        audio = load_cut_audio(cut)
        reference = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(audio.astype(np.float64))
        assert info["loudness_lufs"] == pytest.approx(reference, abs=0.01)
        words = truth.sentence.words
        # the spliced vocalization is not speaking time
        span = words[-1].end - words[0].start - sum(e.end - e.start for e in truth.sentence.events)
        assert info["rate"]["words_per_second"] == pytest.approx(len(words) / span, rel=0.02)
        assert 60 < info["f0"]["median_hz"] < 300 and info["f0"]["range_st"] > 0
        assert info["snr_db"] > 30 and info["bins"]["snr"] == "clean"  # noise floor at -58 dB
        if truth.after_word is None:
            assert info["events"] == []
            continue
        (event,) = info["events"]
        (placed,) = truth.sentence.events
        texts = [w.text for w in words]
        assert event["label"] == placed.text
        assert event["start"] == pytest.approx(placed.start, abs=1e-6)
        assert event["before"] == texts[max(0, truth.after_word - 2) : truth.after_word + 1]
        assert event["after"] == texts[truth.after_word + 1 : truth.after_word + 4]
        assert f"after '{' '.join(event['before'])}'" in info["description"]
    assert _describe(stage, cuts[1])["background"] == ["music"]
    # the female voice (en-us+f1) is higher than the male ones
    f0 = [_describe(stage, cut)["f0"]["median_hz"] for cut in cuts[:3]]
    assert f0[2] > max(f0[:2])


def test_description_template_is_drawn_from_the_record_rng(corpus):
    cuts, _ = corpus
    stage = Describe()
    stage.setup()
    first = [_describe(stage, cut)["description"] for cut in cuts]
    assert first == [_describe(stage, cut)["description"] for cut in cuts]  # deterministic
    info = _describe(stage, cuts[0])
    sentences = {
        describe_sentence(info, "so that was funny", np.random.default_rng(s)) for s in range(40)
    }
    assert len(sentences) == len(TEMPLATES)  # every template is used


def test_user_classifier_loads_and_labels(tmp_path, corpus):
    torch = pytest.importorskip("torch")

    class Loudness(torch.nn.Module):  # "loud" when RMS is over 0.05: a classifier we can predict
        def forward(self, waveform: torch.Tensor) -> torch.Tensor:
            rms = waveform.pow(2).mean().sqrt()
            return torch.stack([0.05 - rms, rms - 0.05]) * 100

    path = tmp_path / "emo.pt"
    torch.jit.script(Loudness()).save(str(path))
    (tmp_path / "emo.labels.json").write_text(json.dumps(["calm", "excited"]))
    cuts, _ = corpus
    stage = Describe(DescribeConfig(classifier=(f"emotion:{path}",)))
    stage.setup()
    info = _describe(stage, cuts[0])
    audio = load_cut_audio(cuts[0])
    expected = "excited" if np.sqrt(np.mean(audio**2)) > 0.05 else "calm"
    assert info["classifiers"]["emotion"]["label"] == expected
    assert f"sounds {expected}" in info["description"]
    (tmp_path / "emo.labels.json").write_text(json.dumps(["one", "two", "three"]))
    stage = Describe(DescribeConfig(classifier=(f"emotion:{path}",)))
    stage.setup()
    with pytest.raises(SynparaError, match="2 logits for 3 labels"):
        _describe(stage, cuts[0])


def test_bad_options_and_bins(tmp_path):
    with pytest.raises(SynparaError, match="f0_method"):
        Describe(DescribeConfig(f0_method="crepe"))
    with pytest.raises(SynparaError, match="KIND:PATH"):
        Describe(DescribeConfig(classifier=("mood:x.pt",)))
    with pytest.raises(SynparaError, match="classifier model not found"):
        Describe(DescribeConfig(classifier=(f"age:{tmp_path / 'none.pt'}",))).setup()
    bad = tmp_path / "bins.yaml"
    bad.write_text("pitch: {words: [a, b]}\n")
    with pytest.raises(SynparaError, match="three words"):
        load_bins(bad)
    assert load_bins()["rate"]["words"] == ["slow", "normal", "fast"]


def test_cli_writes_descriptions_and_fails_in_one_line(tmp_path, corpus, capsys):
    from synpara.cli import main

    cuts, _ = corpus
    manifest = tmp_path / "in.jsonl.gz"
    write_cuts(manifest, cuts[:2])
    out = tmp_path / "out"
    main(["describe", "-i", str(manifest), "-o", str(out), "--workers", "1"])
    with gzip.open(out / "cuts.jsonl.gz", "rt") as handle:
        written = [json.loads(line) for line in handle]
    assert all(c["supervisions"][0]["custom"]["paralinguistics"]["description"] for c in written)
    capsys.readouterr()  # progress lines of the good run
    for args in (
        ["-i", str(tmp_path / "missing.jsonl.gz")],
        ["-i", str(manifest), "--f0-method", "crepe"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["describe", *args, "-o", str(tmp_path / "bad"), "--workers", "1"])
        assert exit_info.value.code != 0
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("synpara: error:")
