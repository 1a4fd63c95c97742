"""Line-oriented corpus files: NeMo JSONL, CSV, plain JSONL, Kaldi-style lists, pipe lists.

All are written atomically (beside the target, then renamed) so a killed export never leaves half
a list that a trainer would read as complete.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

from synpara.manifest import write_json_lines_atomic


def _write_text_atomic(path: Path, lines: Iterable[str]) -> Path:
    # write_json_lines_atomic writes any lines (gzip only for .gz): reuse its atomic rename.
    write_json_lines_atomic(path, lines)
    return path


def _rows(manifest: Path):
    from synpara.formats import rows

    return rows(manifest)


def write_nemo(manifest: Path, out_dir: Path) -> list[Path]:
    """NeMo manifest: ``audio_filepath``, ``duration``, ``text`` (+ tagged text, speaker, events).

    ``offset`` is set when the audio is a whole recording (``--audio none``)."""
    lines = (
        json.dumps(
            {
                "audio_filepath": row["audio"],
                "offset": row["offset"],
                "duration": row["duration"],
                "text": row["text"],
                "tagged_text": row["tagged_text"],
                "speaker": row["speaker"],
                "lang": row["language"],
                "events": row["events"],
            },
            ensure_ascii=False,
        )
        for row in _rows(manifest)
    )
    return [_write_text_atomic(out_dir / "nemo_manifest.json", lines)]


def write_jsonl(manifest: Path, out_dir: Path) -> list[Path]:
    """Every row field, one JSON object per utterance."""
    lines = (json.dumps(row, ensure_ascii=False) for row in _rows(manifest))
    return [_write_text_atomic(out_dir / "metadata.jsonl", lines)]


def write_csv(manifest: Path, out_dir: Path) -> list[Path]:
    """``metadata.csv``: one row per utterance, events as a JSON list."""
    columns = [
        "id",
        "audio",
        "offset",
        "duration",
        "speaker",
        "language",
        "text",
        "tagged_text",
        "events",
    ]

    def lines() -> Iterable[str]:
        for index, row in enumerate(_rows(manifest)):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="")
            if index == 0:
                writer.writerow(columns)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            values = {**row, "events": json.dumps(row["events"], ensure_ascii=False)}
            writer.writerow([values[c] if values[c] is not None else "" for c in columns])
            yield buffer.getvalue()

    return [_write_text_atomic(out_dir / "metadata.csv", lines())]


def _one_line(text: str) -> str:
    # list formats are line- and field-separated: a newline or a pipe inside text would split it.
    return " ".join(text.replace("|", " ").split())


def write_kaldi(manifest: Path, out_dir: Path) -> list[Path]:
    """``wav.scp``, ``text`` (tagged), ``utt2spk``: the files CosyVoice's recipes start from."""
    scp, text, utt2spk = [], [], []
    for row in _rows(manifest):
        speaker = row["speaker"] or row["id"]
        scp.append(f"{row['id']} {row['audio']}")
        text.append(f"{row['id']} {_one_line(row['tagged_text'] or row['text'])}")
        utt2spk.append(f"{row['id']} {speaker}")
    # Kaldi tools expect the lists sorted by utterance id.
    return [
        _write_text_atomic(out_dir / "wav.scp", sorted(scp)),
        _write_text_atomic(out_dir / "text", sorted(text)),
        _write_text_atomic(out_dir / "utt2spk", sorted(utt2spk)),
    ]


def write_pipe(manifest: Path, out_dir: Path) -> list[Path]:
    """``filelist.txt``: ``path|speaker|tagged text`` per line (F5-TTS, VITS-style trainers)."""
    lines = (
        f"{row['audio']}|{row['speaker'] or row['id']}|"
        f"{_one_line(row['tagged_text'] or row['text'])}"
        for row in _rows(manifest)
    )
    return [_write_text_atomic(out_dir / "filelist.txt", lines)]
