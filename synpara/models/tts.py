"""Text-to-speech engines for host speech, word by word so that every word's time is exact.

Each engine speaks one word per call; the word's sound (what lies within ``range_db`` of its
loudest sample) is kept, and the tts stage joins words with pauses it draws, so a word's start and
end are known to the sample. espeak-ng (GPL-3 program, called as a command) and festival
(``text2wave``, Debian's ``festival`` + ``festvox-kallpc16k``) are supported; neither is imported.

>>> engine = load_engine("espeak-ng")                              # doctest: +SKIP
>>> samples = engine.word("hello", "en-us")                          # doctest: +SKIP
>>> engine.sample_rate
22050
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError

#: A word's sound ends where it falls this far (dB) under the word's peak.
WORD_RANGE_DB = 60.0


@dataclass(frozen=True)
class Engine:
    """One TTS engine: its command, rate and default voice."""

    name: str
    sample_rate: int
    default_voice: str

    def language(self, voice: str | None = None) -> str:
        """The language code a voice speaks: espeak-ng's voice name up to the first ``-``/``+``
        (``en-us+m3`` -> ``en``, ``cmn`` -> ``cmn``); festival's packaged voices are English."""
        if self.name != "espeak-ng":
            return "en"
        return re.split(r"[-+_]", (voice or self.default_voice).lower(), maxsplit=1)[0]

    def word(self, text: str, voice: str | None = None, words_per_minute: int = 165) -> np.ndarray:
        """One word as float32 mono samples at :attr:`sample_rate`, trimmed to its sound."""
        from synpara.audio import decode, resample, to_mono

        voice = voice or self.default_voice
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "word.wav"
            if self.name == "espeak-ng":
                command = [
                    "espeak-ng",
                    "-v",
                    voice,
                    "-s",
                    str(words_per_minute),
                    "-w",
                    str(path),
                    text,
                ]
                stdin = None
            else:
                command = ["text2wave", "-o", str(path), "-eval", f"(voice_{voice})"]
                stdin = text
            result = subprocess.run(command, input=stdin, capture_output=True, text=True)
            if result.returncode != 0 or not path.exists():
                reason = result.stderr.strip().splitlines()[-1:] or ["no output"]
                raise SynparaError(
                    f"{self.name} failed on {text!r} with voice {voice!r}: {reason[0]}"
                )
            decoded = decode(path)
        samples = resample(to_mono(decoded.samples), decoded.sample_rate, self.sample_rate)
        return trim_to_sound(samples)


def trim_to_sound(samples: np.ndarray, range_db: float = WORD_RANGE_DB) -> np.ndarray:
    """The samples from the first to the last one within ``range_db`` of the peak."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak <= 0:
        return samples[:0]
    loud = np.flatnonzero(np.abs(samples) >= peak * 10 ** (-range_db / 20))
    return np.asarray(samples[loud[0] : loud[-1] + 1], dtype=np.float32)


ENGINES: dict[str, tuple[str, int, str]] = {
    # name: (command that must exist, output rate, default voice)
    "espeak-ng": ("espeak-ng", 22050, "en-us"),
    "festival": ("text2wave", 16000, "kal_diphone"),
}


#: Every engine ``synpara tts`` knows: the word-by-word commands above, and piper (whole lines,
#: :mod:`synpara.models.piper_voice`; an optional GPL extra, imported only when asked for).
ENGINE_NAMES = (*ENGINES, "piper")


def load_engine(name: str) -> Any:
    """The engine called ``name``, checked to be installed (with an install hint)."""
    if name == "piper":
        from synpara.models.piper_voice import load_piper

        return load_piper()
    if name not in ENGINES:
        raise SynparaError(f"unknown TTS engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    command, rate, voice = ENGINES[name]
    if shutil.which(command) is None:
        package = "espeak-ng" if name == "espeak-ng" else "festival festvox-kallpc16k"
        raise SynparaError(
            f"{name} is not installed ({command} not found): apt-get install {package}"
        )
    return Engine(name=name, sample_rate=rate, default_voice=voice)
