"""``synpara report``: one static HTML page of a run."""

from __future__ import annotations

from pathlib import Path

import click

from synpara.errors import SynparaError


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="HTML file")
@click.option("--samples", type=int, default=3, show_default=True, help="sample cuts per label")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for the sampling")
def command(run_dir: str, output: str, samples: int, seed: int) -> None:
    """Render a static HTML page of a run: totals, rejects, plots, samples to hear and see.

    \b
    Example:
      synpara report output/demo -o output/demo/report.html
    """
    from synpara.report import render_report

    if not Path(run_dir).is_dir():
        raise SynparaError("no such directory", run_dir)
    if samples < 0:
        raise SynparaError(f"--samples must be >= 0, got {samples}")
    click.echo(f"report: {render_report(run_dir, output, samples, seed)}", err=True)
