"""pipelines/synthesize.yaml: loads, and runs end to end on bundled material only (tts hosts, the
bundled bank); the inserted events are in the manifest with exact times and tags in the text."""

from __future__ import annotations

from pathlib import Path

import yaml

from synpara.manifest import items, iter_cuts
from synpara.pipeline import load_pipeline, run_pipeline

REPO = Path(__file__).resolve().parents[1]


def test_synthesize_pipeline_runs_on_bundled_material(tmp_path: Path, monkeypatch) -> None:
    pipeline = load_pipeline(REPO / "pipelines" / "synthesize.yaml")
    assert [step.name for step in pipeline.steps] == ["tts", "insert", "export"]
    # the same graph with the gate off and two lines (the gate's models are tested elsewhere)
    data = yaml.safe_load((REPO / "pipelines" / "synthesize.yaml").read_text())
    lines = (REPO / "assets" / "synthesize" / "lines.txt").read_text().splitlines()
    (tmp_path / "lines.txt").write_text("\n".join(lines[:3]) + "\n")
    data["input"] = [str(tmp_path / "lines.txt")]
    data["stages"][1]["insert"]["gate"] = "none"
    data["executor"]["workers"] = 1
    config = tmp_path / "synthesize.yaml"
    config.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(REPO)  # the YAML's paths are relative to the repository root
    summaries = run_pipeline(load_pipeline(config), output=tmp_path / "out", progress=False)
    assert [s.cuts for s in summaries] == [2, 2, 2]
    for cut in iter_cuts(tmp_path / "out" / "02-insert" / "cuts.jsonl.gz"):
        events = items(cut, "event")
        assert len(events) == 2
        tagged = cut.supervisions[0].custom["tagged_text"]
        assert all(f"[{e.symbol}]" in tagged for e in events)
        assert cut.sampling_rate == 22050

    # exported: every event of a synthesized corpus is flagged inserted, at its exact time
    import datasets

    dataset = datasets.load_from_disk(str(tmp_path / "out" / "03-export" / "hf"))
    insert_manifest = tmp_path / "out" / "02-insert" / "cuts.jsonl.gz"
    inserted = {cut.id: items(cut, "event") for cut in iter_cuts(insert_manifest)}
    for row in dataset:
        assert [e["inserted"] for e in row["events"]] == [True, True]
        assert [round(e["start"], 6) for e in row["events"]] == [
            round(e.start, 6) for e in inserted[row["id"]]
        ]

    # the report of a synthesized run counts its events as inserted and renders in a browser
    from synpara.report.stats import gather
    from tests.report.test_report import render_and_check_in_chromium

    stats = gather(tmp_path / "out")
    assert stats.inserted == 4 and stats.mined == 0
    players = sum(len(reservoir.items) for reservoir in stats.samples.values())
    render_and_check_in_chromium(tmp_path / "out", tmp_path / "page", sorted(stats.samples),
                                 players, "report-synthesized.png")
