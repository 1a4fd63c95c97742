"""The Stage contract: config validation, picklable before setup, deterministic per-record RNG."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import numpy as np
import pytest

from synpara.errors import SynparaError
from synpara.stage import RecordContext, Reject, Stage, StageConfig, record_rng
from synpara.stages import STAGES, stage_class


@dataclass(frozen=True)
class _DropShortConfig(StageConfig):
    min_duration: float = field(default=1.0, metadata={"help": "seconds"})
    labels: tuple[str, ...] = ("laughter",)
    name_filter: str | None = None

    def validate(self) -> None:
        if self.min_duration < 0:
            raise SynparaError("min_duration must be >= 0")


class _DropShort(Stage[_DropShortConfig]):
    name = "drop-short"
    version = "1"
    Config = _DropShortConfig

    def process(self, cut, context):
        return Reject("short") if cut.duration < self.config.min_duration else cut


def test_config_from_params_checks_names_types_and_values():
    stage = _DropShort.from_params({"min_duration": 2, "labels": ["sigh"], "name_filter": None})
    assert stage.config.min_duration == 2.0 and isinstance(stage.config.min_duration, float)
    assert stage.config.labels == ("sigh",)
    with pytest.raises(SynparaError, match="unknown option.*min_durration"):
        _DropShort.from_params({"min_durration": 2})
    with pytest.raises(SynparaError, match="'min_duration' must be float"):
        _DropShort.from_params({"min_duration": "long"})
    with pytest.raises(SynparaError, match="must be float"):
        _DropShort.from_params({"min_duration": True})  # a bool is not a number here
    with pytest.raises(SynparaError, match="min_duration must be >= 0"):
        _DropShort.from_params({"min_duration": -1})


def test_config_hash_changes_with_config_seed_and_upstream():
    base = _DropShort().config_hash(0)
    assert base == _DropShort().config_hash(0)
    assert base != _DropShort.from_params({"min_duration": 3}).config_hash(0)
    assert base != _DropShort().config_hash(1)
    assert base != _DropShort().config_hash(0, upstream="abc")


def test_context_rng_is_stable_within_a_record():
    context = RecordContext(record_id="a", seed=1, output_dir=".")
    first = context.rng.random()
    second = context.rng.random()
    assert first != second  # one generator per record, not a fresh one per access
    assert RecordContext(record_id="a", seed=1, output_dir=".").rng.random() == first


@pytest.mark.parametrize("name", list(STAGES))
def test_every_registered_stage_builds_with_defaults_and_pickles_before_setup(name):
    stage = stage_class(name)()
    clone = pickle.loads(pickle.dumps(stage))
    assert clone.config == stage.config
    assert clone.config_hash(0) == stage.config_hash(0)
    assert stage.__doc__, f"{name} needs a docstring"


def test_record_rng_depends_only_on_seed_and_id():
    a = record_rng(3, "rec-1").random(4)
    assert np.array_equal(a, record_rng(3, "rec-1").random(4))
    assert not np.array_equal(a, record_rng(4, "rec-1").random(4))
    assert not np.array_equal(a, record_rng(3, "rec-2").random(4))


def test_stages_declare_what_they_read():
    kinds = {name: stage_class(name).input_kind for name in STAGES}
    assert kinds["ingest"] == kinds["bank"] == kinds["tts"] == "files"
    assert set(kinds.values()) <= {"files", "manifest"}
    assert _DropShort.input_kind == "manifest"  # the default: the previous stage's manifest
