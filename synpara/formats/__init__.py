"""Corpus formats that ``export`` writes: one writer per trainer family, all from one row shape.

Each writer takes the exported manifest (``cuts.jsonl.gz``, one cut per utterance file, read
lazily) and an output directory, writes its files atomically and returns their paths. Adding a
format is one function here and one entry in :data:`WRITERS`.

The row every writer starts from (:func:`rows`): ``id``, ``audio`` (absolute path of the utterance
file), ``offset`` (0 unless ``--audio none``), ``duration``, ``text``, ``tagged_text`` (in the
export's tag style), ``speaker``, ``language``, ``words`` and ``events``
(``{label, start, end, score, inserted}``), seconds in the utterance file's own time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.formats.tables import write_csv, write_jsonl, write_kaldi, write_nemo, write_pipe

Writer = Callable[[Path, Path], list[Path]]


def _requires(module: str, extra: str, fmt: str) -> None:
    """An optional dependency a format needs: a one-line error with the install hint."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SynparaError(f"export --formats {fmt} needs {module}: pip install 'synpara[{extra}]'")


def _write_hf(manifest: Path, out_dir: Path) -> list[Path]:
    _requires("datasets", "hf", "hf")
    from synpara.formats.hf import write_hf

    return write_hf(manifest, out_dir)


def _write_textgrid(manifest: Path, out_dir: Path) -> list[Path]:
    _requires("praatio", "export", "textgrid")
    from synpara.formats.textgrid import write_textgrids

    return write_textgrids(manifest, out_dir)


def _write_shar(manifest: Path, out_dir: Path) -> list[Path]:
    """lhotse Shar: tar shards of cuts with their audio inside (FLAC), for streaming training."""
    import os
    import shutil

    from lhotse import CutSet

    target, tmp = out_dir / "shar", out_dir / ".shar.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    CutSet.from_jsonl_lazy(manifest).to_shar(tmp, fields={"recording": "flac"}, shard_size=1000)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return sorted(target.iterdir())


def _write_lhotse(manifest: Path, out_dir: Path) -> list[Path]:
    # The export manifest *is* a lhotse CutSet over the utterance files: nothing more to write.
    return [manifest]


#: format name -> writer(manifest, out_dir) -> written paths
WRITERS: dict[str, Writer] = {
    "lhotse": _write_lhotse,
    "shar": _write_shar,
    "hf": _write_hf,
    "nemo": write_nemo,
    "csv": write_csv,
    "jsonl": write_jsonl,
    "kaldi": write_kaldi,
    "pipe": write_pipe,
    "textgrid": _write_textgrid,
}


def rows(manifest: Path) -> Iterator[dict[str, Any]]:
    """One flat row per exported cut, streamed from the manifest."""
    from synpara.manifest import EVENT, WORD, inserted_events, items, iter_cuts

    for cut in iter_cuts(manifest):
        sups = list(cut.supervisions)
        custom = (sups[0].custom or {}) if sups else {}
        inserted = {(round(e.start, 4), e.symbol) for e in inserted_events(cut)}
        yield {
            "id": cut.id,
            "audio": cut.recording.sources[0].source,
            "offset": cut.start,
            "sampling_rate": cut.sampling_rate,
            "duration": cut.duration,
            "text": " ".join(s.text for s in sups if s.text),
            "tagged_text": custom.get("tagged_text", ""),
            "speaker": sups[0].speaker if sups else None,
            "language": sups[0].language if sups else None,
            "words": [{"word": w.symbol, "start": w.start, "end": w.end} for w in items(cut, WORD)],
            "events": [
                {
                    "label": e.symbol,
                    "start": e.start,
                    "end": e.end,
                    "score": e.score,
                    "inserted": (round(e.start, 4), e.symbol) in inserted,
                }
                for e in items(cut, EVENT)
            ],
        }
