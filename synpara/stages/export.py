"""export: the corpus where trainers read it — utterance files at a TTS rate, in their formats.

Per cut (an utterance from ``refine`` or ``insert``), the audio is cut from the best copy there is:
the **source** file ingest recorded (44.1 kHz, say) when it is still there and unchanged, else the
cut's own recording — resampled to ``--sample-rate`` (never up, unless ``--upsample``), written as
FLAC under ``audio/<cut id>.flac`` (stable names: a rerun writes the same files). The output
manifest is a lhotse CutSet over those files, with every word and event moved into the file's own
time and ``tagged_text`` rewritten in the chosen tag style (an event the style cannot spell is a
reject naming the label, never dropped). After all records, :meth:`Export.finalise` writes the
corpus-wide files of each ``--format`` (:mod:`synpara.formats`): ``hf`` (``datasets``
``save_to_disk`` + parquet, audio embedded), ``nemo``, ``csv``, ``jsonl``, ``kaldi`` (wav.scp, text,
utt2spk), ``pipe`` (``path|speaker|text``), ``textgrid``; ``lhotse`` is the manifest itself.

Example::

    synpara export -i output/refine/cuts.jsonl.gz -o output/export --format hf --format nemo \\
        --tags orpheus --sample-rate 24000
"""

from __future__ import annotations

import copy
import dataclasses
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.errors import SynparaError
from synpara.manifest import EVENT, WORD, alignment_item, file_cut, synpara_meta
from synpara.stage import FinaliseContext, RecordContext, Reject, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut

    from synpara.tag_styles import TagStyle

AUDIO_MODES = ("cut", "copy", "none")


@dataclass(frozen=True)
class ExportConfig(StageConfig):
    """Options of :class:`Export`."""

    formats: list[str] = field(
        default_factory=lambda: ["lhotse", "jsonl"],
        metadata={
            "help": "lhotse, shar, hf, nemo, csv, jsonl, kaldi, pipe, textgrid (repeat the option)"
        },
    )
    tags: str = field(
        default="canonical",
        metadata={
            "help": "tag style in tagged_text: canonical [laughter], synparaspeech [laugh], "
            "nvspeech [Laughter], dia (laughs), orpheus <laugh>, or a YAML file label: tag"
        },
    )
    sample_rate: int = field(
        default=24000, metadata={"help": "output rate of utterance files (Hz)"}
    )
    upsample: bool = field(
        default=False,
        metadata={"help": "allow a rate above the source's own (off: keep the source's)"},
    )
    audio: str = field(
        default="cut",
        metadata={
            "help": "cut: utterance files; copy: whole files copied as they are; none: "
            "no audio written, manifests point into the recordings with offsets"
        },
    )

    def validate(self) -> None:
        from synpara.formats import WRITERS
        from synpara.tag_styles import load_style

        unknown = sorted(set(self.formats) - set(WRITERS))
        if unknown or not self.formats:
            raise SynparaError(
                f"export: unknown format(s) {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(WRITERS)}"
            )
        if not 4000 <= self.sample_rate <= 192000:
            raise SynparaError(
                f"export: sample_rate must be 4000..192000 Hz, got {self.sample_rate}"
            )
        if self.audio not in AUDIO_MODES:
            raise SynparaError(f"export: audio must be one of {', '.join(AUDIO_MODES)}")
        if self.audio == "none" and set(self.formats) & {"hf", "shar", "textgrid"}:
            raise SynparaError("export: --audio none cannot feed hf, shar or textgrid (they need "
                               "utterance files)")
        load_style(self.tags)  # an unknown style fails now, not on the first record


class Export(Stage[ExportConfig]):
    """Write utterance audio and the corpus files trainers read (HF, NeMo, lists, TextGrid)."""

    name = "export"
    version = "1"
    Config = ExportConfig

    def setup(self, threads: int = 0) -> None:
        self._style: TagStyle | None = None
        # source path -> (size, mtime_ns, sha256 matches): hashing a long source once per worker
        self._source_ok: dict[str, bool] = {}

    @property
    def style(self) -> TagStyle:
        if getattr(self, "_style", None) is None:
            from synpara.tag_styles import load_style

            self._style = load_style(self.config.tags)
        assert self._style is not None
        return self._style

    def process(self, cut: Cut, context: RecordContext) -> Cut | Reject:
        try:
            supervisions = [self._restyled(sup) for sup in cut.supervisions]
        except SynparaError as error:
            return Reject(str(error))
        if self.config.audio == "none":
            out = cut.copy(supervisions=supervisions)
            self._record(out, source=str(cut.recording.sources[0].source), offset=cut.start)
            return out
        path, rate = self._best_source(cut)
        audio_dir = Path(context.output_dir) / "audio"
        target = audio_dir / f"{cut.id}.flac"
        whole = abs(cut.start) < 1e-9 and abs(cut.duration - cut.recording.duration) < 1e-6
        if self.config.audio == "copy" and whole and Path(path).suffix.lower() == ".flac":
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            import soundfile

            out_rate, num_samples = rate, soundfile.info(str(target)).frames
        else:
            out_rate = (
                rate
                if (rate < self.config.sample_rate and not self.config.upsample)
                else (self.config.sample_rate)
            )
            samples = _read_span(path, rate, cut.start, cut.duration)
            from synpara.audio import resample, write_flac_atomic

            samples = resample(samples, rate, out_rate)
            num_samples = _samples_covering(cut.duration, out_rate)
            samples = np.pad(samples, (0, max(0, num_samples - len(samples))))[:num_samples]
            write_flac_atomic(target, samples, out_rate)
        out = _rebased(cut, supervisions, target, out_rate, num_samples)
        self._record(out, source=path, offset=cut.start)
        return out

    def finalise(self, context: FinaliseContext) -> None:
        """Write each format's corpus-wide files from the finished manifest (once per run)."""
        from synpara.formats import WRITERS

        for name in dict.fromkeys(self.config.formats):
            WRITERS[name](context.manifest, context.output_dir)

    # ---- helpers -------------------------------------------------------------------------

    def _restyled(self, sup: Any) -> Any:
        alignment = sup.alignment or {}
        words = [(w.symbol, w.start, w.end) for w in alignment.get(WORD, [])]
        events = [(e.symbol, e.start, e.end) for e in alignment.get(EVENT, [])]
        custom = dict(sup.custom or {})
        custom["tagged_text"] = self.style.text(words, events) if (words or events) else ""
        return dataclasses.replace(sup, custom=custom)

    def _best_source(self, cut: Cut) -> tuple[str, int]:
        """The highest-rate copy of the cut's audio whose time axis is the recording's."""
        recording_path = str(cut.recording.sources[0].source)
        recording_rate = int(cut.sampling_rate)
        source = ((cut.custom or {}).get("synpara") or {}).get("source") or {}
        path, rate = source.get("path"), int(source.get("sample_rate") or 0)
        same_axis = abs(float(source.get("duration") or -1) - cut.recording.duration) < 0.01
        if path and rate > recording_rate and same_axis and self._unchanged(path, source):
            return str(path), rate
        return recording_path, recording_rate

    def _unchanged(self, path: str, source: dict[str, Any]) -> bool:
        """The source is still the file ingest hashed (checked once per file and worker)."""
        if path not in self._source_ok:
            from synpara.audio import sha256_file

            file = Path(path)
            self._source_ok[path] = file.is_file() and (
                not source.get("sha256") or sha256_file(file) == source["sha256"]
            )
        return self._source_ok[path]

    def _record(self, out: Cut, source: str, offset: float) -> None:
        synpara_meta(out)["export"] = {
            "source": source,
            "source_offset": round(offset, 7),
            "tags": self.config.tags,
        }


def _samples_covering(seconds: float, rate: int) -> int:
    """Samples a file needs to hold ``seconds`` whole: rounding down would end the file before
    the last supervision does (6.1346562 s at 16 kHz is 98154.5 samples)."""
    return math.ceil(round(seconds * rate, 6))


def _read_span(path: str, rate: int, start: float, duration: float) -> np.ndarray:
    """Mono float32 samples of ``[start, start + duration)`` seconds of a file at its own rate."""
    from synpara.audio import read_span

    first, count = int(round(start * rate)), _samples_covering(duration, rate)
    samples, file_rate = read_span(path, first, count)
    if file_rate != rate:
        raise SynparaError(f"sample rate is {file_rate} Hz, the manifest says {rate} Hz", path)
    return samples


def _rebased(cut: Cut, supervisions: list[Any], path: Path, rate: int, num_samples: int) -> Cut:
    """The cut as a whole-file cut over its utterance file, times moved into the file's axis."""
    moved = []
    for sup in supervisions:
        alignment = {
            kind: [
                alignment_item(
                    item.symbol, item.start - cut.start, item.end - cut.start, item.score
                )
                for item in entries
            ]
            for kind, entries in (sup.alignment or {}).items()
        }
        moved.append(dataclasses.replace(sup, recording_id=cut.id, alignment=alignment))
    return file_cut(cut.id, path, rate, num_samples, moved, copy.deepcopy(cut.custom))
