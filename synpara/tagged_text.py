"""Text with nonverbal events inline: words and events merged in time order, tags in a chosen style.

The canonical form is lowercase square brackets around the canonical label (``[laughter]``); the
``style`` argument renders another style for corpora that spell tags differently.

>>> words = [("so", 0.0, 0.2), ("funny", 0.3, 0.7), ("right", 1.6, 1.9)]
>>> events = [("laughter", 0.8, 1.5)]
>>> tagged_text(words, events)
'so funny [laughter] right'
>>> tagged_text(words, events, style="paren")
'so funny (laughs) right'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from synpara.errors import SynparaError

#: Third-person verb forms for the ``paren`` style: ``(laughs)``, ``(clears throat)``.
_VERBS: dict[str, str] = {
    "laughter": "laughs",
    "giggle": "giggles",
    "sigh": "sighs",
    "breath": "breathes",
    "gasp": "gasps",
    "cough": "coughs",
    "throat_clearing": "clears throat",
    "sniff": "sniffs",
    "sneeze": "sneezes",
    "groan": "groans",
    "cry": "cries",
    "hum": "hums",
    "yawn": "yawns",
    "pause": "pause",
}
#: Short nouns for the ``angle`` style: ``<laugh>``.
_NOUNS: dict[str, str] = {"laughter": "laugh", "throat_clearing": "throat_clear"}

#: style name -> how it renders a canonical label.
STYLES = ("bracket", "paren", "angle", "title")


def render_tag(label: str, style: str = "bracket") -> str:
    """One event tag: ``bracket`` ``[laughter]`` (canonical), ``paren`` ``(laughs)``, ``angle``
    ``<laugh>``, ``title`` ``[Laughter]``; any other string containing ``{label}`` is a template.

    >>> render_tag("throat_clearing", "title")
    '[Throat clearing]'
    >>> render_tag("cough", "{{{label}}}")
    '{cough}'
    """
    if style == "bracket":
        return f"[{label}]"
    if style == "paren":
        return f"({_VERBS.get(label, label.replace('_', ' '))})"
    if style == "angle":
        return f"<{_NOUNS.get(label, label)}>"
    if style == "title":
        return f"[{label.replace('_', ' ').capitalize()}]"
    if "{label}" in style:
        return style.format(label=label)
    raise SynparaError(f"unknown tag style {style!r}; use one of {', '.join(STYLES)} "
                       "or a template containing {label}")


def merge_in_time(
    words: Iterable[tuple[str, float, float]], events: Iterable[tuple[str, float, float]]
) -> list[tuple[str, str]]:
    """``(kind, symbol)`` tokens, ``kind`` being ``"word"`` or ``"event"``, in time order.

    An event that starts inside a word's span goes right after that word, never splitting it.
    """
    word_list = sorted(words, key=lambda w: (w[1], w[2]))
    keyed: list[tuple[float, int, int, int, tuple[str, str]]] = []
    for index, (text, start, _end) in enumerate(word_list):
        keyed.append((start, 0, index, 0, ("word", text)))
    for index, (label, start, _end) in enumerate(sorted(events, key=lambda e: (e[1], e[2]))):
        key: tuple[float, int, int, int] = (start, 1, index, 0)
        for w_index, (_text, word_start, word_end) in enumerate(word_list):
            if word_start <= start < word_end:
                key = (word_start, 0, w_index, 1 + index)  # right after the word it interrupts
                break
        keyed.append((*key, ("event", label)))
    return [token for *_, token in sorted(keyed)]


def tagged_text(
    words: Sequence[tuple[str, float, float]],
    events: Sequence[tuple[str, float, float]],
    style: str = "bracket",
) -> str:
    """Words and events as one line: ``so that was funny [laughter] right``."""
    parts = [
        render_tag(symbol, style) if kind == "event" else symbol
        for kind, symbol in merge_in_time(words, events)
    ]
    return " ".join(part for part in parts if part)
