"""tts: text lines -> host speech with exact word times (one cut per line), for insert.

With espeak-ng and festival each line is spoken word by word (``synpara.models.tts``) and the
words are joined by pauses drawn from the record's generator: short between words, longer after a
comma and after a full stop, so insert finds places for its events. Word times are where each
word's samples were put: exact to the sample. With piper (a neural voice, optional GPL extra;
``synpara.models.piper_voice``) each clause is spoken in one pass, the clauses joined by the same
drawn pauses, and a word's times are the samples the voice gave its phonemes (to one 11.6 ms hop);
the speaking rate is drawn per line. A faint noise floor (``--noise-db``) keeps the signal from
being digitally silent. Output is like refine's: words in ``alignment["word"]``, ``text`` and
``tagged_text`` (no tags yet), FLAC at the engine's own rate recorded as the source, so insert
reads it at full rate.

Example::

    synpara tts -i lines.txt -o output/tts --engine espeak-ng --voice en-us --voice en-gb
    synpara tts -i lines.txt -o output/tts_piper --engine piper            # voice joe (en_US)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError
from synpara.stage import Record, RecordContext, Stage, StageConfig

#: A word and its first and one-past-last sample.
Span = tuple[str, int, int]
#: A word as tts splits a line (letters and digits, inner apostrophes kept: "don't").
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
#: Punctuation after which a clause ends (and a longer pause is drawn).
_CLAUSE_ENDS = frozenset(",;:.!?")


def _after(text: str, match: re.Match[str]) -> str:
    """The character right after a word ("" at the end of the line)."""
    return text[match.end() : match.end() + 1]


@dataclass(frozen=True)
class TtsConfig(StageConfig):
    engine: str = field(
        default="espeak-ng", metadata={"help": "espeak-ng, festival or piper (optional extra)"})
    voice: list[str] = field(
        default_factory=list, metadata={"help": "voices drawn per line (default: the engine's)"}
    )
    words_per_minute: int = field(default=165, metadata={"help": "espeak-ng speaking rate"})
    length_scale: tuple[float, float] = field(
        default=(0.95, 1.1), metadata={"help": "piper: phoneme duration scale drawn per line "
                                               "(min, max; above 1 is slower)"}
    )
    word_gap: tuple[float, float] = field(
        default=(0.04, 0.12), metadata={"help": "pause between words (min, max seconds)"}
    )
    clause_pause: tuple[float, float] = field(
        default=(0.3, 0.5), metadata={"help": "pause after , ; : (min, max seconds)"}
    )
    sentence_pause: tuple[float, float] = field(
        default=(0.45, 0.7), metadata={"help": "pause after . ! ? inside a line (min, max)"}
    )
    lead: float = field(default=0.5, metadata={"help": "silence before the first word (s)"})
    tail: float = field(default=0.6, metadata={"help": "silence after the last word (s)"})
    noise_db: float | None = field(
        default=-65.0, metadata={"help": "noise floor in dBFS RMS (none: digital silence)"}
    )

    def validate(self) -> None:
        from synpara.models.tts import ENGINE_NAMES

        if self.engine not in ENGINE_NAMES:
            raise SynparaError(
                f"tts: unknown engine {self.engine!r}; known: {', '.join(ENGINE_NAMES)}")
        for name in ("word_gap", "clause_pause", "sentence_pause", "length_scale"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise SynparaError(f"tts: {name} must be (min, max) with 0 <= min <= max")
        if self.lead < 0 or self.tail < 0 or self.words_per_minute < 40:
            raise SynparaError("tts: lead and tail must be >= 0, words_per_minute >= 40")
        if not 0.25 <= self.length_scale[0] <= self.length_scale[1] <= 4:
            raise SynparaError("tts: length_scale must lie within 0.25 and 4")
        if self.engine == "piper":  # a voice file that is not one fails here, before any work
            from synpara.models.piper_voice import voice_files

            for voice in self.voice:
                voice_files(voice)


@dataclass(frozen=True)
class Line:
    text: str
    path: str
    number: int


class Tts(Stage[TtsConfig]):
    """Speak text lines word by word; one cut per line with exact word times.

    >>> Tts.from_params({"engine": "espeak-ng"}).config.engine
    'espeak-ng'
    """

    name = "tts"
    version = "1"
    Config = TtsConfig
    input_kind = "files"  # text files given by the user (several -i), not a previous manifest

    def input_files(self, input_path: Any) -> list[Path]:
        specs = [input_path] if isinstance(input_path, (str, Path)) else list(input_path)
        return [Path(spec) for spec in specs]

    def setup(self, threads: int = 0) -> None:
        from synpara.models.tts import load_engine

        self.engine = load_engine(self.config.engine)
        self._words: dict[tuple[str, str], np.ndarray] = {}
        if self.config.engine == "piper":  # neural voices: loaded once per worker, not per line
            for voice in self.config.voice or [self.engine.default_voice]:
                self.engine.voice(voice)

    @property
    def model_id(self) -> str | None:
        return self.config.engine

    def iter_records(self, input_path: Any) -> Iterator[Record]:
        specs = [input_path] if isinstance(input_path, (str, Path)) else list(input_path)
        found = False
        for spec in map(Path, specs):
            if not spec.is_file():
                raise SynparaError("no such text file", spec)
            for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                found = True
                yield Record(
                    f"{spec.stem}-{number:04d}", f"{spec}:{number}", Line(text, str(spec), number)
                )
        if not found:
            raise SynparaError("no text lines", ", ".join(map(str, specs)))

    def _word(self, text: str, voice: str) -> np.ndarray:
        key = (text, voice)
        if key not in self._words:
            self._words[key] = self.engine.word(text, voice, self.config.words_per_minute)
        return self._words[key]

    def process(self, line: Line, context: RecordContext) -> Any:
        config, rng = self.config, context.rng
        voices = config.voice or [self.engine.default_voice]
        voice = voices[int(rng.integers(len(voices)))]
        matches = list(WORD.finditer(line.text))
        if not matches:
            raise SynparaError(f"line {line.number}: no words", line.path)
        if config.engine == "piper":
            speech, rate, spans = self._clause_by_clause(line, matches, voice, rng)
        else:
            speech, rate, spans = self._word_by_word(line, matches, voice, rng)
        lead = int(round(config.lead * rate))
        spans = [(word, start + lead, end + lead) for word, start, end in spans]
        samples = np.concatenate([np.zeros(lead, np.float32), speech,
                                  np.zeros(int(round(config.tail * rate)), np.float32)])
        if config.noise_db is not None:
            samples = samples + noise_floor(len(samples), rng, config.noise_db)
        return self._cut(context, samples, rate, spans, voice, line)

    def _word_by_word(self, line: Line, matches: list[re.Match[str]], voice: str,
                      rng: np.random.Generator) -> tuple[np.ndarray, int, list[Span]]:
        """Each word spoken alone (espeak-ng, festival), joined by drawn pauses."""
        pieces = []
        for match in matches:
            audio = self._word(match.group(0), voice)
            if len(audio) == 0:
                raise SynparaError(f"line {line.number}: {match.group(0)!r} gave no sound",
                                   line.path)
            pieces.append((audio, [(match.group(0), 0, len(audio))], _after(line.text, match)))
        return self._joined(pieces, self.engine.sample_rate, rng)

    def _clause_by_clause(self, line: Line, matches: list[re.Match[str]], voice: str,
                          rng: np.random.Generator) -> tuple[np.ndarray, int, list[Span]]:
        """Each clause spoken in one pass by a neural voice (piper), joined by drawn pauses.

        Piper's own pause at a comma can be as short as 50 ms (too short for insert's slots);
        cutting the line at punctuation and drawing the pause as for the other engines keeps
        the words inside a clause connected and gives insert its places.
        """
        length_scale = float(rng.uniform(*self.config.length_scale))
        clauses: list[list[re.Match[str]]] = [[]]
        for match in matches:
            clauses[-1].append(match)
            if _after(line.text, match) in _CLAUSE_ENDS and match is not matches[-1]:
                clauses.append([])
        pieces, rate = [], 0
        for clause in clauses:
            text = line.text[clause[0].start() : clause[-1].end() + 1].strip()
            audio, rate, spans = self.engine.line(
                text, [m.group(0) for m in clause], voice, length_scale)
            pieces.append((audio, spans, _after(line.text, clause[-1])))
        return self._joined(pieces, rate, rng)

    def _joined(self, pieces: list[tuple[np.ndarray, list[Span], str]], rate: int,
                rng: np.random.Generator) -> tuple[np.ndarray, int, list[Span]]:
        """Pieces of speech (their audio, word spans and the character after them) joined by
        pauses drawn by that character: short between words, longer after a comma and after a
        full stop, so insert finds places for its events."""
        config = self.config
        audio_parts: list[np.ndarray] = []
        spans: list[Span] = []
        cursor = 0
        for index, (audio, piece_spans, after) in enumerate(pieces):
            spans += [(word, cursor + start, cursor + end) for word, start, end in piece_spans]
            audio_parts.append(audio)
            cursor += len(audio)
            if index + 1 < len(pieces):
                gap = (config.clause_pause if after and after in ",;:"
                       else config.sentence_pause if after and after in ".!?"
                       else config.word_gap)
                gap_samples = int(round(rng.uniform(*gap) * rate))
                audio_parts.append(np.zeros(gap_samples, dtype=np.float32))
                cursor += gap_samples
        return np.concatenate(audio_parts), rate, spans

    def _cut(
        self,
        context: RecordContext,
        samples: np.ndarray,
        rate: int,
        spans: list[tuple[str, int, int]],
        voice: str,
        line: Line,
    ) -> Any:
        from lhotse import SupervisionSegment

        from synpara.audio import write_flac_atomic
        from synpara.manifest import EVENT, WORD, alignment_item, file_cut, written_source

        path = (context.output_dir / "audio" / f"{context.record_id}.flac").resolve()
        write_flac_atomic(path, samples, rate)
        duration = len(samples) / rate
        words = [alignment_item(w, a / rate, b / rate, 1.0) for w, a, b in spans]
        text = " ".join(w for w, _, _ in spans)
        rid = context.record_id
        supervision = SupervisionSegment(
            id=f"{rid}-0",
            recording_id=rid,
            start=0.0,
            duration=duration,
            speaker=f"tts-{self.config.engine}-{Path(voice).name.removesuffix('.onnx')}",
            text=text,
            language=self.engine.language(voice),
            alignment={WORD: words, EVENT: []},
            custom={"tagged_text": text},
        )
        source = written_source(path, rate, duration)
        tts = {
            "engine": self.config.engine,
            "voice": voice,
            "line": line.number,
            "text": line.text,
            "text_sha256": hashlib.sha256(line.text.encode()).hexdigest(),
        }
        return file_cut(rid, path, rate, len(samples), [supervision],
                        {"synpara": {"source": source, "tts": tts}})


def noise_floor(n: int, rng: np.random.Generator, level_db: float) -> np.ndarray:
    """Gently low-passed white noise with RMS ``level_db`` dBFS (a quiet room, not a tone)."""
    white = rng.standard_normal(n + 1)
    noise = 0.5 * (white[1:] + white[:-1])
    noise *= 10 ** (level_db / 20) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
    return noise.astype(np.float32)
