"""eval events: matching rules, the figures, both input formats and the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from synpara.errors import SynparaError
from synpara.eval.events import Event, RecordingEvents, command, load_events, match, score


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_each_truth_is_used_once_and_categories_must_agree():
    truth = [Event("laughter", 1.0, 2.0)]
    pred = [Event("laughter", 1.1, 1.5), Event("laughter", 1.6, 1.9)]
    assert len(match(truth, pred)) == 1
    scores = score({"a": RecordingEvents("a", 10.0, truth)},
                   {"a": RecordingEvents("a", 10.0, pred)})
    row = scores.categories["laughter"]
    assert (row.hits, row.precision, row.recall) == (1, 0.5, 1.0)
    # A cough at the same place is not a laughter hit.
    other = score({"a": RecordingEvents("a", 10.0, truth)},
                  {"a": RecordingEvents("a", 10.0, [Event("cough", 1.0, 2.0)])})
    assert other.categories["laughter"].recall == 0.0
    assert other.categories["cough"].precision == 0.0


def test_matching_maximises_overlap():
    truth = [Event("cough", 0.0, 1.0), Event("cough", 1.2, 2.0)]
    pred = [Event("cough", 0.8, 1.9)]  # overlaps the second truth more
    assert match(truth, pred) == [(1, 0)]
    assert match(truth, [Event("cough", 5.0, 6.0)]) == []


def test_timing_errors_and_false_alarms_per_minute():
    truth = {"a": RecordingEvents("a", 30.0, [Event("laughter", 1.0, 2.0)]),
             "c": RecordingEvents("c", 120.0, [])}
    pred = {"a": RecordingEvents("a", 30.0, [Event("laughter", 1.2, 2.5)]),
            "c": RecordingEvents("c", 120.0, [Event("breath", 3.0, 3.5), Event("cough", 9.0, 9.4)])}
    scores = score(truth, pred)
    assert math.isclose(scores.categories["laughter"].median_onset_error, 0.2)
    assert math.isclose(scores.categories["laughter"].median_offset_error, 0.5)
    assert scores.event_free_minutes == 2.0
    assert scores.false_alarms_per_minute() == 1.0
    assert scores.false_alarms_per_minute("cough") == 0.5


def test_reads_jsonl_with_aliases_and_manifests(tmp_path, shared_data):
    from lhotse import SupervisionSegment

    from synpara.manifest import alignment_item, attach_events, write_cuts
    from tests.conftest import cut_for_file

    truth = write_jsonl(tmp_path / "truth.jsonl", [
        {"id": "jfk", "duration": 11.0, "events": [{"label": "(laughs)", "start": 1, "end": 2}]}])
    cut = cut_for_file(shared_data / "speech/jfk/jfk.wav", "jfk")
    cut.supervisions = [SupervisionSegment("s", "jfk", 0.0, cut.duration)]
    cut = attach_events(cut, [alignment_item("laughter", 1.5, 2.5, 0.9)])
    write_cuts(tmp_path / "cuts.jsonl.gz", [cut])
    pred = load_events(tmp_path / "cuts.jsonl.gz")
    assert pred["jfk"].events == [Event("laughter", 1.5, 2.5)]
    scores = score(load_events(truth), pred)
    assert scores.categories["laughter"].f1 == 1.0


def test_bad_truth_is_a_clear_error(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "events": [{"label": "zzz", "start": 0,
                                                                       "end": 1}]}])
    with pytest.raises(SynparaError, match="bad.jsonl: line 1: unknown event label"):
        load_events(bad)
    backwards = write_jsonl(tmp_path / "b.jsonl", [{"id": "a", "events": [
        {"label": "cough", "start": 2, "end": 1}]}])
    with pytest.raises(SynparaError, match="ends before it starts"):
        load_events(backwards)


def test_command_prints_the_table_and_json(tmp_path):
    truth = write_jsonl(tmp_path / "t.jsonl", [
        {"id": "a", "duration": 5, "events": [{"label": "cough", "start": 1, "end": 1.5}]},
        {"id": "c", "duration": 60, "events": []}])
    pred = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "events": [{"label": "cough", "start": 1.05, "end": 1.4}]},
        {"id": "c", "events": [{"label": "sigh", "start": 3, "end": 4}]}])
    result = CliRunner().invoke(command, ["--truth", str(truth), "--pred", str(pred)])
    assert result.exit_code == 0, result.output
    assert "cough" in result.output and "FA/min" in result.output
    result = CliRunner().invoke(command, ["--truth", str(truth), "--pred", str(pred), "--json"])
    data = json.loads(result.output)
    assert data["categories"]["cough"]["f1"] == 1.0
    assert data["categories"]["all"]["false_alarms_per_minute_event_free"] == 1.0
    missing = CliRunner().invoke(command, ["--truth", str(tmp_path / "no.jsonl"),
                                           "--pred", str(pred)])
    assert missing.exit_code != 0 and "no such file" in missing.output
