"""Thresholds of a trained head, chosen on dev mixtures: per label for F1, then for the F1 of all
labels pooled, then raised under a false-alarm budget on speech-only audio (the budget the YAMNet
rules set on the same audio, measured here too). Training itself is :mod:`synpara.training.train`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from synpara.detectors.head import (
    EventHead,
    frame_thresholds,
    frames_to_events,
    label_spans,
    one_label_per_sound,
    smooth_frames,
)

log = logging.getLogger(__name__)


def events_of(head: EventHead, frames: list[np.ndarray], ids: list[str],
              thresholds: dict[str, float] | None = None,
              words: dict[str, list[tuple[float, float, float]]] | None = None
              ) -> dict[str, list[tuple]]:
    """Timed events per mixture id from cached features (with each mixture's confident
    ``words``, the head's in-word thresholds apply)."""
    thresholds = head.thresholds if thresholds is None else thresholds
    out = {}
    for i, f in zip(ids, frames):
        out[i] = frames_to_events(head.probs_from_features(f), head.labels, thresholds,
                                  head.post, head.word_thresholds,
                                  head.inside_frames(f, (words or {}).get(i)))
    return out


def score_events(truth: list[dict[str, Any]], predicted: dict[str, list[tuple]],
                 labels: list[str] | None = None) -> Any:
    """:func:`synpara.eval.events.score` on mixture truth lines and predicted events."""
    from synpara.eval.events import Event, RecordingEvents, score

    keep = (lambda label: True) if labels is None else (lambda label: label in labels)
    truth_recs = {line["id"]: RecordingEvents(line["id"], float(line["duration"]),
                                        [Event(e["label"], e["start"], e["end"])
                                         for e in line["events"] if keep(e["label"])])
                  for line in truth}
    pred_recs = {i: RecordingEvents(i, truth_recs[i].duration,
                              [Event(label, a, b) for label, a, b, _ in events if keep(label)])
                 for i, events in predicted.items()}
    return score(truth_recs, pred_recs)


def tune_thresholds(head: EventHead, frames: list[np.ndarray], truth: list[dict[str, Any]],
                    grid: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
                    ) -> dict[str, float]:
    """Per-label thresholds with the best event F1 on ``truth``: first each label's own F1, then
    one more pass for the F1 of all labels pooled.

    A label with no dev event (its only clips went to training, or it is a YAMNet prior) cannot be
    scored for F1, but everything it fires on dev is a false alarm: it gets the lowest threshold
    that fires nowhere there (the top of the grid if none does). So does a label whose dev events
    no threshold finds (F1 0 throughout: only its false alarms depend on the threshold). Where
    several thresholds tie for the best F1, the middle one of them is taken, not the lowest (which
    raises the most false alarms for the same F1).
    """
    ids = [line["id"] for line in truth]
    probs = {i: head.probs_from_features(f) for i, f in zip(ids, frames)}
    present = {e["label"] for line in truth for e in line["events"]}
    chosen = dict(head.thresholds)
    def quietest(label: str) -> float:
        column = head.labels.index(label)
        quiet = [t for t in grid
                 if not any(e[0] == label for p in probs.values()
                            for e in frames_to_events(p[:, [column]], [label], {label: t},
                                                      head.post))]
        return min(quiet) if quiet else max(grid)

    for label in head.labels:
        if label not in present:
            chosen[label] = quietest(label)
            continue
        f1s = []
        for threshold in grid:
            trial = {label: threshold}
            predicted = {i: frames_to_events(p, head.labels, {**chosen, **trial}, head.post)
                         for i, p in probs.items()}
            f1 = score_events(truth, predicted, [label]).categories.get(label)
            f1s.append(f1.f1 if f1 is not None and f1.f1 == f1.f1 else 0.0)
        top = max(f1s)
        if top <= 0:
            chosen[label] = quietest(label)
            continue
        tied = [t for t, v in zip(grid, f1s) if v >= top - 1e-9]
        chosen[label] = tied[len(tied) // 2]
    # Then each label again, for the F1 of all labels pooled: a label whose events are rarely
    # right (few hits, many misfires) raises its own F1 above 0 yet lowers everyone's, and is
    # turned down until its misfires no longer cost more than its hits bring.
    for label in sorted(present & set(head.labels), key=head.labels.index):
        f1s = []
        for threshold in grid:
            predicted = {i: frames_to_events(p, head.labels, {**chosen, label: threshold},
                                             head.post) for i, p in probs.items()}
            pooled = score_events(truth, predicted).categories["all"].f1
            f1s.append(pooled if pooled == pooled else 0.0)
        top = max(f1s)
        tied = [t for t, v in zip(grid, f1s) if v >= top - 1e-9]
        chosen[label] = tied[len(tied) // 2]
    return chosen


#: Thresholds the false-alarm constraint may raise a label to; above 1 the label is off.
FA_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 1.01)


def constrain_false_alarms(head: EventHead, frames: list[np.ndarray], truth: list[dict[str, Any]],
                           thresholds: dict[str, float], budget: float,
                           grid: tuple[float, ...] = FA_GRID,
                           words: dict[str, list[tuple[float, float, float]]] | None = None
                           ) -> tuple[dict[str, float], dict[str, float]]:
    """Raise per-label thresholds until the false alarms per minute on the event-free mixtures
    of ``truth`` are at most ``budget``, each step the raise that costs the least overall F1 per
    false alarm removed (a greedy answer to: best F1 subject to the false-alarm budget).

    With each mixture's confident ``words`` (or for an ``inside: speech`` head, in the frames
    YAMNet hears speech in), a label's threshold there is a second knob the greedy may raise on
    its own: plain speech fires mostly inside words, while a raise there costs only the events
    laid over talk. Returns ``(thresholds, word_thresholds)`` (the latter
    only for labels raised inside words); ``thresholds`` unchanged when ``truth`` has no
    event-free mixture.
    """
    ids = [line["id"] for line in truth]
    smooth = {i: smooth_frames(head.probs_from_features(f), head.post.median_frames)
              for i, f in zip(ids, frames)}
    in_word = {i: head.inside_frames(f, (words or {}).get(i)) for i, f in zip(ids, frames)}
    cache: dict[tuple[str, float, float], dict[str, list[tuple]]] = {}

    def spans(label: str, threshold: float, word: float) -> dict[str, list[tuple]]:
        word = max(word, threshold)
        if (label, threshold, word) not in cache:
            column = head.labels.index(label)
            cache[label, threshold, word] = {
                i: label_spans(p[:, column], label, frame_thresholds(
                    [label], {label: threshold}, {label: word}, in_word[i])[0], head.post)
                for i, p in smooth.items()}
        return cache[label, threshold, word]

    def measure(chosen: dict[str, float], in_words: dict[str, float]) -> tuple[float, float]:
        per_label = [spans(label, chosen[label], in_words[label]) for label in head.labels]
        predicted = {i: one_label_per_sound([s for spans_ in per_label for s in spans_[i]], chosen)
                     for i in ids}
        scores = score_events(truth, predicted)
        f1 = scores.categories["all"].f1
        fa = scores.false_alarms_per_minute()
        return (0.0 if f1 != f1 else f1), (0.0 if fa != fa else fa)

    if not any(not line["events"] for line in truth):
        log.warning("no event-free dev mixture: the false-alarm budget cannot be checked")
        return dict(thresholds), {}
    chosen = {label: thresholds.get(label, 0.5) for label in head.labels}
    in_words = dict(chosen)
    knobs = [(label, False) for label in head.labels]
    if words or head.inside == "speech":
        # Inside knobs first: where two raises cost the same F1 per false alarm (a label with
        # no dev event costs none either way), the one that leaves the rest of the audio alone
        # wins, instead of switching the label off everywhere.
        knobs = [(label, True) for label in head.labels] + knobs
    f1, fa = measure(chosen, in_words)
    while fa > budget + 1e-9:
        best: tuple[float, str, bool, float, float, float] | None = None
        for label, inside in knobs:
            current = in_words[label] if inside else chosen[label]
            for higher in (t for t in grid if t > current):
                trial = ((chosen, {**in_words, label: higher}) if inside else
                         ({**chosen, label: higher}, {**in_words, label: max(higher,
                                                                              in_words[label])}))
                trial_f1, trial_fa = measure(*trial)
                if trial_fa < fa - 1e-9:  # the smallest raise of this knob that helps
                    cost = (f1 - trial_f1) / (fa - trial_fa)
                    if best is None or cost < best[0] - 1e-12:
                        best = (cost, label, inside, higher, trial_f1, trial_fa)
                    break
        if best is None:  # nothing left to raise (every label off): cannot happen with 1.01
            break
        _cost, label, inside, higher, f1, fa = best
        if not inside:
            chosen[label] = higher
        in_words[label] = max(in_words[label], higher)
        log.info("false-alarm budget %.2f/min: %s%s -> %.2f (dev-tune F1 %.3f, %.2f/min)",
                 budget, label, f" in {head.inside}" if inside else "", higher, f1, fa)
    return chosen, {label: w for label, w in in_words.items() if w > chosen[label]}


def rules_false_alarms(sets: list[tuple[Path, list[dict[str, Any]]]], threads: int,
                       cache: Path, words: dict[str, list[tuple[float, float, float]]] | None = None
                       ) -> float | None:
    """False alarms per minute the YAMNet rules (``detect --detector yamnet``) raise on the
    event-free mixtures of ``sets`` (``(directory, truth lines)`` pairs; cached in ``cache``);
    None when there are none. ``words`` (by truth line id) are each mixture's confident words,
    which the rules use as in a pipeline."""
    import hashlib

    from synpara.training.sources import load_mono

    free = [(directory, line) for directory, truth in sets for line in truth
            if not line["events"]]
    if not free:
        return None
    digest = hashlib.sha256()
    for directory, line in free:
        digest.update(json.dumps([str(directory), line, (words or {}).get(line["id"])],
                                 sort_keys=True).encode())
    key = digest.hexdigest()
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return float(stored["false_alarms_per_minute"])
    from synpara.stages.detect import Detect, DetectConfig

    rules = Detect(DetectConfig(detector="yamnet", threads=threads))
    rules.setup()
    truth, predicted = [], {}
    for n, (directory, line) in enumerate(free):
        # Ids may carry their set's prefix (``calib/mix-00003``); the file is the last part.
        samples = load_mono(directory / f"{line['id'].split('/')[-1]}.flac")
        truth.append({**line, "id": str(n)})
        found = rules.detect(samples, (words or {}).get(line["id"]))[0]
        predicted[str(n)] = [(d.label, d.start, d.end, d.score) for d in found]
    value = score_events(truth, predicted).false_alarms_per_minute()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "false_alarms_per_minute": value}) + "\n")
    return float(value)
