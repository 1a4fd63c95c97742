"""qa: question-answer pairs for speech-LLM instruction tuning, every answer from a measurement.

Reads a manifest from ``describe`` (``supervision.custom["paralinguistics"]``) and writes, per
described supervision, template questions whose answers are computed from the manifest:

========== ===================================================== ==========================
type       example question                                       answer from
========== ===================================================== ==========================
presence   Does the speaker laugh at any point?                   events (and an absent one)
identity   What sound does the speaker make after saying 'right'? event label, words before
timing     When does the speaker sigh?                            event start, words before
counting   How many times does the speaker cough?                 events
prosody    Is the speaker talking fast or slowly?                 rate / pitch / loudness bins
speaker    Does the speaker sound male or female?                 gender, confidence >= 0.9
content    What does the speaker say before laughing?             words around the event
========== ===================================================== ==========================

Each question has several phrasings, drawn from a generator seeded by (seed, supervision id).
With ``--llm-url`` an OpenAI-compatible endpoint also writes contextual and empathetic pairs
(CPQA) from the transcript and the measurements; each answer is checked against them and one that
contradicts a measurement is dropped, its reason written to ``qa_dropped.jsonl``.

Rows (``qa.jsonl``): ``{"audio", "question", "answer", "type", "source", "evidence"}``, or with
``--format sharegpt`` ``{"id", "audios": [path], "conversations": [{"from": "human", "value":
"<audio>\\nQUESTION"}, {"from": "gpt", "value": ANSWER}], "type", "source", "evidence"}``.
Event times in questions and answers are seconds from the start of the cut's audio. ``audio`` is
the recording file when the cut is the whole recording, else a clip written to ``DIR/audio/``.

Example::

    synpara qa -i output/describe/cuts.jsonl.gz -o output/qa --format sharegpt
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError
from synpara.manifest import cut_from_dict, dumps, iter_json_lines, write_text_atomic
from synpara.stage import record_rng

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "sharegpt")
QA_NAME, DROPPED_NAME, SUMMARY_NAME = "qa.jsonl", "qa_dropped.jsonl", "qa_summary.json"

#: label -> (noun phrase, base verb phrase, gerund)
EVENT_WORDS: dict[str, tuple[str, str, str]] = {
    "laughter": ("a laugh", "laugh", "laughing"),
    "giggle": ("a giggle", "giggle", "giggling"),
    "sigh": ("a sigh", "sigh", "sighing"),
    "breath": ("a breath", "take a breath", "breathing in"),
    "gasp": ("a gasp", "gasp", "gasping"),
    "cough": ("a cough", "cough", "coughing"),
    "throat_clearing": ("a throat clearing", "clear their throat", "clearing their throat"),
    "sniff": ("a sniff", "sniff", "sniffing"),
    "sneeze": ("a sneeze", "sneeze", "sneezing"),
    "groan": ("a groan", "groan", "groaning"),
    "cry": ("crying", "cry", "crying"),
    "hum": ("humming", "hum", "humming"),
    "yawn": ("a yawn", "yawn", "yawning"),
    "pause": ("a pause", "pause", "pausing"),
}
#: Absent labels asked about in presence questions (the common ones).
_ASKABLE_ABSENT = ("laughter", "cough", "sigh", "breath", "sneeze", "cry")

PHRASINGS: dict[str, tuple[str, ...]] = {
    "presence": (
        "Does the speaker {verb} at any point?",
        "Can you hear the speaker {verb}?",
        "Is there {noun} in this recording?",
    ),
    "identity_after": (
        "What sound does the speaker make after saying '{before}'?",
        "Right after '{before}', what nonverbal sound do you hear?",
        "What does the speaker do right after '{before}'?",
    ),
    "identity_before": (
        "What sound does the speaker make before saying '{after}'?",
        "Just before '{after}', what nonverbal sound do you hear?",
    ),
    "timing": (
        "When does the speaker {verb}?",
        "At what point does the speaker {verb}?",
        "Where in the recording does the speaker {verb}?",
    ),
    "counting": ("How many times does the speaker {verb}?", "How often does the speaker {verb}?"),
    "counting_all": (
        "How many nonverbal sounds does the speaker make?",
        "How many non-speech vocal sounds are there?",
    ),
    "rate": (
        "Is the speaker talking fast or slowly?",
        "How fast does the speaker speak?",
        "Describe the speaking rate.",
    ),
    "pitch": (
        "Is the speaker's voice high or low?",
        "How would you describe the pitch of the voice?",
        "Does the speaker have a high or a low voice?",
    ),
    "loudness": ("Is the speaker loud or soft?", "How loud is the speaker?"),
    "speaker": ("Does the speaker sound male or female?", "Is this a man or a woman speaking?"),
    "content_before": (
        "What does the speaker say before {gerund}?",
        "Which words come right before the {bare}?",
    ),
    "content_after": (
        "What does the speaker say right after {gerund}?",
        "Which words follow the {bare}?",
    ),
}
_NUMBERS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five"}
_COUNTS = {1: "Once", 2: "Twice", 3: "Three times", 4: "Four times", 5: "Five times"}
_RATE = {"slow": "Slowly", "normal": "At a moderate pace", "fast": "Quickly"}
_LOUD = {"soft": "Softly", "normal": "At a normal level", "loud": "Loudly"}


@dataclass(frozen=True)
class Pair:
    """One question and its answer, with what the answer rests on."""

    question: str
    answer: str
    type: str
    source: str = "template"
    evidence: dict[str, Any] = field(default_factory=dict)


def _pick(rng: np.random.Generator, kind: str, **values: str) -> str:
    options = PHRASINGS[kind]
    return options[int(rng.integers(len(options)))].format(**values)


def _words(label: str) -> dict[str, str]:
    noun, verb, gerund = EVENT_WORDS.get(
        label,
        (
            f"a {label.replace('_', ' ')}",
            f"make a {label.replace('_', ' ')} sound",
            f"making a {label.replace('_', ' ')} sound",
        ),
    )
    return {"noun": noun, "verb": verb, "gerund": gerund, "bare": noun.split(" ", 1)[-1]}


def _when(event: dict[str, Any], offset: float) -> str:
    """``right after 'no way', about 2.3 seconds in`` (cut time)."""
    at = f"about {event['start'] - offset:.1f} seconds in"
    if event["before"]:
        return f"right after '{' '.join(event['before'])}', {at}"
    if event["after"]:
        return f"just before '{' '.join(event['after'])}', {at}"
    return at


def template_pairs(
    info: dict[str, Any], offset: float, rng: np.random.Generator, speaker_confidence: float = 0.9
) -> list[Pair]:
    """Template pairs of one described supervision; ``offset``: recording time of the cut start."""
    pairs: list[Pair] = []
    events = info.get("events") or []
    by_label: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_label.setdefault(event["label"], []).append(event)
    for label, found in sorted(by_label.items()):
        w = _words(label)
        times = [round(e["start"] - offset, 2) for e in found]
        evidence = {"label": label, "starts": times}
        pairs.append(
            Pair(
                _pick(rng, "presence", **w),
                f"Yes, {_when(found[0], offset)}.",
                "presence",
                evidence=evidence,
            )
        )
        whens = [_when(e, offset) for e in found]
        answer = (
            whens[0]
            if len(whens) == 1
            else f"{_COUNTS.get(len(whens), len(whens))}: " + "; ".join(whens)
        )
        pairs.append(
            Pair(
                _pick(rng, "timing", **w),
                answer[0].upper() + answer[1:] + ".",
                "timing",
                evidence=evidence,
            )
        )
        count = _COUNTS.get(len(found), f"{len(found)} times")
        pairs.append(Pair(_pick(rng, "counting", **w), f"{count}.", "counting", evidence=evidence))
    absent = [label for label in _ASKABLE_ABSENT if label not in by_label]
    if absent:
        label = absent[int(rng.integers(len(absent)))]
        pairs.append(
            Pair(
                _pick(rng, "presence", **_words(label)),
                "No.",
                "presence",
                evidence={"label": label, "starts": []},
            )
        )
    if events:
        pairs.append(
            Pair(
                _pick(rng, "counting_all"),
                f"{_NUMBERS.get(len(events), len(events))}"
                f" ({', '.join(_words(e['label'])['noun'] for e in events)}).",
                "counting",
                evidence={"labels": [e["label"] for e in events]},
            )
        )
    for event in events:
        w = _words(event["label"])
        evidence = {
            "label": event["label"],
            "start": round(event["start"] - offset, 2),
            "before": event["before"],
            "after": event["after"],
        }
        noun = w["noun"][0].upper() + w["noun"][1:]
        before, after = " ".join(event["before"]), " ".join(event["after"])
        if before:
            pairs.append(
                Pair(
                    _pick(rng, "identity_after", before=before),
                    f"{noun}.",
                    "identity",
                    evidence=evidence,
                )
            )
            if len(by_label[event["label"]]) == 1:
                pairs.append(
                    Pair(
                        _pick(rng, "content_before", **w),
                        f"'{before}'.",
                        "content",
                        evidence=evidence,
                    )
                )
        elif after:
            pairs.append(
                Pair(
                    _pick(rng, "identity_before", after=after),
                    f"{noun}.",
                    "identity",
                    evidence=evidence,
                )
            )
        if after and len(by_label[event["label"]]) == 1:
            pairs.append(
                Pair(_pick(rng, "content_after", **w), f"'{after}'.", "content", evidence=evidence)
            )
    pairs += _prosody_pairs(info, rng)
    pairs += _speaker_pairs(info, rng, speaker_confidence)
    return pairs


def _prosody_pairs(info: dict[str, Any], rng: np.random.Generator) -> list[Pair]:
    bins, pairs = info.get("bins") or {}, []
    rate = (info.get("rate") or {}).get("syllables_per_second")
    if bins.get("rate") in _RATE and rate is not None:
        pairs.append(
            Pair(
                _pick(rng, "rate"),
                f"{_RATE[bins['rate']]}, about {rate:.1f} syllables per second.",
                "prosody",
                evidence={"rate": bins["rate"], "syllables_per_second": rate},
            )
        )
    median = (info.get("f0") or {}).get("median_hz")
    if bins.get("pitch") and median is not None:
        pairs.append(
            Pair(
                _pick(rng, "pitch"),
                f"{bins['pitch'].capitalize()}-pitched, around {median:.0f} Hz.",
                "prosody",
                evidence={"pitch": bins["pitch"], "median_hz": median},
            )
        )
    if bins.get("loudness") in _LOUD:
        pairs.append(
            Pair(
                _pick(rng, "loudness"),
                f"{_LOUD[bins['loudness']]}.",
                "prosody",
                evidence={"loudness": bins["loudness"], "loudness_lufs": info.get("loudness_lufs")},
            )
        )
    return pairs


def _speaker_pairs(info: dict[str, Any], rng: np.random.Generator, threshold: float) -> list[Pair]:
    guess = (info.get("classifiers") or {}).get("gender") or info.get("gender") or {}
    if not guess or float(guess.get("confidence") or 0.0) < threshold:
        return []  # a guess below the threshold is not an answer
    answer = {"male": "Male.", "female": "Female."}.get(str(guess["label"]))
    if answer is None:
        return []
    return [
        Pair(
            _pick(rng, "speaker"),
            answer,
            "speaker",
            evidence={"gender": guess["label"], "confidence": guess["confidence"]},
        )
    ]


# --------------------------------------------------------------------------- export


def _audio_path(record: dict[str, Any], output_dir: Path, path: Path, line: int) -> str:
    """The recording file when the cut is all of it, else a clip under ``output_dir/audio``."""
    from synpara.audio import load_cut_audio, write_flac_atomic

    recording = record.get("recording") or {}
    sources = recording.get("sources") or []
    whole = (
        float(record.get("start", 0.0)) == 0.0
        and abs(float(record.get("duration", 0.0)) - float(recording.get("duration", -1))) < 1e-3
    )
    if whole and len(sources) == 1 and sources[0].get("type") == "file":
        return str(sources[0]["source"])
    clip = output_dir / "audio" / f"{record['id']}.flac"
    if not clip.exists():
        write_flac_atomic(clip, load_cut_audio(cut_from_dict(record, path, line)))
    return str(clip)


def row(pair: Pair, audio: str, row_id: str, fmt: str) -> dict[str, Any]:
    if fmt == "jsonl":
        return {
            "audio": audio,
            "question": pair.question,
            "answer": pair.answer,
            "type": pair.type,
            "source": pair.source,
            "evidence": pair.evidence,
        }
    return {
        "id": row_id,
        "audios": [audio],
        "conversations": [
            {"from": "human", "value": f"<audio>\n{pair.question}"},
            {"from": "gpt", "value": pair.answer},
        ],
        "type": pair.type,
        "source": pair.source,
        "evidence": pair.evidence,
    }


def export_qa(
    input_path: str | Path,
    output_dir: str | Path,
    fmt: str = "jsonl",
    seed: int = 0,
    chat: Any = None,
    speaker_confidence: float = 0.9,
) -> dict[str, Any]:
    """Write ``qa.jsonl``, ``qa_dropped.jsonl`` and ``qa_summary.json``; returns the summary.
    ``chat(messages) -> dict`` (see :func:`synpara.llm.chat_json`) adds LLM pairs."""
    if fmt not in FORMATS:
        raise SynparaError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not 0.5 <= speaker_confidence <= 1:
        raise SynparaError(f"speaker confidence must be in [0.5, 1], got {speaker_confidence}")
    input_path, output_dir = Path(input_path), Path(output_dir)
    rows: list[str] = []
    dropped: list[str] = []
    types: Counter = Counter()
    reasons: Counter = Counter()
    utterances = 0
    for line, record in iter_json_lines(input_path):
        for sup in record.get("supervisions") or []:
            info = (sup.get("custom") or {}).get("paralinguistics")
            if not isinstance(info, dict):
                continue
            if utterances == 0:
                output_dir.mkdir(parents=True, exist_ok=True)
            utterances += 1
            offset = float(record.get("start", 0.0))
            rng = record_rng(seed, str(sup.get("id")))
            pairs = template_pairs(info, offset, rng, speaker_confidence)
            if chat is not None:
                from synpara.qa_llm import llm_facts, llm_pairs

                facts = llm_facts(
                    info,
                    sup.get("text") or "",
                    (sup.get("custom") or {}).get("tagged_text") or "",
                    offset,
                )
                kept, lost = llm_pairs(facts, info, chat)
                pairs += kept
                for entry in lost:
                    reasons[entry["reason"]] += 1
                    dropped.append(dumps({"id": sup.get("id"), "source": "llm", **entry}))
            audio = _audio_path(record, output_dir, input_path, line)
            for index, pair in enumerate(pairs):
                types[pair.type] += 1
                rows.append(dumps(row(pair, audio, f"{sup.get('id')}-{index:03d}", fmt)))
    if utterances == 0:
        raise SynparaError("no described supervisions (run describe first)", input_path)
    # plain .jsonl (fine-tuning recipes do not read gzip), each file complete or absent
    write_text_atomic(output_dir / QA_NAME, "".join(f"{r}\n" for r in rows))
    write_text_atomic(output_dir / DROPPED_NAME, "".join(f"{r}\n" for r in dropped))
    summary = {
        "utterances": utterances,
        "pairs": len(rows),
        "format": fmt,
        "pairs_per_utterance": {k: round(v / utterances, 3) for k, v in sorted(types.items())},
        "dropped": dict(sorted(reasons.items())),
    }
    write_text_atomic(output_dir / SUMMARY_NAME, json.dumps(summary, indent=1) + "\n")
    return summary
