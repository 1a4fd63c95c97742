"""Hugging Face ``datasets``: ``save_to_disk`` (and parquet) with an ``Audio`` column.

The audio bytes are embedded, so the saved dataset is self-contained: it loads and plays after the
export folder is moved or the utterance files are gone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def write_hf(manifest: Path, out_dir: Path) -> list[Path]:
    from datasets import Audio, Dataset, Features, Value

    from synpara.formats import rows

    features = Features(
        {
            "id": Value("string"),
            "audio": Audio(),
            "text": Value("string"),
            "tagged_text": Value("string"),
            "speaker": Value("string"),
            "language": Value("string"),
            "duration": Value("float64"),
            "events": [
                {
                    "label": Value("string"),
                    "start": Value("float64"),
                    "end": Value("float64"),
                    "score": Value("float64"),
                    "inserted": Value("bool"),
                }
            ],
            "words": [
                {"word": Value("string"), "start": Value("float64"), "end": Value("float64")}
            ],
        }
    )

    def generate():
        for row in rows(manifest):
            yield {
                "id": row["id"],
                "audio": {
                    "path": Path(row["audio"]).name,
                    "bytes": Path(row["audio"]).read_bytes(),
                },
                "text": row["text"],
                "tagged_text": row["tagged_text"],
                "speaker": row["speaker"],
                "language": row["language"],
                "duration": row["duration"],
                "events": row["events"],
                "words": row["words"],
            }

    # from_generator caches under HF_HOME keyed by the generator: a fresh cache dir per export
    # keeps a rerun from serving an older dataset.
    cache_dir = out_dir / ".hf_cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    dataset = Dataset.from_generator(generate, features=features, cache_dir=str(cache_dir))
    target, tmp = out_dir / "hf", out_dir / ".hf.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    dataset.save_to_disk(str(tmp))
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    parquet = out_dir / "hf.parquet"
    dataset.to_parquet(str(out_dir / ".hf.parquet.tmp"))
    os.replace(out_dir / ".hf.parquet.tmp", parquet)
    del dataset
    shutil.rmtree(cache_dir, ignore_errors=True)
    return [target, parquet]
