"""A small corpus with exact truth for describe, condense and qa tests: espeak-ng sentences
synthesized word by word, a real vocalization spliced after a chosen word, all times known.

>>> cuts, truths = make_corpus(tmp_path, 4, np.random.default_rng(0))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synpara.manifest import alignment_item
from tests.conftest import SHARED_DATA, cut_for_file
from tests.synth import (
    SENTENCES,
    VOICES,
    Sentence,
    insert_vocal,
    load_vocal,
    synth_sentence,
    write_wav,
)

#: label -> permissive clip in ../shared/data/vocal
VOCALS = {"laughter": "hedgewars_Default_Laugh.ogg", "cough": "cough_scratch_male.wav"}


@dataclass(frozen=True)
class Truth:
    sentence: Sentence
    after_word: int | None  # the event follows this word (None: no event)


def make_cut(tmp_path: Path, name: str, sentence: Sentence, background: dict | None = None):
    """A cut over the sentence's audio with one supervision holding its exact words and events."""
    from lhotse import SupervisionSegment

    cut = cut_for_file(write_wav(tmp_path / f"{name}.wav", sentence.samples), name)
    alignment = {
        "word": [alignment_item(w.text, w.start, w.end, 0.95) for w in sentence.words],
        "event": [alignment_item(e.text, e.start, e.end, 0.9) for e in sentence.events],
    }
    cut.supervisions = [
        SupervisionSegment(
            id=f"{name}-0",
            recording_id=cut.recording_id,
            start=0.0,
            duration=cut.duration,
            speaker="S0",
            text=sentence.text,
            alignment=alignment,
        )
    ]
    if background is not None:
        cut.custom = {"synpara": {"detect": {"background": background}}}
    return cut


def make_corpus(tmp_path: Path, count: int, rng: np.random.Generator):
    """``count`` cuts; every third has no event, the others a laugh or a cough after a word."""
    vocals = {
        label: load_vocal(SHARED_DATA / "vocal" / path, label) for label, path in VOCALS.items()
    }
    cuts, truths = [], []
    for index in range(count):
        text = SENTENCES[index % len(SENTENCES)].split()
        voice = VOICES[index % 3]  # en-us, en-gb, en-us+f1: two male, one female voice
        sentence = synth_sentence(
            text, rng, voice=voice, words_per_minute=int(rng.choice([120, 170, 240]))
        )
        after = None
        if index % 3 != 2:
            after = int(rng.integers(1, len(text) - 2))
            label = "laughter" if index % 2 == 0 else "cough"
            sentence = insert_vocal(sentence, vocals[label], after, rng)
        background = {"music": 0.4} if index == 1 else None
        cuts.append(make_cut(tmp_path, f"utt{index:02d}", sentence, background))
        truths.append(Truth(sentence, after))
    return cuts, truths
