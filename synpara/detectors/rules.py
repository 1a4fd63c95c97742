"""The heuristic steps of event detection, as pure functions (see ``synpara.stages.detect``).

Each takes arrays over the scored windows (``centres`` in cut seconds, ``probs`` per detector
column) and plain numbers, and returns spans; the detect stage chains them. Defaults were tuned on
``scripts/make_devset.py`` mixtures (``benchmarks/detect.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synpara.audio import SAMPLE_RATE, envelope_pulses, mask_runs, noise_floor_db
from synpara.frames import FrameFeatures
from synpara.intervals import Interval, Span, merge, overlap, subtract
from synpara.timing import refine_event

#: Seconds per frame of the energy envelope detect computes (``frame_energy_db(s, 400, 160)``).
ENERGY_FRAME_S = 0.01
#: Share of a span's windows in wordless voiced stretches from which it counts as in a pause.
PAUSE_SHARE = 0.5
#: Mean speech probability from which a span is over talk: its envelope is then the talk's, and
#: says nothing about the vocalization under it (as in :func:`wordless_voiced`).
TALK = 0.5
#: YAMNet's moan, cry, sigh, breathing and humming classes also fire on coughs, gasps and laughs
#: (measured on the development mixtures); as fallbacks they win a clash only when clearly stronger.
FALLBACK_LABELS = {"groan": 0.5, "cry": 0.5, "sigh": 0.5, "breath": 0.5, "hum": 0.5}
#: An audible breath between words also scores as Gasp, Sigh and Sniff (measured on
#: ``mfa_breaths.flac``); breathing is by far the commonest of them in speech, so those labels
#: must beat an overlapping breath by this much probability.
BREATH_MARGIN = 0.15
RESPIRATORY = {"gasp", "sigh", "sniff"}

#: Per label: each window's (effective score, limit) — the evidence spans were made from.
Evidence = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(slots=True)
class Detection(Span):
    """An event span with what decided it (``score``: best effective probability inside)."""

    strength: float = 0.0  # best effective probability / local threshold
    in_gap: float = 0.0  # fraction of the span's windows that were in wordless voiced stretches
    windows: tuple[int, int] = (0, -1)  # first and last scored window (edges may move later)


def priority(label: str) -> float:
    return FALLBACK_LABELS.get(label, 1.0)


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


def candidates(coarse: np.ndarray, probs: np.ndarray, columns: list[int], hop: float,
               candidate: float) -> list[Interval]:
    """Neighbourhoods of coarse windows where a label with a raw threshold (its ``columns``)
    stirs: a laugh under talk peaks sharply in time, often between two coarse windows."""
    if not columns or not len(coarse):
        return []
    stirs = probs[:, columns].max(axis=1) >= candidate
    return [(max(0.0, c - hop), c + hop) for c in coarse[stirs]]


def speech_score(probs: np.ndarray, columns: list[int]) -> np.ndarray:
    if not columns:
        return np.zeros(len(probs), dtype=np.float32)
    return probs[:, columns].max(axis=1)


def active(samples: np.ndarray, energy: np.ndarray, duration: float, vad: Any) -> list[Interval]:
    """Silero VAD speech (when ``vad`` is a model) plus stretches well above the noise floor
    (unvoiced coughs, breath)."""
    intervals: list[Interval] = []
    if vad is not None:
        import torch
        from silero_vad import get_speech_timestamps

        # Inference mode: thousands of tiny model calls, 7 % faster, the same probabilities.
        with torch.inference_mode():
            spans = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(samples)), vad,
                                          sampling_rate=SAMPLE_RATE, min_silence_duration_ms=100,
                                          speech_pad_ms=30)
        intervals += [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]
    floor = noise_floor_db(energy)
    loud = energy > max(floor + 15.0, float(energy.max()) - 45.0)
    frame = ENERGY_FRAME_S
    intervals += [(a * frame, b * frame + 0.025) for a, b in mask_runs(loud)]
    return [(max(0.0, a), min(duration, b)) for a, b in merge(intervals, 0.05)]


def wordless_voiced(active_spans: list[Interval], word_spans: list[Interval],
                    coarse: np.ndarray, speech_coarse: np.ndarray, hop: float) -> list[Interval]:
    """Stretches with voice activity (or energy) but no words, where events hide. Without a
    transcript, words are where the detector hears speech."""
    if word_spans:
        return merge(subtract(active_spans, merge(word_spans), min_length=1e-3))
    half = hop / 2
    speechy = [(c - half, c + half) for c, s in zip(coarse, speech_coarse) if s >= 0.5]
    return merge(subtract(active_spans, merge(speechy), min_length=1e-3))


def score_spans(
    centres: np.ndarray, probs: np.ndarray, speech: np.ndarray, in_gap: np.ndarray,
    in_word: np.ndarray, near_word: np.ndarray | None, duration: float, *,
    events: dict[str, list[int]], thresholds: dict[str, float], raw_thresholds: dict[str, float],
    gap_factor: float, word_factor: float, speech_weight: float, hysteresis: float,
) -> tuple[list[Detection], Evidence]:
    """Spans per label, and per label each window's (effective score, limit)."""
    factor = np.where(in_gap, gap_factor, np.where(in_word, word_factor, 1.0))
    penalty = 1.0 - speech_weight * speech
    # Each window stands for the stretch halfway to its neighbours.
    bounds = np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [duration]])
    spans = []
    evidence = {}
    for label, columns in events.items():
        if label not in thresholds:
            continue
        raw = probs[:, columns].max(axis=1)
        score = raw * penalty
        limit = np.minimum(thresholds[label] * factor, 0.99)
        if label in raw_thresholds:
            raw_limit = np.full(len(raw), raw_thresholds[label])
            # Judge the raw score against the raw threshold wherever that is the easier test
            # (under talk the speech penalty would count the talk twice), except inside
            # confident words, which keep their strict rule.
            strict = in_word if near_word is None else near_word
            easier = ~strict & (raw / raw_limit > score / limit)
            score = np.where(easier, raw, score)
            limit = np.where(easier, raw_limit, limit)
        evidence[label] = (score, limit)
        for first, last in runs_with_hysteresis(score, limit, hysteresis):
            window = slice(first, last + 1)
            spans.append(Detection(
                label, float(bounds[first]), float(bounds[last + 1]),
                float(score[window].max()), float((score[window] / limit[window]).max()),
                float(in_gap[window].mean()), (first, last),
            ))
    return spans, evidence


def acoustic_factors(sound: np.ndarray, min_pulses: int, pulse_factor: float
                     ) -> dict[str, float]:
    """Multipliers on the detector's evidence from the sound's own envelope: a laugh is a train
    of pulses ("ha-ha"), so a single smooth rise and fall is hardly laughter."""
    # Under 0.15 s a span is a fragment of a sound, too short to show a train of pulses.
    if min_pulses <= 1 or len(sound) < 0.15 * SAMPLE_RATE:
        return {}
    pulses = envelope_pulses(sound, SAMPLE_RATE)
    if len(pulses) < min_pulses:
        return {"laughter": pulse_factor}
    return {}


def relabel(spans: list[Detection], centres: np.ndarray, evidence: Evidence, speech: np.ndarray,
            samples: np.ndarray, *, gap: float, label_windows: int, min_pulses: int,
            pulse_factor: float) -> list[Detection]:
    """One sound in a pause, one label: spans of any labels that touch within ``gap`` form a
    cluster, which becomes one span with the label strongest anywhere inside it (short sounds
    otherwise split into fragments: a laugh-like onset, a cough peak, a sneeze-like tail, each a
    false alarm of its own)."""
    pause = sorted((s for s in spans if s.in_gap >= PAUSE_SHARE), key=lambda s: s.start)
    out = []
    for span in spans:
        if span.in_gap >= PAUSE_SHARE:
            continue
        inside = (centres >= span.start) & (centres <= span.end)
        # Over talk the envelope is the talk's: the label stays. Elsewhere (a quiet stretch the
        # VAD skipped) it must fit the sound, as in a pause.
        if inside.any() and float(speech[inside].mean()) >= TALK:
            out.append(span)
            continue
        sound = samples[int(span.start * SAMPLE_RATE):int(np.ceil(span.end * SAMPLE_RATE))]
        factors = acoustic_factors(sound, min_pulses, pulse_factor)
        if span.strength * factors.get(span.label, 1.0) >= 1.0:
            out.append(span)
    clusters: list[list[Detection]] = []
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
        # Near the peak, not the mean: the windows that hear the sound best decide (over the
        # whole cluster, weak but steady fallback labels such as sigh and cry win on average),
        # yet not one window alone, which a short sound's onset can sway.
        peaks, best = {}, {}
        for name, (score, limit) in evidence.items():
            ratio = np.sort(score[inside] / limit[inside])
            peaks[name] = float(ratio[-label_windows:].mean())
            best[name] = float(ratio[-1])
        sound = samples[int(start * SAMPLE_RATE):int(np.ceil(end * SAMPLE_RATE))]
        talk = float(speech[inside].mean()) >= TALK
        factors = {} if talk else acoustic_factors(sound, min_pulses, pulse_factor)
        for label, factor in factors.items():
            if label in peaks:
                peaks[label] *= factor
                best[label] *= factor
        # Only labels that reach their threshold somewhere in the sound compete.
        passing = [name for name in peaks if best[name] >= 1.0]
        if not passing:  # the sound's own envelope ruled out the only label heard
            continue
        label = max(passing, key=lambda name: peaks[name] * priority(name))
        breaths = [s for s in cluster if s.label == "breath"]
        score, limit = evidence[label]
        if label in RESPIRATORY and breaths and max(b.score for b in breaths) >= float(
                score[inside].max()) - BREATH_MARGIN:
            label = "breath"  # as in prefer_breath: breathing is the commonest of them
            score, limit = evidence[label]
        out.append(Detection(label, start, end, float(score[inside].max()), best[label],
                             float(np.mean([s.in_gap for s in cluster]))))
    return out


def prefer_breath(spans: list[Detection]) -> list[Detection]:
    breaths = [s for s in spans if s.label == "breath"]
    if not breaths:
        return spans
    kept = []
    for span in spans:
        if span.label in RESPIRATORY and any(
            overlap(b.start, b.end, span.start, span.end) > 0
            and b.score >= span.score - BREATH_MARGIN
            for b in breaths
        ):
            continue
        if span.label == "breath":  # a breath that survives here is judged by its own strength
            span.strength = max(span.strength, span.strength / priority("breath"))
        kept.append(span)
    return kept


def resolve_overlaps(spans: list[Detection]) -> list[Detection]:
    """Where categories claim the same stretch, keep the one furthest above its threshold."""
    spans = prefer_breath(spans)
    kept: list[Detection] = []
    for span in sorted(spans, key=lambda s: -s.strength * priority(s.label)):
        clash = any(
            other.label != span.label
            and overlap(other.start, other.end, span.start, span.end)
            > 0.5 * min(other.end - other.start, span.end - span.start)
            for other in kept
        )
        if not clash:
            kept.append(span)
    return sorted(kept, key=lambda s: (s.start, s.label))


def finish(spans: list[Detection], duration: float, minimums: dict[str, float],
           merge_gap: float) -> list[Detection]:
    """Merge near same-label spans, drop short ones, clip to the audio; no overlap per label."""
    out: list[Detection] = []
    for label in sorted({s.label for s in spans}):
        merged: list[Detection] = []
        for span in sorted((s for s in spans if s.label == label), key=lambda s: s.start):
            span.start, span.end = max(0.0, span.start), min(duration, span.end)
            if merged and span.start <= merged[-1].end + merge_gap:
                last = merged[-1]
                last.end = max(last.end, span.end)
                last.score, last.strength = max(last.score, span.score), max(last.strength,
                                                                             span.strength)
            else:
                merged.append(span)
        minimum = minimums.get(label, minimums.get("*", 0.0))
        out += [s for s in merged if s.end - s.start >= minimum]
    return sorted(out, key=lambda s: (s.start, s.label))


def background(probs: np.ndarray, columns: dict[str, list[int]], threshold: float
               ) -> dict[str, float]:
    """Cut-level background tags (music, noise ...) whose mean probability reaches
    ``threshold``, strongest first."""
    tags = {}
    for tag, cols in columns.items():
        value = float(probs[:, cols].max(axis=1).mean()) if len(probs) else 0.0
        if value >= threshold:
            tags[tag] = round(value, 3)
    return dict(sorted(tags.items(), key=lambda kv: -kv[1]))


def snap_edges(spans: list[Detection], features: FrameFeatures,
               word_spans: list[Interval], search: float = 0.3) -> list[Detection]:
    """Move the edges of pause events to where their sound rises out of the floor and decays
    back into it: :func:`synpara.timing.refine_event`, the rule refine applies too. An edge never
    moves into a confident word; a span the rule would leave shorter than 50 ms stays as it was."""
    for span in spans:
        if span.in_gap < PAUSE_SHARE:
            continue
        before = [end for _, end in word_spans if end <= span.start + 1e-3]
        after = [start for start, _ in word_spans if start >= span.end - 1e-3]
        bounds = (max(before, default=0.0), min(after, default=features.duration))
        refined = refine_event(span.start, span.end, features, search=search, bounds=bounds)
        if refined.end - refined.start > 0.05:
            span.start, span.end = refined.start, refined.end
    return spans

