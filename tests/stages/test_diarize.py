"""diarize: the offline pyannote pipeline on the real two-speaker call, a user's own pipeline, bad
input, and the CLI chained into transcribe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from synpara.audio import SAMPLE_RATE, decode, resample, to_mono
from synpara.errors import SynparaError
from synpara.manifest import WORD, iter_cuts, iter_json_lines, round_time, write_cuts
from synpara.models import load_user_diarization
from synpara.stage import RecordContext, Reject
from synpara.stages.diarize import Diarize, DiarizeConfig, diarize_samples
from tests.conftest import REPO, cut_for_file

SAMPLE = "speech/pyannote_sample"


def _context(tmp_path: Path, cut) -> RecordContext:
    return RecordContext(record_id=cut.id, seed=0, output_dir=tmp_path)


@pytest.fixture(scope="module")
def stage() -> Diarize:
    diarize = Diarize(DiarizeConfig(threads=2))
    diarize.setup()
    return diarize


@pytest.fixture(scope="module")
def sample_result(stage, shared_data):
    cut = cut_for_file(shared_data / SAMPLE / "sample.wav")
    return stage.process(cut, RecordContext(record_id=cut.id, seed=0, output_dir=Path(".")))


@pytest.mark.slow
def test_der_on_the_pyannote_sample_call(sample_result, shared_data):
    from pyannote.core import Annotation, Segment
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = load_rttm(str(shared_data / SAMPLE / "sample.rttm"))["sample"]
    hypothesis = Annotation(uri="sample")
    for index, sup in enumerate(sample_result.supervisions):
        hypothesis[Segment(sup.start, sup.end), index] = sup.speaker
    der = DiarizationErrorRate(collar=0.0)(reference, hypothesis)
    print(f"DER (collar 0) on the pyannote sample: {der:.4f}")
    assert der <= 0.10
    assert sorted({s.speaker for s in sample_result.supervisions}) == ["sample-S0", "sample-S1"]
    assert sample_result.supervisions[0].speaker == "sample-S0"  # first to speak is S0


@pytest.mark.slow
def test_overlap_marked_and_centroids_kept(sample_result):
    sups = sample_result.supervisions
    meta = sample_result.custom["synpara"]["diarize"]
    # the reference has overlapped speech (around 10.5-11 s and 27.8-28.5 s)
    assert meta["overlaps"] and any(s.custom["overlap"] for s in sups)
    for start, end in meta["overlaps"]:
        covering = [s for s in sups if s.start < end and s.end > start]
        assert len({s.speaker for s in covering}) == 2
    assert not any(s.custom["overlap"] for s in sups if not any(
        s.start < e and s.end > b for b, e in meta["overlaps"]))
    centroids = {label: np.asarray(info["centroid"]) for label, info in meta["speakers"].items()}
    assert set(centroids) == {"sample-S0", "sample-S1"}
    assert all(c.shape == (192,) and np.isfinite(c).all() for c in centroids.values())
    a, b = centroids.values()
    cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cosine < 0.5  # two different voices
    assert all(s.start >= 0 and s.end <= sample_result.duration + 1e-6 for s in sups)
    assert all(isinstance(info["speech_seconds"], float) for info in meta["speakers"].values())


@pytest.mark.slow
def test_same_result_twice(stage, sample_result, shared_data, tmp_path):
    cut = cut_for_file(shared_data / SAMPLE / "sample.wav")
    again = stage.process(cut, _context(tmp_path, cut))
    assert [s.to_dict() for s in again.supervisions] == [
        s.to_dict() for s in sample_result.supervisions
    ]


@pytest.mark.slow
def test_bad_input_gives_a_clear_reject(stage, shared_data, tmp_path):
    rng = np.random.default_rng(0)
    decoded = decode(shared_data / "speech/jfk/jfk.wav")
    speech = resample(to_mono(decoded.samples), decoded.sample_rate)
    files = {
        "silent": np.zeros(5 * SAMPLE_RATE, np.float32),
        "noise": (0.1 * rng.standard_normal(5 * SAMPLE_RATE)).astype(np.float32),
        "short": speech[SAMPLE_RATE : SAMPLE_RATE + int(0.3 * SAMPLE_RATE)],
    }
    for name, samples in files.items():
        soundfile.write(tmp_path / f"{name}.wav", samples, SAMPLE_RATE)
        cut = cut_for_file(tmp_path / f"{name}.wav")
        result = stage.process(cut, _context(tmp_path, cut))
        assert isinstance(result, Reject), name
        expected = "too short" if name == "short" else "no speech"
        assert expected in result.reason, (name, result.reason)


def test_absurd_options_are_refused():
    for params in (
        {"num_speakers": 0},
        {"min_speakers": 3, "max_speakers": 2},
        {"segmentation_step": 0.0},
        {"clustering_threshold": 2.5},
        {"embedding_batch_size": 0},
        {"device": "tpu"},
    ):
        with pytest.raises(SynparaError):
            Diarize.from_params(params)


# --------------------------------------------------------------------------- a user's own pipeline


def _save_pyannote_model(model, path: Path) -> None:
    """Save a pyannote Model the way Lightning checkpoints it (what ``from_pretrained`` reads)."""
    import lightning

    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "hparams_name": "kwargs",
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)  # adds pyannote's architecture and specifications
    torch.save(checkpoint, path)


@pytest.fixture(scope="module")
def tiny_user_pipeline(tmp_path_factory) -> Path:
    """A user's pipeline directory: config.yaml naming a tiny random PyanNet segmentation model, a
    small x-vector embedding and a random PLDA, all saved here (nothing on any hub)."""
    import yaml
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorMFCC
    from pyannote.audio.models.segmentation import PyanNet

    root = tmp_path_factory.mktemp("userpipe")
    torch.manual_seed(0)
    segmentation = PyanNet(
        sincnet={"stride": 10},
        lstm={"hidden_size": 8, "num_layers": 1, "bidirectional": True, "monolithic": True},
        linear={"hidden_size": 8, "num_layers": 1},
    )
    segmentation.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=10.0,
        classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2,
        permutation_invariant=True,
    )
    segmentation.build()
    _save_pyannote_model(segmentation, root / "segmentation.ckpt")
    embedding = XVectorMFCC(dimension=16)
    embedding.specifications = Specifications(
        problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=3.0
    )
    embedding.build()
    _save_pyannote_model(embedding, root / "embedding.ckpt")
    rng = np.random.default_rng(0)
    (root / "plda").mkdir()
    np.savez(root / "plda" / "xvec_transform.npz", mean1=rng.standard_normal(16),
             mean2=rng.standard_normal(8), lda=rng.standard_normal((16, 8)))
    np.savez(root / "plda" / "plda.npz", mu=rng.standard_normal(8),
             tr=np.eye(8) + 0.1 * rng.standard_normal((8, 8)), psi=rng.uniform(0.5, 2.0, 8))
    config = {
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": str(root / "segmentation.ckpt"),
                "embedding": str(root / "embedding.ckpt"),
                "plda": str(root / "plda"),
                "clustering": "AgglomerativeClustering",
                "segmentation_step": 0.5,
            },
        },
        "params": {
            "segmentation": {"min_duration_off": 0.0},
            "clustering": {"method": "centroid", "min_cluster_size": 1, "threshold": 0.7},
        },
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.mark.slow
def test_users_own_pipeline_loads_from_its_directory(tiny_user_pipeline, shared_data, tmp_path):
    stage = Diarize(DiarizeConfig(pipeline=str(tiny_user_pipeline), threads=1))
    stage.setup()
    cut = cut_for_file(shared_data / "speech/jfk/jfk.wav")
    result = stage.process(cut, _context(tmp_path, cut))
    # random weights (seeded: one speaker over the whole file here); what is tested is the loading
    # path: the user's pipeline ran and its turns became supervisions inside the cut
    assert not isinstance(result, Reject), result
    assert result.supervisions
    for supervision in result.supervisions:
        assert supervision.speaker.startswith("jfk-S")
        assert 0 <= supervision.start < supervision.end <= cut.duration + 1e-6
    assert result.custom["synpara"]["diarize"]["embedding"] is None
    assert stage.model_id == f"pyannote:{tiny_user_pipeline}"
    # the config file itself is accepted too, and works on in-memory audio
    pipeline = load_user_diarization(str(tiny_user_pipeline / "config.yaml"))
    diarize_samples(pipeline, np.zeros(SAMPLE_RATE * 3, np.float32))


def test_users_pipeline_errors_name_the_path(tmp_path):
    with pytest.raises(SynparaError, match="no config.yaml"):
        load_user_diarization(str(tmp_path))
    with pytest.raises(SynparaError, match="not found"):
        load_user_diarization(str(tmp_path / "missing"))


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_diarize_then_transcribe(shared_data, tmp_path):
    cuts = [cut_for_file(shared_data / SAMPLE / "sample.wav")]
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    cuts.append(cut_for_file(silent))
    write_cuts(tmp_path / "in.jsonl.gz", cuts)

    def synpara(*args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "synpara", *args, "--workers", "1"],
                                capture_output=True, text=True, cwd=REPO)
        assert result.returncode == 0, result.stderr

    synpara("diarize", "-i", str(tmp_path / "in.jsonl.gz"), "-o", str(tmp_path / "d"),
            "--num-speakers", "2", "--threads", "2")
    rejects = [r for _, r in iter_json_lines(tmp_path / "d" / "rejects.jsonl.gz")]
    assert [r["id"] for r in rejects] == ["silent"]
    synpara("transcribe", "-i", str(tmp_path / "d" / "cuts.jsonl.gz"), "-o", str(tmp_path / "t"),
            "--model", "tiny.en", "--beam-size", "1", "--threads", "2")
    (cut,) = list(iter_cuts(tmp_path / "t" / "cuts.jsonl.gz"))
    assert {s.speaker for s in cut.supervisions} == {"sample-S0", "sample-S1"}
    assert any(s.custom["overlap"] for s in cut.supervisions)  # diarize's mark survives
    words = [(w, s.speaker) for s in cut.supervisions for w in s.alignment[WORD]]
    assert len(words) > 60
    starts = sorted(w.start for w, _ in words)
    assert 0 <= starts[0] and starts[-1] <= cut.duration
    assert [h["stage"] for h in cut.custom["synpara"]["history"]] == ["diarize", "transcribe"]
    assert "diarize" in cut.custom["synpara"] and "transcribe" in cut.custom["synpara"]


def test_one_speaker_skips_the_embedding_and_keeps_the_turns(stage, shared_data, tmp_path):
    """``num_speakers=1`` neither loads nor runs CAM++, and finds the turns pyannote finds when
    clustering into one speaker after embedding every chunk."""
    from synpara.models.campplus import CamPlusPlusEmbedding

    single = Diarize(DiarizeConfig(num_speakers=1, threads=2))
    single.setup()
    held = [*vars(single.pipeline).values(), *single.pipeline._models.values()]
    assert not any(isinstance(value, CamPlusPlusEmbedding) for value in held)
    cut = cut_for_file(shared_data / SAMPLE / "sample.wav")
    result = single.process(cut, _context(tmp_path, cut))
    full = diarize_samples(stage.pipeline, to_mono(decode(cut.recording.sources[0].source).samples),
                           label_prefix=f"{cut.recording_id}-S", num_speakers=1)
    turns = [(s.start, s.duration, s.speaker) for s in result.supervisions]
    clipped = [(max(0.0, t.start), min(cut.duration, t.end), t.speaker) for t in full.turns]
    assert turns == [(round_time(a), round_time(b - a), who) for a, b, who in clipped if b > a]
    assert {s.speaker for s in result.supervisions} == {"sample-S0"}
    (speaker,) = result.custom["synpara"]["diarize"]["speakers"].values()
    assert speaker["centroid"] is None and speaker["speech_seconds"] > 20
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE)
    assert isinstance(single.process(cut_for_file(silent), _context(tmp_path, cut)), Reject)
