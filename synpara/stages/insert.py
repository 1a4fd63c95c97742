"""insert: real vocalizations spliced into host speech, every event exact to the sample.

Input: any manifest with timed words (refine or tts output). Per utterance:

1. **Choose points** (:mod:`synpara.placement`): slots in pauses and at the start and end, a
   category per slot by the rules table (``synpara/data/placement.yaml``, ``--rules``), a clip
   per event from the bank (``--bank``, else the bundled ``assets/vocalizations``).
2. **Match** (:mod:`synpara.splice`): the clip's F0 moves toward the host's (WORLD, bounded,
   formants with it), its loudness goes to the surrounding speech's plus the category's offset,
   the peak stays under full scale.
3. **Splice**: the host is read at its source rate and written at ``--sample-rate`` (never above
   the host's rate unless ``--allow-upsample``); each event is a stretch of the host's own room
   tone with the clip on it, cross-faded with the pause's own samples, so every host sample is
   copied bit for bit and every later word moves by exactly the inserted length.
4. **Record**: events in ``alignment["event"]``, words moved, ``tagged_text`` with the tags,
   per-event clip id, source, licence, gain, pitch shift, cross-fade and insertion sample in
   ``custom["synpara"]["insert"]``; then the quality gate (``--gate``) may reject the utterance.

Example::

    synpara insert -i output/tts/cuts.jsonl.gz -o output/insert --bank output/bank/cuts.jsonl.gz \\
        --categories laughter --categories cough --events-per-utterance 2 --seed 1
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.errors import SynparaError
from synpara.manifest import (
    EVENT,
    WORD,
    alignment_item,
    file_cut,
    items,
    round_time,
    synpara_meta,
    written_source,
)
from synpara.placement import Placement, find_slots, load_rules, no_slot_reason, plan_events
from synpara.splice import host_f0_hz, host_samples
from synpara.stage import RecordContext, Reject, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut

    from synpara.bank import BankClip

logger = logging.getLogger(__name__)
GATES = ("wer", "speaker", "dnsmos", "detector")


def _option(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class InsertConfig(StageConfig):
    """Options of the insert stage (seconds unless the name says otherwise)."""

    bank: str | None = _option(None, "bank manifest (synpara bank); default: bundled clips")
    categories: list[str] = field(
        default_factory=list, metadata={"help": "labels to insert (default: all the bank has)"}
    )
    events_per_utterance: int = _option(1, "events per utterance")
    events_per_minute: float | None = _option(None, "instead: Poisson rate per minute (>= 1)")
    sample_rate: int = _option(24000, "output rate (Hz)")
    allow_upsample: bool = _option(False, "write above the host's own rate when asked")
    rules: str | None = _option(None, "placement rules YAML (default: synpara/data/)")
    min_pause: float = _option(0.2, "shortest pause used between words")
    clause_pause: float = _option(0.3, "pauses this long are clause boundaries")
    crossfade: float = _option(0.01, "equal-power cross-fade at each join")
    gap: tuple[float, float] = _option((0.06, 0.16), "room tone between clip and words (min, max)")
    max_clip_duration: float = _option(4.0, "longest clip used")
    max_pitch_shift: float = _option(12.0, "largest pitch shift (semitones)")
    formant_follow: float = _option(0.8, "formants move by the pitch ratio to this power")
    converter: str | None = _option(None, "voice conversion instead of the pitch shift: "
                                    "python:module:function or a TorchScript file")
    loudness_window: float = _option(3.0, "speech this far around the point sets the loudness")
    gain_db: float = _option(0.0, "extra gain on every clip (dB)")
    save_clips: bool = _option(False, "also write each processed clip to OUTPUT/clips/")
    tag_style: str = _option("bracket", "tag style of tagged_text")
    placer: str = _option("rules", "rules, or llm (falls back to the rules with a reason)")
    llm_url: str | None = _option(None, "OpenAI-compatible endpoint (placer llm)")
    llm_model: str | None = _option(None, "model name at --llm-url")
    llm_key_env: str = _option("SYNPARA_LLM_API_KEY", "environment variable holding the API key")
    llm_timeout: float = _option(20.0, "seconds to wait for the LLM's answer")
    llm_cache: str | None = _option(None, "LLM answer cache (default: OUTPUT/llm_cache)")
    gate: str = _option("wer,speaker,dnsmos", "quality checks: wer, speaker, dnsmos, detector "
                        "(comma-separated); none switches the gate off")
    max_wer: float = _option(0.1, "gate: word error rate vs the host's words")
    # DNSMOS scores a cough or a laugh as degradation: one event costs 0.3-0.7 of OVRL.
    max_dnsmos_drop: float = _option(1.0, "gate: DNSMOS overall may drop this much")
    min_speaker_similarity: float = _option(-1.0, "gate: CAM++ cosine floor (-1: record only)")
    detector_tolerance: float = _option(0.3, "gate: detected onset within this of the inserted")
    asr_model: str = _option("base", "gate: Whisper model")
    threads: int = _option(0, "CPU threads for models (0: the executor's share)")

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise SynparaError(f"insert: {message}")

        need(self.events_per_utterance >= 1, "events_per_utterance must be >= 1")
        need(
            self.events_per_minute is None or self.events_per_minute > 0,
            "events_per_minute must be > 0",
        )
        need(8000 <= self.sample_rate <= 96000, "sample_rate must be 8000..96000 Hz")
        need(0 < self.crossfade <= 0.1, "crossfade must be in (0, 0.1] s")
        need(0 <= self.gap[0] <= self.gap[1], "gap must be (min, max) with 0 <= min <= max")
        need(self.min_pause >= 0 and self.clause_pause >= 0, "pauses must be >= 0")
        need(self.max_clip_duration > 0 and self.max_pitch_shift >= 0, "limits must be >= 0")
        need(0 <= self.max_wer <= 1, "max_wer must be in [0, 1]")
        need(self.placer in ("rules", "llm"), f"placer must be rules or llm, got {self.placer!r}")
        need(
            self.placer != "llm" or bool(self.llm_url and self.llm_model),
            "placer llm needs --llm-url and --llm-model",
        )
        unknown = set(self.gates) - set(GATES)
        need(not unknown, f"unknown gate(s) {sorted(unknown)}; known: {', '.join(GATES)}, none")
        from synpara.tagged_text import render_tag

        render_tag("laughter", self.tag_style)
        rules = load_rules(self.rules)
        missing = [c for c in self.categories if c not in rules]
        need(not missing, f"no placement rule for {missing}")

    @property
    def gates(self) -> list[str]:
        names = [g.strip() for g in self.gate.split(",") if g.strip()]
        return [] if names == ["none"] else names


@dataclass
class _Event:
    """One inserted event while the utterance is built."""

    placement: Placement
    clip: BankClip | None
    stretch: np.ndarray
    clip_offset_sample: int
    clip_samples: int
    info: dict[str, Any]
    processed: np.ndarray | None = None


class Insert(Stage[InsertConfig]):
    """Splice real vocalizations into host speech; words keep their samples, events are exact.

    >>> Insert.from_params({"categories": ["laughter"], "gate": "none"}).config.gates
    []
    """

    name = "insert"
    version = "1"
    Config = InsertConfig

    def setup(self, threads: int = 0) -> None:
        from synpara.bank import bundled_bank, load_bank

        config = self.config
        self.rules = load_rules(config.rules)
        clips = load_bank(config.bank) if config.bank else bundled_bank()
        self.bank_name = config.bank or "bundled assets/vocalizations"
        self.clips: dict[str, list[BankClip]] = {}
        self.unusable: dict[str, str] = {}
        for clip in clips:
            if clip.duration > config.max_clip_duration:
                self.unusable.setdefault(
                    clip.label,
                    f"its {clip.label} clips are longer than "
                    f"max_clip_duration {config.max_clip_duration} s",
                )
            elif clip.loudness_lufs <= -69.9:
                self.unusable.setdefault(clip.label, f"its {clip.label} clips are silent")
            else:
                self.clips.setdefault(clip.label, []).append(clip)
        self._audio: dict[tuple[str, int], np.ndarray] = {}
        self._world: dict[tuple[str, int], Any] = {}  # WORLD analysis per clip and rate
        self.converter = None
        if config.converter:
            from synpara.models.converter import load_converter

            self.converter = load_converter(config.converter)
        self.gate = None
        if config.gates:
            from synpara.gate import QualityGate

            self.gate = QualityGate(config, threads)

    @property
    def model_id(self) -> str | None:
        return f"pyworld+{'+'.join(self.config.gates)}" if self.config.gates else "pyworld"

    # ---- the recipe ------------------------------------------------------------------------

    def process(self, cut: Cut, context: RecordContext) -> Any:
        config, rng = self.config, context.rng
        categories = self._categories()
        if isinstance(categories, Reject):
            return categories
        words = items(cut, WORD)
        if not words:
            return Reject("no timed words (insert needs refine or tts output)")
        host, rate = host_samples(cut, self.config.sample_rate, self.config.allow_upsample)
        spans = [
            (_sample(w.start - cut.start, rate), _sample(w.end - cut.start, rate)) for w in words
        ]
        # 1. choose points: slots in the silences, a category and a slot per event
        guard = _sample(config.crossfade, rate) + 1
        slots = find_slots(
            spans,
            len(host),
            rate,
            min_pause=config.min_pause,
            clause_pause=config.clause_pause,
            guard_samples=guard,
        )
        count = config.events_per_utterance
        if config.events_per_minute is not None:
            count = max(1, int(rng.poisson(config.events_per_minute * cut.duration / 60.0)))
        placements, placer = self._place(slots, spans, words, categories, count, guard, context)
        if not placements:
            return Reject(no_slot_reason(slots, categories, self.rules, config.min_pause))
        # 2. match each clip to the host (pitch, loudness, room tone) and build its stretch
        host_f0 = host_f0_hz(host, spans, rate)
        pauses = [(a[1], b[0]) for a, b in zip(spans, spans[1:])] + [
            (0, spans[0][0]),
            (spans[-1][1], len(host)),
        ]
        events = [self._event(p, host, rate, host_f0, pauses, spans, rng) for p in placements]
        # 3. splice the stretches in, words moved, and record everything in the manifest
        out, output = self._splice(cut, host, rate, events, words, context)
        synpara_meta(out)["insert"]["placer"] = placer
        # 4. the quality gate, whose first failing figure is the reject reason
        if self.gate is not None:
            reason = self.gate.check(out, host, output, rate, events)
            if reason is not None:
                from pathlib import Path

                Path(out.recording.sources[0].source).unlink(missing_ok=True)
                return Reject(reason)
        return out

    def _place(self, slots: list, spans: list, words: list, categories: list[str], count: int,
               guard: int, context: RecordContext) -> tuple[list[Placement], dict[str, Any]]:
        """The LLM's placements when asked for and valid, else the rules' (with the reason)."""
        fallback = None
        if self.config.placer == "llm":
            from synpara.llm_placer import placements_from_llm

            try:
                return placements_from_llm(self.config, context.output_dir, words, spans, slots,
                                           categories, count, guard)
            except SynparaError as error:
                fallback = str(error)
        placements = plan_events(slots, self.rules, categories, count, context.rng)
        info: dict[str, Any] = {"placer": "rules"}
        if fallback:
            info["fallback_reason"] = fallback
        return placements, info

    def _categories(self) -> list[str] | Reject:
        wanted = self.config.categories or sorted(
            set(self.clips) & set(self.rules) | {"pause"} if self.clips else []
        )
        usable = [c for c in wanted if c in self.clips or c == "pause"]
        if not usable:
            if not wanted:
                return Reject(f"bank {self.bank_name} holds no usable clips")
            why = "; ".join(self.unusable.get(c, f"it has no {c} clips") for c in wanted)
            return Reject(f"no clips for {', '.join(wanted)} in bank {self.bank_name}: {why}")
        return usable

    def _clip_audio(self, clip: BankClip, rate: int) -> np.ndarray:
        from synpara.audio import resample

        key = (clip.id, rate)
        if key not in self._audio:
            self._audio[key] = resample(clip.load(), clip.sample_rate, rate)
        return self._audio[key]

    def _analysis(self, clip: BankClip, rate: int, samples: np.ndarray) -> Any:
        from synpara.splice import world_analysis

        key = (clip.id, rate)
        if key not in self._world:
            self._world[key] = world_analysis(samples, rate)
        return self._world[key]

    def _event(
        self,
        placement: Placement,
        host: np.ndarray,
        rate: int,
        host_f0: float | None,
        pauses: list[tuple[int, int]],
        spans: list[tuple[int, int]],
        rng: np.random.Generator,
    ) -> _Event:
        from synpara.splice import (
            loudness_lufs,
            match_loudness,
            pitch_shift,
            quietest_stretch,
            room_tone,
            semitones_toward,
            speech_near,
            splice_stretch,
        )

        config, rule = self.config, self.rules[placement.label]
        fade = _sample(config.crossfade, rate)
        pad_before = fade + _sample(rng.uniform(*config.gap), rate)
        pad_after = fade + _sample(rng.uniform(*config.gap), rate)
        info: dict[str, Any] = {
            "label": placement.label,
            "slot": list(placement.slot.kinds),
            "insertion_sample": placement.slot.at_sample,
            "crossfade_s": config.crossfade,
            "inserted": True,
        }
        clip, processed = None, np.zeros(0, dtype=np.float32)
        if placement.label == "pause":
            pad_before += _sample(rng.uniform(*rule.length), rate)
        else:
            candidates = self.clips[placement.label]
            clip = candidates[int(rng.integers(len(candidates)))]
            raw = self._clip_audio(clip, rate)
            semitones = semitones_toward(clip.f0_hz, host_f0, config.max_pitch_shift)
            semitones = semitones if rule.pitch and self.converter is None else 0.0
            if self.converter is not None:  # the user's voice conversion, the host as reference
                shifted = self.converter(raw, speech_near(host, spans, 0, len(host)), rate)
            elif semitones:
                world = self._analysis(clip, rate, raw)
                shifted = pitch_shift(raw, rate, semitones, config.formant_follow, world)
            else:
                shifted = raw
            matched = match_loudness(shifted, rate, host, spans, placement.slot.at_sample,
                                     _sample(config.loudness_window, rate),
                                     (rule.gain_db, config.gain_db))
            processed = matched.samples
            info.update({
                "clip_id": clip.id, "source": clip.source, "licence": clip.licence,
                "clip_f0_hz": clip.f0_hz, "host_f0_hz": _r(host_f0),
                "pitch_shift_semitones": round(semitones, 3), "converter": config.converter,
                "speech_lufs": round(matched.speech_lufs, 2),
                "target_lufs": round(matched.target_lufs, 2), "gain_db": round(matched.gain_db, 3),
                "peak_limit_db": round(matched.peak_limit_db, 3),
                "clip_lufs": round(loudness_lufs(processed, rate), 2),
            })
        length = pad_before + len(processed) + pad_after
        reference = quietest_stretch(host, min(_sample(0.1, rate), len(host)), pauses)
        tone = room_tone(reference, length, rng)
        stretch = splice_stretch(
            host, placement.slot.at_sample, processed, tone, fade, pad_before, pad_after
        )
        info["inserted_samples"] = length
        peak = float(np.max(np.abs(stretch.samples))) if length else 0.0
        if peak > 1.0:
            raise SynparaError(
                f"{placement.label}: inserted stretch peaks at {peak:.2f} (above full scale)"
            )
        return _Event(
            placement,
            clip,
            stretch.samples,
            stretch.clip_offset_sample,
            stretch.clip_samples,
            info,
            processed,
        )

    def _splice(
        self,
        cut: Cut,
        host: np.ndarray,
        rate: int,
        events: list[_Event],
        words: list,
        context: RecordContext,
    ) -> tuple[Cut, np.ndarray]:
        from lhotse.utils import fastcopy

        from synpara.audio import write_flac_atomic

        pieces, cursor, shift = [], 0, 0
        boundaries: list[tuple[int, int]] = []  # (host sample, samples inserted before it)
        new_events = []
        for event in events:
            at = event.placement.slot.at_sample
            pieces += [host[cursor:at], event.stretch]
            start_sample = at + shift + event.clip_offset_sample
            if event.placement.label == "pause":  # the whole stretch of room tone is the pause
                start_sample, end_sample = at + shift, at + shift + len(event.stretch)
            else:
                end_sample = start_sample + event.clip_samples
            # the event item's own first and last sample: what marks it as inserted downstream
            event.info["start_sample"], event.info["end_sample"] = start_sample, end_sample
            event.info["clip_samples"] = event.clip_samples
            new_events.append(
                alignment_item(event.placement.label, start_sample / rate, end_sample / rate, 1.0)
            )
            shift += len(event.stretch)
            boundaries.append((at, shift))
            cursor = at
        pieces.append(host[cursor:])
        samples = np.concatenate(pieces).astype(np.float32)
        path = (context.output_dir / "audio" / f"{context.record_id}.flac").resolve()
        write_flac_atomic(path, samples, rate)
        if self.config.save_clips:
            for index, event in enumerate(events):
                if event.processed is not None and len(event.processed):
                    clip_path = context.output_dir / "clips" / f"{context.record_id}-{index}.flac"
                    write_flac_atomic(clip_path, event.processed, rate)

        def moved(t: float) -> float:
            """Host recording time -> output time: a later word moves by exactly the samples
            inserted before it, an earlier one not at all."""
            host_sample = _sample(t - cut.start, rate)
            inserted = max([n for at, n in boundaries if at <= host_sample], default=0)
            return t - cut.start + inserted / rate

        new_words = [
            alignment_item(w.symbol, moved(w.start), moved(w.start) + w.duration, w.score)
            for w in words
        ]
        kept_events = [
            alignment_item(e.symbol, moved(e.start), moved(e.start) + e.duration, e.score)
            for e in items(cut, EVENT)
        ]
        out = self._output_cut(
            cut, path, samples, rate, new_words, kept_events + new_events, events, fastcopy
        )
        return out, samples

    def _output_cut(
        self,
        cut: Cut,
        path: Any,
        samples: np.ndarray,
        rate: int,
        words: list,
        events: list,
        inserted: list[_Event],
        fastcopy: Any,
    ) -> Cut:

        from synpara.tagged_text import tagged_text

        duration = len(samples) / rate
        events = sorted(events, key=lambda e: (e.start, e.symbol))
        base = cut.supervisions[0] if cut.supervisions else None
        text = " ".join(w.symbol for w in words)
        tagged = tagged_text(
            [(w.symbol, w.start, w.end) for w in words],
            [(e.symbol, e.start, e.end) for e in events],
            self.config.tag_style,
        )
        custom = dict((base.custom or {}) if base else {})
        custom["tagged_text"] = tagged
        supervision = (
            fastcopy(
                base,
                id=f"{cut.id}-0",
                recording_id=cut.id,
                start=0.0,
                duration=round_time(duration),
                text=text,
                custom=custom,
                alignment={WORD: words, EVENT: events},
            )
            if base
            else None
        )
        out = file_cut(cut.id, path, rate, len(samples), [supervision] if supervision else [],
                       copy.deepcopy(cut.custom or {}))
        info = synpara_meta(out)
        info["host"] = {
            "cut": cut.id,
            "start": cut.start,
            "duration": cut.duration,
            "source": info.get("source"),
        }
        info["source"] = written_source(path, rate, duration)
        info["insert"] = {"bank": self.bank_name, "events": [e.info for e in inserted]}
        return out


def _sample(seconds: float, rate: int) -> int:
    return int(round(float(seconds) * rate))


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)
