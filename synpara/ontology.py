"""The canonical label set for nonverbal events, and every spelling we accept for each label.

Corpora spell the same event many ways (``[laugh]``, ``(laughs)``, ``<laugh>``, ``[Laughter]``,
``[throatclearing]`` ...). Inside synpara there is one spelling: the keys of :data:`LABELS`.
Tag styles for *writing* labels back out live in :mod:`synpara.tagged_text`; this module only
reads.

>>> canonical_label("(laughs)")
'laughter'
>>> canonical_label("[throat_clearing]")
'throat_clearing'
"""

from __future__ import annotations

import re

from synpara.errors import SynparaError

#: canonical label -> one-line description (what a labeller should mark with it).
LABELS: dict[str, str] = {
    "laughter": "laughing, chuckling, belly laugh",
    "giggle": "short high-pitched repeated laugh, snicker",
    "sigh": "audible exhalation expressing relief, tiredness, sadness",
    "breath": "audible in- or exhalation between words",
    "gasp": "sudden sharp inhalation (surprise, shock)",
    "cough": "cough",
    "throat_clearing": "clearing the throat, ahem",
    "sniff": "sniffing through the nose",
    "sneeze": "sneeze",
    "groan": "groan, moan, grunt of displeasure or effort",
    "cry": "crying, sobbing, whimpering",
    "hum": "humming with closed mouth, 'mm-hmm' without words",
    "yawn": "yawn",
    "tsk": "tongue click, tut (tsk-tsk of disapproval)",
    "snore": "snoring",
    "pause": "silent pause inside a turn (only where a corpus marks it)",
}

# Spellings that do not reduce to a canonical label by the generic normalisation below.
_ALIASES: dict[str, str] = {
    "laugh": "laughter",
    "laughs": "laughter",
    "laughing": "laughter",
    "chuckle": "laughter",
    "chuckles": "laughter",
    "chortle": "laughter",
    "belly_laugh": "laughter",
    "giggles": "giggle",
    "giggling": "giggle",
    "snicker": "giggle",
    "sighs": "sigh",
    "sighing": "sigh",
    "breathing": "breath",
    "breathes": "breath",
    "inhale": "breath",
    "exhale": "breath",
    "inbreath": "breath",
    "gasps": "gasp",
    "coughs": "cough",
    "coughing": "cough",
    "throatclearing": "throat_clearing",
    "clears_throat": "throat_clearing",
    "clear_throat": "throat_clearing",
    "ahem": "throat_clearing",
    "sniffs": "sniff",
    "sniffing": "sniff",
    "sniffle": "sniff",
    "sneezes": "sneeze",
    "sneezing": "sneeze",
    "groans": "groan",
    "moan": "groan",
    "moans": "groan",
    "grunt": "groan",
    "cries": "cry",
    "crying": "cry",
    "sob": "cry",
    "sobbing": "cry",
    "whimper": "cry",
    "hums": "hum",
    "humming": "hum",
    "yawns": "yawn",
    "yawning": "yawn",
    "silence": "pause",
    "click": "tsk",
    "clicks": "tsk",
    "tut": "tsk",
    "tuts": "tsk",
    "tongue_click": "tsk",
    "tongue_clicking": "tsk",
    "snoring": "snore",
    "snores": "snore",
    # Deeply Nonverbal Vocalization Dataset folder names
    "panting": "breath",
    "moaning": "groan",
}

_BRACKETS = re.compile(r"^[\[\(<{]+|[\]\)>}]+$")
_SEPARATORS = re.compile(r"[\s\-]+")


def normalise_spelling(tag: str) -> str:
    """Strip tag brackets and case: ``'[Throat Clearing]'`` -> ``'throat_clearing'``."""
    bare = _BRACKETS.sub("", tag.strip()).strip().lower()
    return _SEPARATORS.sub("_", bare)


def canonical_label(tag: str) -> str:
    """Map any accepted spelling of an event to its canonical label; raise for unknown ones."""
    key = normalise_spelling(tag)
    if key in LABELS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise SynparaError(f"unknown event label {tag!r}; known: {', '.join(LABELS)}")


def is_event_tag(tag: str) -> bool:
    """True when ``tag`` is a spelling of a known event (used when parsing tagged text)."""
    key = normalise_spelling(tag)
    return key in LABELS or key in _ALIASES


_WORD_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def label_from_name(name: str) -> str | None:
    """The one event label a file or folder name spells, else ``None`` (none, or several).

    Words are split at ``_``, ``-``, digits and camelCase; adjacent words are also tried joined
    (``throat-clearing``, ``TongueClicking``).

    >>> label_from_name("hedgewars_Mobster_Laugh.ogg")
    'laughter'
    >>> label_from_name("PoisonCough"), label_from_name("tongue-clicking")
    ('cough', 'tsk')
    >>> label_from_name("recording_042.wav") is None
    True
    """
    stem = name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    words = [w.lower() for w in _WORD_PARTS.findall(stem)]
    found: list[str] = []
    for size in (2, 1):  # joined pairs first: "throat clearing" is not "throat" + "clearing"
        for index in range(len(words) - size + 1):
            key = "_".join(words[index : index + size])
            if is_event_tag(key) and key != "pause" and key != "silence":
                found.append(canonical_label(key))
        if found:
            break
    labels = set(found)
    return labels.pop() if len(labels) == 1 else None
