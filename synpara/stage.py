"""The Stage contract: a config, a version, ``setup()`` once per worker, ``process()`` per record.

A stage is a plain class; executors (``synpara.executors``) are the only code that knows about
processes, resumption and files. A stage must stay picklable until ``setup()`` has run, because the
executor ships the configured, not-yet-set-up stage to each worker and calls ``setup()`` there.

Example (a stage that drops cuts shorter than a minimum)::

    @dataclass(frozen=True)
    class DropShortConfig(StageConfig):
        min_duration: float = field(default=1.0, metadata={"help": "seconds"})

        def validate(self) -> None:
            if self.min_duration < 0:
                raise SynparaError("min_duration must be >= 0")

    class DropShort(Stage):
        name = "drop-short"
        version = "1"
        Config = DropShortConfig

        def process(self, cut, context):
            if cut.duration < self.config.min_duration:
                return Reject(f"shorter than {self.config.min_duration} s")
            return cut
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, Union

from synpara.errors import SynparaError

if TYPE_CHECKING:
    import numpy as np
    from lhotse.cut import Cut


@dataclass(frozen=True)
class StageConfig:
    """Base class of every stage config: a frozen dataclass whose fields are the stage's options.

    Give each field ``metadata={"help": "..."}``; the CLI turns fields into ``--options``.
    Override :meth:`validate` to reject absurd values with a :class:`SynparaError`.
    """

    def validate(self) -> None:
        """Raise :class:`SynparaError` for values that make no sense (checked at construction)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Reject:
    """A refusal with its reason; the executor writes it to the rejects manifest.

    Returned alone, it rejects the whole input record. Inside a returned list, beside the cuts that
    were kept, it records one part that was not (a filtered utterance, say): give it the ``id``
    that part would have had, so nothing is lost without a trace.
    """

    reason: str
    id: str | None = None


@dataclass(frozen=True)
class Record:
    """One unit of work for the executor: an id that is unique in the input, where it came from,
    the payload handed to ``process`` (a cut, or for ingest an audio path) and its fingerprint."""

    id: str
    source: str
    payload: Any
    #: A digest of what the record is made of (the manifest line, or the audio file's path and
    #: sha256): a journalled record whose fingerprint changed is processed again.
    fingerprint: str = ""


@dataclass(frozen=True)
class RecordContext:
    """Per-record facts the executor hands to ``process``.

    ``rng`` is seeded from (pipeline seed, record id), so a record's randomness does not depend on
    the worker that ran it or on the order of the records.
    """

    record_id: str
    seed: int
    output_dir: Path

    @cached_property
    def rng(self) -> np.random.Generator:
        # cached: a stage that reads ``context.rng`` twice must not get the same draws twice.
        return record_rng(self.seed, self.record_id)


def record_rng(seed: int, record_id: str) -> np.random.Generator:
    """A generator that depends only on the seed and the record id."""
    import numpy as np

    id_key = int.from_bytes(hashlib.sha256(record_id.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, id_key])


@dataclass(frozen=True)
class FinaliseContext:
    """What :meth:`Stage.finalise` gets: the finished stage's directory, manifest and seed."""

    output_dir: Path
    manifest: Path  # the stage's cuts.jsonl.gz, complete, in input order
    rejects: Path  # rejects.jsonl.gz beside it
    seed: int


InputKind = Literal["manifest", "files"]
ProcessResult = Union["Cut", list[Union["Cut", Reject]], Reject]
ConfigT = TypeVar("ConfigT", bound=StageConfig)


class Stage(ABC, Generic[ConfigT]):
    """Base class of all stages: subclasses set ``name``, ``version``, ``Config``, ``process``."""

    name: ClassVar[str]
    version: ClassVar[str]
    Config: ClassVar[type[StageConfig]]  # the class of ``config`` (ClassVars cannot be generic)
    #: What the stage reads: ``"manifest"`` (one cuts.jsonl.gz, the previous stage's output) or
    #: ``"files"`` (audio or text files, folders, globs, list files given with several ``-i``).
    #: The CLI and the executor go by this.
    input_kind: ClassVar[InputKind] = "manifest"
    config: ConfigT

    def __init__(self, config: ConfigT | None = None) -> None:
        chosen: StageConfig = config if config is not None else self.Config()
        if not isinstance(chosen, self.Config):
            raise SynparaError(
                f"{self.name}: expected a {self.Config.__name__}, got {type(chosen).__name__}"
            )
        chosen.validate()
        self.config = typing.cast(ConfigT, chosen)

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Stage:
        """Build the stage from a dict (YAML, CLI); unknown keys and wrong types are errors."""
        config = config_from_params(cls.Config, params or {}, where=cls.name)
        return cls(typing.cast(ConfigT, config))

    # ---- lifecycle -------------------------------------------------------------------------

    def setup(self, threads: int = 0) -> None:
        """Load models and other heavy state. Called once per worker, after unpickling.

        ``threads`` is the worker's share of the cores (the executor passes it; 0: not given,
        a model then takes all cores up to 4, see :func:`synpara.models.files.cpu_threads`). A
        stage's own ``threads`` option, when set, wins over it.
        """

    @abstractmethod
    def process(self, cut: Any, context: RecordContext) -> ProcessResult:
        """Turn one record into a new cut, a list of cuts (and per-part :class:`Reject`), or a
        :class:`Reject` of the whole record."""

    def finalise(self, context: FinaliseContext) -> None:
        """Corpus-wide work, once, after every record is done (NeMo-SDP's ``finalize``).

        Runs in the driver process (``setup()`` has not run there) after the stage's manifest and
        rejects are written, and before ``_SUCCESS``: export lists, dataset metadata, filters that
        need the whole corpus. It may write files into ``context.output_dir`` and may replace
        ``context.manifest`` atomically (:func:`synpara.manifest.write_cuts`) to drop or edit cuts.
        A finished finalise is not run again; one that was killed or raised runs again on the
        next run (the records themselves are not redone), so it must be safe to repeat.
        """

    @property
    def model_id(self) -> str | None:
        """What model produced the output (for provenance); ``None`` for model-free stages."""
        return None

    # ---- input -----------------------------------------------------------------------------

    def iter_records(self, input_path: Any) -> Iterator[Record]:
        """Stream the records to process. The default reads a manifest; ingest reads audio paths."""
        from synpara.manifest import cut_from_dict, iter_json_lines

        for line_number, data in iter_json_lines(input_path):
            cut = cut_from_dict(data, input_path, line_number)
            yield Record(id=cut.id, source=cut_source(cut), payload=cut,
                         fingerprint=fingerprint_of(data))

    def input_files(self, input_path: Any) -> list[Path]:
        """The files the stage reads, for the completion key: the manifest, or the audio files."""
        return [Path(input_path)]

    def config_hash(self, seed: int, upstream: str = "") -> str:
        """A short hash of everything that decides this stage's output (not of the worker count)."""
        payload = {
            "stage": self.name,
            "version": self.version,
            "config": self.config.to_dict(),
            "seed": seed,
            "upstream": upstream,
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprint_of(data: dict[str, Any]) -> str:
    """A manifest record's fingerprint: a digest of its JSON, whatever the key order."""
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cut_source(cut: Cut) -> str:
    """The audio file a cut comes from, for messages and the rejects manifest."""
    try:
        return str(cut.custom["synpara"]["source"]["path"])
    except (TypeError, KeyError):
        return cut.recording.sources[0].source if cut.has_recording else cut.id


# --------------------------------------------------------------------------- config parsing


def _allowed_types(annotation: Any) -> tuple[type, ...]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return tuple(t for arg in typing.get_args(annotation) for t in _allowed_types(arg))
    if annotation is type(None):
        return (type(None),)
    if origin is not None:  # list[str], dict[str, float], tuple[...]
        return (origin,)
    return (annotation,) if isinstance(annotation, type) else (object,)


def _coerce(value: Any, allowed: tuple[type, ...], name: str, where: str) -> Any:
    if (
        object in allowed
        or isinstance(value, allowed)
        and not (isinstance(value, bool) and bool not in allowed)
    ):
        return value
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tuple in allowed and isinstance(value, list):
        return tuple(value)
    if list in allowed and isinstance(value, tuple):
        return list(value)
    names = " or ".join(t.__name__ for t in allowed)
    raise SynparaError(f"{where}: option {name!r} must be {names}, got {value!r}")


def _dict_value_type(annotation: Any) -> type | None:
    """``float`` for ``dict[str, float]`` (also inside ``| None``); ``None`` for other fields."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        found = [_dict_value_type(arg) for arg in typing.get_args(annotation)]
        return next((t for t in found if t is not None), None)
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        return args[1] if len(args) == 2 and isinstance(args[1], type) else object
    return None


def _coerce_dict(value: Any, value_type: type, name: str, where: str) -> dict[str, Any]:
    """A mapping option: a dict (YAML, Python) or ``KEY=VALUE`` strings (the CLI's repeated
    ``--option key=value``), values coerced to ``value_type``."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        pairs = {}
        for entry in value:
            key, sep, raw = str(entry).partition("=")
            if not sep or not key.strip():
                raise SynparaError(f"{where}: option {name!r} entry {entry!r} is not KEY=VALUE")
            pairs[key.strip()] = raw.strip()
        value = pairs
    if not isinstance(value, dict):
        raise SynparaError(f"{where}: option {name!r} must be a mapping or KEY=VALUE entries, "
                           f"got {value!r}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, str) and value_type in (int, float):
            try:
                item = value_type(item)
            except ValueError:
                raise SynparaError(f"{where}: option {name!r}: {key}={item!r} is not a "
                                   f"{value_type.__name__}") from None
            if item != item:  # NaN
                raise SynparaError(f"{where}: option {name!r}: {key} is not a number")
        out[str(key)] = _coerce(item, (value_type,), f"{name}[{key}]", where)
    return out


def config_from_params(
    config_cls: type[StageConfig], params: dict[str, Any], where: str
) -> StageConfig:
    """Validate ``params`` against the dataclass ``config_cls`` and build it."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise SynparaError(
            f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(config_cls)
    values = {}
    for key, value in params.items():
        value_type = _dict_value_type(hints[key])
        if value_type is not None and value is not None:
            values[key] = _coerce_dict(value, value_type, key, where)
        else:
            values[key] = _coerce(value, _allowed_types(hints[key]), key, where)
    config = config_cls(**values)
    config.validate()
    return config
