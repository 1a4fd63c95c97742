"""The executor streams: the driver's peak memory is bound by its in-flight window of records, not
by the manifest's size (2,000 records of 20 kB each hold 40 MB the driver must never gather), one
stage at a time and with stages streamed into each other (``stream.py``: records waiting for the
next stage must not pile up in the driver either)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from synpara.stage import Stage, StageConfig
from tests.conftest import REPO, cut_for_file

BLOB_BYTES = 20_000


@dataclass(frozen=True)
class _NoOptions(StageConfig):
    pass


class _DropBlob(Stage[_NoOptions]):
    """Returns each cut without its bulky custom field: the output stays small, the input is not."""

    name = "drop-blob"
    version = "1"
    Config = _NoOptions

    def process(self, cut, context):
        cut.custom = {"blob_chars": len(cut.custom.pop("blob"))}
        return cut


class _PassBlob(_DropBlob):
    """Returns each cut as it came, bulk included: the next stage's records are as big."""

    name = "pass-blob"

    def process(self, cut, context):
        return cut


def _manifest(folder: Path, records: int, audio: Path) -> Path:
    """``records`` cuts over one real file, each carrying ``BLOB_BYTES`` of custom data."""
    base = cut_for_file(audio, "rec").to_dict()
    manifest = folder / f"in{records}" / "cuts.jsonl.gz"
    manifest.parent.mkdir(parents=True)
    with gzip.open(manifest, "wt", compresslevel=1) as handle:
        for index in range(records):
            record = {**base, "id": f"rec{index:05d}",
                      "custom": {"blob": f"{index:05d}" + "x" * BLOB_BYTES}}
            handle.write(json.dumps(record) + "\n")
    return manifest


# Runs both manifests through one pool of 2 workers in a fresh process, sampling its RSS while
# each stage runs: libraries are imported before the first sample, so growth is the executor's.
_CHILD = """
import json, resource, sys, threading, time
from pathlib import Path
import lhotse, numpy, torch  # noqa: F401  (imported before measuring)
from synpara.executors.local import WorkerPool
from synpara.executors.run import run_stage
from synpara.executors.stream import StreamStep, run_streamed
from tests.test_executor_memory import _DropBlob, _PassBlob

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20

def measured(manifest, output, pool):
    peak, done = [rss_mb()], threading.Event()
    def sample():
        while not done.wait(0.005):
            peak.append(rss_mb())
    sampler = threading.Thread(target=sample)
    sampler.start()
    before = peak[0]
    if sys.argv[5] == "streamed":
        steps = [StreamStep(_PassBlob(), Path(output) / "pass", "up", "pass"),
                 StreamStep(_DropBlob(), Path(output) / "drop", "pass", "drop")]
        summary = run_streamed(steps, manifest, seed=0, workers=2, threads=1, pool=pool,
                               progress=False)[-1]
    else:
        summary = run_stage(_DropBlob(), manifest, output, workers=2, progress=False,
                            oversubscribe=True, pool=pool)
    done.set()
    sampler.join()
    return {"cuts": summary.cuts, "growth_mb": max(peak) - before}

with WorkerPool(2) as pool:
    small = measured(sys.argv[1], sys.argv[3], pool)
    large = measured(sys.argv[2], sys.argv[4], pool)
print(json.dumps([small, large]))
"""


@pytest.mark.parametrize("mode", ["one stage", "streamed"])
def test_driver_memory_is_bound_by_the_window_not_the_manifest(tmp_path, shared_data, mode):
    audio = shared_data / "speech/jfk/jfk.wav"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH",
                                                                                  "")])}
    arguments = [_manifest(tmp_path, 100, audio), _manifest(tmp_path, 2_000, audio),
                 tmp_path / "out100", tmp_path / "out2000"]
    result = subprocess.run([sys.executable, "-c", _CHILD, *map(str, arguments), mode], env=env,
                            check=True, capture_output=True, text=True, cwd=REPO)
    small, large = json.loads(result.stdout.strip().splitlines()[-1])
    assert small["cuts"] == 100 and large["cuts"] == 2_000
    held_if_gathered_mb = 1_900 * BLOB_BYTES / 2**20  # 36 MB more input in the large run
    assert large["growth_mb"] - small["growth_mb"] < held_if_gathered_mb / 4, (small, large)
