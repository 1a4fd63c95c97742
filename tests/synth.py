"""Test audio with exact ground truth: espeak-ng speech synthesized word by word, real vocalizations
spliced in at a known sample.

Synthesizing one word at a time and trimming espeak's digital silence gives every word's true
start and end to the sample; random gaps and a faint noise floor keep the signal from being
trivially clean. Everything is float32 mono at 16 kHz and deterministic under the given generator.

>>> rng = np.random.default_rng(0)
>>> sentence = synth_sentence("so that was funny".split(), rng, voice="en-us")
>>> [w.text for w in sentence.words]
['so', 'that', 'was', 'funny']
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synpara.audio import SAMPLE_RATE, decode, resample, to_mono

#: espeak-ng voices from Debian's espeak-ng-data (no mbrola). The +f2..+f5 variants are left out:
#: their ``echo`` setting (+f3: 120 ms, 10 %) trails every word with copies of its end 20 and 40 dB
#: down, so a -60 dB truth holds ~0.1 s under any realistic noise floor (benchmarks/refine.py
#: --sweep measures them: refine follows the first echo to the floor, not the buried second).
VOICES: tuple[str, ...] = (
    "en-us", "en-gb", "en-us+f1", "en-gb-scotland+m3", "en-029", "en-gb-x-rp+f1",
)

#: A word's sound ends where it falls this far (dB) under the word's loudest millisecond.
WORD_RANGE_DB = 60.0

#: Plain sentences for word-timing tests (no digits: Whisper would write them as numerals).
SENTENCES: tuple[str, ...] = (
    "so that was really funny and then she left the room",
    "please bring the green bottle from the kitchen table",
    "we walked along the river until the sun went down",
    "nobody expected the meeting to last the whole afternoon",
    "the children played outside while their parents talked",
    "my brother wants to learn how to play the violin",
    "open the window because it is very warm in here",
    "the train was late again so we took a taxi home",
    "she wrote a long letter to her friend in spring",
    "after dinner we usually watch a movie together",
    "the old man sat quietly on the wooden bench",
    "could you tell me where the nearest station is",
)


@dataclass(frozen=True, slots=True)
class SynthWord:
    """A word and where its sound really starts and ends (seconds from the start of the signal)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Sentence:
    """Synthesized speech with its exact word boundaries."""

    samples: np.ndarray
    words: list[SynthWord]
    voice: str
    sample_rate: int = SAMPLE_RATE
    events: list[SynthWord] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.lru_cache(maxsize=4096)
def _espeak_file(word: str, voice: str, words_per_minute: int) -> tuple[tuple[float, ...], int]:
    """espeak-ng's own output for one word (with its leading and trailing silence)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), word],
            check=True, capture_output=True,
        )
        decoded = decode(path)
    return tuple(to_mono(decoded.samples).tolist()), decoded.sample_rate


@functools.lru_cache(maxsize=4096)
def _espeak(word: str, voice: str, words_per_minute: int,
            range_db: float | None = WORD_RANGE_DB) -> tuple[float, ...]:
    raw, rate = _espeak_file(word, voice, words_per_minute)
    samples = np.asarray(raw, dtype=np.float32)
    if range_db is None:  # the file as espeak wrote it, silence and all
        return tuple(resample(samples, rate, SAMPLE_RATE).tolist())
    # espeak pads with exact digital zeros around the word's sound.
    sounding = np.flatnonzero(np.abs(samples) > 0)
    trimmed = samples[sounding[0] : sounding[-1] + 1] if len(sounding) else samples[:0]
    audio = resample(trimmed, rate, SAMPLE_RATE)
    # Some variants (+f2, +f3) trail off in an echo 60-80 dB down: inaudible, and under any noise
    # floor. A word's sound is what lies within range_db of its loudest millisecond.
    first, last = sound_extent(audio, rel_db=-range_db, frame=16)
    return tuple(audio[first:last].tolist())


def synth_word(word: str, voice: str = "en-us", words_per_minute: int = 165,
               range_db: float | None = WORD_RANGE_DB) -> np.ndarray:
    """One word as float32 16 kHz samples, trimmed to what lies within ``range_db`` of its
    loudest millisecond (``None``: espeak's file untrimmed, its silences counted as the word)."""
    return np.asarray(_espeak(word, voice, words_per_minute, range_db), dtype=np.float32)


def noise_floor(n: int, rng: np.random.Generator, level_db: float) -> np.ndarray:
    """Gently low-passed white noise with RMS ``level_db`` dBFS (a room's hiss, not a tone)."""
    white = rng.standard_normal(n + 1).astype(np.float32)
    noise = 0.5 * (white[1:] + white[:-1])
    noise *= 10 ** (level_db / 20) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
    return noise.astype(np.float32)


def synth_sentence(
    words: list[str],
    rng: np.random.Generator,
    *,
    voice: str = "en-us",
    gap_range: tuple[float, float] = (0.03, 0.45),
    lead: float = 0.6,
    tail: float = 0.6,
    noise_db: float | None = -58.0,
    words_per_minute: int = 165,
    range_db: float | None = WORD_RANGE_DB,
) -> Sentence:
    """Concatenate words synthesized one by one with random gaps, over a faint noise floor.

    The returned word times are the true sound boundaries (to the sample), as ``range_db``
    defines them (see :func:`synth_word`).
    """
    pieces: list[np.ndarray] = []
    spans: list[SynthWord] = []
    cursor = int(round(lead * SAMPLE_RATE))
    pieces.append(np.zeros(cursor, dtype=np.float32))
    for index, word in enumerate(words):
        if index:
            gap = int(round(rng.uniform(*gap_range) * SAMPLE_RATE))
            pieces.append(np.zeros(gap, dtype=np.float32))
            cursor += gap
        audio = synth_word(word, voice, words_per_minute, range_db)
        spans.append(SynthWord(word, cursor / SAMPLE_RATE, (cursor + len(audio)) / SAMPLE_RATE))
        pieces.append(audio)
        cursor += len(audio)
    pieces.append(np.zeros(int(round(tail * SAMPLE_RATE)), dtype=np.float32))
    samples = np.concatenate(pieces)
    if noise_db is not None:
        samples = samples + noise_floor(len(samples), rng, noise_db)
    return Sentence(samples=samples.astype(np.float32), words=spans, voice=voice)


def random_sentence(rng: np.random.Generator, **kwargs) -> Sentence:
    """A sentence from :data:`SENTENCES` in a voice from :data:`VOICES`, both drawn from ``rng``."""
    text = SENTENCES[int(rng.integers(len(SENTENCES)))]
    voice = VOICES[int(rng.integers(len(VOICES)))]
    return synth_sentence(text.split(), rng, voice=voice, **kwargs)


# --------------------------------------------------------------------------- vocalizations


def sound_extent(samples: np.ndarray, rel_db: float = -40.0, frame: int = 80) -> tuple[int, int]:
    """First and last sample of the frames (5 ms) within ``rel_db`` of the loudest frame."""
    usable = len(samples) // frame * frame
    power = (samples[:usable].reshape(-1, frame).astype(np.float64) ** 2).mean(axis=1)
    loud = np.flatnonzero(power >= power.max() * 10 ** (rel_db / 10))
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


@dataclass(frozen=True)
class Vocal:
    """A real vocalization at 16 kHz and where its sound lies inside the clip (samples)."""

    samples: np.ndarray
    label: str
    onset_sample: int
    offset_sample: int


def load_vocal(path: str | Path, label: str) -> Vocal:
    decoded = decode(path)
    samples = resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)
    onset, offset = sound_extent(samples)
    return Vocal(samples=samples, label=label, onset_sample=onset, offset_sample=offset)


def splice(
    host: np.ndarray, vocal: Vocal, at_sample: int, gain_db: float = 0.0
) -> tuple[np.ndarray, float, float]:
    """Add ``vocal`` into ``host`` starting at ``at_sample``; returns the mix and the vocal's true
    sound onset and offset in seconds of the mix."""
    clip = vocal.samples * np.float32(10 ** (gain_db / 20))
    end = at_sample + len(clip)
    mixed = host.copy()
    if end > len(mixed):
        mixed = np.concatenate([mixed, np.zeros(end - len(mixed), dtype=np.float32)])
    mixed[at_sample:end] += clip
    onset = (at_sample + vocal.onset_sample) / SAMPLE_RATE
    offset = (at_sample + vocal.offset_sample) / SAMPLE_RATE
    return mixed.astype(np.float32), onset, offset


def insert_vocal(
    sentence: Sentence,
    vocal: Vocal,
    after_word: int,
    rng: np.random.Generator,
    pause: tuple[float, float] = (0.15, 0.3),
) -> Sentence:
    """Open a pause after word ``after_word`` and put the vocalization in it; later words move on.

    The returned sentence lists the vocalization in ``events`` with its true sound extent.
    """
    split_sample = int(round(sentence.words[after_word].end * SAMPLE_RATE))
    before_pad = int(round(rng.uniform(*pause) * SAMPLE_RATE))
    after_pad = int(round(rng.uniform(*pause) * SAMPLE_RATE))
    sound = vocal.samples[vocal.onset_sample : vocal.offset_sample]
    hole = before_pad + len(sound) + after_pad
    floor_level = float(np.sqrt(np.mean(sentence.samples[:800] ** 2)))
    filler = noise_floor(hole, rng, 20 * np.log10(max(floor_level, 1e-6)))
    filler[before_pad : before_pad + len(sound)] += sound
    samples = np.concatenate(
        [sentence.samples[:split_sample], filler, sentence.samples[split_sample:]]
    ).astype(np.float32)
    shift = hole / SAMPLE_RATE
    words = [
        w if i <= after_word else SynthWord(w.text, w.start + shift, w.end + shift)
        for i, w in enumerate(sentence.words)
    ]
    onset = (split_sample + before_pad) / SAMPLE_RATE
    event = SynthWord(vocal.label, onset, onset + len(sound) / SAMPLE_RATE)
    split_time = sentence.words[after_word].end
    moved = [
        e if e.start < split_time else SynthWord(e.text, e.start + shift, e.end + shift)
        for e in sentence.events
    ]
    events = sorted([*moved, event], key=lambda e: e.start)
    return Sentence(samples=samples, words=words, voice=sentence.voice, events=events)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, sample_rate, subtype="FLOAT")
    return path
