"""Tags placed by a language model (SynParaSpeech used DeepSeek): a user's OpenAI-compatible
endpoint gets the words and returns them with tags; the answer is validated and cached.

Validation: the words must come back unchanged (case and punctuation aside), each tag must be a
known label among the allowed ones, stand alone between words (``so [laughter] funny``, never
``fun[laughter]ny``), at most one per boundary. Anything else is refused with a reason, and
insert falls back to its rules, recording that reason. Answers are cached by the sha256 of the
request, so a rerun asks nothing and gets the same placements.

>>> parse_tagged("so [laughter] funny", ["so", "funny"], {"laughter"})
[(0, 'laughter')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synpara.errors import SynparaError

_TAG = re.compile(r"^\[([^\[\]]+)\]$")
_PROMPT = (
    "You add nonverbal sound tags to a transcript of speech. Insert at most {count} tags, "
    "chosen from: {labels}, written in square brackets (e.g. [laughter]), between words, at the "
    "start or at the end, where a speaker would naturally make that sound. Do not change, add, "
    "remove or reorder any word. Answer with the tagged transcript only."
)


@dataclass(frozen=True)
class LlmPlacer:
    """Where the model is and how long to wait; ``key_env`` names the variable with the key."""

    url: str
    model: str
    key_env: str = "SYNPARA_LLM_API_KEY"
    timeout: float = 20.0

    def request(self, words: list[str], labels: list[str], count: int) -> dict:
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {
                    "role": "system",
                    "content": _PROMPT.format(count=count, labels=", ".join(labels)),
                },
                {"role": "user", "content": " ".join(words)},
            ],
        }

    def ask(self, request: dict, cache_dir: Path) -> str:
        """The model's answer to ``request``, from the cache when this request was asked before.
        Raises :class:`SynparaError` for network errors, timeouts and malformed responses."""
        from synpara.llm import chat_text

        return chat_text(
            self.url,
            self.model,
            request["messages"],
            timeout=self.timeout,
            cache_dir=cache_dir,
            temperature=request["temperature"],
            key_env=self.key_env,
        )


def _norm(word: str) -> str:
    from synpara.eval.words import normalise_word

    return normalise_word(word)


def parse_tagged(answer: str, words: list[str], allowed: set[str]) -> list[tuple[int, str]]:
    """``(after_word, label)`` for each tag of a valid answer (``after_word`` -1: before the first
    word); raises :class:`SynparaError` naming what makes the answer invalid."""
    from synpara.ontology import canonical_label, is_event_tag

    placed: list[tuple[int, str]] = []
    seen = 0
    for token in answer.split():
        match = _TAG.match(token)
        if match:
            if not is_event_tag(match.group(1)):
                raise SynparaError(f"unknown tag {token!r}")
            label = canonical_label(match.group(1))
            if label not in allowed:
                raise SynparaError(f"tag {token!r} is not among {sorted(allowed)}")
            if placed and placed[-1][0] == seen - 1:
                raise SynparaError("two tags at one word boundary")
            placed.append((seen - 1, label))
            continue
        if "[" in token or "]" in token:
            raise SynparaError(f"tag inside a word: {token!r}")
        if seen >= len(words) or _norm(token) != _norm(words[seen]):
            expected = words[seen] if seen < len(words) else "(end)"
            raise SynparaError(f"words changed: {token!r} where {expected!r} was")
        seen += 1
    if seen != len(words):
        raise SynparaError(f"words missing: {len(words) - seen} of {len(words)} not returned")
    if not placed:
        raise SynparaError("no tag placed")
    return placed


def llm_placements(
    placer: LlmPlacer,
    cache_dir: Path,
    words: list[str],
    spans: list[tuple[int, int]],
    slots: list,
    categories: list[str],
    count: int,
    guard_samples: int,
) -> tuple[list, str]:
    """Placements from the model's answer, mapped onto insert's slots (a boundary without a slot
    gets one when its gap holds the cross-fades); raises :class:`SynparaError` when invalid."""
    from synpara.placement import Placement, Slot

    answer = placer.ask(placer.request(words, categories, count), cache_dir)
    placements = []
    for after, label in parse_tagged(answer, words, set(categories))[:count]:
        slot = next((s for s in slots if s.after_word == after), None)
        if slot is None:
            lo = spans[after][1] if after >= 0 else 0
            hi = spans[after + 1][0] if after + 1 < len(spans) else lo
            if hi - lo < 2 * guard_samples:
                raise SynparaError(f"no room for [{label}] after word {after + 1}")
            slot = Slot(("pause",), (lo + hi) // 2, after)
        placements.append(Placement(label, slot))
    return sorted(placements, key=lambda p: p.slot.at_sample), answer


def placements_from_llm(
    config: Any,
    output_dir: Path,
    words: list,
    spans: list,
    slots: list,
    categories: list[str],
    count: int,
    guard_samples: int,
) -> tuple[list, dict[str, Any]]:
    """insert's LLM placer from its config (``llm_url``, ``llm_model`` ...); raises
    :class:`SynparaError` with the reason to fall back to the rules."""
    placer = LlmPlacer(
        str(config.llm_url), str(config.llm_model), config.llm_key_env, config.llm_timeout
    )
    cache = Path(config.llm_cache or output_dir / "llm_cache")
    placements, answer = llm_placements(
        placer, cache, [w.symbol for w in words], spans, slots, categories, count, guard_samples
    )
    return placements, {"placer": "llm", "answer": answer}
