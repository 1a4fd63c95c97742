"""The report renders a run into one HTML page that a real browser (headless Chromium) shows:
headings present, pictures drawn, every audio player loads its file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from synpara.executors.run import run_stage
from synpara.manifest import (
    EVENT,
    WORD,
    alignment_item,
    iter_cuts,
    write_cuts,
    write_json_lines_atomic,
)
from synpara.report.stats import Reservoir, gather
from synpara.stages.ingest import Ingest

ARTIFACTS = Path(__file__).resolve().parents[2] / "output" / "test-artifacts"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.fail("headless Chromium not found: install.sh installs Debian's chromium")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A two-stage run: an ingested recording, then utterances with laughter and a cough."""
    root = tmp_path_factory.mktemp("run")
    rate = 16000
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(6 * rate)).astype(np.float32)
    soundfile.write(root / "talk.wav", audio, rate)
    ingest = run_stage(
        Ingest(), [str(root / "talk.wav")], root / "01-ingest", workers=1, progress=False
    )
    (recording_cut,) = list(iter_cuts(ingest.manifest))
    from lhotse import SupervisionSegment

    cuts = []
    for index, (start, label) in enumerate([(0.0, "laughter"), (3.0, "cough")]):
        cut = recording_cut.truncate(offset=start, duration=3.0, preserve_id=True)
        sup = SupervisionSegment(
            id=f"talk-{index}",
            recording_id="talk",
            start=0.0,
            duration=3.0,
            speaker="talk-S0",
            text="hello there",
            custom={"tagged_text": f"hello there [{label}]"},
            alignment={
                WORD: [
                    alignment_item("hello", start + 0.2, start + 0.6, 0.9),
                    alignment_item("there", start + 0.7, start + 1.1, 0.8),
                ],
                EVENT: [alignment_item(label, start + 1.5, start + 2.2, 0.7)],
            },
        )
        cuts.append(cut.copy(id=f"talk-{index}", supervisions=[sup]))
    write_cuts(root / "02-refine" / "cuts.jsonl.gz", cuts)
    write_json_lines_atomic(
        root / "02-refine" / "rejects.jsonl.gz",
        [
            json.dumps(
                {
                    "id": "talk-9",
                    "source": "talk.wav",
                    "stage": "refine",
                    "reason": "SNR 3.1 dB below 10 dB",
                }
            )
        ],
    )
    return root


def test_stats_count_what_the_manifests_hold(run_dir):
    stats = gather(run_dir)
    assert stats.stages == ["01-ingest", "02-refine"]
    assert stats.utterances == 2 and stats.events == {"laughter": 1, "cough": 1}
    assert stats.hours_in == pytest.approx(6 / 3600) and stats.hours_out == pytest.approx(6 / 3600)
    assert stats.rejects == {("refine", "SNR 3.1 dB below 10 dB"): 1}
    assert stats.distributions["word score"].seen == 4


def test_reservoir_is_bounded_and_uniform():
    counts = np.zeros(100)
    for seed in range(300):
        reservoir = Reservoir(5, np.random.default_rng(seed))
        for item in range(100):
            reservoir.add(item)
        assert len(reservoir.items) == 5
        counts[reservoir.items] += 1
    # every item is about equally likely (expected 15 each); a biased sampler piles up at one end
    assert counts[:50].sum() == pytest.approx(counts[50:].sum(), rel=0.2)


def render_and_check_in_chromium(run_dir: Path, tmp_path: Path, headings: list[str],
                                 players: int, artifact: str) -> None:
    """Render ``run_dir``'s report, open it in headless Chromium: the headings are there, every
    audio player loads its file, the screenshot is not blank (kept as a test artifact)."""
    page = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "synpara", "report", str(run_dir), "-o", str(page)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu",
             "--autoplay-policy=no-user-gesture-required"]
    dom = subprocess.run(
        [browser, *flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    for heading in ["Totals", "Rejects", "Distributions", "Samples per label", *headings]:
        assert f">{heading}<" in dom, heading
    found = re.findall(r"<audio[^>]*>", dom)
    assert len(found) == players and all('data-loaded="1"' in p for p in found), found
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1600, 1200) and pixels[..., :3].std() > 0.05  # not a blank page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / artifact)


def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    render_and_check_in_chromium(run_dir, tmp_path, ["laughter", "cough"], 2, "report.png")


def test_a_folder_without_manifests_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "synpara", "report", str(tmp_path), "-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "cuts.jsonl.gz" in result.stderr
