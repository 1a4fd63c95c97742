"""LLM-written question-answer pairs for ``qa`` (CPQA's contextual and empathetic questions),
each checked against the measurements before it is kept.

The endpoint gets the transcript and describe's measurements (:func:`llm_facts`); a pair whose
question or answer contradicts them (:func:`contradiction`: names an event the manifest does not
have, calls a slow speaker fast, a low voice high, or names a gender describe was not confident
about) is dropped with its reason.

>>> contradiction("She coughs twice.", {"events": [{"label": "laughter"}], "bins": {}})
"names event 'cough', absent from the manifest"
"""

from __future__ import annotations

import json
import re
from typing import Any

from synpara.qa import Pair

#: How an answer names each event (to find labels an LLM answer claims).
EVENT_PATTERNS: dict[str, str] = {
    "laughter": r"\b(laugh\w*|chuckl\w*)",
    "giggle": r"\bgiggl\w*",
    "sigh": r"\bsigh\w*",
    "breath": r"\bbreath\w*",
    "gasp": r"\bgasp\w*",
    "cough": r"\bcough\w*",
    "throat_clearing": r"\bclear\w* (the |his |her |their )?throat|\bthroat[- ]clear\w*",
    "sniff": r"\bsniff\w*",
    "sneeze": r"\bsneez\w*",
    "groan": r"\b(groan\w*|moan\w*)",
    "cry": r"\b(cry|cries|cried|crying|sob\w*)\b",
    "hum": r"\bhum(s|med|ming)?\b",
    "yawn": r"\byawn\w*",
}
#: Labels one may name for another (a giggle is a laugh).
_COMPATIBLE = {"giggle": {"laughter"}, "laughter": {"giggle"}}


def contradiction(answer: str, info: dict[str, Any], speaker_confidence: float = 0.9) -> str | None:
    """Why ``answer`` contradicts the measurements in ``info``, or ``None`` when it does not."""
    text = answer.lower()
    present = {e["label"] for e in info.get("events") or []}
    for label, pattern in EVENT_PATTERNS.items():
        allowed = present | {x for p in present for x in _COMPATIBLE.get(p, set())}
        if label not in allowed and re.search(pattern, text):
            return f"names event {label!r}, absent from the manifest"
    bins = info.get("bins") or {}
    claims = {
        "rate": {
            "fast": r"\b(fast|quick(ly)?|rapid(ly)?|hurried(ly)?)\b",
            "slow": r"\b(slow(ly)?|leisurely|unhurried)\b",
        },
        "pitch": {
            "high": r"\bhigh(er)?[- ]pitch\w*|\bhigh voice\b",
            "low": r"\blow(er)?[- ]pitch\w*|\blow voice\b|\bdeep voice\b",
        },
        "loudness": {
            "loud": r"\b(loud(ly)?|shout\w*)\b",
            "soft": r"\b(soft(ly)?|quiet(ly)?|whisper\w*)\b",
        },
    }
    opposite = {
        "fast": "slow",
        "slow": "fast",
        "high": "low",
        "low": "high",
        "loud": "soft",
        "soft": "loud",
    }
    for name, words in claims.items():
        for word, pattern in words.items():
            # only the opposite extreme contradicts: "fast" for a normal rate is a judgement call
            if re.search(pattern, text) and bins.get(name) == opposite[word]:
                return f"says {word} but the measured {name} is {bins[name]}"
    guess = info.get("gender") or {}
    sure = float(guess.get("confidence") or 0.0) >= speaker_confidence
    for gender, pattern in (
        ("female", r"\b(woman|female|girl|lady)\b"),
        ("male", r"\b(man|male|boy|guy|gentleman)\b"),
    ):
        if re.search(pattern, text) and not (sure and guess.get("label") == gender):
            return f"says {gender} but perceived gender is " + (
                f"{guess.get('label')}" if sure else "not confident"
            )
    return None


SYSTEM_PROMPT = (
    "You write question-answer pairs that train a speech-language model to understand both what "
    "is said and how it is said. You get the transcript and measured facts of one recording. "
    "Write contextual questions (about the situation, intent or meaning, answerable from the "
    "words and the way they are spoken) and empathetic ones (how to respond to the speaker). "
    "Use only the facts given; never invent sounds, speed, pitch or gender. Reply with JSON: "
    '{"pairs": [{"question": "...", "answer": "...", "type": "contextual" | "empathetic"}]}'
)


def llm_facts(info: dict[str, Any], text: str, tagged: str, offset: float) -> dict[str, Any]:
    """What the LLM is told: the transcript and the measurements, nothing else."""
    guess = info.get("gender") or {}
    return {
        "transcript": text,
        "transcript_with_events": tagged,
        "events": [
            {
                "label": e["label"],
                "seconds_in": round(e["start"] - offset, 1),
                "words_before": " ".join(e["before"]),
                "words_after": " ".join(e["after"]),
            }
            for e in info.get("events") or []
        ],
        "speaking_rate": (info.get("bins") or {}).get("rate"),
        "pitch": (info.get("bins") or {}).get("pitch"),
        "loudness": (info.get("bins") or {}).get("loudness"),
        "perceived_gender": guess.get("label") if guess.get("confidence", 0) >= 0.9 else None,
        "background": info.get("background") or [],
        "emotion": ((info.get("classifiers") or {}).get("emotion") or {}).get("label"),
        "description": info.get("description"),
    }


def llm_pairs(
    facts: dict[str, Any], info: dict[str, Any], chat: Any
) -> tuple[list[Pair], list[dict[str, Any]]]:
    """Pairs from ``chat(messages) -> dict`` checked against ``info``; returns (kept, dropped)."""
    from synpara.llm import LLMError

    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(facts, ensure_ascii=False)},
    ]
    try:
        answer = chat(messages)
    except LLMError as error:
        return [], [{"reason": error.reason}]
    raw = answer.get("pairs")
    if not isinstance(raw, list):
        return [], [{"reason": "answer has no 'pairs' list"}]
    kept, dropped = [], []
    for item in raw:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("question"), str)
            and isinstance(item.get("answer"), str)
            and item["question"].strip()
            and item["answer"].strip()
        ):
            dropped.append({"reason": "malformed pair", "pair": item})
            continue
        reason = contradiction(f"{item['question']} {item['answer']}", info)
        if reason is not None:
            dropped.append(
                {"reason": reason, "question": item["question"], "answer": item["answer"]}
            )
            continue
        kind = (
            str(item["type"]) if item.get("type") in ("contextual", "empathetic") else "contextual"
        )
        kept.append(
            Pair(
                item["question"].strip(),
                item["answer"].strip(),
                kind,
                "llm",
                evidence={k: facts[k] for k in ("events", "speaking_rate", "pitch")},
            )
        )
    return kept, dropped
