"""refine: word times against espeak-ng truth, a spliced vocalization's onset, split validation,
segmentation and filters, tagged text, the CTC loading path, the CLI and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from synpara.asr import Word
from synpara.errors import SynparaError
from synpara.eval.words import match_words, normalise_word, score_words
from synpara.manifest import alignment_item, items, write_cuts
from synpara.segment import validate_split
from synpara.stage import RecordContext, Reject
from synpara.stages.refine import Refine, RefineConfig
from tests.conftest import SHARED_DATA, cut_for_file
from tests.synth import (
    SENTENCES,
    VOICES,
    insert_vocal,
    load_vocal,
    synth_sentence,
    write_wav,
)

VOCALS = {
    "laughter": "hedgewars_Default_Laugh.ogg",
    "cough": "hedgewars_Default_pl_PoisonCough.ogg",
    "gasp": "gasp_oa_neko.ogg",
}


@pytest.fixture(scope="module")
def whisper():
    from synpara.models import load_whisper

    return load_whisper("base", threads=2)


def _cut(tmp_path: Path, name: str, samples: np.ndarray, words, events=(), speaker: str = "S0"):
    """A cut over ``samples`` with one supervision holding ``words`` / ``events`` (text, start,
    end, score) in recording time."""
    from lhotse import SupervisionSegment

    cut = cut_for_file(write_wav(tmp_path / f"{name}.wav", samples), name)
    alignment = {
        "word": [alignment_item(t, s, e, p) for t, s, e, p in words],
        "event": [alignment_item(t, s, e, p) for t, s, e, p in events],
    }
    cut.supervisions = [SupervisionSegment(
        id=f"{name}-0", recording_id=cut.recording_id, start=0.0, duration=cut.duration,
        speaker=speaker, text=" ".join(w[0] for w in words), alignment=alignment,
    )]
    return cut


def _run(stage: Refine, cut, tmp_path: Path):
    return stage.process(cut, RecordContext(record_id=cut.id, seed=0, output_dir=tmp_path))


# --------------------------------------------------------------------------- word boundaries


@pytest.mark.slow
def test_refined_word_times_beat_whisper_on_espeak_sentences(tmp_path, whisper):
    from synpara.asr import WhisperOptions, transcribe_words

    rng = np.random.default_rng(2026)
    stage = Refine(RefineConfig(segment=False))
    stage.setup()
    truth, raw, refined = {}, {}, {}
    for index in range(8):
        sentence = synth_sentence(SENTENCES[index].split(), rng, voice=VOICES[index % len(VOICES)])
        words = transcribe_words(whisper, sentence.samples, WhisperOptions(language="en"))
        name = f"s{index}"
        cut = _run(stage, _cut(tmp_path, name, sentence.samples,
                               [(w.text, w.start, w.end, w.probability) for w in words]), tmp_path)
        truth[name] = [Word(w.text, w.start, w.end) for w in sentence.words]
        raw[name] = [Word(w.text, w.start, w.end) for w in words]
        refined[name] = [Word(w.symbol, w.start, w.end) for w in items(cut, "word")]
        shifts = cut.custom["synpara"]["refine"]["words"]
        assert len(shifts) == len(words) and all(0 <= s["confidence"] <= 1 for s in shifts)
        starts = [w.start for w in refined[name]]
        assert starts == sorted(starts)
        assert all(a.end <= b.start for a, b in zip(refined[name], refined[name][1:]))
    before, after = score_words(truth, raw), score_words(truth, refined)
    assert after.match_rate >= 0.85
    assert before.start_median_ms > 100  # the bias refine exists to remove
    assert after.start_median_ms <= 30 and after.end_median_ms <= 30, after.summary()
    assert after.start_p90_ms <= 80 and after.end_p90_ms <= 80, after.summary()


@pytest.mark.slow
def test_slow_speech_keeps_every_word_in_place(tmp_path, whisper):
    """At 130 words a minute stop closures inside words ("wan-ts", "wen-t") are as long as the
    pauses between words; no word may swallow its neighbour (this once cost 300-680 ms)."""
    from synpara.asr import WhisperOptions, transcribe_words

    rng = np.random.default_rng(130)
    stage = Refine(RefineConfig(segment=False))
    stage.setup()
    for index, voice in [(2, "en"), (5, "en-gb"), (4, "en-gb-scotland"), (7, "en-029")]:
        sentence = synth_sentence(SENTENCES[index].split(), rng, voice=voice,
                                  words_per_minute=130)
        words = transcribe_words(whisper, sentence.samples, WhisperOptions(language="en"))
        cut = _run(stage, _cut(tmp_path, f"slow{index}", sentence.samples,
                               [(w.text, w.start, w.end, w.probability) for w in words]), tmp_path)
        refined = items(cut, "word")
        pairs = match_words([normalise_word(w.text) for w in sentence.words],
                            [normalise_word(w.symbol) for w in refined])
        assert len(pairs) >= 0.85 * len(sentence.words), (voice, words)
        for i, j in pairs:
            true, word = sentence.words[i], refined[j]
            assert abs(word.start - true.start) <= 0.06, (voice, word, true)
            assert abs(word.end - true.end) <= 0.06, (voice, word, true)


@pytest.mark.parametrize("label", sorted(VOCALS))
def test_spliced_vocalization_onset_within_20ms(tmp_path, label):
    rng = np.random.default_rng(7)
    sentence = synth_sentence(SENTENCES[0].split(), rng, voice="en-us")
    vocal = load_vocal(SHARED_DATA / "vocal" / VOCALS[label], label)
    mixed = insert_vocal(sentence, vocal, after_word=3, rng=rng)
    (event,) = mixed.events
    # Words with Whisper's kind of error (early starts); the event as a detector reports it:
    # a quarter second late, ending early.
    words = [(w.text, max(0.0, w.start - 0.2), w.end - 0.05, 0.9) for w in mixed.words]
    detected = [(label, event.start + 0.25, max(event.start + 0.3, event.end - 0.2), 0.8)]
    stage = Refine(RefineConfig(segment=False, vad=False))
    stage.setup()
    cut = _run(stage, _cut(tmp_path, label, mixed.samples, words, detected), tmp_path)
    (refined,) = items(cut, "event")
    assert abs(refined.start - event.start) <= 0.020, (refined, event)
    assert abs(refined.end - event.end) <= 0.15, (refined, event)
    text = cut.supervisions[0].custom["tagged_text"]
    assert text == f"so that was really [{label}] funny and then she left the room"


# --------------------------------------------------------------------------- split validation


@pytest.mark.slow
def test_split_validation_rejects_a_cut_inside_a_word(whisper):
    from synpara.asr import WhisperOptions, transcribe_words

    rng = np.random.default_rng(11)
    sentence = synth_sentence(SENTENCES[1].split(), rng, voice="en-gb", gap_range=(0.25, 0.35))
    options = WhisperOptions(language="en", beam_size=1, vad_filter=False)

    def transcribe(a: float, b: float) -> str:
        part = sentence.samples[int(a * 16000) : int(b * 16000)]
        return " ".join(w.text for w in transcribe_words(whisper, part, options))

    def text_between(a: float, b: float) -> str:
        return " ".join(w.text for w in sentence.words if a <= (w.start + w.end) / 2 < b)

    words = sentence.words
    bottle = next(w for w in words if w.text == "bottle")
    inside = (bottle.start + bottle.end) / 2
    keep, error = validate_split(transcribe, text_between, 0.0, inside, sentence.duration, 0.1)
    assert not keep and error >= 0.1
    pause = (bottle.end + words[words.index(bottle) + 1].start) / 2
    keep, error = validate_split(transcribe, text_between, 0.0, pause, sentence.duration, 0.1)
    assert keep and error < 0.1


# --------------------------------------------------------------------------- filters


def test_filters_reject_with_reasons(tmp_path):
    rng = np.random.default_rng(3)
    sentence = synth_sentence(SENTENCES[2].split(), rng, voice="en-us")
    words = [(w.text, w.start, w.end, 0.9) for w in sentence.words]
    stage = Refine(RefineConfig(validate_splits=False, min_utterance=1.0))
    stage.setup()
    out = _run(stage, _cut(tmp_path, "ok", sentence.samples, words), tmp_path)
    assert isinstance(out, list) and len(out) == 1
    info = out[0].custom["synpara"]["refine"]
    assert info["snr_db"] > 30
    assert out[0].supervisions[0].text == sentence.text

    cases = {
        "too short": RefineConfig(validate_splits=False, min_utterance=20.0, max_utterance=30.0),
        "low ASR confidence": RefineConfig(validate_splits=False, min_utterance=1.0,
                                           min_asr_confidence=0.95),
    }
    def only_reject(result: object) -> Reject:
        # a filtered utterance comes back as a Reject with its own id, for the rejects manifest
        assert isinstance(result, list) and len(result) == 1 and isinstance(result[0], Reject)
        assert result[0].id is not None and result[0].id.endswith("-0000")
        return result[0]

    for reason, config in cases.items():
        stage = Refine(config)
        stage.setup()
        result = _run(stage, _cut(tmp_path, "f", sentence.samples, words), tmp_path)
        assert reason in only_reject(result).reason

    clipped = np.clip(sentence.samples * 30, -1, 1)
    stage = Refine(RefineConfig(validate_splits=False, min_utterance=1.0))
    stage.setup()
    result = _run(stage, _cut(tmp_path, "clip", clipped, words), tmp_path)
    assert "clipping" in only_reject(result).reason
    noisy = sentence.samples + np.random.default_rng(0).normal(0, 0.05, sentence.samples.size)
    result = _run(stage, _cut(tmp_path, "noisy", noisy.astype(np.float32), words), tmp_path)
    assert "SNR" in only_reject(result).reason



# --------------------------------------------------------------------------- CTC backend



@pytest.mark.slow
def test_ctc_aligner_loads_a_tiny_local_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    vocab = {"<pad>": 0, "|": 1, **{c: i + 2 for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")}}
    model_dir = tmp_path / "tiny-ctc"
    config = transformers.Wav2Vec2Config(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, conv_dim=(32, 32), conv_stride=(5, 64), conv_kernel=(10, 64),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0,
        do_stable_layer_norm=True, feat_extract_norm="layer",
    )
    transformers.Wav2Vec2ForCTC(config).save_pretrained(model_dir)
    (model_dir / "vocab.json").write_text(json.dumps(vocab))

    rng = np.random.default_rng(5)
    sentence = synth_sentence("please bring the bottle".split(), rng, voice="en-us")
    words = [(w.text, max(0.0, w.start - 0.2), w.end, 0.9) for w in sentence.words]
    stage = Refine(RefineConfig(aligner="ctc", ctc_model=str(model_dir), segment=False))
    stage.setup()
    cut = _run(stage, _cut(tmp_path, "ctc", sentence.samples, words), tmp_path)
    refined = items(cut, "word")
    assert [w.symbol for w in refined] == [w[0] for w in words]
    assert "ctc:" in stage.model_id
    with pytest.raises(SynparaError, match="vocab.json"):
        (model_dir / "vocab.json").unlink()
        Refine(RefineConfig(aligner="ctc", ctc_model=str(model_dir))).setup()


# --------------------------------------------------------------------------- CLI and bad input


def test_cli_writes_utterances_and_rejects(tmp_path):
    from synpara.cli import main

    rng = np.random.default_rng(9)
    good = synth_sentence(SENTENCES[3].split(), rng, voice="en-gb")
    short = synth_sentence("hello there".split(), rng, voice="en-us")
    cuts = [
        _cut(tmp_path, "good", good.samples, [(w.text, w.start, w.end, 0.9) for w in good.words]),
        _cut(tmp_path, "short", short.samples,
             [(w.text, w.start, w.end, 0.9) for w in short.words]),
    ]
    manifest = tmp_path / "in.jsonl.gz"
    write_cuts(manifest, cuts)
    out = tmp_path / "out"
    main(["refine", "-i", str(manifest), "-o", str(out), "--workers", "1",
          "--no-validate-splits", "--no-vad"])
    with gzip.open(out / "cuts.jsonl.gz", "rt") as handle:
        written = [json.loads(line) for line in handle]
    with gzip.open(out / "rejects.jsonl.gz", "rt") as handle:
        rejects = [json.loads(line) for line in handle]
    assert [c["id"] for c in written] == ["good-0000"]
    assert written[0]["supervisions"][0]["custom"]["tagged_text"] == good.text
    # the filtered utterance is in the rejects manifest under its own id
    assert rejects[0]["id"] == "short-0000" and "too short" in rejects[0]["reason"]


def test_bad_input_and_options(tmp_path):
    with pytest.raises(SynparaError, match="aligner"):
        RefineConfig(aligner="magic").validate()
    with pytest.raises(SynparaError, match="ctc-model"):
        Refine(RefineConfig(aligner="ctc"))
    with pytest.raises(SynparaError, match="tag style"):
        Refine(RefineConfig(tag_style="curly"))
    with pytest.raises(SynparaError, match="CTC model directory not found"):
        Refine(RefineConfig(aligner="ctc", ctc_model=str(tmp_path / "missing"))).setup()
    stage = Refine(RefineConfig(validate_splits=False, vad=False))
    stage.setup()
    bare = cut_for_file(write_wav(tmp_path / "bare.wav", np.zeros(16000, dtype=np.float32)))
    result = _run(stage, bare, tmp_path)
    assert isinstance(result, Reject) and "no supervisions" in result.reason


def test_other_speakers_words_are_not_taken_for_this_speakers(tmp_path):
    """Two speakers back to back: A's last word must not grow into B's first one."""
    from lhotse import SupervisionSegment

    rng = np.random.default_rng(11)
    a = synth_sentence("thank you very much".split(), rng, voice="en-us", tail=0.0)
    b = synth_sentence("you are welcome".split(), rng, voice="en-gb", lead=0.08)
    samples = np.concatenate([a.samples, b.samples])
    offset = len(a.samples) / 16000
    # Whisper-like raw times: A's last word ends 0.15 s early, B's first starts 0.1 s early
    a_words = [(w.text, w.start, w.end - (0.15 if i == 3 else 0.0), 0.9)
               for i, w in enumerate(a.words)]
    b_words = [(w.text, w.start + offset - (0.1 if i == 0 else 0.0), w.end + offset, 0.9)
               for i, w in enumerate(b.words)]
    cut = _cut(tmp_path, "two", samples, a_words + b_words)
    alignment = cut.supervisions[0].alignment
    cut.supervisions = [
        SupervisionSegment(id="two-a", recording_id="two", start=0.0, duration=offset,
                           speaker="A", alignment={"word": alignment["word"][:4]}),
        SupervisionSegment(id="two-b", recording_id="two", start=offset,
                           duration=cut.duration - offset, speaker="B",
                           alignment={"word": alignment["word"][4:]}),
    ]
    stage = Refine(RefineConfig(segment=False, vad=False))
    stage.setup()
    out = _run(stage, cut, tmp_path)
    by_speaker = {s.speaker: s.alignment["word"] for s in out.supervisions}
    b_start = b.words[0].start + offset
    assert by_speaker["A"][-1].end <= b_start + 0.02
    assert abs(by_speaker["A"][-1].end - a.words[-1].end) <= 0.05
