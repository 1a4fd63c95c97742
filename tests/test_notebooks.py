"""The notebooks run top to bottom, and their cells' own assertions hold.

They run here (not through nbmake) so that the two that read the demo run use the session's one
run (``demo_output``) instead of running the whole pipeline again; a failing cell fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _execute(name: str) -> str:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    NotebookClient(
        notebook, timeout=600, resources={"metadata": {"path": str(REPO / "notebooks")}}
    ).execute()
    return "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )


@pytest.mark.slow
def test_explore_manifest_on_the_demo_output(demo_output, monkeypatch):
    # the kernel inherits this environment: the notebook's run_pipeline finds the demo finished
    monkeypatch.setenv("SYNPARA_DEMO_OUTPUT", str(demo_output))
    printed = _execute("01_explore_manifest.ipynb")
    assert "refine:" in printed and "words," in printed
    assert (demo_output / "cut.png").stat().st_size > 10_000


@pytest.mark.slow
def test_pipeline_from_python_on_the_demo_output(demo_output, monkeypatch):
    monkeypatch.setenv("SYNPARA_DEMO_OUTPUT", str(demo_output))
    printed = _execute("02_pipeline_from_python.ipynb")
    assert "skipped (already complete)" in printed and "utterances ->" in printed


@pytest.mark.slow
def test_synthesize_notebook():
    printed = _execute("03_synthesize.ipynb")
    assert "exact to the sample" in printed and "inserted" in printed
