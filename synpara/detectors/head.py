"""A trained event head: a few temporal convolutions over frozen encoder frames (see
:mod:`synpara.detectors.features`), multi-label per 0.1 s frame, post-processed into timed events.

The head file (``torch.save`` of plain tensors, lists and numbers: loads with
``weights_only=True``) holds the weights, the label list, per-label thresholds chosen on a dev
split, the feature name and the training provenance. Labels the training bank had no clips of
but YAMNet knows (``prior_labels``) are scored from YAMNet's own AudioSet classes instead of
being learned from nothing. A label may have a second, higher threshold (``word_thresholds``)
in the frames the head's ``inside`` names: inside the cut's confident words, or where YAMNet
hears speech.

>>> head = EventHead.load("synpara/data/heads/default.pt")        # doctest: +SKIP
>>> head.labels                                                   # doctest: +SKIP
['laughter', 'giggle', 'cough', ...]
>>> head.predict(windows).shape      # (n, samples) 16 kHz windows  # doctest: +SKIP
(8, 12)
>>> head.events(samples)              # [(label, start_s, end_s, score)]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synpara.detectors.base import Detector
from synpara.detectors.features import FRAME_SECONDS, PRIOR_CLASSES
from synpara.errors import SynparaError

HEAD_FORMAT = "synpara-event-head/1"
#: Where the shipped default head lives inside the package.
DEFAULT_HEAD = Path(__file__).parents[1] / "data" / "heads" / "default.pt"

#: Ontology label -> the YAMNet classes (names in :data:`PRIOR_CLASSES`) that stand for it when
#: a bank has no clips of it.
PRIOR_MAP: dict[str, tuple[str, ...]] = {
    "laughter": ("Laughter", "Belly laugh", "Chuckle, chortle"),
    "giggle": ("Giggle", "Snicker"),
    "sigh": ("Sigh",),
    "breath": ("Breathing", "Pant"),
    "gasp": ("Gasp",),
    "cough": ("Cough",),
    "throat_clearing": ("Throat clearing",),
    "sniff": ("Sniff",),
    "sneeze": ("Sneeze",),
    "groan": ("Groan", "Wail, moan"),
    "cry": ("Crying, sobbing", "Whimper"),
    "snore": ("Snoring",),
}


def build_network(dim_in: int, outputs: int, hidden: int = 128, kernel: int = 5) -> Any:
    """Per-frame projection, two temporal convolutions (the second dilated: ~1.3 s of context),
    per-frame logits. Input and output are ``(batch, frames, channels)``."""
    from torch import nn

    class TemporalHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Dropout(0.2),
                nn.Conv1d(dim_in, hidden, 1), nn.ReLU(),
                nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2), nn.ReLU(),
                nn.Conv1d(hidden, hidden, kernel, padding=2 * (kernel // 2), dilation=2),
                nn.ReLU(),
                nn.Conv1d(hidden, outputs, 1),
            )

        def forward(self, x: Any) -> Any:
            return self.net(x.transpose(1, 2)).transpose(1, 2)

    return TemporalHead()


@dataclass(frozen=True, slots=True)
class PostProcess:
    """Frames -> events: median filter, hysteresis, minimum length, merge gap."""

    median_frames: int = 3
    low_factor: float = 0.6
    min_seconds: float = 0.1
    merge_gap_seconds: float = 0.2


def smooth_frames(x: np.ndarray, k: int) -> np.ndarray:
    """Median filter over time, each label column on its own."""
    if k <= 1 or len(x) < k:
        return x
    from scipy.ndimage import median_filter

    return median_filter(x, size=(k, 1), mode="nearest")


def label_spans(probs: np.ndarray, label: str, high: float | np.ndarray,
                post: PostProcess = PostProcess()) -> list[tuple[str, float, float, float]]:
    """One label's candidate spans ``(label, start, end, peak)`` from its *smoothed* frame
    probabilities: hysteresis (on at ``high``, held down to ``low_factor * high``), runs closer
    than the merge gap joined, runs shorter than ``min_seconds`` dropped. ``high`` is one
    threshold or one per frame (higher inside confident words)."""
    high = np.broadcast_to(np.asarray(high, dtype=np.float32), probs.shape)
    active = probs >= post.low_factor * high
    runs, start = [], None
    for i, on in enumerate(np.append(active, False)):
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append([start, i])
            start = None
    merged: list[list[int]] = []
    gap = int(round(post.merge_gap_seconds / FRAME_SECONDS))
    for run in runs:
        if merged and run[0] - merged[-1][1] <= gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    spans = []
    for a, b in merged:
        peak = float(probs[a:b].max())
        if not (probs[a:b] >= high[a:b]).any() or (b - a) * FRAME_SECONDS < post.min_seconds:
            continue
        spans.append((label, a * FRAME_SECONDS, b * FRAME_SECONDS, peak))
    return spans


def one_label_per_sound(spans: list[tuple[str, float, float, float]],
                        thresholds: dict[str, float]) -> list[tuple[str, float, float, float]]:
    """Candidate spans of any labels that overlap or touch are one sound, and one sound gets one
    event: it spans them all and takes the label whose spans cover the most of it (on a tie, the
    one further above its own threshold). Returned in time order.

    Frame by frame, one vocalization often fires two labels at once (a laugh's pulses as
    `cough`); letting the span furthest above its threshold take the whole stretch made a short
    sharp fragment win over the long sound around it. Named by seconds, the shipped head names
    more Mandarin stand-in clips right (15 / 18 % -> 23 / 24 %, two draws) and its dev-test F1
    rose 0.37 -> 0.39 (docs/detector.md, "One sound, one label").
    """
    sounds: list[list[tuple[str, float, float, float]]] = []
    end = float("-inf")
    for span in sorted(spans, key=lambda s: (s[1], s[2])):
        if sounds and span[1] <= end:
            sounds[-1].append(span)
            end = max(end, span[2])
        else:
            sounds.append([span])
            end = span[2]
    events = []
    for sound in sounds:
        seconds: dict[str, float] = {}
        above: dict[str, float] = {}
        for label, start, stop, peak in sound:
            seconds[label] = seconds.get(label, 0.0) + stop - start
            above[label] = max(above.get(label, 0.0),
                               peak / max(thresholds.get(label, 0.5), 1e-6))
        label = max(seconds, key=lambda name: (seconds[name], above[name]))
        events.append((label, min(s[1] for s in sound), max(s[2] for s in sound),
                       max(s[3] for s in sound if s[0] == label)))
    return events


def word_frames(frames: int, words: Sequence[Sequence[float]] | None) -> np.ndarray:
    """Which frames (centre at ``(i + 0.5) * 0.1`` s) lie inside a confident word: ``words``
    are ``(start, end, ...)`` in seconds from the start of the samples."""
    inside = np.zeros(frames, dtype=bool)
    centres = (np.arange(frames) + 0.5) * FRAME_SECONDS
    for word in words or []:
        inside |= (centres >= word[0]) & (centres < word[1])
    return inside


#: What a head's second thresholds (``word_thresholds``) apply in: frames inside the cut's
#: confident Whisper words, or frames YAMNet's own Speech class hears (no ASR needed).
INSIDE = ("words", "speech")
#: The Speech column among the prior log-odds every feature set ends with.
_SPEECH_COLUMN = list(PRIOR_CLASSES).index("Speech")


def speech_frames(features: np.ndarray) -> np.ndarray:
    """Which frames YAMNet hears speech in (its Speech class at even odds or above, i.e. its own
    decision point), from a feature set's trailing prior log-odds."""
    prior = np.asarray(features)[:, -len(PRIOR_CLASSES):]
    return prior[:, _SPEECH_COLUMN] >= 0.0


def frame_thresholds(labels: list[str], thresholds: dict[str, float],
                     word_thresholds: dict[str, float] | None, in_word: np.ndarray | None
                     ) -> list[float | np.ndarray]:
    """Per label, its threshold, or one per frame where frames inside confident words
    (``in_word``) take its ``word_thresholds`` value (never below the threshold)."""
    out: list[float | np.ndarray] = []
    for label in labels:
        high = thresholds.get(label, 0.5)
        word = (word_thresholds or {}).get(label, high)
        if in_word is None or not in_word.any() or word <= high:
            out.append(high)
        else:
            out.append(np.where(in_word, word, high).astype(np.float32))
    return out


def frames_to_events(probs: np.ndarray, labels: list[str], thresholds: dict[str, float],
                     post: PostProcess = PostProcess(),
                     word_thresholds: dict[str, float] | None = None,
                     in_word: np.ndarray | None = None
                     ) -> list[tuple[str, float, float, float]]:
    """Timed events ``(label, start, end, score)`` from frame probabilities ``(frames, labels)``.

    Frames inside confident words (``in_word``, from :func:`word_frames`) need a label's
    ``word_thresholds`` value instead of its threshold. Overlapping spans of several labels are
    one sound with one label (:func:`one_label_per_sound`).
    """
    smooth = smooth_frames(np.asarray(probs, dtype=np.float32), post.median_frames)
    highs = frame_thresholds(labels, thresholds, word_thresholds, in_word)
    spans: list[tuple[str, float, float, float]] = []
    for column, label in enumerate(labels):
        spans += label_spans(smooth[:, column], label, highs[column], post)
    return one_label_per_sound(spans, thresholds)


class EventHead:
    """A loaded head: ``labels``, ``frame_probs(samples)``, ``predict(windows)``, ``events``."""

    def __init__(self, state: dict[str, Any], threads: int = 0, features: Any = None) -> None:
        import torch

        if state.get("format") != HEAD_FORMAT:
            raise SynparaError(f"not a synpara event head (format {state.get('format')!r})")
        self.state = state
        self.feature = str(state["feature"])
        self.trained_labels: list[str] = list(state["trained_labels"])
        self.prior_labels: list[str] = list(state["prior_labels"])
        self.labels: list[str] = self.trained_labels + self.prior_labels
        self.thresholds: dict[str, float] = {k: float(v) for k, v in state["thresholds"].items()}
        # Thresholds inside confident words (chosen on dev under a false-alarm budget); a head
        # without them treats words like any other frame.
        self.word_thresholds: dict[str, float] = {
            k: float(v) for k, v in state.get("word_thresholds", {}).items()}
        # Where those apply: inside the cut's confident words (the default, and every head
        # written before this key existed) or in frames YAMNet hears speech in.
        self.inside = str(state.get("inside", "words"))
        if self.inside not in INSIDE:
            raise ValueError(f"inside must be one of {INSIDE}, not {self.inside!r}")
        self.post = PostProcess(**state.get("post", {}))
        self.mean = torch.as_tensor(state["mean"], dtype=torch.float32)
        self.std = torch.as_tensor(state["std"], dtype=torch.float32)
        self.network = build_network(int(state["dim_in"]), len(self.trained_labels) + 1,
                                     int(state["hidden"]), int(state["kernel"]))
        self.network.load_state_dict({k: v.float() for k, v in state["weights"].items()})
        self.network.eval()
        prior_names = list(PRIOR_CLASSES)
        self._prior_columns = [[prior_names.index(n) for n in PRIOR_MAP[label]]
                               for label in self.prior_labels]
        self.threads = threads
        self._features = features

    @classmethod
    def load(cls, path: str | Path, threads: int = 0) -> EventHead:
        """A head file written by ``synpara train-detector`` (or :func:`save_head`)."""
        import torch

        path = Path(path)
        if path.is_dir():
            path = path / "head.pt"
        if not path.is_file():
            raise SynparaError("no such head file", path)
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a file that is not a head
            raise SynparaError(f"cannot read the head file ({error})", path) from error
        if not isinstance(state, dict):
            raise SynparaError("not a synpara event head", path)
        try:
            return cls(state, threads)
        except (KeyError, RuntimeError, ValueError) as error:
            raise SynparaError(f"damaged head file ({error})", path) from error

    @property
    def features(self) -> Any:
        if self._features is None:  # loaded on first use: the encoder is the expensive part
            from synpara.detectors.features import load_features

            self._features = load_features(self.feature, self.threads)
        return self._features

    def probs_from_features(self, frames: np.ndarray) -> np.ndarray:
        """Per-frame probabilities ``(frames, len(labels))`` from extracted features."""
        import torch

        x = torch.as_tensor(np.asarray(frames, dtype=np.float32))
        with torch.inference_mode():
            logits = self.network(((x - self.mean) / self.std)[None])[0]
        learned = torch.sigmoid(logits[:, 1:]).numpy()  # column 0 is `none`
        prior_logits = np.asarray(frames)[:, -len(PRIOR_CLASSES):]
        prior = [1.0 / (1.0 + np.exp(-np.clip(prior_logits[:, cols].max(axis=1), -30, 30)))
                 for cols in self._prior_columns]
        if prior:
            learned = np.concatenate([learned, np.stack(prior, axis=1)], axis=1)
        return learned.astype(np.float32)

    def inside_frames(self, features: np.ndarray,
                      words: Sequence[Sequence[float]] | None) -> np.ndarray:
        """The frames the head's ``word_thresholds`` apply in: inside ``words`` (cut-relative
        ``(start_s, end_s, ...)``), or where YAMNet hears speech for an ``inside: speech``
        head (which needs no words)."""
        if self.inside == "speech":
            return speech_frames(features)
        return word_frames(len(features), words)

    def frame_probs(self, samples: np.ndarray) -> np.ndarray:
        """Per-frame probabilities of 16 kHz mono ``samples`` (frame i centred at (i+0.5)*0.1 s)."""
        return self.probs_from_features(self.features(samples))

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """``(n, len(labels))``: each 16 kHz window's highest frame probability per label."""
        return np.stack([self.frame_probs(w).max(axis=0) for w in np.asarray(windows)])

    def events(self, samples: np.ndarray, words: Sequence[Sequence[float]] | None = None
               ) -> list[tuple[str, float, float, float]]:
        """Timed events ``(label, start_s, end_s, score)`` in 16 kHz mono ``samples``; inside the
        confident ``words`` (``(start_s, end_s, ...)``, from transcribe), or for an ``inside:
        speech`` head where YAMNet hears speech, an event needs the head's second thresholds."""
        return self.analyse(samples, words)[0]

    def analyse(self, samples: np.ndarray, words: Sequence[Sequence[float]] | None = None
                ) -> tuple[list[tuple[str, float, float, float]], np.ndarray]:
        """:meth:`events`, plus YAMNet's 521 AudioSet class probabilities per frame from the same
        encoder pass (detect's background tags come from them)."""
        frames, logits = self.features.with_logits(samples)
        probs = self.probs_from_features(frames)
        events = frames_to_events(probs, self.labels, self.thresholds, self.post,
                                  self.word_thresholds, self.inside_frames(frames, words))
        return events, 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))


def save_head(path: str | Path, *, network: Any, feature: str, trained_labels: list[str],
              prior_labels: list[str], thresholds: dict[str, float], mean: np.ndarray,
              std: np.ndarray, hidden: int, kernel: int, provenance: dict[str, Any],
              post: PostProcess = PostProcess(),
              word_thresholds: dict[str, float] | None = None, inside: str = "words") -> Path:
    """Write a head file (float32 weights: about 1 MB); ``word_thresholds`` (inside confident
    words, or inside speech frames with ``inside="speech"``) only when given, so a head without
    them is written as before."""
    import dataclasses

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": HEAD_FORMAT, "feature": feature, "trained_labels": list(trained_labels),
        "prior_labels": list(prior_labels), "thresholds": {k: float(v) for k, v in
                                                           thresholds.items()},
        "post": dataclasses.asdict(post), "mean": torch.as_tensor(mean, dtype=torch.float32),
        "std": torch.as_tensor(std, dtype=torch.float32), "dim_in": int(len(mean)),
        "hidden": hidden, "kernel": kernel,
        "weights": {k: v.detach().to(torch.float32) for k, v in network.state_dict().items()},
        "provenance": provenance,
    }
    if word_thresholds:
        state["word_thresholds"] = {k: float(v) for k, v in word_thresholds.items()}
    if inside != "words":
        state["inside"] = inside
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, str(tmp))
    tmp.replace(path)
    return path


def load_head(path: str | Path, threads: int = 0) -> EventHead:
    """A head file by path, or ``default`` for the head synpara ships (trained on permissive
    clips only: ``scripts/train_default_head.py``)."""
    return EventHead.load(DEFAULT_HEAD if str(path) == "default" else path, threads)


class HeadDetector(Detector):
    """``--detector head:FILE``: the trained head behind detect's interface.

    It has ``labels`` and ``predict(windows)`` like every detector, and also :meth:`events`: the
    head times events frame by frame (0.1 s) with its own dev-chosen thresholds, so detect uses
    those instead of its window rules and keeps the head's own edges (refine snaps them later).
    """

    def __init__(self, head: EventHead, batch_size: int) -> None:
        self.head = head
        self.labels = head.labels
        self.batch_size = batch_size

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self.head.predict(windows)

    def events(self, samples: np.ndarray, words: Sequence[Sequence[float]] | None = None
               ) -> list[tuple[str, float, float, float]]:
        return self.head.events(samples, words)

    def analyse(self, samples: np.ndarray, words: Sequence[Sequence[float]] | None = None
                ) -> tuple[list[tuple[str, float, float, float]], np.ndarray]:
        """Events and YAMNet's per-frame AudioSet probabilities (see :meth:`EventHead.analyse`)."""
        return self.head.analyse(samples, words)


def load_head_detector(path: str, threads: int, batch_size: int, window: float) -> HeadDetector:
    """The registry's loader for ``head:FILE`` (``head:default`` is the shipped head)."""
    return HeadDetector(load_head(path, threads), batch_size)
