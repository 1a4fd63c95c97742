"""``synpara qa``: question-answer pairs grounded in describe's measurements."""

from __future__ import annotations

import json
from pathlib import Path

import click

from synpara.errors import SynparaError


@click.command("qa")
@click.option("-i", "--input", "input_path", required=True, help="manifest from describe")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="output directory (gets qa.jsonl, qa_dropped.jsonl, qa_summary.json)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "sharegpt"]), default="jsonl",
              show_default=True, help="plain rows, or ShareGPT conversations with <audio>")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the phrasings")
@click.option("--llm-url", help="OpenAI-compatible endpoint (key from $SYNPARA_LLM_API_KEY)")
@click.option("--llm-model", help="model name the endpoint serves")
@click.option("--llm-timeout", type=float, default=60.0, show_default=True,
              help="seconds to wait for one answer")
def command(input_path: str, output: str, fmt: str, seed: int, llm_url: str | None,
       llm_model: str | None, llm_timeout: float) -> None:
    """Question-answer pairs from the measurements (templates, and an LLM if given).

    \b
    Example:
      synpara qa -i output/describe/cuts.jsonl.gz -o output/qa --format sharegpt
    """
    import functools

    from synpara.llm import chat_json
    from synpara.qa import export_qa

    chat = None
    if llm_url or llm_model:
        if not (llm_url and llm_model):
            raise SynparaError("--llm-url and --llm-model go together")
        if not llm_timeout > 0:
            raise SynparaError(f"--llm-timeout must be > 0, got {llm_timeout}")
        chat = functools.partial(chat_json, llm_url, llm_model, timeout=llm_timeout,
                                 cache_dir=Path(output) / "llm_cache")
    summary = export_qa(input_path, output, fmt, seed, chat)
    click.echo(json.dumps(summary), err=True)
