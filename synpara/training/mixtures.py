"""Training mixtures for the event head: vocalizations from a bank laid into host speech, with
exact labels (seconds), in pauses *and* over speech, plus hard negatives and the domain spread of
real audio (reverb, telephone band, lossy codecs, noise, level).

Self-contained on purpose: the ``insert`` stage (``synpara/stages/insert.py``) will own splicing
and overlay; :func:`make_mixture` is the one function to swap for it. Clips and hosts, and their
train/dev splits, come from ``sources.py``.

>>> write_mixtures(out / "dev", dev_clips, dev_hosts, count=60, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synpara.errors import SynparaError
from synpara.training.sources import SAMPLE_RATE, BankClip, load_mono, load_mono_with_rate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MixConfig:
    """How mixtures are drawn (every draw from the mixture's own generator)."""

    host_seconds: tuple[float, float] = field(
        default=(3.0, 9.0), metadata={"help": "host speech excerpt length range (s)"})
    max_events: int = field(default=3, metadata={"help": "most events per mixture"})
    negative_fraction: float = field(
        default=0.4, metadata={"help": "share of mixtures with no event (speech-only): the "
                                       "head learns what is *not* an event, and dev measures "
                                       "its false alarms, on these"})
    crosstalk_p: float = field(
        default=0.25, metadata={"help": "chance of a second host talking underneath (a hard "
                                        "negative: overlapping speech, TV in the room)"})
    crosstalk_db: tuple[float, float] = field(
        default=(-20.0, -3.0), metadata={"help": "level of that second talker (dB re host)"})
    overlay_fraction: float = field(
        default=0.5, metadata={"help": "share of events laid over speech instead of in a pause"})
    gain_db: tuple[float, float] = field(
        default=(-10.0, 4.0), metadata={"help": "event level relative to the host's (dB)"})
    speed: tuple[float, float] = field(
        default=(0.85, 1.2), metadata={"help": "resampling factor range: speed and pitch together"})
    reverb_p: float = field(default=0.3, metadata={"help": "chance of synthetic room reverb"})
    telephone_p: float = field(default=0.15, metadata={"help": "chance of a 300-3400 Hz band"})
    event_band_p: float = field(
        default=0.0, metadata={"help": "chance that an event clip (any label, hard negatives "
                                       "too) is band-limited as if recorded at 2x a cutoff "
                                       "drawn from event_band_hz, before it is laid in: "
                                       "band-limited events of every label, so the band says "
                                       "nothing about the label (vocal/'s only giggle "
                                       "training clip is 8 kHz)"})
    event_band_hz: tuple[float, float] = field(
        default=(3400.0, 4000.0), metadata={"help": "cutoff range of that band limit (Hz; "
                                                    "4000 = an 8 kHz source)"})
    host_band_p: float = field(
        default=0.0, metadata={"help": "chance that the host speech is band-limited too: to "
                                       "the narrowest event's band when an event is limited "
                                       "(its clip's own sample rate is under 16 kHz, or "
                                       "event_band_p made it so), so the event is no narrower "
                                       "than the speech around it; else (speech-only mixtures "
                                       "too) to a cutoff from event_band_hz"})
    codec_p: float = field(default=0.2, metadata={"help": "chance of an mp3/opus round trip"})
    noise_p: float = field(default=0.6, metadata={"help": "chance of added noise"})
    snr_db: tuple[float, ...] = field(
        default=(0.0, 5.0, 10.0, 20.0, 30.0), metadata={"help": "noise SNRs drawn from (dB)"})


#: Options added after heads were shipped, with the value that leaves the mixtures as they were.
#: At that value they are left out of a recorded recipe (:func:`mix_recipe`), so a head made
#: before they existed is still reproduced byte for byte by its own recipe.
_ADDED_OFF: dict[str, Any] = {"event_band_p": 0.0, "host_band_p": 0.0}
_ADDED_WITH = {"event_band_hz": ("event_band_p", "host_band_p")}  # only means something with


def mix_recipe(config: MixConfig) -> dict[str, Any]:
    """``config`` as a dict for a head's provenance and the mixture cache's key: every field,
    less the later-added ones at their "off" value (and what only they use)."""
    from dataclasses import asdict

    recipe = asdict(config)
    off = {k for k, v in _ADDED_OFF.items() if recipe[k] == v}
    for key, users in _ADDED_WITH.items():
        if off.issuperset(users):
            off.add(key)
    return {k: v for k, v in recipe.items() if k not in off}


# --------------------------------------------------------------------------- one mixture


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def _active_rms(x: np.ndarray) -> float:
    """RMS of the louder half of 20 ms frames: a host's speech level, not its pauses'."""
    frames = x[: len(x) // 320 * 320].reshape(-1, 320)
    if not len(frames):
        return _rms(x)
    energy = np.mean(frames.astype(np.float64) ** 2, axis=1)
    return float(np.sqrt(np.mean(np.sort(energy)[len(energy) // 2:]) + 1e-12))


def _prepare_event(clip: np.ndarray, rng: np.random.Generator, config: MixConfig
                   ) -> tuple[np.ndarray, int, int]:
    """Speed/pitch-shifted event and the ``(start_sample, end_sample)`` of its audible part."""
    from scipy.signal import resample_poly

    from synpara.audio import active_span

    factor = rng.uniform(*config.speed)
    up = 100
    down = int(round(up * factor))
    shifted = resample_poly(clip, up, down).astype(np.float32) if down != up else clip
    start, end = active_span(shifted, SAMPLE_RATE, below_peak_db=30.0)
    if end <= start:
        return shifted, 0, 0
    # Keep 50 ms of lead-in/out audio but label only the audible part.
    lead = int(0.05 * SAMPLE_RATE)
    a, b = max(0, start - lead), min(len(shifted), end + lead)
    return shifted[a:b], start - a, end - a


def _pause_points(host: np.ndarray) -> np.ndarray:
    """Sample positions of quiet 20 ms frames (pause candidates), else evenly spread points."""
    frames = host[: len(host) // 320 * 320].reshape(-1, 320)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10)
    if not len(energy):
        return np.array([0])
    quiet = np.flatnonzero(energy < np.percentile(energy, 15) + 3.0)
    return (quiet if len(quiet) else np.arange(len(energy))) * 320 + 160


def make_mixture(host: np.ndarray, events: list[tuple[str | None, np.ndarray]],
                 rng: np.random.Generator, config: MixConfig
                 ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Lay ``events`` (label, clip) into ``host``: each in a pause or over speech.

    Returns the mixture and its labelled events ``{"label", "start", "end", "overlay"}``; clips with
    a None label are placed the same way but not labelled (hard negatives).
    """
    mix = host.astype(np.float32).copy()
    level = _active_rms(host)
    placed: list[dict[str, Any]] = []
    for label, clip in events:
        audio, on, off = _prepare_event(clip, rng, config)
        if off <= on:
            continue
        gain = level * 10 ** (rng.uniform(*config.gain_db) / 20) / max(_active_rms(audio), 1e-6)
        audio = audio * gain
        overlay = rng.random() < config.overlay_fraction
        if overlay:
            at = int(rng.integers(0, max(1, len(mix) - len(audio))))
            end = at + len(audio)
            if end > len(mix):
                mix = np.concatenate([mix, np.zeros(end - len(mix), np.float32)])
            mix[at:end] += audio
        else:  # splice into a pause: the host after the point moves right
            at = int(rng.choice(_pause_points(mix)))
            gap_before = int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
            gap_after = int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
            inserted = np.concatenate([np.zeros(gap_before, np.float32), audio,
                                       np.zeros(gap_after, np.float32)])
            shift = len(inserted)
            for event in placed:  # events already laid after the point move with the host
                if event["start"] >= at / SAMPLE_RATE:
                    event["start"] += shift / SAMPLE_RATE
                    event["end"] += shift / SAMPLE_RATE
            mix = np.concatenate([mix[:at], inserted, mix[at:]])
            at += gap_before
        if label is not None:
            placed.append({"label": label, "start": (at + on) / SAMPLE_RATE,
                           "end": (at + off) / SAMPLE_RATE, "overlay": bool(overlay)})
    return mix, sorted(placed, key=lambda e: e["start"])


def _crosstalk(host: np.ndarray, other: np.ndarray, rng: np.random.Generator, config: MixConfig
               ) -> np.ndarray:
    """``host`` with an excerpt of ``other`` speech under it (looped when shorter)."""
    start = int(rng.integers(0, max(1, len(other) - len(host))))
    under = np.resize(other[start:start + len(host)], len(host)).astype(np.float32)
    gain = _active_rms(host) / _active_rms(under) * 10 ** (rng.uniform(*config.crosstalk_db) / 20)
    return (host + gain * under).astype(np.float32)


# --------------------------------------------------------------------------- domain spread


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown noise (shaped in the frequency domain)."""
    white = rng.standard_normal(n)
    slope = rng.choice([0.0, 0.5, 1.0])
    if slope == 0.0:
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    return np.fft.irfft(spectrum / freqs ** slope, n)


def _reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.8)
    length = int(rt60 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    ir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    ir[0] = 1.0  # the direct path
    ir *= 1.0 / np.sqrt(np.sum(ir ** 2))
    return fftconvolve(x, ir)[: len(x)].astype(np.float32)


def _telephone(x: np.ndarray) -> np.ndarray:
    from scipy.signal import butter, resample_poly, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = resample_poly(sosfilt(sos, x), 1, 2)
    return resample_poly(narrow, 2, 1)[: len(x)].astype(np.float32)


def band_limit(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """16 kHz ``x`` as if recorded at ``2 * cutoff_hz`` (rounded to 100 Hz) and resampled back:
    nothing above the cutoff, the same length and timing (the resampling filter is centred)."""
    from math import gcd

    from scipy.signal import resample_poly

    rate = int(round(2 * cutoff_hz / 100)) * 100
    if rate >= SAMPLE_RATE:
        return x
    g = gcd(rate, SAMPLE_RATE)
    narrow = resample_poly(resample_poly(x, rate // g, SAMPLE_RATE // g), SAMPLE_RATE // g,
                           rate // g)
    out = np.zeros(len(x), np.float32)
    out[: min(len(x), len(narrow))] = narrow[: len(x)]
    return out


def _band_limit_events(host: np.ndarray, events: list[tuple[str | None, np.ndarray, int]],
                       rng: np.random.Generator, config: MixConfig
                       ) -> tuple[np.ndarray, list[tuple[str | None, np.ndarray]], float | None]:
    """``event_band_p`` and ``host_band_p``: band-limit some event clips (``(label, clip,
    native_rate)``), then perhaps the host (to the narrowest event band, if any); returns the
    host, the events and the host's new cutoff (None: untouched)."""
    out: list[tuple[str | None, np.ndarray]] = []
    narrowest = SAMPLE_RATE / 2
    for label, clip, rate in events:
        cutoff = rate / 2
        if config.event_band_p > 0 and rng.random() < config.event_band_p:
            drawn = float(rng.uniform(*config.event_band_hz))
            if drawn < cutoff:
                clip, cutoff = band_limit(clip, drawn), drawn
        narrowest = min(narrowest, cutoff)
        out.append((label, clip))
    if config.host_band_p > 0 and rng.random() < config.host_band_p:
        if narrowest >= SAMPLE_RATE / 2:
            narrowest = float(rng.uniform(*config.event_band_hz))
        return band_limit(host, narrowest), out, narrowest
    return host, out, None


def _codec(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An mp3 or opus round trip through ffmpeg; the input is returned if ffmpeg fails."""
    import soundfile

    codec = ("libmp3lame", "mp3", rng.choice(["32k", "48k", "64k"])) if rng.random() < 0.5 \
        else ("libopus", "ogg", rng.choice(["12k", "16k", "24k"]))
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / f"out.{codec[1]}"
        soundfile.write(src, np.clip(x, -1, 1), SAMPLE_RATE)
        back = Path(tmp) / "back.wav"
        try:
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src),
                            "-c:a", codec[0], "-b:a", str(codec[2]), str(dst)], check=True,
                           timeout=60)
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(dst),
                            "-ar", str(SAMPLE_RATE), "-ac", "1", str(back)], check=True,
                           timeout=60)
            decoded, _ = soundfile.read(back, dtype="float32")
        except (OSError, subprocess.SubprocessError) as error:
            log.warning("codec round trip failed (%s); kept the clean mixture", error)
            return x
    out = np.zeros(len(x), np.float32)
    out[: min(len(x), len(decoded))] = decoded[: len(x)]
    return out


def add_domain(x: np.ndarray, rng: np.random.Generator, config: MixConfig
               ) -> tuple[np.ndarray, dict[str, Any]]:
    """Reverb, band limit, noise at an SNR, lossy codec and a level change, each by chance."""
    applied: dict[str, Any] = {}
    if rng.random() < config.reverb_p:
        x, applied["reverb"] = _reverb(x, rng), True
    if rng.random() < config.noise_p:
        snr = float(rng.choice(config.snr_db))
        noise = _noise(len(x), rng)
        x = x + noise * (_active_rms(x) / _rms(noise) / 10 ** (snr / 20))
        applied["snr_db"] = snr
    if rng.random() < config.telephone_p:
        x, applied["telephone"] = _telephone(x), True
    peak = float(np.max(np.abs(x))) or 1.0
    level_db = rng.uniform(-30.0, -1.0)  # peak level: quiet recordings and hot ones
    x = (x / peak * 10 ** (level_db / 20)).astype(np.float32)
    applied["peak_dbfs"] = round(level_db, 1)
    if rng.random() < config.codec_p:
        x, applied["codec"] = _codec(x, rng), True
    return x.astype(np.float32), applied


# --------------------------------------------------------------------------- a set of mixtures


def write_mixtures(out_dir: str | Path, clips: list[BankClip], hosts: list[Path], count: int,
                   seed: int, config: MixConfig = MixConfig()) -> Path:
    """Write ``count`` mixtures as ``out_dir/<id>.flac`` and their truth as
    ``out_dir/truth.jsonl`` (``synpara eval events`` format, plus ``overlay`` per event).

    Mixture ``i`` draws everything from ``default_rng([seed, i])``: a set is reproducible and a
    mixture does not depend on the others. Returns the truth file.
    """
    import soundfile
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_path = out_dir / "truth.jsonl"
    if config.negative_fraction < 1.0 and not any(c.label for c in clips):
        raise SynparaError("no labelled clips to mix", out_dir)
    if not hosts:
        raise SynparaError("no host speech to mix into", out_dir)
    bank_audio = {c.path: load_mono_with_rate(c.path) for c in clips}
    host_audio = {h: load_mono(h) for h in hosts}
    labelled = [c for c in clips if c.label]
    negatives = [c for c in clips if not c.label]
    # Draw labels evenly, then a clip of the label: rare labels are not drowned by common ones.
    by_label: dict[str, list[BankClip]] = {}
    for clip in labelled:
        by_label.setdefault(str(clip.label), []).append(clip)
    label_names = sorted(by_label)
    lines = []
    for index in tqdm(range(count), desc=f"mixtures {out_dir.name}", leave=False):
        rng = np.random.default_rng([seed, index])
        host_path = hosts[int(rng.integers(len(hosts)))]
        host = host_audio[host_path]
        length = int(rng.uniform(*config.host_seconds) * SAMPLE_RATE)
        start = int(rng.integers(0, max(1, len(host) - length)))
        excerpt = host[start:start + length]
        if config.crosstalk_p > 0 and len(hosts) > 1 and rng.random() < config.crosstalk_p:
            excerpt = _crosstalk(excerpt, host_audio[hosts[int(rng.integers(len(hosts)))]], rng,
                                 config)
        chosen: list[tuple[str | None, np.ndarray, int]] = []
        if rng.random() >= config.negative_fraction:
            for _ in range(int(rng.integers(1, config.max_events + 1))):
                label = label_names[int(rng.integers(len(label_names)))]
                pick = by_label[label][int(rng.integers(len(by_label[label])))]
                chosen.append((label, *bank_audio[pick.path]))
        if negatives and rng.random() < 0.3:
            pick = negatives[int(rng.integers(len(negatives)))]
            chosen.append((None, *bank_audio[pick.path]))
        order = rng.permutation(len(chosen))
        # Band limits draw from their own stream: with them off, or on, every other draw of the
        # mixture is the same, so a set with them differs from one without only in the bands.
        excerpt, laid, host_cutoff = _band_limit_events(
            excerpt, [chosen[i] for i in order], np.random.default_rng([seed, index, 1]), config)
        mix, events = make_mixture(excerpt, laid, rng, config)
        mix, domain = add_domain(mix, rng, config)
        if host_cutoff is not None:
            domain["host_band_hz"] = round(host_cutoff)
        mix_id = f"mix-{index:05d}"
        soundfile.write(out_dir / f"{mix_id}.flac", mix, SAMPLE_RATE)
        lines.append({"id": mix_id, "duration": round(len(mix) / SAMPLE_RATE, 4),
                      "host": str(host_path), "domain": domain,
                      "events": [{**e, "start": round(e["start"], 4), "end": round(e["end"], 4)}
                                 for e in events]})
    truth_path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return truth_path


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a ``truth.jsonl`` that :func:`write_mixtures` wrote."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]
