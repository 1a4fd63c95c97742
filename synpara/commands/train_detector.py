"""``synpara train-detector``: train an event head on a bank of clips mixed into host speech."""

from __future__ import annotations

import click


@click.command("train-detector")
@click.option("--bank", required=True, type=click.Path(file_okay=False),
              help="folder of vocalization clips; label = sub-folder or file name")
@click.option("--hosts", "hosts", multiple=True, required=True, type=click.Path(),
              help="host speech file or folder (repeatable)")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="output directory: mixtures, features, head.pt, report.json")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--feature", type=click.Choice(["yamnet", "whisper"]), default="yamnet",
              show_default=True, help="frozen encoder the head reads (a bank with many clips "
                                      "per category: whisper measured better, README)")
@click.option("--train-mixtures", type=int, default=600, show_default=True,
              help="training mixtures (a bank with many clips per category: 2000 measured "
                   "better, README)")
@click.option("--dev-mixtures", type=int, default=200, show_default=True)
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--no-espeak", is_flag=True, help="do not add espeak-ng voices as hosts")
@click.option("--fa-budget", default="rules", show_default=True,
              help="false alarms per minute of speech-only dev audio the thresholds may raise: "
                   "'rules' (the YAMNet rules' own rate there), a number, or 'none'")
@click.option("--word-model", default="", show_default=True,
              help="with --inside words: the Whisper model (e.g. base) that transcribes the dev "
                   "mixtures so the budget may raise thresholds inside confident words only "
                   "(detect then uses the cut's words; transcribing is slow on CPU)")
@click.option("--inside", type=click.Choice(["words", "speech"]), default="words",
              show_default=True,
              help="where the budget may raise a second threshold per label: inside the "
                   "--word-model's words (none without one), or frames YAMNet hears speech in "
                   "(no ASR; finds more events, raises more false alarms in pauses)")
def command(bank: str, hosts: tuple[str, ...], output: str, seed: int,
            feature: str, train_mixtures: int, dev_mixtures: int, epochs: int,
            no_espeak: bool, fa_budget: str, word_model: str, inside: str) -> None:
    """Train an event head on BANK mixed into HOSTS; print dev figures, write OUTPUT/head.pt.

    \b
    Example:
      synpara train-detector --bank clips/ --hosts speech/ -o output/head
      synpara detect -i in.jsonl.gz -o out --detector head:output/head/head.pt
    """
    from synpara.training.train import TrainConfig, format_report, train_detector

    report = train_detector(TrainConfig(
        bank=bank, hosts=tuple(hosts), out=output, seed=seed, feature=feature,
        train_mixtures=train_mixtures, dev_mixtures=dev_mixtures, epochs=epochs,
        espeak=not no_espeak, fa_budget=fa_budget, word_model=word_model, inside=inside))
    click.echo(format_report(report))
