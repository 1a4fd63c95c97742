"""refine: word and event boundaries snapped to the signal, turns cut into checked utterances,
text with the events inline.

Input: cuts from transcribe (``alignment["word"]``) and/or detect (``alignment["event"]``).
Per cut:

1. Word boundaries are snapped to the signal (:func:`synpara.timing.snap_words`): frame energy
   over the noise floor, Silero VAD, spectral flux; order kept, never across a neighbour. With
   ``--aligner ctc --ctc-model DIR`` a local wav2vec2 CTC model's forced alignment replaces
   Whisper's times as the starting point.
2. Event onsets go where the event's energy rises, offsets where it decays into the floor; an
   event is trimmed off a word unless both are confident (then both stay, flagged).
3. Each speaker turn is split at pauses into utterances of ``min_utterance``..``max_utterance`` s,
   never through an event; each split is validated by re-transcribing the halves
   (CER < ``split_cer``).
4. Filters: too short / too long, characters per second outside the IQR fence, low ASR
   confidence, overlapped speech, clipping, low SNR. Each filtered utterance goes to the rejects
   manifest under its own id with its reason.

Per-word shifts and confidences, per-event shifts, flagged overlaps, split decisions, SNR and
characters per second go to ``custom["synpara"]["refine"]``. ``supervision.text`` holds the words,
``supervision.custom["tagged_text"]`` the words and events in time order
(``so funny [laughter] right``).

Example::

    synpara refine -i output/detect/cuts.jsonl.gz -o output/refine --min-utterance 2
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.audio import SAMPLE_RATE, clipping_fraction, load_cut_audio
from synpara.errors import SynparaError
from synpara.frames import FrameFeatures, frame_features, mask_frames, snr_db
from synpara.intervals import Span, total_overlap
from synpara.manifest import EVENT, WORD, alignment_item, round_time, synpara_meta
from synpara.segment import (
    FilterConfig,
    Piece,
    SegmentConfig,
    UtteranceStats,
    cps_fence,
    filter_reason,
    normalise_text,
    plan_segments,
    validate_split,
)
from synpara.stage import RecordContext, Reject, Stage, StageConfig
from synpara.tagged_text import render_tag, tagged_text
from synpara.timing import SnapConfig, refine_event, resolve_overlaps, snap_words

if TYPE_CHECKING:
    from lhotse.cut import Cut
    from lhotse.supervision import AlignmentItem, SupervisionSegment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefineConfig(StageConfig):
    """Options of the refine stage (seconds unless the name says otherwise)."""

    aligner: str = field(
        default="signal",
        metadata={"help": "signal: snap Whisper's times to the signal; ctc: forced-align with "
                  "--ctc-model first, then snap"},
    )
    ctc_model: str | None = field(
        default=None, metadata={"help": "local Hugging Face Wav2Vec2ForCTC directory (aligner ctc)"}
    )
    vad: bool = field(default=True, metadata={"help": "use Silero VAD to tell speech from noise"})
    max_shift: float = field(
        default=1.2, metadata={"help": "a word boundary moves at most this far from Whisper's"}
    )
    event_search: float = field(
        default=0.35, metadata={"help": "event edges are searched this far outside the detection"}
    )
    overlap_confidence: float = field(
        default=0.5,
        metadata={"help": "an event may overlap a word only if both scores reach this"},
    )
    segment: bool = field(
        default=True, metadata={"help": "split turns into utterances and filter them"}
    )
    min_utterance: float = field(default=3.0, metadata={"help": "shortest utterance kept"})
    max_utterance: float = field(default=30.0, metadata={"help": "longest utterance kept"})
    min_pause: float = field(default=0.2, metadata={"help": "shortest pause a split may use"})
    split_pause: float = field(
        default=1.0,
        metadata={"help": "pauses this long split turns shorter than max_utterance too"},
    )
    event_margin: float = field(default=0.2, metadata={"help": "no split this close to an event"})
    pad: float = field(default=0.1, metadata={"help": "silence kept around each utterance"})
    validate_splits: bool = field(
        default=True, metadata={"help": "re-transcribe both halves of each split (SynParaSpeech)"}
    )
    split_cer: float = field(
        default=0.1, metadata={"help": "a split is kept if each half's CER is below this"}
    )
    asr_model: str = field(
        default="base", metadata={"help": "Whisper for split validation: base, tiny.en or a dir"}
    )
    language: str | None = field(
        default=None, metadata={"help": "language for split validation (default: detect)"}
    )
    beam_size: int = field(default=1, metadata={"help": "beam size of split validation"})
    threads: int = field(
        default=0,
        metadata={"help": "CPU threads for Whisper, Silero VAD and the CTC model (0: the "
                  "executor's share)"},
    )
    min_asr_confidence: float = field(
        default=0.4, metadata={"help": "reject utterances whose mean word probability is lower"}
    )
    min_cps: float = field(default=2.0, metadata={"help": "fewest characters per second"})
    max_cps: float = field(default=35.0, metadata={"help": "most characters per second"})
    max_overlap: float = field(
        default=0.1, metadata={"help": "largest share of an utterance another speaker may overlap"}
    )
    max_clipping: float = field(
        default=0.001, metadata={"help": "largest share of samples at full scale"}
    )
    min_snr_db: float = field(default=10.0, metadata={"help": "lowest estimated SNR (dB)"})
    tag_style: str = field(
        default="bracket",
        metadata={"help": "tags in tagged_text: bracket [laughter], paren (laughs), angle <laugh>, "
                  "title [Laughter], or a template with {label}"},
    )

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise SynparaError(f"refine: {message}")

        need(self.aligner in ("signal", "ctc"),
             f"aligner must be signal or ctc, got {self.aligner!r}")
        need(self.aligner != "ctc" or bool(self.ctc_model), "aligner ctc needs --ctc-model DIR")
        need(self.max_shift > 0, f"max_shift must be > 0, got {self.max_shift}")
        need(self.event_search >= 0, f"event_search must be >= 0, got {self.event_search}")
        need(0 < self.min_utterance < self.max_utterance,
             f"need 0 < min_utterance < max_utterance, got {self.min_utterance}, "
             f"{self.max_utterance}")
        need(self.min_pause >= 0 and self.pad >= 0 and self.event_margin >= 0,
             "min_pause, pad and event_margin must be >= 0")
        need(0 < self.split_cer <= 1, f"split_cer must be in (0, 1], got {self.split_cer}")
        need(self.beam_size >= 1 and self.threads >= 0, "beam_size >= 1 and threads >= 0")
        need(0 <= self.min_cps < self.max_cps, "need 0 <= min_cps < max_cps")
        need(0 <= self.max_overlap <= 1 and 0 <= self.max_clipping <= 1,
             "max_overlap and max_clipping are fractions in [0, 1]")
        render_tag("laughter", self.tag_style)  # raises for an unknown style

    def snap_config(self) -> SnapConfig:
        return SnapConfig(hard_limit=self.max_shift, event_search=self.event_search)

    def segment_config(self) -> SegmentConfig:
        return SegmentConfig(
            min_duration=self.min_utterance, max_duration=self.max_utterance,
            min_pause=self.min_pause, split_pause=self.split_pause,
            event_margin=self.event_margin, pad=self.pad,
        )

    def filter_config(self) -> FilterConfig:
        return FilterConfig(
            min_duration=self.min_utterance, max_duration=self.max_utterance,
            min_asr_confidence=self.min_asr_confidence, cps_range=(self.min_cps, self.max_cps),
            max_overlap=self.max_overlap, max_clipping=self.max_clipping,
            min_snr_db=self.min_snr_db,
        )


@dataclass
class RefinedTurn:
    """One input supervision (a speaker turn) with its refined words and events (recording
    time) and what refining them recorded."""

    supervision: SupervisionSegment
    words: list[Span]
    events: list[Span]
    word_info: list[dict[str, Any]]
    event_info: list[dict[str, Any]]
    overlaps: list[tuple[int, int]]


class Refine(Stage[RefineConfig]):
    """Snap word and event times to the signal, cut turns into validated utterances, tag the text.

    Example::

        stage = Refine(RefineConfig(validate_splits=False))
        stage.setup()
        cuts = stage.process(cut, context)  # utterance cuts (+ a Reject per filtered one)
        cuts[0].supervisions[0].custom["tagged_text"]  # 'so that was funny [laughter] right'
    """

    name = "refine"
    version = "1"
    Config = RefineConfig

    def setup(self, threads: int = 0) -> None:
        import torch

        from synpara.models.ctc import load_ctc_aligner
        from synpara.models.files import cpu_threads
        from synpara.models.vad import load_silero_vad

        config = self.config
        torch.set_num_threads(cpu_threads(config.threads, threads))  # Silero VAD, the CTC model
        self.vad = load_silero_vad() if config.vad else None
        # validate() guarantees a ctc_model whenever the CTC aligner is chosen
        use_ctc = config.aligner == "ctc" and config.ctc_model
        self.ctc = load_ctc_aligner(config.ctc_model) if use_ctc and config.ctc_model else None
        # Whisper is loaded on the first split that needs validating: most turns need none, and
        # a worker that never splits should not pay the load (measured: 0.4-0.6 s per worker).
        self.whisper = None
        self._validates_splits = bool(config.segment and config.validate_splits)
        self._asr_threads = cpu_threads(config.threads, threads)

    @property
    def model_id(self) -> str | None:
        config = self.config
        parts = ["signal+silero-vad" if config.vad else "signal"]
        if config.aligner == "ctc":
            parts.append(f"ctc:{config.ctc_model}")
        if config.segment and config.validate_splits:
            parts.append(f"faster-whisper:{config.asr_model}")
        return ",".join(parts)

    # ---- per record ------------------------------------------------------------------------

    def process(self, cut: Cut, context: RecordContext) -> Cut | list[Cut | Reject] | Reject:
        config = self.config
        samples = load_cut_audio(cut)
        if samples.size < SAMPLE_RATE // 10:
            return Reject(f"audio shorter than 0.1 s ({samples.size} samples)")
        if not cut.supervisions:
            return Reject("no supervisions: run transcribe (and detect) before refine")
        features = self._features(samples)
        turns = [self._refine_turn(cut, sup, samples, features) for sup in cut.supervisions]
        if not config.segment:
            return self._whole_cut(cut, turns, features)
        return self._utterances(cut, turns, samples, features)

    def _features(self, samples: np.ndarray) -> FrameFeatures:
        from synpara.audio import silero_speech_probs

        probs = silero_speech_probs(self.vad, samples) if self.vad is not None else None
        return frame_features(samples, probs)

    @staticmethod
    def _own_speech_only(cut: Cut, sup: SupervisionSegment, own_words: list[AlignmentItem],
                         features: FrameFeatures) -> FrameFeatures:
        """Hide other speakers' words (Whisper's spans) from this turn's snapping, except where
        they meet this turn's own words: cross-talk must not pass for this speaker's word."""
        others = [
            (w.start - cut.start, w.end - cut.start)
            for other in cut.supervisions
            if other.speaker != sup.speaker
            for w in (other.alignment or {}).get(WORD, [])
        ]
        own = [(w.start - cut.start, w.end - cut.start) for w in own_words]
        return mask_frames(features, others, keep=own) if others else features

    def _refine_turn(
        self, cut: Cut, sup: SupervisionSegment, samples: np.ndarray, features: FrameFeatures
    ) -> RefinedTurn:
        config = self.config
        alignment = sup.alignment or {}
        raw_words = sorted(alignment.get(WORD, []), key=lambda w: (w.start, w.end))
        raw_events = sorted(alignment.get(EVENT, []), key=lambda e: (e.start, e.end))
        prior = [(w.start, w.end) for w in raw_words]
        features = self._own_speech_only(cut, sup, raw_words, features)
        if self.ctc is not None and raw_words:
            prior = self._ctc_prior(cut, sup, samples, raw_words, prior)
        # Events between words join the words in one time-ordered sequence and claim their own
        # sound; an event the detector put on top of a word is refined on its own afterwards.
        inline = [not _mostly_inside_words(e, raw_words) for e in raw_events]
        tokens = [(start, end, False, i) for i, (start, end) in enumerate(prior)]
        tokens += [(e.start, e.end, True, i) for i, e in enumerate(raw_events) if inline[i]]
        tokens.sort(key=lambda t: ((t[0] + t[1]) / 2, t[2]))
        snapped_tokens = snap_words([(t[0], t[1]) for t in tokens], features,
                                    config.snap_config(), offset=cut.start,
                                    events=[t[2] for t in tokens])
        snapped = [s for t, s in zip(tokens, snapped_tokens) if not t[2]]
        snapped_events = {t[3]: s for t, s in zip(tokens, snapped_tokens) if t[2]}
        words = [Span(w.symbol, s.start, s.end, 1.0 if w.score is None else float(w.score))
                 for w, s in zip(raw_words, snapped)]
        word_info = [
            {"shift_ms": [_ms(s.start - w.start), _ms(s.end - w.end)],
             "confidence": round(s.confidence, 3)}
            for w, s in zip(raw_words, snapped)
        ]
        events: list[Span] = []
        event_info: list[dict[str, Any]] = []
        for index, event in enumerate(raw_events):
            score = 1.0 if event.score is None else float(event.score)
            if index in snapped_events:
                e = snapped_events[index]
                start, end, confidence = e.start, e.end, e.confidence
            else:
                before = [w.end for w in words if w.end <= event.start]
                after = [w.start for w in words if w.start >= event.end]
                bounds = (max(before, default=cut.start), min(after, default=cut.end))
                refined = refine_event(event.start, event.end, features, offset=cut.start,
                                       search=config.event_search, bounds=bounds)
                start, end, confidence = refined.start, refined.end, refined.confidence
            events.append(Span(event.symbol, start, end, score))
            event_info.append({"shift_ms": [_ms(start - event.start), _ms(end - event.end)],
                               "confidence": round(confidence, 3)})
        kept, overlaps = resolve_overlaps(words, events, config.overlap_confidence)
        survivors = [(e, info) for e, info in zip(kept, event_info) if e is not None]
        for e_index, _ in overlaps:
            event_info[e_index]["overlaps_word"] = True
        index_map = {old: new for new, old in enumerate(i for i, e in enumerate(kept) if e)}
        overlaps = [(index_map[e], w) for e, w in overlaps if e in index_map]
        return RefinedTurn(sup, words, [e for e, _ in survivors], word_info,
                     [info for _, info in survivors], overlaps)

    def _ctc_prior(self, cut: Cut, sup: SupervisionSegment, samples: np.ndarray,
                   raw_words: list, prior: list[tuple[float, float]]) -> list[tuple[float, float]]:
        ctc = self.ctc
        if ctc is None:
            return prior
        start_sample = max(0, int((sup.start) * SAMPLE_RATE))
        end_sample = min(len(samples), int((sup.start + sup.duration) * SAMPLE_RATE))
        log_probs, frame_seconds = ctc.log_probs(samples[start_sample:end_sample])
        from synpara.models.ctc import ctc_word_times

        times = ctc_word_times(log_probs, frame_seconds, [w.symbol for w in raw_words],
                               ctc.vocab, ctc.blank, ctc.delimiter)
        offset = cut.start + start_sample / SAMPLE_RATE
        return [old if new is None else (new[0] + offset, new[1] + offset)
                for old, new in zip(prior, times)]

    # ---- output ----------------------------------------------------------------------------

    def _whole_cut(self, cut: Cut, turns: list[RefinedTurn], features: FrameFeatures) -> Cut:
        supervisions = [
            self._supervision(turn.supervision, turn.supervision.id, turn.supervision.start,
                              turn.supervision.duration,
                              turn.words, turn.events)
            for turn in turns
        ]
        out = cut.copy(supervisions=supervisions)
        self._meta(out, turns, None)
        return out

    def _utterances(self, cut: Cut, turns: list[RefinedTurn], samples: np.ndarray,
                    features: FrameFeatures) -> list[Cut | Reject]:
        from lhotse.utils import fastcopy

        config = self.config
        planned: list[tuple[RefinedTurn, Piece]] = []
        for turn in turns:
            sup = turn.supervision
            start = cut.start + sup.start
            end = start + sup.duration
            # A snapped word may begin before the diarization turn does (or end after it): the
            # utterance must hold its words and events whole.
            spans = [*turn.words, *turn.events]
            if spans:
                start = min(start, min(span.start for span in spans))
                end = max(end, max(span.end for span in spans))
            validator = (self._validator(turn, samples, cut.start) if self._validates_splits
                         else None)
            for piece in plan_segments(turn.words, turn.events, max(start, cut.start),
                                       min(end, cut.end), config.segment_config(), validator):
                planned.append((turn, piece))
        stats = [self._stats(cut, turns, turn, piece, samples, features) for turn, piece in planned]
        fence = cps_fence([s.chars_per_second for s in stats if s.words], config.filter_config())
        # Filtered utterances are returned as Rejects with their ids: the executor writes them to
        # the rejects manifest beside the kept ones, so a filter never drops audio without a trace.
        results: list[Cut | Reject] = []
        for index, ((turn, piece), stat) in enumerate(zip(planned, stats)):
            utterance_id = f"{cut.id}-{index:04d}"
            reason = filter_reason(stat, config.filter_config(), fence)
            if reason is not None:
                span = f"{piece.start:.2f}-{piece.end:.2f} s"
                results.append(Reject(f"utterance {span}: {reason}", id=utterance_id))
                continue
            words = turn.words[piece.first_word : piece.last_word]
            events = [turn.events[i] for i in piece.events]
            sup = self._supervision(turn.supervision, utterance_id, 0.0, piece.duration,
                                    words, events)
            out = fastcopy(cut, id=utterance_id, start=round_time(piece.start),
                           duration=round_time(piece.duration), supervisions=[sup],
                           custom=copy.deepcopy(cut.custom))
            info = self._meta(out, [turn], (piece, stat, words, events))
            info["source_cut"] = cut.id
            results.append(out)
        return results

    def _validator(self, turn: RefinedTurn, samples: np.ndarray, cut_start: float):
        from synpara.asr import WhisperOptions, transcribe_words
        from synpara.models.whisper import load_whisper

        config = self.config
        options = WhisperOptions(language=config.language, beam_size=config.beam_size,
                                 vad_filter=False)

        def text_between(a: float, b: float) -> str:
            return " ".join(w.label for w in turn.words if a <= (w.start + w.end) / 2 < b)

        def transcribe(a: float, b: float) -> str:
            lo = max(0, int(round((a - cut_start) * SAMPLE_RATE)))
            hi = min(len(samples), int(round((b - cut_start) * SAMPLE_RATE)))
            if hi - lo < SAMPLE_RATE // 10:
                return ""
            if self.whisper is None:
                self.whisper = load_whisper(config.asr_model, threads=self._asr_threads)
            return " ".join(w.text for w in transcribe_words(self.whisper, samples[lo:hi], options))

        def validate(a: float, split: float, b: float) -> tuple[bool, float]:
            return validate_split(transcribe, text_between, a, split, b, config.split_cer)

        return validate

    def _stats(self, cut: Cut, turns: list[RefinedTurn], turn: RefinedTurn, piece: Piece,
               samples: np.ndarray, features: FrameFeatures) -> UtteranceStats:
        words = turn.words[piece.first_word : piece.last_word]
        lo = max(0, int(round((piece.start - cut.start) * SAMPLE_RATE)))
        hi = min(len(samples), int(round((piece.end - cut.start) * SAMPLE_RATE)))
        others = [t.supervision for t in turns if t.supervision.speaker != turn.supervision.speaker]
        overlap = total_overlap(piece.start, piece.end, [
            (cut.start + o.start, cut.start + o.start + o.duration) for o in others])
        return UtteranceStats(
            duration=piece.duration,
            words=len(words),
            chars=len(normalise_text(" ".join(w.label for w in words))),
            asr_confidence=float(np.mean([w.score for w in words])) if words else 0.0,
            overlap=overlap / piece.duration if piece.duration > 0 else 0.0,
            clipping=clipping_fraction(samples[lo:hi]),
            snr_db=snr_db(features, [(w.start, w.end) for w in words], cut.start),
        )

    def _supervision(self, sup: SupervisionSegment, sup_id: str, start: float, duration: float,
                     words: list[Span], events: list[Span]
                     ) -> SupervisionSegment:
        from lhotse.utils import fastcopy

        config = self.config
        alignment = {
            WORD: [alignment_item(w.label, w.start, w.end, w.score) for w in words],
            EVENT: [alignment_item(e.label, e.start, e.end, e.score) for e in events],
        }
        custom = dict(sup.custom or {})
        custom["tagged_text"] = tagged_text(
            [(w.label, w.start, w.end) for w in words],
            [(e.label, e.start, e.end) for e in events],
            style=config.tag_style,
        )
        return fastcopy(
            sup, id=sup_id, start=round_time(start), duration=round_time(duration),
            text=" ".join(w.label for w in words), alignment=alignment, custom=custom,
        )

    def _meta(self, out: Cut, turns: list[RefinedTurn], utterance: tuple | None) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if utterance is None:
            info["words"] = [i for t in turns for i in t.word_info]
            info["events"] = [i for t in turns for i in t.event_info]
            info["overlaps"] = [list(o) for t in turns for o in t.overlaps]
        else:
            piece, stat, words, events = utterance
            (turn,) = turns
            info["words"] = turn.word_info[piece.first_word : piece.last_word]
            info["events"] = [turn.event_info[i] for i in piece.events]
            info["overlaps"] = [[piece.events.index(e), w - piece.first_word]
                                for e, w in turn.overlaps
                                if e in piece.events and piece.first_word <= w < piece.last_word]
            info["rejected_splits"] = piece.rejected_splits
            info["snr_db"] = round(stat.snr_db, 1)
            info["chars_per_second"] = round(stat.chars_per_second, 2)
            info["asr_confidence"] = round(stat.asr_confidence, 3)
        synpara_meta(out)["refine"] = info
        return info


def _mostly_inside_words(event: Any, words: list) -> bool:
    """True when more than half of the event lies inside word spans (laughing while speaking)."""
    inside = total_overlap(event.start, event.end, [(w.start, w.end) for w in words])
    return inside > 0.5 * max(event.duration, 1e-6)


def _ms(seconds: float) -> float:
    return round(float(seconds) * 1000, 1)

