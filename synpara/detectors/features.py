"""Frame features from frozen pretrained encoders, for the trained event head
(``synpara.detectors.head``).

Every extractor turns 16 kHz mono samples into ``(frames, dim)`` float32 features at
:data:`FRAME_SECONDS` (frame ``i`` is centred at ``(i + 0.5) * FRAME_SECONDS``), so heads trained on
one feature set compare frame for frame with heads trained on another.

* ``yamnet``: YAMNet's 1024-d embedding (the pooled layer before its classifier, exposed as a second
  output of the float ONNX graph :func:`synpara.models.yamnet_float_model` builds) of the 0.96 s
  patch centred on each frame, plus the log-odds of :data:`PRIOR_CLASSES` - the AudioSet
  knowledge of categories a small bank lacks.
* ``whisper``: Whisper base encoder states (CTranslate2, 50 frames/s, 512-d), averaged over each
  0.1 s frame, plus the same YAMNet prior scores.

>>> extractor = load_features("yamnet")          # doctest: +SKIP
>>> extractor(samples).shape                     # doctest: +SKIP
(100, 1052)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synpara.errors import SynparaError

#: Seconds per feature frame (10 frames/s): the head's time resolution.
FRAME_SECONDS = 0.1
SAMPLE_RATE = 16000
#: Names ``--feature`` accepts.
FEATURES = ("yamnet", "whisper")

#: AudioSet classes (YAMNet output indices) kept as prior scores beside the learned features:
#: every class the ontology maps a vocalization to, plus Speech and Whispering (hard negatives).
PRIOR_CLASSES: dict[str, int] = {
    "Speech": 0, "Whispering": 12, "Laughter": 13, "Baby laughter": 14, "Giggle": 15,
    "Snicker": 16, "Belly laugh": 17, "Chuckle, chortle": 18, "Crying, sobbing": 19,
    "Whimper": 21, "Wail, moan": 22, "Sigh": 23, "Humming": 32, "Groan": 33, "Grunt": 34,
    "Breathing": 36, "Wheeze": 37, "Snoring": 38, "Gasp": 39, "Pant": 40, "Snort": 41,
    "Cough": 42, "Throat clearing": 43, "Sneeze": 44, "Sniff": 45,
}

_EMBEDDING_TENSOR = "/model/Reshape_output_0"  # the 1024-d pooled layer feeding the classifier


def frame_count(duration: float) -> int:
    """Number of feature frames for ``duration`` seconds of audio (at least one)."""
    return max(1, int(np.ceil(duration / FRAME_SECONDS - 1e-9)))


def yamnet_embedding_model() -> Path:
    """The float YAMNet graph with its 1024-d embedding as a second output, cached beside it."""
    import os
    import tempfile

    import onnx

    from synpara.models.yamnet import yamnet_float_model

    source = yamnet_float_model()
    target = source.with_name(source.stem + "_embedding.onnx")
    if target.exists():
        return target
    model = onnx.load(str(source))
    produced = {out for node in model.graph.node for out in node.output}
    if _EMBEDDING_TENSOR not in produced:
        raise SynparaError(f"YAMNet graph has no tensor {_EMBEDDING_TENSOR!r}", source)
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(_EMBEDDING_TENSOR, onnx.TensorProto.FLOAT,
                                           ["batch", 1024]))
    handle, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(handle)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, target)  # atomic: a concurrent worker never reads half a graph
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


class YamnetEmbedding:
    """YAMNet's embedding and class log-odds for 0.96 s patches centred every 0.1 s."""

    def __init__(self, threads: int = 0, batch_size: int = 64) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(yamnet_embedding_model()), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = batch_size

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(embedding (frames, 1024), logits (frames, 521))`` for 16 kHz mono ``samples``."""
        from synpara.models.yamnet import YAMNET_PATCH_FRAMES, yamnet_log_mel

        duration = len(samples) / SAMPLE_RATE
        count = frame_count(duration)
        half = YAMNET_PATCH_FRAMES // 2
        mel = yamnet_log_mel(samples)
        floor = np.full((half, mel.shape[1]), np.log(0.001), np.float32)
        padded = np.concatenate([floor, mel, floor])
        # Log-mel frames are 10 ms apart: a patch centred at t starts at frame round(t / 0.01).
        starts = np.clip(np.round((np.arange(count) + 0.5) * FRAME_SECONDS / 0.01).astype(int),
                         0, len(mel))
        embeddings, logits = [], []
        for first in range(0, count, self.batch_size):
            chunk = starts[first:first + self.batch_size]
            batch = np.stack([padded[s:s + YAMNET_PATCH_FRAMES] for s in chunk])[:, None]
            scores, embedding = self.session.run(None, {self.input_name: batch})
            logits.append(scores)
            embeddings.append(embedding)
        return (np.concatenate(embeddings).astype(np.float32),
                np.concatenate(logits).astype(np.float32))


class WhisperStates:
    """Whisper base encoder states (CTranslate2), 30 s windows, averaged to 0.1 s frames."""

    def __init__(self, threads: int = 0, model: str = "base") -> None:
        from synpara.models.whisper import load_whisper

        self.model = load_whisper(model, device="cpu", compute_type="int8", threads=threads)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        import ctranslate2

        per_window = 30 * SAMPLE_RATE
        per_frame = int(round(FRAME_SECONDS / 0.02))  # encoder states are 20 ms apart
        count = frame_count(len(samples) / SAMPLE_RATE)
        states = []
        for first in range(0, max(1, len(samples)), per_window):
            window = np.asarray(samples[first:first + per_window], dtype=np.float32)
            mel = self.model.feature_extractor(window)
            n_mel = mel.shape[-1]
            mel = np.pad(mel, ((0, 0), (0, max(0, 3000 - n_mel))))[:, :3000]
            out = self.model.model.encode(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True)
            encoded = np.asarray(out)[0]
            states.append(encoded[: max(1, -(-len(window) // (SAMPLE_RATE // 50)))])
        frames = np.concatenate(states).astype(np.float32)
        need = count * per_frame
        if len(frames) < need:  # edge-pad the last state to a whole number of 0.1 s frames
            frames = np.concatenate([frames, np.repeat(frames[-1:], need - len(frames), 0)])
        return frames[:need].reshape(count, per_frame, -1).mean(axis=1)


    def many(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """States for several clips, packed into shared 30 s windows (the encoder always runs
        on 30 s, so short clips alone waste most of it). A clip may hear its neighbour's edge."""
        per_frame_samples = int(FRAME_SECONDS * SAMPLE_RATE)
        padded = [np.pad(c, (0, frame_count(len(c) / SAMPLE_RATE) * per_frame_samples - len(c)))
                  for c in clips]
        out: list[np.ndarray] = []
        batch: list[np.ndarray] = []
        limit = 30 * SAMPLE_RATE

        def flush() -> None:
            if not batch:
                return
            frames = self(np.concatenate(batch))
            first = 0
            for clip in batch:
                count = len(clip) // per_frame_samples
                out.append(frames[first:first + count])
                first += count
            batch.clear()

        for clip in padded:
            if len(clip) > limit:
                flush()
                out.append(self(clip))
                continue
            if sum(map(len, batch)) + len(clip) > limit:
                flush()
            batch.append(clip)
        flush()
        return out


class FrameFeatures:
    """One named feature set as a callable: ``samples -> (frames, dim)``.

    Every set carries the YAMNet prior scores (log-odds of :data:`PRIOR_CLASSES`) as its last
    ``len(PRIOR_CLASSES)`` columns: :class:`synpara.detectors.head.EventHead` reads them for
    categories the training bank had no clips of.
    """

    def __init__(self, name: str, threads: int = 0) -> None:
        if name not in FEATURES:
            raise SynparaError(f"unknown feature {name!r}; choose one of {', '.join(FEATURES)}")
        self.name = name
        self.yamnet = YamnetEmbedding(threads)
        self.whisper = WhisperStates(threads) if name == "whisper" else None
        self.prior_index = np.array(list(PRIOR_CLASSES.values()))

    @property
    def prior_names(self) -> list[str]:
        return list(PRIOR_CLASSES)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        return self.with_logits(samples)[0]

    def with_logits(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The features and, from the same YAMNet pass, all 521 class log-odds per frame (for
        cut-level background tags)."""
        samples = np.asarray(samples, dtype=np.float32)
        embedding, logits = self.yamnet(samples)
        prior = logits[:, self.prior_index]
        learned = embedding if self.whisper is None else self.whisper(samples)
        count = min(len(learned), len(prior))
        frames = np.concatenate([learned[:count], prior[:count]], axis=1).astype(np.float32)
        return frames, logits[:count]

    def many(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Features of several clips (Whisper packs them into shared windows)."""
        clips = [np.asarray(c, dtype=np.float32) for c in clips]
        if self.whisper is None:
            return [self(c) for c in clips]
        learned = self.whisper.many(clips)
        out = []
        for clip, states in zip(clips, learned):
            prior = self.yamnet(clip)[1][:, self.prior_index]
            count = min(len(states), len(prior))
            out.append(np.concatenate([states[:count], prior[:count]], axis=1).astype(np.float32))
        return out


def load_features(name: str, threads: int = 0) -> FrameFeatures:
    """A feature extractor by name (``yamnet`` or ``whisper``); models load here, once."""
    return FrameFeatures(name, threads)


def prior_columns() -> int:
    """How many trailing columns of every feature set are YAMNet prior log-odds."""
    return len(PRIOR_CLASSES)


__all__ = ["FRAME_SECONDS", "FEATURES", "PRIOR_CLASSES", "FrameFeatures", "YamnetEmbedding",
           "WhisperStates", "frame_count", "load_features", "prior_columns",
           "yamnet_embedding_model"]

