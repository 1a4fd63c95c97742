"""describe: how each utterance was said, measured, binned and put in one sentence (DeSTA2-style).

Each supervision gets ``supervision.custom["paralinguistics"]`` (per supervision, not per cut: a
cut before refine holds several speakers, and pitch or gender belong to one of them)::

    {"f0": {"median_hz", "range_st", "voiced_fraction", "method"},
     "rate": {"syllables_per_second", "words_per_second", "syllables", "words", "seconds",
              "syllable_counter"},
     "loudness_lufs", "snr_db",
     "gender": {"label", "confidence", "rule"} | None,   # perceived, from F0 (prosody.py)
     "events": [{"label", "start", "end", "before", "after"}],  # recording time, like alignment
     "background": ["music", ...],                        # from detect, when it ran
     "classifiers": {KIND: {"label", "confidence", "model"}},  # --classifier KIND:PATH
     "bins": {"pitch", "expressiveness", "rate", "loudness", "snr"},
     "description": "A woman speaks quickly in a high, lively voice; she laughs after 'no way'."}

Thresholds for the bins and their sources are in ``synpara/data/describe_bins.yaml``. The
sentence comes from one of several templates, chosen by the record's random generator, so a corpus
does not repeat one sentence. ``--classifier emotion:model.pt`` runs a user's TorchScript
classifier (16 kHz mono waveform ``(1, samples)`` in, logits out) with its labels in
``model.labels.json`` beside it; no packaged model exists for emotion, age or gender.

Example::

    synpara describe -i output/refine/cuts.jsonl.gz -o output/describe --classifier emotion:emo.pt
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.audio import SAMPLE_RATE, load_cut_audio
from synpara.errors import SynparaError
from synpara.manifest import EVENT, WORD, round_time
from synpara.prosody import (
    f0_summary,
    f0_track,
    keep_frames_in_spans,
    loudness_lufs,
    perceived_gender,
    snr_db,
    speaking_rate,
)
from synpara.stage import RecordContext, Stage, StageConfig

if TYPE_CHECKING:
    from lhotse.cut import Cut
    from lhotse.supervision import SupervisionSegment

logger = logging.getLogger(__name__)

BINS_FILE = Path(__file__).resolve().parents[1] / "data" / "describe_bins.yaml"
PARALINGUISTICS = "paralinguistics"
CLASSIFIER_KINDS = ("emotion", "age", "gender")


@dataclass(frozen=True)
class DescribeConfig(StageConfig):
    """Options of the describe stage."""

    f0_method: str = field(
        default="dio", metadata={"help": "F0 estimator: dio (WORLD DIO+StoneMask, fast) or harvest"}
    )
    language: str = field(
        default="en",
        metadata={"help": "language for syllable counting where a supervision names none"},
    )
    bins: str | None = field(
        default=None, metadata={"help": "YAML of bin thresholds (default: the packaged one)"}
    )
    context_words: int = field(
        default=3, metadata={"help": "words kept before and after each event"}
    )
    gender_confidence: float = field(
        default=0.8, metadata={"help": "perceived gender is named in the description from here"}
    )
    classifier: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "KIND:PATH of a TorchScript classifier (KIND: emotion, age, gender), "
            "labels in PATH's stem + .labels.json"
        },
    )

    def validate(self) -> None:
        if self.f0_method not in ("dio", "harvest"):
            raise SynparaError(
                f"describe: f0_method must be dio or harvest, got {self.f0_method!r}"
            )
        if self.context_words < 0:
            raise SynparaError(f"describe: context_words must be >= 0, got {self.context_words}")
        if not 0.5 <= self.gender_confidence <= 1:
            raise SynparaError("describe: gender_confidence must be in [0.5, 1]")
        for spec in self.classifier:
            parse_classifier(spec)
        if self.bins is not None and not Path(self.bins).is_file():
            raise SynparaError("bins file not found", self.bins)


def parse_classifier(spec: str) -> tuple[str, Path]:
    """``"emotion:model.pt"`` -> ``("emotion", Path("model.pt"))``, checked."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in CLASSIFIER_KINDS or not path:
        raise SynparaError(
            f"describe: --classifier must be KIND:PATH with KIND one of "
            f"{', '.join(CLASSIFIER_KINDS)}, got {spec!r}"
        )
    return kind, Path(path)


def classifier_labels_path(model_path: Path) -> Path:
    """Where a classifier's label list lives: ``emo.pt`` -> ``emo.labels.json``."""
    return model_path.with_suffix(".labels.json")


@dataclass
class Classifier:
    """A user's TorchScript classifier: 16 kHz ``(1, samples)`` waveform in, logits out."""

    kind: str
    path: Path
    module: Any
    labels: list[str]

    @classmethod
    def load(cls, spec: str) -> Classifier:
        import torch

        kind, path = parse_classifier(spec)
        labels_path = classifier_labels_path(path)
        if not path.is_file():
            raise SynparaError("classifier model not found", path)
        try:
            labels = json.loads(labels_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise SynparaError(f"classifier label list unreadable ({error})", labels_path) from None
        if (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(x, str) for x in labels)
        ):
            raise SynparaError("classifier labels must be a JSON list of strings", labels_path)
        try:
            module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as error:  # torch raises RuntimeError/ValueError for non-TorchScript
            raise SynparaError(f"not a TorchScript model ({error})", path) from None
        return cls(kind, path, module, labels)

    def predict(self, samples: np.ndarray) -> dict[str, Any]:
        import torch

        with torch.inference_mode():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(samples))[None])
        values = logits.reshape(-1).float()
        if values.numel() != len(self.labels):
            raise SynparaError(
                f"classifier gave {values.numel()} logits for {len(self.labels)} labels", self.path
            )
        probs = torch.softmax(values, dim=0)
        best = int(torch.argmax(probs))
        return {
            "label": self.labels[best],
            "confidence": round(float(probs[best]), 3),
            "model": self.path.name,
        }


def load_bins(path: str | Path | None = None) -> dict[str, Any]:
    """The bin thresholds (see ``synpara/data/describe_bins.yaml``), checked."""
    import yaml

    path = Path(path) if path is not None else BINS_FILE
    try:
        bins = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SynparaError(f"cannot read bins ({error})", path) from None
    for name in ("pitch", "expressiveness", "rate", "loudness", "snr"):
        table = bins.get(name) if isinstance(bins, dict) else None
        if not isinstance(table, dict) or len(table.get("words", [])) != 3:
            raise SynparaError(f"bins: {name!r} needs three words and thresholds", path)
        for group, edges in table.items():
            if group != "words" and not (
                isinstance(edges, dict) and float(edges["low"]) < float(edges["high"])
            ):
                raise SynparaError(f"bins: {name}.{group} needs low < high", path)
    return bins


def bin_value(
    bins: dict[str, Any], name: str, value: float | None, group: str = "all"
) -> str | None:
    """The word for ``value`` in table ``name`` (``group`` picks speaker-group thresholds)."""
    if value is None:
        return None
    table = bins[name]
    edges = table.get(group) or table.get("all") or table["unknown"]
    low_word, mid_word, high_word = table["words"]
    if value < float(edges["low"]):
        return low_word
    return high_word if value >= float(edges["high"]) else mid_word


class Describe(Stage[DescribeConfig]):
    """Measure pitch, rate, loudness and SNR, list events in context, and write a description.

    Example::

        stage = Describe()
        stage.setup()
        cut = stage.process(cut, context)
        cut.supervisions[0].custom["paralinguistics"]["description"]
    """

    name = "describe"
    version = "1"
    Config = DescribeConfig

    def setup(self, threads: int = 0) -> None:
        self.bins = load_bins(self.config.bins)
        self.classifiers = [Classifier.load(spec) for spec in self.config.classifier]

    @property
    def model_id(self) -> str | None:
        parts = [f"world-{self.config.f0_method}", "pyloudnorm"]
        parts += [
            f"{kind}:{path.name}" for kind, path in map(parse_classifier, self.config.classifier)
        ]
        return ",".join(parts)

    def process(self, cut: Cut, context: RecordContext) -> Cut:
        samples = load_cut_audio(cut)
        background = _background(cut)
        supervisions = []
        for sup in cut.supervisions:
            info = self.describe_supervision(cut, sup, samples, background)
            info["description"] = describe_sentence(
                info, sup.text or "", context.rng, self.config.gender_confidence
            )
            custom = dict(sup.custom or {})
            custom[PARALINGUISTICS] = info
            supervisions.append(_with_custom(sup, custom))
        return cut.copy(supervisions=supervisions)

    def describe_supervision(
        self, cut: Cut, sup: SupervisionSegment, samples: np.ndarray, background: list[str]
    ) -> dict[str, Any]:
        """Every measurement of one supervision (recording-time alignments, cut audio)."""
        config = self.config
        lo = max(0, int(round(sup.start * SAMPLE_RATE)))
        hi = min(len(samples), int(round((sup.start + sup.duration) * SAMPLE_RATE)))
        audio = samples[lo:hi]
        offset = cut.start + lo / SAMPLE_RATE  # recording time of audio[0]
        alignment = sup.alignment or {}
        words = sorted(alignment.get(WORD, []), key=lambda w: (w.start, w.end))
        events = sorted(alignment.get(EVENT, []), key=lambda e: (e.start, e.end))
        language = sup.language or config.language  # transcribe's detected language wins
        spans = [(w.start - offset, w.end - offset) for w in words]
        track = f0_track(audio, SAMPLE_RATE, config.f0_method)
        f0 = f0_summary(keep_frames_in_spans(track, spans) if spans else track)
        rate = speaking_rate(
            [(w.symbol, w.start, w.end) for w in words],
            language,
            [(e.start, e.end) for e in events],
        )
        gender = perceived_gender(f0.median_hz)
        info: dict[str, Any] = {
            "f0": {
                "median_hz": _round(f0.median_hz, 1),
                "range_st": _round(f0.range_st, 2),
                "voiced_fraction": round(f0.voiced_fraction, 3),
                "method": config.f0_method,
            },
            "rate": {
                "syllables_per_second": _round(rate.syllables_per_second, 2),
                "words_per_second": _round(rate.words_per_second, 2),
                "syllables": rate.syllables,
                "words": rate.words,
                "seconds": round(rate.seconds, 3),
                "syllable_counter": f"vowel groups ({language})",
            },
            "loudness_lufs": _round(loudness_lufs(audio, SAMPLE_RATE), 2),
            "snr_db": _round(snr_db(audio, SAMPLE_RATE, spans or None), 1),
            "gender": gender,
            "events": [self._event(e, words) for e in events],
            "background": background,
            "classifiers": {c.kind: c.predict(audio) for c in self.classifiers if audio.size},
        }
        group = (
            gender["label"]
            if gender and gender["confidence"] >= config.gender_confidence
            else "unknown"
        )
        info["bins"] = {
            "pitch": bin_value(self.bins, "pitch", f0.median_hz, group),
            "expressiveness": bin_value(self.bins, "expressiveness", f0.range_st),
            "rate": bin_value(self.bins, "rate", rate.syllables_per_second),
            "loudness": bin_value(self.bins, "loudness", info["loudness_lufs"]),
            "snr": bin_value(self.bins, "snr", info["snr_db"]),
        }
        return info

    def _event(self, event: Any, words: list[Any]) -> dict[str, Any]:
        n = self.config.context_words
        mid = (event.start + event.end) / 2
        before = [w.symbol for w in words if (w.start + w.end) / 2 < mid]
        after = [w.symbol for w in words if (w.start + w.end) / 2 >= mid]
        return {
            "label": event.symbol,
            "start": round_time(event.start),
            "end": round_time(event.end),
            "before": before[-n:] if n else [],
            "after": after[:n],
        }


def _with_custom(sup: SupervisionSegment, custom: dict[str, Any]) -> SupervisionSegment:
    from lhotse.utils import fastcopy

    return fastcopy(sup, custom=custom)


def _background(cut: Cut) -> list[str]:
    """Background tags detect left in ``custom["synpara"]["detect"]["background"]``."""
    try:
        tags = cut.custom["synpara"]["detect"]["background"]
    except (TypeError, KeyError):
        return []
    if isinstance(tags, dict):  # tag -> probability: strongest first
        return [tag for tag, _ in sorted(tags.items(), key=lambda kv: (-float(kv[1]), kv[0]))]
    return [str(tag) for tag in tags]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


# --------------------------------------------------------------------------- the sentence

#: Third-person verb phrases for events in descriptions and answers.
EVENT_VERBS: dict[str, str] = {
    "laughter": "laughs",
    "giggle": "giggles",
    "sigh": "sighs",
    "breath": "takes a breath",
    "gasp": "gasps",
    "cough": "coughs",
    "throat_clearing": "clears the throat",
    "sniff": "sniffs",
    "sneeze": "sneezes",
    "groan": "groans",
    "cry": "cries",
    "hum": "hums",
    "yawn": "yawns",
    "pause": "pauses",
}
_RATE_ADVERBS = {"slow": "slowly", "normal": "at a moderate pace", "fast": "quickly"}
_LOUDNESS_ADVERBS = {"soft": "softly", "normal": "", "loud": "loudly"}
_SNR_SENTENCES = {
    "clean": "The recording is clean.",
    "fair": "There is some background noise.",
    "noisy": "The recording is noisy.",
}
_EXPRESSIVE = {"flat": "flat", "normal": "", "lively": "lively"}

#: DeSTA2-style templates; {subject} is "A woman", "A man" or "A speaker".
TEMPLATES: tuple[str, ...] = (
    "{subject} speaks {rate} in a {voice} voice{events_semi}.",
    "In a {voice} voice, {subject_lower} talks {rate}{events_and}.",
    '{subject} says "{text}" {rate}, with a {voice} voice{events_semi}.',
    "Speaking {rate}, {subject_lower} has a {voice} voice{events_semi}.",
    "{subject} with a {voice} voice talks {rate}{events_and}.",
)


def event_phrase(event: dict[str, Any], pronoun: str) -> str:
    """``she laughs after 'no way'`` from one event entry."""
    verb = EVENT_VERBS.get(event["label"], f"makes a {event['label'].replace('_', ' ')} sound")
    if event["before"]:
        return f"{pronoun} {verb} after '{' '.join(event['before'])}'"
    if event["after"]:
        return f"{pronoun} {verb} before '{' '.join(event['after'])}'"
    return f"{pronoun} {verb}"


def describe_sentence(
    info: dict[str, Any], text: str, rng: np.random.Generator, gender_confidence: float = 0.8
) -> str:
    """One description of a supervision's ``info``; the template is drawn from ``rng``."""
    gender = info.get("gender")
    sure = gender is not None and gender["confidence"] >= gender_confidence
    label = (info.get("classifiers", {}).get("gender") or {}).get("label")
    label = label or (gender["label"] if sure and gender else None)
    subject, pronoun = {"female": ("A woman", "she"), "male": ("A man", "he")}.get(
        label or "", ("A speaker", "they")
    )
    bins = info["bins"]
    voice_words = [
        _EXPRESSIVE.get(bins.get("expressiveness") or "normal", ""),
        f"{bins['pitch']}-pitched" if bins.get("pitch") else "",
    ]
    voice = ", ".join(w for w in voice_words if w) or "clear"
    rate = _RATE_ADVERBS.get(bins.get("rate") or "", "")
    loud = _LOUDNESS_ADVERBS.get(bins.get("loudness") or "", "")
    rate = " and ".join(w for w in (rate, loud) if w) or "steadily"
    emotion = (info.get("classifiers", {}).get("emotion") or {}).get("label")
    phrases = [event_phrase(e, pronoun) for e in info.get("events", [])[:3]]
    if pronoun == "they":
        phrases = [_plural_verb(p) for p in phrases]
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    quoted = " ".join(text.split()[:8]) + (" ..." if len(text.split()) > 8 else "")
    if "{text}" in template and not quoted:
        template = TEMPLATES[0]
    sentence = template.format(
        subject=subject,
        subject_lower=subject[0].lower() + subject[1:],
        rate=rate,
        voice=voice,
        text=quoted,
        events_semi=("; " + ", then ".join(phrases)) if phrases else "",
        events_and=(", and " + ", then ".join(phrases)) if phrases else "",
    )
    extra = []
    if emotion:
        extra.append(f"The speaker sounds {emotion}.")
    background = info.get("background") or []
    if background:
        extra.append(
            f"{background[0].replace('_', ' ').capitalize()} can be heard in the background."
        )
    extra.append(_SNR_SENTENCES.get(bins.get("snr") or "", ""))
    return " ".join(part for part in [sentence, *extra] if part)


def _plural_verb(phrase: str) -> str:
    """``they laughs`` -> ``they laugh`` (the verbs in :data:`EVENT_VERBS` are regular)."""
    head, _, rest = phrase.partition(" ")
    verb, _, tail = rest.partition(" ")
    fixed = {
        "takes": "take",
        "makes": "make",
        "clears": "clear",
        "cries": "cry",
        "pauses": "pause",
        "sneezes": "sneeze",
        "yawns": "yawn",
    }.get(verb)
    if fixed is None and verb.endswith("es") and verb[:-2].endswith(("sh", "ch", "ss", "x")):
        fixed = verb[:-2]
    if fixed is None and verb.endswith("s"):
        fixed = verb[:-1]
    return " ".join(p for p in (head, fixed or verb, tail) if p)
