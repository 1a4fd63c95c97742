"""condense: the budget, even coverage, determinism, the coverage report, bad input."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from synpara.cli import main
from synpara.condense import Row, parse_by, select
from synpara.errors import SynparaError
from synpara.manifest import dumps, write_json_lines_atomic


def _skewed_rows(rng: np.random.Generator, count: int = 600) -> list[Row]:
    """A corpus where a few combinations hold most of the audio (like mined speech)."""
    keys = [
        ("none", "mid"),
        ("laughter", "high"),
        ("cough", "low"),
        ("sigh", "mid"),
        ("laughter+sigh", "low"),
        ("breath", "high"),
    ]
    weights = np.array([0.6, 0.2, 0.1, 0.06, 0.03, 0.01])
    picks = rng.choice(len(keys), size=count, p=weights)
    return [Row(f"c{i:04d}", keys[k], float(rng.uniform(2.0, 12.0))) for i, k in enumerate(picks)]


def _check_even(rows: list[Row], chosen: set[str]) -> None:
    """No combination that still has unused utterances got fewer seconds than another got minus
    one of that other's utterances (the one that pushed it past)."""
    selected: dict[tuple, float] = defaultdict(float)
    left: Counter = Counter()
    longest: dict[tuple, float] = defaultdict(float)
    for row in rows:
        if row.id in chosen:
            selected[row.key] += row.seconds
            longest[row.key] = max(longest[row.key], row.seconds)
        else:
            left[row.key] += 1
    for short in {r.key for r in rows}:
        if not left[short]:
            continue  # exhausted: it may be small
        for other, seconds in selected.items():
            assert seconds - longest[other] <= selected.get(short, 0.0) + 1e-9, (short, other)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("hours", [0.004, 0.05, 0.2, 0.5, 5.0])
def test_budget_within_one_utterance_and_even_coverage(seed, hours):
    rows = _skewed_rows(np.random.default_rng(seed))
    chosen = select(rows, hours * 3600, seed)
    total = sum(r.seconds for r in rows if r.id in chosen)
    corpus = sum(r.seconds for r in rows)
    longest = max(r.seconds for r in rows)
    if hours * 3600 >= corpus:
        assert len(chosen) == len(rows)
    else:
        assert hours * 3600 <= total < hours * 3600 + longest
    _check_even(rows, chosen)
    counts = Counter(r.key for r in rows if r.id in chosen)
    if len(counts) < len({r.key for r in rows}):  # a combination dropped: all others have one
        assert set(counts.values()) == {1}
    assert chosen == select(list(reversed(rows)), hours * 3600, seed)  # order does not matter


def test_rare_combinations_survive_and_seed_changes_the_pick():
    rows = _skewed_rows(np.random.default_rng(7))
    chosen = select(rows, 0.3 * 3600, seed=0)
    assert {r.key for r in rows if r.id in chosen} == {r.key for r in rows}
    assert chosen != select(rows, 0.3 * 3600, seed=1)


def _record(cut_id: str, duration: float, events: list[str], pitch: str, gender: str) -> dict:
    info = {
        "events": [
            {"label": e, "start": 1.0, "end": 1.5, "before": [], "after": []} for e in events
        ],
        "bins": {"pitch": pitch, "rate": "normal"},
        "gender": {"label": gender, "confidence": 0.95, "rule": "median F0"},
        "classifiers": {},
    }
    return {
        "id": cut_id,
        "start": 0.0,
        "duration": duration,
        "channel": 0,
        "type": "MonoCut",
        "supervisions": [
            {
                "id": f"{cut_id}-0",
                "recording_id": cut_id,
                "start": 0.0,
                "duration": duration,
                "channel": 0,
                "custom": {"paralinguistics": info},
            }
        ],
    }


def test_cli_writes_subset_and_coverage_report(tmp_path, capsys):
    rng = np.random.default_rng(3)
    records = [
        _record(
            f"u{i:03d}",
            float(rng.uniform(3, 9)),
            [["laughter"], [], ["cough"], ["laughter", "sigh"]][i % 4] if i % 5 else [],
            ["low", "mid", "high"][i % 3],
            ["male", "female"][i % 2],
        )
        for i in range(120)
    ]
    manifest = tmp_path / "in.jsonl.gz"
    write_json_lines_atomic(manifest, (dumps(r) for r in records))
    out = tmp_path / "out"
    main(
        [
            "condense",
            "-i",
            str(manifest),
            "-o",
            str(out),
            "--hours",
            "0.05",
            "--by",
            "events,pitch,gender",
            "--seed",
            "4",
        ]
    )
    stdout = capsys.readouterr().out
    assert stdout.splitlines()[0].split()[:3] == ["events", "pitch", "gender"]
    report = json.loads((out / "condense.json").read_text())
    with gzip.open(out / "cuts.jsonl.gz", "rt") as handle:
        kept = [json.loads(line) for line in handle]
    assert report["cuts_after"] == len(kept) and len(stdout.splitlines()) == 1 + len(
        report["combinations"]
    )
    assert abs(sum(c["duration"] for c in kept) - 180.0) < 9.0
    assert all(entry["after"]["cuts"] >= 1 for entry in report["combinations"])
    assert kept[0]["custom"]["synpara"]["history"][-1]["stage"] == "condense"
    main(
        [
            "condense",
            "-i",
            str(manifest),
            "-o",
            str(tmp_path / "again"),
            "--hours",
            "0.05",
            "--by",
            "events,pitch,gender",
            "--seed",
            "4",
        ]
    )
    assert (tmp_path / "again" / "cuts.jsonl.gz").read_bytes() == (
        out / "cuts.jsonl.gz"
    ).read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hours", "1"], "no such file"),
        (["--hours", "-2"], "positive"),
        (["--hours", "nan"], "positive"),
        (["--hours", "1", "--by", "events,colour"], "--by"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys, args, message):
    manifest = tmp_path / "in.jsonl.gz"
    if message != "no such file":
        write_json_lines_atomic(manifest, [dumps(_record("a", 3.0, [], "low", "male"))])
    with pytest.raises(SystemExit) as exit_info:
        main(["condense", "-i", str(manifest), "-o", str(tmp_path / "out"), *args])
    assert exit_info.value.code != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0]
    assert not (tmp_path / "out" / "cuts.jsonl.gz").exists()


def test_undescribed_manifest_is_refused(tmp_path):
    manifest = tmp_path / "in.jsonl.gz"
    write_json_lines_atomic(manifest, [dumps({"id": "a", "duration": 1.0, "supervisions": []})])
    with pytest.raises(SynparaError, match="run describe first"):
        from synpara.condense import condense

        condense(manifest, tmp_path / "out", 1.0, parse_by("events"))
