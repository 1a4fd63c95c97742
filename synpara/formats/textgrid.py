"""Praat TextGrids, one per exported recording: tiers for speaker turns, words and events."""

from __future__ import annotations

import os
from pathlib import Path


def write_textgrids(manifest: Path, out_dir: Path) -> list[Path]:
    from praatio import textgrid
    from praatio.utilities.constants import Interval

    from synpara.manifest import EVENT, WORD, iter_cuts

    folder = out_dir / "textgrid"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for cut in iter_cuts(manifest):
        end = cut.recording.duration

        def tier(
            name: str, spans: list[tuple[float, float, str]], end: float = end
        ) -> textgrid.IntervalTier:
            # Praat tiers hold non-overlapping intervals: an overlapping one is clipped to start
            # where the one before it ends (overlap stays visible in the manifest itself).
            entries, last_end = [], 0.0
            for start, stop, label in sorted(spans):
                start, stop = max(start, last_end, 0.0), min(stop, end)
                if stop - start > 1e-6:
                    entries.append(Interval(round(start, 6), round(stop, 6), label))
                    last_end = stop
            return textgrid.IntervalTier(name, entries, 0.0, end)

        offset = cut.start  # alignment items are in recording time
        turns, words, events = [], [], []
        for sup in cut.supervisions:
            turns.append((sup.start, sup.end, sup.speaker or ""))
            for item in (sup.alignment or {}).get(WORD, []):
                words.append((item.start - offset, item.end - offset, item.symbol))
            for item in (sup.alignment or {}).get(EVENT, []):
                events.append((item.start - offset, item.end - offset, item.symbol))
        grid = textgrid.Textgrid(0.0, end)
        for name, spans in (("speaker", turns), ("words", words), ("events", events)):
            grid.addTier(tier(name, spans))
        path = folder / f"{cut.id}.TextGrid"
        tmp = folder / f".{cut.id}.TextGrid.tmp"
        grid.save(str(tmp), format="long_textgrid", includeBlankSpaces=True)
        os.replace(tmp, path)
        written.append(path)
    return written
