"""synpara eval words: matching, figures and the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from synpara.errors import SynparaError
from synpara.eval.words import Word, command, match_words, read_manifest_words, score_words
from synpara.manifest import alignment_item, write_cuts


def test_match_words_survives_insertions_and_punctuation():
    truth = ["so", "that", "was", "funny"]
    pred = ["So,", "uh", "that", "is", "funny."]
    assert match_words(truth, pred) == [(0, 0), (1, 2), (3, 4)]


def test_score_words_figures():
    truth = {"r": [Word("a", 1.0, 1.5), Word("b", 2.0, 2.5), Word("c", 3.0, 3.5)]}
    pred = {"r": [Word("a", 0.8, 1.5), Word("b", 2.0, 2.6), Word("x", 3.0, 3.5)]}
    score = score_words(truth, pred)
    assert score.matched == 2 and score.match_rate == pytest.approx(2 / 3, abs=1e-4)
    assert score.start_median_ms == pytest.approx(100.0)
    assert score.start_bias_ms == pytest.approx(-100.0)
    assert score.end_p90_ms == pytest.approx(90.0)


def _manifest(path, recording, words):
    from lhotse import Recording, SupervisionSegment
    from lhotse.audio import AudioSource

    rec = Recording(id=recording, sources=[AudioSource(type="file", channels=[0], source="x.wav")],
                    sampling_rate=16000, num_samples=16000 * 10, duration=10.0)
    cut = rec.to_cut()
    cut.supervisions = [SupervisionSegment(
        id=f"{recording}-0", recording_id=recording, start=0, duration=10.0,
        alignment={"word": [alignment_item(t, s, e) for t, s, e in words]},
    )]
    write_cuts(path, [cut])
    return path


def test_command_prints_figures(tmp_path):
    truth = _manifest(tmp_path / "t.jsonl.gz", "rec", [("so", 1.0, 1.2), ("funny", 1.5, 2.0)])
    pred = _manifest(tmp_path / "p.jsonl.gz", "rec", [("so", 0.8, 1.2), ("funny", 1.5, 2.05)])
    result = CliRunner().invoke(command, ["--truth", str(truth), "--pred", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["match_rate"] == 1.0 and figures["start_p90_ms"] == pytest.approx(180.0)


def test_manifest_without_words_is_an_error(tmp_path):
    empty = _manifest(tmp_path / "e.jsonl.gz", "rec", [])
    with pytest.raises(SynparaError, match="no words"):
        read_manifest_words(empty)
