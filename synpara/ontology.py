"""The canonical label set for nonverbal events, and every spelling we accept for each label.

Corpora spell the same event many ways (``[laugh]``, ``(laughs)``, ``<laugh>``, ``[Laughter]``,
``[throatclearing]`` ...). Inside synpara there is one spelling: the keys of :data:`LABELS`.
Tag styles for *writing* labels back out live in the export stage; this module only reads.

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
    "tsk": "tongue click, tut-tut",
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
    "tongue_click": "tsk",
    "tut": "tsk",
    "snores": "snore",
    "snoring": "snore",
    "silence": "pause",
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
