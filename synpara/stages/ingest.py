"""ingest: any audio -> a 16 kHz mono working copy and one cut per recording.

Inputs are files, directories (searched recursively), glob patterns, or list files (``.txt``,
``.lst``, ``.list``: one path per line, relative paths taken from the list file's folder).
Each source is hashed (sha256); a second file with the same content is rejected as a duplicate
instead of being processed twice.

Example::

    synpara ingest -i recordings/ -i extra/*.mp3 -o output/ingest
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synpara.audio import sha256_file
from synpara.errors import SynparaError
from synpara.manifest import file_cut
from synpara.stage import Record, RecordContext, Reject, Stage, StageConfig

AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".m4a",
    ".aac",
    ".webm",
    ".mp4",
)
LIST_EXTENSIONS = (".txt", ".lst", ".list")


@dataclass(frozen=True)
class IngestConfig(StageConfig):
    """Options of the ingest stage: the working copy's rate and where it goes, and which files
    are refused.

    >>> IngestConfig().sample_rate
    16000
    """

    sample_rate: int = field(default=16000, metadata={"help": "working sample rate in Hz"})
    audio_dir: str | None = field(
        default=None, metadata={"help": "where working copies go (default: OUTPUT/audio)"}
    )
    min_duration: float = field(
        default=0.0, metadata={"help": "reject recordings shorter than this many seconds"}
    )
    max_cut_duration: float = field(
        default=0.0,
        metadata={
            "help": "split a longer recording into cuts of at most this many seconds, each "
            "boundary in the longest speech pause (Silero VAD) of the cut's second half, so "
            "workers share one long file and no stage holds more than this much audio; "
            "speakers are then labelled per cut (0: one cut per recording)"
        },
    )

    def validate(self) -> None:
        if not 8000 <= self.sample_rate <= 48000:
            raise SynparaError(
                f"ingest: sample_rate must be 8000..48000 Hz, got {self.sample_rate}"
            )
        if self.min_duration < 0:
            raise SynparaError(f"ingest: min_duration must be >= 0, got {self.min_duration}")
        if self.max_cut_duration != 0 and self.max_cut_duration < 10:
            # below ~10 s a cut is shorter than the turns diarize and refine need to see whole
            raise SynparaError(
                f"ingest: max_cut_duration must be 0 (off) or >= 10 s, got {self.max_cut_duration}"
            )


@dataclass(frozen=True)
class SourceFile:
    """An input audio file, hashed."""

    path: Path
    sha256: str


def expand_inputs(inputs: list[str] | str | Path) -> list[Path]:
    """Resolve files, directories, globs and list files into a sorted list of audio paths.

    A path that does not exist (and is not a glob) is an error: a typo must not yield an empty run.
    """
    specs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    found: set[Path] = set()
    for spec in map(str, specs):
        if any(char in spec for char in "*?["):
            matches = [Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file()]
            if not matches:
                raise SynparaError("glob matches no file", spec)
            found.update(matches)
            continue
        path = Path(spec)
        if path.is_dir():
            found.update(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
        elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
            for line in path.read_text(encoding="utf-8").splitlines():
                entry = line.strip()
                if entry and not entry.startswith("#"):
                    listed = Path(entry) if Path(entry).is_absolute() else path.parent / entry
                    if not listed.is_file():
                        raise SynparaError(f"listed file not found: {entry}", path)
                    found.add(listed)
        elif path.is_file():
            found.add(path)
        else:
            raise SynparaError("no such file or directory", spec)
    return sorted({p.resolve() for p in found})


def recording_ids(paths: list[Path]) -> dict[Path, str]:
    """File stem as id (what lhotse users expect); a path hash is appended where stems collide."""
    by_stem: dict[str, list[Path]] = {}
    for path in paths:
        by_stem.setdefault(path.stem, []).append(path)
    ids = {}
    for stem, group in by_stem.items():
        for path in group:
            suffix = hashlib.sha1(str(path).encode()).hexdigest()[:8]
            ids[path] = stem if len(group) == 1 else f"{stem}-{suffix}"
    return ids


class Ingest(Stage[IngestConfig]):
    """Decode, downmix and resample audio into a working copy; one cut per recording.

    >>> stage = Ingest.from_params({"sample_rate": 16000})
    >>> stage.name
    'ingest'
    """

    name = "ingest"
    version = "1"
    Config = IngestConfig
    input_kind = "files"

    def input_files(self, input_path: Any) -> list[Path]:
        return expand_inputs(input_path)

    def iter_records(self, input_path: Any) -> Iterator[Record]:
        paths = expand_inputs(input_path)
        if not paths:
            raise SynparaError("no audio files found", ", ".join(map(str, input_path)))
        ids = recording_ids(paths)
        first_with_hash: dict[str, Path] = {}
        for path in paths:
            try:
                digest = sha256_file(path)
            except OSError as error:
                yield Record(
                    ids[path], str(path), Reject(f"{path}: cannot read ({error.strerror})")
                )
                continue
            if digest in first_with_hash:
                reason = (
                    f"{path}: duplicate of {first_with_hash[digest]} (same sha256), not processed"
                )
                yield Record(ids[path], str(path), Reject(reason))
                continue
            first_with_hash[digest] = path
            # the id and the path go into the cut too: a renamed file is a new record
            fingerprint = f"{ids[path]}:{path}:{digest}"
            yield Record(ids[path], str(path), SourceFile(path=path, sha256=digest), fingerprint)

    def process(self, source: SourceFile, context: RecordContext) -> Any:

        from synpara.audio import decode, resample, to_mono, write_flac_atomic

        decoded = decode(source.path)
        samples = resample(to_mono(decoded.samples), decoded.sample_rate, self.config.sample_rate)
        num_samples = int(samples.shape[0])
        duration = num_samples / self.config.sample_rate
        if num_samples == 0 or duration < self.config.min_duration:
            return Reject(f"{source.path}: shorter than min_duration ({duration:.3f} s)")
        audio_dir = Path(self.config.audio_dir or context.output_dir / "audio").resolve()
        working_copy = audio_dir / f"{context.record_id}.flac"
        write_flac_atomic(working_copy, samples, self.config.sample_rate)
        source_info = {
            "path": str(source.path),
            "sha256": source.sha256,
            "sample_rate": decoded.sample_rate,
            "channels": decoded.channels,
            "duration": round(decoded.duration, 6),
            "decoder": decoded.decoder,
        }
        cut = file_cut(context.record_id, working_copy, self.config.sample_rate, num_samples,
                       custom={"synpara": {"source": source_info}})
        limit = self.config.max_cut_duration
        if not limit or duration <= limit:
            return cut
        return split_at_pauses(cut, samples, self.config.sample_rate, limit)


def split_at_pauses(cut: Any, samples: Any, sample_rate: int, max_seconds: float) -> list[Any]:
    """``cut`` (a whole recording, ``samples`` at ``sample_rate``) as consecutive cuts of at most
    ``max_seconds``, cut in speech pauses; ids ``<recording>-000``, ``-001`` ... in time order."""
    from synpara.asr import pause_split_points
    from synpara.audio import SAMPLE_RATE, resample

    # Silero VAD hears 16 kHz; the bounds come back in 16 kHz samples
    vad_samples = resample(samples, sample_rate, SAMPLE_RATE)
    bounds = pause_split_points(vad_samples, int(max_seconds * SAMPLE_RATE))
    pieces = []
    for index, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        # whole samples of the working rate, so consecutive cuts neither overlap nor leave a gap
        first = round(start * sample_rate / SAMPLE_RATE)
        last = round(end * sample_rate / SAMPLE_RATE) if index < len(bounds) - 2 else len(samples)
        piece = cut.truncate(offset=first / sample_rate, duration=(last - first) / sample_rate,
                             preserve_id=True)
        pieces.append(piece.with_id(f"{cut.id}-{index:03d}"))
    return pieces
