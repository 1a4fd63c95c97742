"""``synpara condense``: a subset covering the pseudo-label combinations evenly (CPQA)."""

from __future__ import annotations

import click


@click.command("condense")
@click.option("-i", "--input", "input_path", required=True, help="manifest from describe")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="output directory (gets cuts.jsonl.gz and condense.json)")
@click.option("--hours", type=float, required=True, help="hours of audio to keep")
@click.option("--by", default="events,pitch,rate,gender", show_default=True,
              help="pseudo labels whose combinations to cover evenly")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the selection")
def command(input_path: str, output: str, hours: float, by: str, seed: int) -> None:
    """Pick about H hours covering the pseudo-label combinations evenly (CPQA condensation).

    \b
    Example:
      synpara condense -i output/describe/cuts.jsonl.gz -o output/condense --hours 100
    """
    from synpara.condense import condense as run_condense
    from synpara.condense import format_table, parse_by

    names = parse_by(by)
    report = run_condense(input_path, output, hours, names, seed)
    click.echo(format_table(names, report["combinations"]))
    click.echo(
        f"condense: {report['cuts_after']} of {report['cuts_before']} cuts, "
        f"{report['hours_after']:.3f} of {report['hours_before']:.3f} h -> {output}",
        err=True,
    )
