"""insert's quality gate: is a synthesized utterance still the host's words, voice and quality,
and can a detector find what was inserted?

Checks (``--gate``, comma-separated; ``none`` switches the gate off):

* ``wer``: Whisper re-transcribes the output; word error rate against the host's words must be
  at most ``max_wer`` (an inserted sound must not eat or add words).
* ``speaker``: CAM++ cosine of each clip to the host, before and after matching (recorded; a
  floor applies when ``min_speaker_similarity`` > -1).
* ``dnsmos``: DNSMOS overall of the output may fall at most ``max_dnsmos_drop`` below the host's.
* ``detector``: the detect stage (YAMNet) finds each inserted event at its place with its label
  (onset within ``detector_tolerance``). Slow and strict: off by default.

Figures go to ``custom["synpara"]["insert"]["gate"]`` (per utterance) and to each event's record;
the first failing figure becomes the reject reason.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lhotse.cut import Cut


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Word error rate (edits / reference words) on normalised words; 0 for two empty lists."""
    from synpara.eval.words import normalise_word

    ref = [w for w in map(normalise_word, reference) if w]
    hyp = [w for w in map(normalise_word, hypothesis) if w]
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1] / len(ref)


class QualityGate:
    """Models for the checks, loaded once (from insert's ``setup()``)."""

    def __init__(self, config: Any, offered_threads: int = 0) -> None:
        from synpara.models import cpu_threads

        self.config = config
        gates = set(config.gates)
        # the worker's share of the cores unless the stage's own option says otherwise: with all
        # cores per worker, two workers' Whisper and DNSMOS would fight over the same cores
        threads = cpu_threads(config.threads, offered_threads)
        self.whisper = self.speaker = self.dnsmos = self.detector = None
        self._clip_embeddings: dict[str, np.ndarray | None] = {}
        if "wer" in gates:
            from synpara.models import load_whisper

            self.whisper = load_whisper(config.asr_model, threads=threads)
        if "speaker" in gates:
            from synpara.models.quality import load_speaker_model

            self.speaker = load_speaker_model()
        if "dnsmos" in gates:
            from synpara.models.quality import load_dnsmos

            self.dnsmos = load_dnsmos(threads)
        if "detector" in gates:
            from synpara.stages.detect import Detect

            self.detector = Detect.from_params({"threads": threads})
            self.detector.setup()

    def check(
        self, out: Cut, host: np.ndarray, output: np.ndarray, rate: int, events: list[Any]
    ) -> str | None:
        """Measure ``out`` (samples ``output``) against the ``host`` samples; record the figures;
        return the reason of the first failed check, else ``None``."""
        from synpara.audio import resample
        from synpara.manifest import items

        config = self.config
        host16, out16 = resample(host, rate, 16000), resample(output, rate, 16000)
        figures: dict[str, Any] = {}
        failures: list[str] = []
        if self.whisper is not None:
            from synpara.asr import WhisperOptions, transcribe_words, whisper_language

            # The host's language when its supervision says it: detecting it costs Whisper a
            # second encoder pass per utterance (40 % of the gate's Whisper time).
            language = whisper_language(out.supervisions[0].language if out.supervisions else None)
            options = WhisperOptions(language=language, beam_size=1, vad_filter=False)
            heard = [w.text for w in transcribe_words(self.whisper, out16, options)]
            wer = word_error_rate([w.symbol for w in items(out, "word")], heard)
            figures.update(wer=round(wer, 4), transcript=" ".join(heard))
            if wer > config.max_wer:
                # was it the insertion? the host alone, re-transcribed, tells (only on failure)
                alone = [w.text for w in transcribe_words(self.whisper, host16, options)]
                host_wer = word_error_rate([w.symbol for w in items(out, "word")], alone)
                figures["wer_host"] = round(host_wer, 4)
                failures.append(
                    f"gate: word error rate {wer:.3f} > max_wer {config.max_wer} (host alone "
                    f"{host_wer:.3f}; heard {' '.join(heard)[:100]!r})"
                )
        if self.dnsmos is not None:
            before, after = self.dnsmos.overall(host16), self.dnsmos.overall(out16)
            figures.update(dnsmos_host=round(before, 3), dnsmos_output=round(after, 3))
            if before - after > config.max_dnsmos_drop:
                failures.append(
                    f"gate: DNSMOS overall fell {before - after:.2f} "
                    f"({before:.2f} -> {after:.2f}) > {config.max_dnsmos_drop}"
                )
        if self.speaker is not None:
            failures += self._speaker(host16, rate, events)
        if self.detector is not None:
            failures += self._detected(out, events)
        out.custom["synpara"]["insert"]["gate"] = figures
        return failures[0] if failures else None

    def _speaker(self, host16: np.ndarray, rate: int, events: list[Any]) -> list[str]:
        from synpara.audio import resample
        from synpara.models.quality import cosine, speaker_embedding

        host_embedding = speaker_embedding(self.speaker, host16)
        failures = []
        for event in events:
            if event.clip is None or event.processed is None:
                continue
            before = cosine(self._clip_embedding(event.clip), host_embedding)
            after = cosine(
                speaker_embedding(self.speaker, resample(event.processed, rate, 16000)),
                host_embedding,
            )
            event.info["gate"] = {
                **event.info.get("gate", {}),
                "speaker_similarity_before": _r(before),
                "speaker_similarity_after": _r(after),
            }
            floor = self.config.min_speaker_similarity
            if floor > -1 and after is not None and after < floor:
                failures.append(
                    f"gate: {event.placement.label} speaker similarity {after:.2f} < {floor}"
                )
        return failures

    def _clip_embedding(self, clip: Any) -> np.ndarray | None:
        """A bank clip's own CAM++ embedding: the one the bank stage stored (the same model on
        the same trimmed 16 kHz clip), else computed once per clip, not once per insertion."""
        if clip.embedding is not None:
            return np.asarray(clip.embedding, dtype=np.float32)
        if clip.id not in self._clip_embeddings:
            from synpara.audio import resample
            from synpara.models.quality import speaker_embedding

            raw = resample(clip.load(), clip.sample_rate, 16000)
            self._clip_embeddings[clip.id] = speaker_embedding(self.speaker, raw)
        return self._clip_embeddings[clip.id]

    def _detected(self, out: Cut, events: list[Any]) -> list[str]:
        from lhotse.utils import fastcopy

        from synpara.manifest import items
        from synpara.stage import RecordContext

        assert self.detector is not None
        context = RecordContext(record_id=out.id, seed=0, output_dir=Path("."))
        alone = fastcopy(out, custom=copy.deepcopy(out.custom))  # detect writes its own meta
        found = items(self.detector.process(alone, context), "event")
        rate = out.sampling_rate
        failures = []
        for event in events:
            label = event.placement.label
            if label == "pause":
                continue
            start = event.info["start_sample"] / rate
            near = [
                e
                for e in found
                if e.symbol == label and abs(e.start - start) <= self.config.detector_tolerance
            ]
            error = min((abs(e.start - start) for e in near), default=None)
            event.info["gate"] = {
                **event.info.get("gate", {}),
                "detected": bool(near),
                "onset_error_s": _r(error, 4),
            }
            if not near:
                labels = sorted(
                    {e.symbol for e in found if e.end > start - 0.3 and e.start < start + 0.5}
                )
                failures.append(
                    f"gate: detector did not find {label} at {start:.2f} s "
                    f"(found there: {', '.join(labels) or 'nothing'})"
                )
        return failures


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)
