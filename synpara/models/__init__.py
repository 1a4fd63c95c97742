"""Where each default model comes from, one module per model family (see ../shared/MODELS.md).

Every default ships inside a registry package and loads with no network. Each loader also accepts a
user's own model (a local path, or a hub name when the user is online) behind a stage option.
Loaders are called from a stage's ``setup()``, once per worker; nothing here is cached globally,
and no loader sets a process-wide thread count (a stage's ``setup(threads)`` decides that).

=============  ===============================================================
``files``      cache, files inside packages, sha256 pins, thread and device policy
``whisper``    faster-whisper (transcribe, refine's split validation)
``pyannote``   segmentation-3.0 + CAM++ diarization pipeline, a user's pipeline
``campplus``   CAM++ as a ``pyannote.audio.Model`` (imports torch: loaded lazily)
``vad``        Silero VAD
``yamnet``     YAMNet's front end and float ONNX graph (detect's default)
``ast``        a user's transformers audio classifier (``--detector ast:DIR``)
``panns``      a user's PANNs Cnn14 checkpoint (``--detector panns:FILE``)
``ctc``        a user's wav2vec2 CTC model and forced alignment (refine ``--aligner ctc``)
``tts``        espeak-ng and festival, word by word (host speech for ``tts``)
``quality``    CAM++ speaker embeddings and DNSMOS (insert's quality gate, the bank)
``converter``  a user's voice-conversion model (insert ``--converter``)
``world``      pyworld (WORLD): F0 for describe and the bank, pitch shift for insert
=============  ===============================================================

The names below are re-exported so ``from synpara.models import load_whisper`` keeps working;
code inside the package imports from the submodule.
"""

from __future__ import annotations

from synpara.models.ast import TransformersTagger, load_transformers_tagger
from synpara.models.ctc import CtcAligner, ctc_word_times, load_ctc_aligner
from synpara.models.files import (
    CAMPPLUS_SHA256,
    SEGMENTATION_3_SHA256,
    WHISPER_BASE_SHA256,
    YAMNET_ARCHIVE_SHA256,
    cache_dir,
    cpu_threads,
    package_file,
    torch_device,
)
from synpara.models.panns import PannsTagger, load_panns_tagger
from synpara.models.pyannote import (
    CLUSTERING_31,
    build_offline_diarization,
    load_campplus,
    load_segmentation_3,
    load_user_diarization,
    quiet_pyannote,
)
from synpara.models.vad import load_silero_vad
from synpara.models.whisper import (
    WHISPER_PACKAGED,
    load_whisper,
    resolve_whisper_model,
    whisper_base_dir,
    whisper_tiny_en_dir,
)
from synpara.models.yamnet import (
    YAMNET_FFT,
    YAMNET_HOP_SAMPLES,
    YAMNET_MELS,
    YAMNET_PATCH_FRAMES,
    YAMNET_PATCH_SECONDS,
    YAMNET_SAMPLE_RATE,
    YAMNET_WINDOW_SAMPLES,
    YamnetTagger,
    load_yamnet,
    yamnet_class_names,
    yamnet_float_model,
    yamnet_log_mel,
)

__all__ = [
    "CAMPPLUS_SHA256", "CLUSTERING_31", "SEGMENTATION_3_SHA256", "WHISPER_BASE_SHA256",
    "WHISPER_PACKAGED", "YAMNET_ARCHIVE_SHA256", "YAMNET_FFT", "YAMNET_HOP_SAMPLES", "YAMNET_MELS",
    "YAMNET_PATCH_FRAMES", "YAMNET_PATCH_SECONDS", "YAMNET_SAMPLE_RATE", "YAMNET_WINDOW_SAMPLES",
    "CtcAligner", "PannsTagger", "TransformersTagger", "YamnetTagger", "build_offline_diarization",
    "cache_dir", "cpu_threads", "ctc_word_times", "load_campplus", "load_ctc_aligner",
    "load_panns_tagger", "load_segmentation_3", "load_silero_vad", "load_transformers_tagger",
    "load_user_diarization", "load_whisper", "load_yamnet", "package_file", "quiet_pyannote",
    "resolve_whisper_model", "torch_device", "whisper_base_dir", "whisper_tiny_en_dir",
    "yamnet_class_names", "yamnet_float_model", "yamnet_log_mel",
]
