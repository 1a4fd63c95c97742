"""The ``synpara`` command: one subcommand per registered stage, plus ``run`` and ``eval``.

Thin by design: a stage command is generated from the stage's Config dataclass (one ``--option``
per field), builds the stage and hands it to the local executor. Errors a user can fix are printed
as one line on stderr with a non-zero exit; ``-v`` shows tracebacks and debug logs.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import sys
import types
import typing
from pathlib import Path
from typing import Any, Union

import click

from synpara import __version__
from synpara.errors import SynparaError

#: ``synpara eval <name>`` -> module exposing a click command named ``command``.
EVAL_COMMANDS: dict[str, str] = {
    "events": "synpara.eval.events",
    "words": "synpara.eval.words",
}

#: ``synpara <name>`` -> module exposing a click command named ``command`` (corpus-wide tools).
COMMANDS: dict[str, str] = {
    "condense": "synpara.commands.condense",
    "qa": "synpara.commands.qa",
    "report": "synpara.commands.report",
    "train-detector": "synpara.commands.train_detector",
}

_EXIT_USER_ERROR = 2


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:  # libraries' info chatter drowns our progress lines
        for noisy in ("lhotse", "numba", "urllib3", "speechbrain", "faster_whisper", "pyannote"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _summarise(summary: Any) -> str:
    return str(summary.line())


def _run_options(reads_files: bool | None = None) -> list[click.Option]:
    """Options of how a stage runs (not what it computes), shared by stage commands and ``run``."""
    options = [
        click.Option(
            ["--max-failures"],
            default=None,
            help="records allowed to fail (not bad input: a bug, a missing file) before the stage "
            "ends in an error: a count, or a fraction of the input below 1 [default: 0]",
        ),
        click.Option(
            ["--oversubscribe"],
            is_flag=True,
            help="allow more workers than cores (the default caps them at the cores)",
        ),
    ]
    if reads_files is not False:
        options.append(
            click.Option(
                ["--checksum-inputs"],
                is_flag=True,
                help="key audio inputs by content (sha256), not only by size and mtime",
            )
        )
    if reads_files is not True:
        options.append(
            click.Option(
                ["--allow-unknown-labels"],
                is_flag=True,
                help="accept event labels outside the ontology in the input manifest",
            )
        )
    return options


# --------------------------------------------------------------------------- stage commands


def _click_option(config_field: dataclasses.Field, annotation: Any) -> click.Option:
    """One ``--option`` for a config field, typed from its annotation."""
    flag = "--" + config_field.name.replace("_", "-")
    help_text = config_field.metadata.get("help", "")
    default = config_field.default if config_field.default is not dataclasses.MISSING else None
    if config_field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = config_field.default_factory()  # type: ignore[misc]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    base = args[0] if origin in (Union, types.UnionType) and len(args) == 1 else annotation
    if base is bool:
        negative = "--no-" + config_field.name.replace("_", "-")
        return click.Option(
            [f"{flag}/{negative}", config_field.name],
            default=default,
            show_default=True,
            help=help_text,
        )
    if typing.get_origin(base) is dict:  # repeatable --threshold laughter=0.2 (also --thresholds)
        singular = config_field.name[:-1] if config_field.name.endswith("s") else ""
        flags = [f"--{singular.replace('_', '-')}"] if singular else []
        shown = ", ".join(f"{k}={v}" for k, v in (default or {}).items())
        return click.Option(
            [*flags, flag, config_field.name],
            multiple=True,
            type=str,
            default=None,
            help=f"{help_text} (KEY=VALUE, repeat for several) [default: {shown}]",
        )
    if typing.get_origin(base) in (list, tuple):
        (item_type,) = typing.get_args(base)[:1] or (str,)
        return click.Option(
            [flag, config_field.name],
            multiple=True,
            type=item_type,
            default=None,
            help=f"{help_text} (repeat for several)",
        )
    click_type = base if base in (int, float, str) else str
    return click.Option(
        [flag, config_field.name],
        type=click_type,
        default=None,
        show_default=str(default),
        help=help_text,
    )


def _executor_option(default: str | None = "local") -> click.Option:
    from synpara.executors import EXECUTORS

    return click.Option(
        ["--executor"],
        type=click.Choice(EXECUTORS),
        default=default,
        show_default=default is not None,
        help="local worker processes, or Ray Data (RAY_ADDRESS or a local cluster)",
    )


def _stage_command(name: str) -> click.Command:
    from synpara.stages import stage_class

    stage_cls = stage_class(name)
    config_cls = stage_cls.Config
    hints = typing.get_type_hints(config_cls)
    fields = dataclasses.fields(config_cls)
    reads_files = stage_cls.input_kind == "files"

    def callback(**kwargs: Any) -> None:
        from synpara.executors.run import require_output, run_stage

        inputs, output = kwargs.pop("inputs"), kwargs.pop("output")
        workers, seed, overwrite = (
            kwargs.pop("workers"),
            kwargs.pop("seed"),
            kwargs.pop("overwrite"),
        )
        executor = kwargs.pop("executor")
        run_options = {
            "max_failures": kwargs.pop("max_failures"),
            "oversubscribe": kwargs.pop("oversubscribe"),
            "checksum_inputs": kwargs.pop("checksum_inputs", False),
            "allow_unknown_labels": kwargs.pop("allow_unknown_labels", False),
        }
        params = {}
        for key, value in kwargs.items():
            if value is None or value == ():
                continue  # not given: the Config default applies
            params[key] = list(value) if isinstance(value, tuple) else value
        stage = stage_cls.from_params(params)
        if reads_files:
            stage_input: Any = list(inputs)
        else:
            if len(inputs) != 1:
                raise SynparaError(
                    f"{name} takes exactly one input manifest (-i), got {len(inputs)}"
                )
            stage_input = inputs[0]
            if not Path(stage_input).is_file():
                raise SynparaError("no such file", stage_input)
        summary = run_stage(
            stage,
            stage_input,
            output,
            workers=workers,
            seed=seed,
            overwrite=overwrite,
            executor=executor,
            **run_options,
        )
        require_output(summary)  # an error line instead of a summary of nothing
        click.echo(_summarise(summary), err=True)

    input_help = (
        "input files, directories, globs or list files (repeat -i for several)"
        if reads_files
        else "input manifest (cuts.jsonl.gz)"
    )
    # the registry lists stages in pipeline order: the one before is the usual input
    from synpara.stages import STAGES

    order = list(STAGES)
    previous = order[order.index(name) - 1] if order.index(name) > 0 else "previous"
    example = (
        f"synpara {name} -i recordings/ -o output/{name}"
        if reads_files
        else f"synpara {name} -i output/{previous}/cuts.jsonl.gz -o output/{name}"
    )
    params: list[click.Parameter] = [
        click.Option(["-i", "--input", "inputs"], multiple=True, required=True, help=input_help),
        click.Option(
            ["-o", "--output"],
            required=True,
            type=click.Path(file_okay=False),
            help="output directory (gets cuts.jsonl.gz and rejects.jsonl.gz)",
        ),
        click.Option(
            ["--workers"],
            type=int,
            default=None,
            help="worker processes, at most one per core [default: one per core]",
        ),
        click.Option(
            ["--seed"],
            type=int,
            default=0,
            show_default=True,
            help="seed for every random choice (>= 0)",
        ),
        click.Option(
            ["--overwrite"],
            is_flag=True,
            help="replace output of a different config in the output directory",
        ),
        _executor_option(),
        *_run_options(reads_files),
    ]
    params += [_click_option(f, hints[f.name]) for f in fields]
    doc = (stage_cls.__doc__ or "").strip().split("\n\n")[0]
    return click.Command(
        name,
        callback=callback,
        params=params,
        help=f"{doc}\n\nExample:\n\n    {example}",
        short_help=_stage_summary(doc, name),
    )


def _docstring(target: str) -> str:
    """The docstring of ``module:Name`` (a class or function), read from the module's source
    without importing it: a stage module imports numpy and friends, and ``synpara --help`` would
    pay for all ten (~0.1 s) just to print one line each."""
    import ast
    import importlib.util

    module_name, name = target.split(":")
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        return ""
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return ast.get_docstring(node) or ""
    return ""


def _stage_summary(doc: str, name: str) -> str:
    """A stage's one line: the first line of its docstring's first paragraph."""
    lines = doc.strip().split("\n\n")[0].splitlines()
    return lines[0] if lines else name


class _StageGroup(click.Group):
    """Adds one command per registered stage and per entry of :data:`COMMANDS`, each imported only
    when that command is used (``synpara --help`` reads their docstrings from source)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from synpara.stages import STAGES

        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)  # as click's own
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in STAGES:
                rows.append((name, _stage_summary(_docstring(STAGES[name]), name)))
            elif name in COMMANDS:
                doc = _docstring(f"{COMMANDS[name]}:command")
                # click's own shortening, on the docstring the command's help is made of
                rows.append((name, click.Command(name, help=doc).get_short_help_str(limit)))
            else:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        from synpara.stages import STAGES

        return list(STAGES) + sorted([*super().list_commands(ctx), *COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from synpara.stages import STAGES

        if cmd_name in STAGES:
            return _stage_command(cmd_name)
        if cmd_name in COMMANDS:
            return importlib.import_module(COMMANDS[cmd_name]).command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_StageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="synpara")
@click.option("-v", "--verbose", is_flag=True, help="debug logs and full tracebacks")
def cli(verbose: bool) -> None:
    """synpara: build paralinguistic speech corpora with exact event timestamps.

    \b
    Examples:
      synpara run pipelines/demo.yaml
      synpara ingest -i recordings/ -o output/ingest
    """
    _setup_logging(verbose)


@cli.command()
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@click.option("--from", "from_stage", help="first stage to run (name or NN-name)")
@click.option("--to", "to_stage", help="last stage to run (name or NN-name)")
@click.option(
    "-o", "--output", type=click.Path(file_okay=False), help="override the output directory"
)
@click.option("--workers", type=int, help="override the executor's worker count")
@click.option("--overwrite", is_flag=True, help="replace output of a different config")
def run(
    pipeline_file: str,
    from_stage: str | None,
    to_stage: str | None,
    output: str | None,
    workers: int | None,
    overwrite: bool,
    executor: str | None,
    max_failures: str | None,
    oversubscribe: bool,
    checksum_inputs: bool,
    allow_unknown_labels: bool,
) -> None:
    """Run a pipeline YAML: each stage writes OUTPUT/<NN>-<stage>/cuts.jsonl.gz.

    \b
    Example:
      synpara run pipelines/demo.yaml --to transcribe -o output/try1
    """
    from synpara.executors.run import parse_max_failures
    from synpara.pipeline import load_pipeline, run_pipeline

    pipeline = load_pipeline(pipeline_file)
    for summary in run_pipeline(
        pipeline,
        from_stage=from_stage,
        to_stage=to_stage,
        output=output,
        workers=workers,
        overwrite=overwrite,
        executor=executor,
        max_failures=None if max_failures is None else parse_max_failures(max_failures),
        oversubscribe=oversubscribe,
        checksum_inputs=checksum_inputs,
        allow_unknown_labels=allow_unknown_labels,
    ):
        click.echo(_summarise(summary), err=True)


run.params += [_executor_option(default=None), *_run_options()]


class _EvalGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(EVAL_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in EVAL_COMMANDS:
            return None
        return importlib.import_module(EVAL_COMMANDS[cmd_name]).command


@cli.group(cls=_EvalGroup, name="eval")
def eval_group() -> None:
    """Score predictions against ground truth (events, words)."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turns errors into one line on stderr and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "-v" in args or "--verbose" in args
    try:
        cli.main(args=args, prog_name="synpara", standalone_mode=False)
    except SynparaError as error:
        if verbose:
            logging.getLogger("synpara").exception("error")
        click.echo(f"synpara: error: {error}", err=True)
        sys.exit(_EXIT_USER_ERROR)
    except click.exceptions.Abort:
        click.echo("synpara: aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("synpara: interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # a bug: still one line unless -v asks for the traceback
        if verbose:
            raise
        click.echo(
            f"synpara: internal error: {type(error).__name__}: {error} "
            "(run with -v for the traceback)",
            err=True,
        )
        sys.exit(1)
