"""End to end: `synpara run pipelines/demo.yaml` on the bundled sample (the session's one demo run,
``demo_output`` in conftest), read back by lhotse and by Hugging Face `datasets`, every timestamp
inside the audio."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from synpara.manifest import items

REPO = Path(__file__).resolve().parents[1]


def _stage_dirs(out: Path) -> list[Path]:
    stages = yaml.safe_load((REPO / "pipelines/demo.yaml").read_text())["stages"]
    return [out / f"{index:02d}-{next(iter(entry))}" for index, entry in enumerate(stages, 1)]


@pytest.mark.slow
def test_demo_writes_one_loadable_manifest_per_stage(demo_output):
    from lhotse import CutSet

    for directory in _stage_dirs(demo_output):
        assert (directory / "_SUCCESS").exists(), directory
        cuts = CutSet.from_jsonl(directory / "cuts.jsonl.gz")
        assert len(cuts) >= 1
        for cut in cuts:
            history = [entry["stage"] for entry in cut.custom["synpara"]["history"]]
            assert history[-1] == directory.name.split("-", 1)[1]
            for supervision in cut.supervisions:
                assert 0 <= supervision.start and supervision.end <= cut.duration + 1e-6
            for kind in ("word", "event"):
                for item in items(cut, kind):
                    assert cut.start - 1e-6 <= item.start <= item.end <= cut.end + 1e-6, item


@pytest.mark.slow
def test_final_manifest_loads_in_hf_datasets_and_plays(demo_output):
    import datasets
    from lhotse import CutSet

    final = _stage_dirs(demo_output)[-1] / "cuts.jsonl.gz"
    table = datasets.load_dataset("json", data_files=str(final), split="train")
    cuts = CutSet.from_jsonl(final)
    assert len(table) == len(cuts)
    assert set(table["id"]) == {cut.id for cut in cuts}
    first = next(iter(cuts))
    audio = first.load_audio()
    assert audio.shape[-1] == pytest.approx(first.duration * first.sampling_rate, abs=1)
