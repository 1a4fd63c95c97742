"""The notebooks run top to bottom, and their cells' own assertions hold.

They run here (not through nbmake) so that the tour reads the session's one demo run
(``demo_output``) instead of running the whole pipeline a second time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_manifest_tour_runs_on_the_demo_output(demo_output, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    # the kernel inherits this environment: the notebook's run_pipeline finds the demo finished
    monkeypatch.setenv("SYNPARA_DEMO_OUTPUT", str(demo_output))
    notebook = nbformat.read(REPO / "notebooks/manifest_tour.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=600, resources={"metadata": {"path": str(REPO / "notebooks")}}
    ).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "refine:" in printed and "words," in printed
    assert (demo_output / "overview.png").stat().st_size > 10_000
