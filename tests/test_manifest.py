"""The manifest conventions, pinned against lhotse itself (see synpara/manifest.py)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from lhotse import CutSet

from synpara.errors import SynparaError
from synpara.manifest import (
    alignment_item,
    attach_events,
    items,
    iter_cuts,
    to_cut_time,
    validate_cut,
    write_cuts,
)
from synpara.ontology import LABELS, canonical_label, is_event_tag
from tests.conftest import cut_for_file


@pytest.fixture
def aligned_cut(shared_data, tmp_path):
    """The pyannote sample call with one supervision carrying a word and an event."""
    from lhotse import SupervisionSegment

    cut = cut_for_file(shared_data / "speech/pyannote_sample/sample.wav")
    word = alignment_item("hello", 3.25, 3.75, 0.9)
    event = alignment_item("laughter", 5.5, 6.25, 0.7)
    supervision = SupervisionSegment(
        id="sup0",
        recording_id=cut.recording_id,
        start=3.0,
        duration=4.0,
        speaker="A",
        alignment={"word": [word], "event": [event]},
    )
    cut.supervisions = [supervision]
    return cut


def test_round_trip_through_lhotse(aligned_cut, tmp_path):
    path = tmp_path / "cuts.jsonl.gz"
    assert write_cuts(path, [aligned_cut]) == 1
    loaded = CutSet.from_jsonl(path)
    (cut,) = list(loaded)
    assert cut.id == aligned_cut.id
    assert items(cut, "word")[0].symbol == "hello"
    assert items(cut, "event")[0].start == pytest.approx(5.5)
    audio = cut.load_audio()
    assert audio.shape == (1, 480000)
    # our streaming reader gives the same cut
    (streamed,) = list(iter_cuts(path))
    assert streamed.to_dict() == cut.to_dict()


def test_word_and_event_times_are_recording_time_across_truncation(aligned_cut):
    """lhotse shifts supervision.start on truncation but not alignment items: we rely on that."""
    full_audio = aligned_cut.load_audio()[0]
    rate = aligned_cut.sampling_rate
    truncated = aligned_cut.truncate(offset=2.0, duration=10.0)
    (sup,) = truncated.supervisions
    assert sup.start == pytest.approx(1.0)  # 3.0 in the recording, relative to the new cut
    word = sup.alignment["word"][0]
    assert word.start == pytest.approx(3.25)  # unchanged: recording time
    # the same samples, whichever way we reach them
    sub_audio = truncated.load_audio()[0]
    cut_start = round(to_cut_time(truncated, word.start) * rate)
    rec_start = round(word.start * rate)
    width = round(word.duration * rate)
    np.testing.assert_allclose(
        sub_audio[cut_start : cut_start + width], full_audio[rec_start : rec_start + width]
    )


def test_attach_events_goes_to_the_most_overlapping_supervision(aligned_cut):
    from lhotse import SupervisionSegment

    cut = aligned_cut
    cut.supervisions.append(
        SupervisionSegment(
            id="sup1", recording_id=cut.recording_id, start=10.0, duration=5.0, speaker="B"
        )
    )
    near_b = alignment_item("cough", 15.5, 15.8)  # after B's turn: nearest is B
    inside_a = alignment_item("sigh", 4.0, 4.5)
    cut = attach_events(cut, [near_b, inside_a])
    by_speaker = {s.speaker: [e.symbol for e in s.alignment["event"]] for s in cut.supervisions}
    assert by_speaker == {"A": ["sigh"], "B": ["cough"]}


def test_attach_events_to_cut_without_supervisions(shared_data):
    cut = cut_for_file(shared_data / "speech/jfk/jfk.wav")
    cut = attach_events(cut, [alignment_item("laughter", 1.0, 2.0)])
    assert [e.symbol for e in items(cut, "event")] == ["laughter"]
    assert cut.supervisions[0].duration == pytest.approx(cut.duration)


def test_manifest_files_are_byte_stable(aligned_cut, tmp_path):
    write_cuts(tmp_path / "a.jsonl.gz", [aligned_cut])
    write_cuts(tmp_path / "b.jsonl.gz", [aligned_cut])
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_malformed_lines_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(SynparaError, match=r"bad.jsonl.gz: line 1: not a lhotse cut"):
        list(iter_cuts(path))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x"\n')
    with pytest.raises(SynparaError, match=r"broken.jsonl: line 1: not valid JSON"):
        list(iter_cuts(broken))
    with pytest.raises(SynparaError, match="no such file"):
        list(iter_cuts(tmp_path / "missing.jsonl.gz"))


def test_numpy_floats_are_cast(aligned_cut, tmp_path):
    item = alignment_item("x", np.float64(1.5), np.float32(2.0), np.float64(0.25))
    assert type(item.start) is float and type(item.score) is float


@pytest.mark.parametrize(
    "spelling, label",
    [
        ("laugh", "laughter"),
        ("Laughter", "laughter"),
        ("(laughs)", "laughter"),
        ("<laugh>", "laughter"),
        ("[Laughter]", "laughter"),
        ("throatclearing", "throat_clearing"),
        ("[throat_clearing]", "throat_clearing"),
        ("Throat clearing", "throat_clearing"),
        ("(sighs)", "sigh"),
        ("[breath]", "breath"),
        ("<cough>", "cough"),
        ("sniffs", "sniff"),
    ],
)
def test_ontology_aliases(spelling, label):
    assert canonical_label(spelling) == label
    assert is_event_tag(spelling)


def test_ontology_covers_required_labels_and_rejects_unknown():
    required = {
        "laughter",
        "giggle",
        "sigh",
        "breath",
        "gasp",
        "cough",
        "throat_clearing",
        "sniff",
        "sneeze",
        "groan",
        "cry",
        "hum",
        "yawn",
        "pause",
    }
    assert required <= set(LABELS)
    with pytest.raises(SynparaError, match="unknown event label"):
        canonical_label("[applause]")


# --------------------------------------------------------------------------- validation


def _with_item(cut, kind, symbol, start, duration):
    """``cut`` with its first supervision's ``kind`` items replaced by one raw item."""
    from lhotse.supervision import AlignmentItem

    (sup,) = cut.supervisions
    bad = AlignmentItem(symbol=symbol, start=start, duration=duration, score=None)
    return cut.copy(supervisions=[sup.with_alignment(kind, [bad])])


def test_a_valid_cut_passes(aligned_cut):
    assert validate_cut(aligned_cut) is None
    # a zero-length word is what Whisper gives for a clipped word: start == end is allowed
    assert validate_cut(_with_item(aligned_cut, "word", "I", 4.0, 0.0)) is None


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: _with_item(c, "word", "far", 50.0, 0.5), "alignment.word[0] ('far')"),
        (lambda c: _with_item(c, "word", "nan", float("nan"), 0.5), "word[0] ('nan').start"),
        (lambda c: _with_item(c, "word", "neg", 4.0, -0.25), "word[0] ('neg').duration"),
        (lambda c: _with_item(c, "event", "not_a_label", 5.0, 0.5), "event[0] ('not_a_label')"),
        (lambda c: _with_item(c, "event", "laughter", float("inf"), 0.5), "event[0] ('laughter')"),
        (lambda c: c.copy(start=-1.0), "start: negative"),
        (lambda c: c.copy(duration=0.0), "duration: must be positive"),
        (lambda c: c.copy(duration=float("nan")), "duration: not a finite number"),
        (lambda c: c.copy(start=25.0, duration=10.0), "end: 35 s is past the end"),
        (
            lambda c: c.copy(supervisions=[c.supervisions[0].with_offset(40.0)]),
            "supervisions[0]: 43-47 s",
        ),
        (
            lambda c: c.copy(supervisions=[_replace(c.supervisions[0], duration=-1.0)]),
            "supervisions[0].duration: must be positive",
        ),
    ],
)
def test_each_bad_field_is_named_in_one_line(aligned_cut, change, field):
    reason = validate_cut(change(aligned_cut))
    assert reason is not None and field in reason, reason
    assert "\n" not in reason


def _replace(supervision, **changes):
    from dataclasses import replace

    return replace(supervision, **changes)


def test_unknown_labels_pass_when_allowed(aligned_cut):
    odd = _with_item(aligned_cut, "event", "not_a_label", 5.0, 0.5)
    assert "not a label of the ontology" in validate_cut(odd)
    assert validate_cut(odd, allow_unknown_labels=True) is None
