"""Tag styles: how a corpus or TTS family spells each canonical event label.

The tables are data (``synpara/data/tag_styles.yaml``); a user's YAML file of the same shape
(``label: tag``) is accepted wherever a style name is. ``canonical`` writes ``[label]`` for every
label. A label that a style has no tag for is an error naming the label: an exported corpus never
loses an event silently.

>>> style = load_style("orpheus")
>>> style.tag("laughter")
'<laugh>'
>>> style.text([("so", 0.0, 0.2), ("funny", 0.3, 0.7)], [("laughter", 0.8, 1.5)])
'so funny <laugh>'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from synpara.errors import SynparaError
from synpara.ontology import LABELS

CANONICAL = "canonical"


@dataclass(frozen=True)
class TagStyle:
    """A named mapping from canonical label to the tag text written for it."""

    name: str
    tags: dict[str, str]

    def tag(self, label: str) -> str:
        try:
            return self.tags[label]
        except KeyError:
            known = ", ".join(sorted(self.tags))
            raise SynparaError(
                f"tag style {self.name!r} has no tag for event label {label!r} (it has: {known}); "
                "choose another --tags style or give a mapping file"
            ) from None

    def text(
        self,
        words: Sequence[tuple[str, float, float]],
        events: Sequence[tuple[str, float, float]],
    ) -> str:
        """Words and events in time order, each event written as this style's tag."""
        from synpara.tagged_text import merge_in_time

        parts = [
            self.tag(symbol) if kind == "event" else symbol
            for kind, symbol in merge_in_time(words, events)
        ]
        return " ".join(part for part in parts if part)


def style_names() -> list[str]:
    return [CANONICAL, *sorted(_builtin_tables())]


def _builtin_tables() -> dict[str, dict[str, str]]:
    import yaml

    text = resources.files("synpara").joinpath("data/tag_styles.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def load_style(name_or_path: str) -> TagStyle:
    """A built-in style by name, or a YAML mapping file ``label: tag``."""
    if name_or_path == CANONICAL:
        return TagStyle(CANONICAL, {label: f"[{label}]" for label in LABELS})
    tables = _builtin_tables()
    if name_or_path in tables:
        return TagStyle(name_or_path, dict(tables[name_or_path]))
    path = Path(name_or_path)
    if not path.is_file():
        raise SynparaError(
            f"unknown tag style {name_or_path!r}; use one of {', '.join(style_names())} "
            "or a YAML file mapping labels to tags"
        )
    import yaml

    try:
        table = yaml.safe_load(path.read_text("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SynparaError(f"not a YAML mapping ({str(error).splitlines()[0]})", path) from None
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in table.items()
    ):
        raise SynparaError("a tag style file maps label strings to tag strings", path)
    unknown = sorted(set(table) - set(LABELS))
    if unknown:
        raise SynparaError(f"tag style maps unknown label(s) {', '.join(unknown)}", path)
    return TagStyle(path.stem, table)
