"""Word timing error: how far predicted word boundaries are from the truth, in milliseconds.

Words are matched per recording: both word sequences are normalised (case, punctuation) and
aligned with an edit-distance alignment, so a missed or inserted word does not shift the rest.
Only matched words are timed; the match rate says how many truth words found a partner.

>>> truth = [Word("so", 0.50, 0.70), Word("funny", 0.90, 1.30)]
>>> pred = [Word("So,", 0.31, 0.74), Word("funny.", 0.80, 1.25)]
>>> score = score_words({"rec": truth}, {"rec": pred})
>>> score.match_rate, round(score.start_median_ms), round(score.end_median_ms)
(1.0, 145, 45)

Command line (manifests with ``alignment["word"]``; recordings are matched by recording id, so
a prediction that split cuts differently is still compared word for word)::

    synpara eval words --truth truth/cuts.jsonl.gz --pred output/refine/cuts.jsonl.gz
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np

from synpara.asr import Word
from synpara.errors import SynparaError

_PUNCTUATION = re.compile(r"[^\w']+", re.UNICODE)


@dataclass(frozen=True)
class WordScore:
    """Boundary errors over the matched words (absolute errors, milliseconds).

    ``start_bias_ms`` is the median signed error (prediction minus truth): negative means early.
    """

    truth_words: int
    pred_words: int
    matched: int
    match_rate: float
    start_median_ms: float
    start_p90_ms: float
    end_median_ms: float
    end_p90_ms: float
    start_bias_ms: float
    end_bias_ms: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"matched {self.matched}/{self.truth_words} truth words ({self.match_rate:.1%}); "
            f"start error median {self.start_median_ms:.0f} ms, p90 {self.start_p90_ms:.0f} ms "
            f"(bias {self.start_bias_ms:+.0f} ms); end error median {self.end_median_ms:.0f} ms, "
            f"p90 {self.end_p90_ms:.0f} ms (bias {self.end_bias_ms:+.0f} ms)"
        )


def normalise_word(text: str) -> str:
    """Lower case without punctuation: ``'Funny.'`` -> ``'funny'``."""
    return _PUNCTUATION.sub("", text.lower()).strip("'")


def match_words(truth: Sequence[str], pred: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of equal words on a minimum-edit alignment of the two sequences (in order)."""
    a = [normalise_word(t) for t in truth]
    b = [normalise_word(p) for p in pred]
    n, m = len(a), len(b)
    # Levenshtein table; ties prefer the diagonal so equal words pair up.
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diagonal = cost[i - 1, j - 1] + (0 if a[i - 1] == b[j - 1] else 1)
            cost[i, j] = min(diagonal, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        same = a[i - 1] == b[j - 1]
        if cost[i, j] == cost[i - 1, j - 1] + (0 if same else 1):
            if same:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def boundary_errors(
    truth: dict[str, list[Word]], pred: dict[str, list[Word]]
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Signed start and end errors (seconds, prediction minus truth) of matched words, plus the
    truth and prediction word counts."""
    starts: list[float] = []
    ends: list[float] = []
    truth_count = sum(len(words) for words in truth.values())
    pred_count = sum(len(words) for words in pred.values())
    for recording_id, truth_words in truth.items():
        pred_words = pred.get(recording_id, [])
        pairs = match_words([w.text for w in truth_words], [w.text for w in pred_words])
        for i, j in pairs:
            starts.append(pred_words[j].start - truth_words[i].start)
            ends.append(pred_words[j].end - truth_words[i].end)
    return np.asarray(starts), np.asarray(ends), truth_count, pred_count


def score_words(
    truth: dict[str, list[Word]], pred: dict[str, list[Word]]
) -> WordScore:
    """Match rate and median / p90 absolute start and end error (ms) per recording id."""
    starts, ends, truth_count, pred_count = boundary_errors(truth, pred)

    def stat(values: np.ndarray, q: float, absolute: bool = True) -> float:
        if len(values) == 0:
            return float("nan")
        data = np.abs(values) if absolute else values
        return round(float(np.percentile(data, q)) * 1000, 1)

    return WordScore(
        truth_words=truth_count,
        pred_words=pred_count,
        matched=len(starts),
        match_rate=round(len(starts) / truth_count, 4) if truth_count else float("nan"),
        start_median_ms=stat(starts, 50),
        start_p90_ms=stat(starts, 90),
        end_median_ms=stat(ends, 50),
        end_p90_ms=stat(ends, 90),
        start_bias_ms=stat(starts, 50, absolute=False),
        end_bias_ms=stat(ends, 50, absolute=False),
    )


def words_by_recording(cuts: Iterable) -> dict[str, list[Word]]:
    """Recording id -> its words in time order (alignment items are already in recording time)."""
    from synpara.manifest import WORD, items

    found: dict[str, list[Word]] = {}
    for cut in cuts:
        words = found.setdefault(cut.recording_id, [])
        words.extend(Word(w.symbol, w.start, w.end) for w in items(cut, WORD))
    for words in found.values():
        # Overlapping cuts of one recording would list a word twice; keep one of each.
        unique = {(w.text, round(w.start, 4), round(w.end, 4)): w for w in words}
        words[:] = sorted(unique.values(), key=lambda w: (w.start, w.end))
    return found


def read_manifest_words(path: str | Path) -> dict[str, list[Word]]:
    from synpara.manifest import iter_cuts

    found = words_by_recording(iter_cuts(path))
    if not any(found.values()):
        raise SynparaError("no words (alignment['word']) in this manifest", path)
    return found


@click.command(name="words")
@click.option("--truth", "truth_path", required=True, type=click.Path(dir_okay=False),
              help="manifest with the true word times")
@click.option("--pred", "pred_path", required=True, type=click.Path(dir_okay=False),
              help="manifest with predicted word times (e.g. refine's output)")
@click.option("--json", "as_json", is_flag=True, help="print the figures as one JSON object")
def command(truth_path: str, pred_path: str, as_json: bool) -> None:
    """Word boundary error: match rate, median and p90 start / end error (ms).

    \b
    Example:
      synpara eval words --truth truth/cuts.jsonl.gz --pred output/refine/cuts.jsonl.gz
    """
    truth = read_manifest_words(truth_path)
    pred = read_manifest_words(pred_path)
    if not set(truth) & set(pred):
        raise SynparaError(f"no recording id in common with the truth manifest {truth_path}",
                           pred_path)
    score = score_words(truth, pred)
    click.echo(json.dumps(score.to_dict()) if as_json else score.summary())
