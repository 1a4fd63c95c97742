"""What training mixtures are made of: the bank's vocalization clips and the host speech, each split
into train and dev by source, so no dev figure is measured on a clip, voice or host the head heard.

Bank layout: a folder of clips; a clip's label is its sub-folder's name or, at the top level, the
first token of its file name that :func:`synpara.ontology.canonical_label` knows
(``hedgewars_Default_PoisonCough.ogg`` -> ``cough``). Folders that name no ontology label
(``nose_blowing``) are kept as unlabelled hard negatives. The *group* of a clip (its speaker or
source voice) decides the split: ``2FYX_10_8.flac`` -> ``2FYX``; ``hedgewars_Default_Laugh.ogg``
-> ``hedgewars_Default``; ``cough_scratch_female.wav`` -> ``scratch_female``.

>>> clips = scan_bank(Path("../shared/data/vocal"))                      # doctest: +SKIP
>>> train, dev = split_bank(clips, dev_fraction=0.3, seed=0)             # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synpara.errors import SynparaError
from synpara.ontology import canonical_label

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a")
_SPEAKER_ID = re.compile(r"^([A-Z0-9]{4})_")  # vocal_nc style: 4-character speaker id


@dataclass(frozen=True, slots=True)
class BankClip:
    """One vocalization file: ``label`` None marks a hard negative (a folder with no label)."""

    path: Path
    label: str | None
    group: str


def _tokens(stem: str) -> list[str]:
    """File-name words, split on ``_``/``-`` and camel case (``PoisonCough`` -> poison, cough)."""
    words = []
    for part in re.split(r"[_\-\s.]+", stem):
        words += [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", part)]
    return words


def _label_of(word: str) -> str | None:
    try:
        return canonical_label(word)
    except SynparaError:
        return None


def clip_label_and_group(path: Path, bank: Path) -> tuple[str | None, str, bool]:
    """``(label, group, labelled_folder)`` of one bank file (see the module docstring)."""
    relative = path.relative_to(bank)
    speaker = _SPEAKER_ID.match(path.name)
    if len(relative.parts) > 1:  # label from the folder; None for negative folders
        label = _label_of(relative.parts[0])
        group = speaker.group(1) if speaker else f"{relative.parts[0]}/{path.stem}"
        return label, group, True
    words = path.stem.split("_")
    label, kept = None, []
    for word in words:
        found = None
        for token in _tokens(word):
            found = found or _label_of(token)
        if found and label is None:
            label = found
            continue
        kept.append(word)
    group = speaker.group(1) if speaker else "_".join(kept) or path.stem
    return label, group, False


def scan_bank(bank: str | Path) -> list[BankClip]:
    """Every audio file under ``bank`` with its label and group; raises when none is usable."""
    bank = Path(bank)
    if not bank.is_dir():
        raise SynparaError("bank is not a directory", bank)
    clips = []
    for path in sorted(bank.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            continue
        label, group, in_folder = clip_label_and_group(path, bank)
        if label is None and not in_folder:
            log.warning("%s: no known label in the file name; skipped", path)
            continue
        clips.append(BankClip(path, label, group))
    if not any(c.label for c in clips):
        raise SynparaError("no labelled audio clips in the bank (label = folder or file name)",
                           bank)
    return clips


def split_bank(clips: list[BankClip], dev_fraction: float = 0.3, seed: int = 0
               ) -> tuple[list[BankClip], list[BankClip]]:
    """Train/dev split by group (speaker or source voice): no voice is on both sides.

    Groups are dealt label by label, rarest label first, so every label with two or more groups
    gets at least one dev group and keeps at least one training group.
    """
    rng = np.random.default_rng(seed)
    groups: dict[str, set[str | None]] = {}
    for clip in clips:
        groups.setdefault(clip.group, set()).add(clip.label)
    dev_groups: set[str] = set()
    train_groups: set[str] = set()
    labels = sorted({c.label for c in clips if c.label},
                    key=lambda lab: (sum(lab in g for g in groups.values()), lab))
    for label in labels + [None]:
        mine = sorted(g for g, labs in groups.items() if label in labs
                      and g not in dev_groups | train_groups)
        rng.shuffle(mine)
        total = sum(label in groups[g] for g in groups)
        have_dev = sum(label in groups[g] for g in dev_groups)
        want_dev = 0 if total < 2 else max(1, int(round(dev_fraction * total))) - have_dev
        for group in mine:
            has_train = any(label in groups[g] for g in train_groups)
            if want_dev > 0 and (has_train or len(mine) > 1):
                dev_groups.add(group)
                want_dev -= 1
            else:
                train_groups.add(group)
    train = [c for c in clips if c.group in train_groups]
    dev = [c for c in clips if c.group in dev_groups]
    return train, dev


def scan_hosts(paths: list[str | Path]) -> list[Path]:
    """Audio files under the given files/folders (sorted), skipping ``laughspeech`` (held out)."""
    found: list[Path] = []
    for entry in paths:
        entry = Path(entry)
        if entry.is_file():
            found.append(entry)
        elif entry.is_dir():
            found += [p for p in sorted(entry.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES
                      and "laughspeech" not in p.parts and "breaths" not in p.stem]
        else:
            raise SynparaError("no such host file or folder", entry)
    if not found:
        raise SynparaError(f"no host speech files under {', '.join(map(str, paths))}")
    return found


def split_hosts(hosts: list[Path], dev_fraction: float = 0.3, seed: int = 0
                ) -> tuple[list[Path], list[Path]]:
    """Train/dev split of host files (a file, and so its speaker turn, is on one side only)."""
    order = np.random.default_rng(seed + 1).permutation(len(hosts))
    n_dev = max(1, int(round(dev_fraction * len(hosts)))) if len(hosts) > 1 else 0
    dev = [hosts[i] for i in sorted(order[:n_dev])]
    train = [hosts[i] for i in sorted(order[n_dev:])]
    return train, dev or train


_ESPEAK_TEXTS = {
    "en": "I told you we would get there early, but nobody listened to me at all.",
    "en-us": "Well, the meeting went on for hours and then the power went out.",
    "de": "Ich habe das wirklich nicht erwartet, aber es war am Ende ganz gut.",
    "fr": "Je ne sais pas pourquoi il a fait ça, mais c'était vraiment drôle.",
    "es": "No me lo puedo creer, otra vez llegamos tarde a la estación.",
    "it": "Abbiamo camminato tutto il giorno e poi abbiamo perso il treno.",
    "pt": "Eu achei que ia chover, mas o dia ficou bonito no final.",
    "cmn": "我们昨天去了公园，天气很好，大家都很开心。",
    "ja": "きのうは雨がふっていたので、ずっと家にいました。",
    "ru": "Мы долго ждали автобус, а потом пошли пешком домой.",
    "nl": "We hebben de hele middag gepraat en toen was het al donker.",
    "hi": "कल हम बाज़ार गए और बहुत सारी चीज़ें खरीदीं।",
}


#: espeak-ng voice variants (and speaking rates) a language is read in, in order of use.
ESPEAK_VARIANTS = (("", 160), ("+f3", 140), ("+m3", 185))


def espeak_hosts(out_dir: Path, variants: int = len(ESPEAK_VARIANTS)) -> list[Path]:
    """Host utterances in several languages from espeak-ng, each in the first ``variants`` of
    :data:`ESPEAK_VARIANTS` (made once, cached in ``out_dir``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for voice, text in _ESPEAK_TEXTS.items():
        for variant, speed in ESPEAK_VARIANTS[:variants]:
            path = out_dir / f"espeak_{voice}{variant.replace('+', '_')}.wav"
            if not path.exists():
                try:
                    subprocess.run(["espeak-ng", "-v", voice + variant, "-s", str(speed), "-w",
                                    str(path), text], check=True, capture_output=True, timeout=60)
                except (OSError, subprocess.SubprocessError) as error:
                    log.warning("espeak-ng %s failed (%s); host skipped", voice, error)
                    continue
            made.append(path)
    return made


def load_mono(path: Path) -> np.ndarray:
    """16 kHz mono float32, DC removed (some bank clips carry a large offset)."""
    return load_mono_with_rate(path)[0]


def load_mono_with_rate(path: Path) -> tuple[np.ndarray, int]:
    """:func:`load_mono` and the file's own sample rate (its band: half of it)."""
    from synpara.audio import decode, resample, to_mono

    decoded = decode(path)
    samples = resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)
    return (samples - np.mean(samples)).astype(np.float32), decoded.sample_rate
