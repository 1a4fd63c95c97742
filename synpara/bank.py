"""The vocalization bank: clips of real vocalizations with their label, licence and measures.

A bank is a manifest (``BANK/cuts.jsonl.gz``, written by ``synpara bank``): one cut per clip,
trimmed to its sound, with ``custom["synpara"]["bank"]`` holding label, source, licence, sha256,
duration, F0 median, loudness and a CAM++ embedding. :func:`load_bank` reads it for insert;
:func:`bundled_bank` measures the clips in ``assets/vocalizations/`` when no bank is given.

>>> label_for_path(Path("bank_in/laughter/x.ogg"))
('laughter', 'folder')
>>> label_for_path(Path("clips/hedgewars_Mobster_Laugh.ogg"))
('laughter', 'file name')
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError
from synpara.ontology import canonical_label, is_event_tag, label_from_name

#: The bundled clips (a source checkout's ``assets/vocalizations``).
BUNDLED_BANK_DIR = Path(__file__).resolve().parents[1] / "assets" / "vocalizations"
#: Licence tables looked for beside a clip and in up to three folders above it.
LICENCE_TABLES = ("LICENCES.csv", "LICENSES.csv", "INDEX.csv")


@dataclass(frozen=True)
class BankClip:
    """One clip of the bank, trimmed to its sound, as insert uses it."""

    id: str
    label: str
    path: str  # audio file holding exactly the clip
    sample_rate: int
    duration: float
    source: str
    licence: str | None
    f0_hz: float | None
    loudness_lufs: float
    embedding: list[float] | None = field(default=None, repr=False)
    #: ``(start_sample, end_sample)`` of the clip inside ``path`` when the file is not trimmed
    span: tuple[int, int] | None = None

    def load(self) -> np.ndarray:
        from synpara.audio import decode, to_mono

        samples = to_mono(decode(self.path).samples)
        return samples[self.span[0] : self.span[1]] if self.span else samples


def label_for_path(path: Path, labels: dict[str, str] | None = None) -> tuple[str | None, str]:
    """``(label, how)`` for a clip file: the CSV, else the parent folder's name, else the file
    name through the alias map; ``(None, why)`` when none reads as one label."""
    if labels:
        for key in (str(path), path.name, str(path.resolve())):
            if key in labels:
                return canonical_label(labels[key]), "labels csv"
    if is_event_tag(path.parent.name):
        return canonical_label(path.parent.name), "folder"
    label = label_from_name(path.name)
    if label is not None:
        return label, "file name"
    return None, f"no label: folder {path.parent.name!r} and file name {path.name!r} name none"


def read_labels_csv(path: str | Path) -> dict[str, str]:
    """``path,label`` rows (a header row is optional) -> {path: label}."""
    table: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or row[0].strip().lower() in ("path", "file"):
                continue
            if not is_event_tag(row[1]):
                raise SynparaError(f"unknown label {row[1]!r} for {row[0]!r}", path)
            table[row[0].strip()] = row[1].strip()
            table[Path(row[0].strip()).name] = row[1].strip()
    return table


def licence_for(path: Path, extra_table: str | None = None) -> str | None:
    """The licence of a clip from a ``file,license`` table (``extra_table``, else the first of
    :data:`LICENCE_TABLES` beside it or above it that lists it), matched on the path's tail."""
    tables = [Path(extra_table)] if extra_table else []
    folder = path.resolve().parent
    for _ in range(4):
        tables += [folder / name for name in LICENCE_TABLES]
        folder = folder.parent
    resolved = path.resolve().as_posix()
    for table in tables:
        if not table.is_file():
            continue
        with open(table, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                name = (row.get("file") or row.get("path") or "").strip()
                text = (row.get("license") or row.get("licence") or "").strip()
                if name and text and resolved.endswith("/" + name.lstrip("./")):
                    return _licence_part(text, path.name)
    return None


def _licence_part(text: str, file_name: str) -> str:
    """INDEX.csv lists one licence per file pack (``hedgewars_*: GFDL-1.3; gasp_oa_*: ...``):
    keep the part whose pattern names this file."""
    import fnmatch

    for part in text.split("; "):
        pattern, sep, licence = part.partition(": ")
        if sep and "*" in pattern and fnmatch.fnmatch(file_name, pattern.strip()):
            return licence.strip()
    return text


def measure_clip(
    samples: np.ndarray, sample_rate: int, speaker_model: Any = None
) -> dict[str, Any]:
    """F0 median, loudness and (with a CAM++ model) embedding of one trimmed clip."""
    from synpara.audio import resample
    from synpara.models.quality import speaker_embedding
    from synpara.splice import f0_median_hz, loudness_lufs

    f0 = f0_median_hz(samples, sample_rate)
    measures: dict[str, Any] = {
        "f0_hz": None if f0 is None else round(f0, 2),
        "loudness_lufs": round(loudness_lufs(samples, sample_rate), 2),
        "embedding": None,
    }
    if speaker_model is not None:
        embedding = speaker_embedding(speaker_model, resample(samples, sample_rate, 16000))
        if embedding is not None:
            measures["embedding"] = [round(float(v), 5) for v in embedding]
    return measures


def clip_from_cut(data: dict[str, Any]) -> BankClip:
    """A :class:`BankClip` from one bank manifest record (a cut dict)."""
    try:
        info = data["custom"]["synpara"]["bank"]
        source = data["recording"]["sources"][0]["source"]
        return BankClip(
            id=data["id"],
            label=info["label"],
            path=source,
            sample_rate=int(data["recording"]["sampling_rate"]),
            duration=float(data["duration"]),
            source=info.get("source", source),
            licence=info.get("licence"),
            f0_hz=info.get("f0_hz"),
            loudness_lufs=float(info["loudness_lufs"]),
            embedding=info.get("embedding"),
        )
    except (KeyError, TypeError, IndexError, ValueError) as error:
        raise SynparaError(f"not a bank clip ({type(error).__name__}: {error})") from None


def load_bank(path: str | Path) -> list[BankClip]:
    """Every clip of a bank manifest (``synpara bank`` output), in file order."""
    from synpara.manifest import iter_json_lines

    clips = []
    for line, data in iter_json_lines(path):
        try:
            clips.append(clip_from_cut(data))
        except SynparaError as error:
            raise SynparaError(f"line {line}: {error}", path) from None
    return clips


def bundled_bank(folder: Path = BUNDLED_BANK_DIR) -> list[BankClip]:
    """The bundled clips measured in memory (no embeddings): the bank when none is given."""
    from synpara.audio import active_span, decode, to_mono

    if not folder.is_dir():
        raise SynparaError(
            "bundled vocalizations not found (a source checkout has them); "
            "pass --bank BANK/cuts.jsonl.gz",
            folder,
        )
    clips = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".wav", ".ogg", ".flac")):
        label, _ = label_for_path(path)
        if label is None:
            continue
        decoded = decode(path)
        samples = to_mono(decoded.samples)
        a, b = active_span(samples, decoded.sample_rate)
        if b <= a:
            continue
        samples = samples[a:b]
        measures = measure_clip(samples, decoded.sample_rate)
        clips.append(
            BankClip(
                id=f"bundled-{path.stem}",
                label=label,
                path=str(path),
                sample_rate=decoded.sample_rate,
                duration=len(samples) / decoded.sample_rate,
                source=str(path.relative_to(folder.parents[1])),
                licence=licence_for(path),
                f0_hz=measures["f0_hz"],
                loudness_lufs=measures["loudness_lufs"],
                span=(a, b),
            )
        )
    return clips
