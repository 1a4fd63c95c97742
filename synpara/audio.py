"""Signal code shared by the stages: decode, resample, write, load a cut's samples.

Pure functions on numpy arrays (float32, shape ``(samples,)`` for mono) plus the few that touch
files. A stage that needs a signal helper adds it here instead of keeping a private copy.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synpara.errors import SynparaError

if TYPE_CHECKING:
    from lhotse.cut import Cut

#: The working sample rate of every stage after ingest.
SAMPLE_RATE = 16000
_EXACT_LENGTH_FORMATS = {"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64", "CAF"}


@dataclass(frozen=True)
class DecodedAudio:
    """Samples as decoded from a file: float32 ``(channels, samples)`` at the file's own rate."""

    samples: np.ndarray
    sample_rate: int
    decoder: str  # "soundfile" or "ffmpeg", for provenance and debugging

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate


# --------------------------------------------------------------------------- decoding


def _wav_truncation(path: Path) -> str | None:
    """Reason a RIFF/WAVE file is truncated, else None.

    libsndfile quietly shortens a WAV whose data chunk runs past the end of the file, so a cut-off
    download would pass as a shorter recording; the header tells how long it should have been.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] not in (b"RIFF", b"RIFX") or header[8:12] != b"WAVE":
            return None
        endian = "<" if header[:4] == b"RIFF" else ">"
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return "truncated: no data chunk"
            chunk_id, chunk_size = chunk[:4], struct.unpack(endian + "I", chunk[4:])[0]
            if chunk_id == b"data":
                available = size - handle.tell()
                # 0xFFFFFFFF / 0 are written by streaming encoders that never knew the length.
                if chunk_size not in (0, 0xFFFFFFFF) and available < chunk_size:
                    return (
                        f"truncated: data chunk declares {chunk_size} bytes, file holds {available}"
                    )
                return None
            handle.seek(chunk_size + (chunk_size & 1), os.SEEK_CUR)


def _probe(path: Path) -> dict[str, Any]:
    if shutil.which("ffprobe") is None:
        raise SynparaError("cannot decode with soundfile and ffprobe/ffmpeg is not installed", path)
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=sample_rate,channels,codec_name",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    streams = json.loads(result.stdout or "{}").get("streams", []) if result.returncode == 0 else []
    if not streams:
        message = (
            result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no audio stream"
        )
        raise SynparaError(f"not decodable audio ({message})", path)
    return streams[0]


def _decode_ffmpeg(path: Path) -> DecodedAudio:
    stream = _probe(path)
    sample_rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:a:0",
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "-",
        ],
        capture_output=True,
    )
    errors = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode != 0 or errors:
        # ffmpeg decodes what it can of a damaged file and reports the rest on stderr: a file it
        # complains about is not trusted as training data.
        reason = errors.splitlines()[-1] if errors else f"ffmpeg exit code {result.returncode}"
        raise SynparaError(f"corrupt or truncated audio ({reason})", path)
    samples = np.frombuffer(result.stdout, dtype="<f4")
    usable = len(samples) - len(samples) % channels
    samples = samples[:usable].reshape(-1, channels).T.copy()
    return DecodedAudio(samples=samples, sample_rate=sample_rate, decoder="ffmpeg")


def decode(path: str | Path) -> DecodedAudio:
    """Decode an audio file to float32 ``(channels, samples)``: soundfile first, else ffmpeg.

    Raises :class:`SynparaError` for missing, empty, truncated, corrupt, silent-by-construction
    (zero samples) and non-finite (NaN/inf) audio.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise SynparaError("no such file", path)
    if path.stat().st_size == 0:
        raise SynparaError("empty file (0 bytes)", path)
    truncation = _wav_truncation(path)
    if truncation:
        raise SynparaError(truncation, path)
    try:
        info = soundfile.info(str(path))
        data, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        # Lossless headers state the exact length; for MP3/Vorbis/Opus libsndfile only estimates
        # it (off by a few frames), so there only a clear shortfall means truncation.
        exact = info.format in _EXACT_LENGTH_FORMATS
        allowed_shortfall = 0 if exact else max(int(0.02 * info.frames), int(0.1 * info.samplerate))
        if info.frames > 0 and data.shape[0] < info.frames - allowed_shortfall:
            raise SynparaError(f"truncated: read {data.shape[0]} of {info.frames} samples", path)
        decoded = DecodedAudio(
            samples=data.T.copy(), sample_rate=int(sample_rate), decoder="soundfile"
        )
    except soundfile.LibsndfileError:
        decoded = _decode_ffmpeg(path)
    if decoded.samples.shape[1] == 0:
        raise SynparaError("no audio samples (zero length)", path)
    if decoded.sample_rate <= 0:
        raise SynparaError(f"invalid sample rate {decoded.sample_rate}", path)
    if not np.isfinite(decoded.samples).all():
        raise SynparaError("audio holds NaN or infinite samples", path)
    return decoded


# --------------------------------------------------------------------------- conversion


def sha256_file(path: str | Path, block_bytes: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in blocks (sources of any size; packaged model weights)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_bytes):
            digest.update(block)
    return digest.hexdigest()


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels: ``(channels, n)`` -> ``(n,)``; a 1-D array is returned as is."""
    return samples if samples.ndim == 1 else samples.mean(axis=0, dtype=np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with soxr (VHQ); mono ``(n,)`` in and out."""
    if from_rate == to_rate:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples, from_rate, to_rate, quality="VHQ").astype(np.float32, copy=False)


def write_flac_atomic(
    path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE
) -> None:
    """Write mono float samples as 16-bit FLAC, atomically (complete file or none)."""
    import soundfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".flac", dir=path.parent)
    os.close(handle)
    try:
        clipped = np.clip(samples, -1.0, 1.0)
        soundfile.write(tmp_name, clipped, sample_rate, subtype="PCM_16", format="FLAC")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_span(path: str | Path, start_sample: int, count: int) -> tuple[np.ndarray, int]:
    """Mono float32 samples ``[start_sample, start_sample + count)`` of a file at its own rate,
    and that rate: only the span is read where libsndfile can seek (wav, flac, ogg), so cutting
    many utterances or events out of a long recording does not decode it once per piece."""
    import soundfile

    try:
        data, rate = soundfile.read(
            str(path), start=start_sample, stop=start_sample + count, dtype="float32",
            always_2d=True,
        )
        return to_mono(data.T), int(rate)
    except soundfile.LibsndfileError:
        decoded = decode(path)  # formats libsndfile cannot seek in (m4a ...): decode whole
        return to_mono(decoded.samples)[start_sample : start_sample + count], decoded.sample_rate


def load_cut_audio(cut: Cut, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The cut's samples as float32 mono at ``sample_rate`` (what every model stage works on).

    A missing file raises ``FileNotFoundError``: not bad input but a missing resource, so the
    executor does not mark the record done and a rerun retries it once the file is back.
    Undecodable audio is a :class:`SynparaError` (a reject) with lhotse's message's first line.
    """
    recording = getattr(cut, "recording", None)
    for source in getattr(recording, "sources", None) or []:
        if source.type == "file" and not Path(source.source).is_file():
            raise FileNotFoundError(f"{source.source}: audio file not found (cut {cut.id})")
    try:
        samples = cut.load_audio()
    except Exception as error:  # lhotse wraps decoder errors in many types
        first = next((line for line in str(error).splitlines() if line.strip()), "")
        raise SynparaError(
            f"cannot load audio of cut {cut.id} ({type(error).__name__}: {first.strip()})",
            _cut_path(cut),
        ) from error
    mono = to_mono(np.asarray(samples, dtype=np.float32))
    return resample(mono, int(cut.sampling_rate), sample_rate)


def _cut_path(cut: Cut) -> str:
    try:
        return str(cut.recording.sources[0].source)
    except Exception:
        return cut.id


# --------------------------------------------------------------------------- energy


def frame_energy_db(
    samples: np.ndarray, frame_samples: int = 400, hop_samples: int = 160
) -> np.ndarray:
    """Short-time RMS in dB (re full scale) of mono samples; frame ``i`` starts at ``i*hop``.

    Silence floors at -120 dB instead of -inf, so differences stay finite.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < frame_samples:
        samples = np.pad(samples, (0, frame_samples - len(samples)))
    count = 1 + (len(samples) - frame_samples) // hop_samples
    squares = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    starts = np.arange(count) * hop_samples
    mean_square = (squares[starts + frame_samples] - squares[starts]) / frame_samples
    return (10.0 * np.log10(np.maximum(mean_square, 1e-12))).astype(np.float32)


def mask_runs(mask: np.ndarray, max_gap_frames: int = 0) -> list[tuple[int, int]]:
    """``[start, stop)`` frame runs of True in ``mask``, joining runs at most ``max_gap_frames``
    apart (a laugh's bursts, a stop closure inside a word).

    >>> mask_runs(np.array([1, 1, 0, 1, 0, 0, 1], dtype=bool), max_gap_frames=1)
    [(0, 4), (6, 7)]
    """
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]])))
    joined: list[tuple[int, int]] = []
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist()):
        if joined and a - joined[-1][1] <= max_gap_frames:
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return joined


def rms_db(samples: np.ndarray) -> float:
    """RMS level of the whole signal in dB re full scale (-120 for silence)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0:
        return -120.0
    return float(10.0 * np.log10(max(float(np.mean(samples**2)), 1e-12)))


def active_span(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, below_peak_db: float = 35.0
) -> tuple[int, int]:
    """``(start_sample, end_sample)`` of the part louder than ``below_peak_db`` under the loudest
    10 ms frame: trims leading and trailing silence of a clip. ``(0, 0)`` for digital silence."""
    hop = max(1, sample_rate // 100)
    energy = frame_energy_db(samples, frame_samples=2 * hop, hop_samples=hop)
    if energy.max() <= -119.0:
        return 0, 0
    loud = np.flatnonzero(energy > energy.max() - below_peak_db)
    return int(loud[0] * hop), int(min(len(samples), loud[-1] * hop + 2 * hop))


# ------------------------------------------------------------------------ frame features (refine)


def centered_frame_energy_db(
    samples: np.ndarray, hop_samples: int, frame_samples: int
) -> np.ndarray:
    """Like :func:`frame_energy_db`, but frame ``i`` is *centred* on sample ``i * hop_samples``, so
    frame times need no half-window correction; one frame per hop, ``ceil(n / hop)`` frames."""
    half = frame_samples // 2
    padded = np.pad(np.asarray(samples, dtype=np.float32), (half, frame_samples))
    count = -(-len(samples) // hop_samples)
    return frame_energy_db(padded, frame_samples, hop_samples)[:count]


def spectral_flux(samples: np.ndarray, hop_samples: int, frame_samples: int) -> np.ndarray:
    """Positive spectral flux per centred frame (log-magnitude rises summed over bins), scaled so
    its 99th percentile is 1. Peaks mark onsets and phone changes, where energy alone is flat."""
    half = frame_samples // 2
    padded = np.pad(np.asarray(samples, dtype=np.float32), (half, frame_samples))
    count = -(-len(samples) // hop_samples)
    if count == 0:
        return np.zeros(0, dtype=np.float32)
    window = np.hanning(frame_samples).astype(np.float32)
    # Frames are views into the padded signal, transformed a block at a time: one gather and one
    # spectrum of the whole signal at once cost 3-4x more (memory traffic; measured on 2 min).
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_samples)[::hop_samples][:count]
    rises = []
    previous = None
    for first in range(0, count, _FLUX_BLOCK_FRAMES):
        block = frames[first : first + _FLUX_BLOCK_FRAMES] * window
        magnitude = np.log1p(1000.0 * np.abs(np.fft.rfft(block, axis=1)))
        before = magnitude[:1] if previous is None else previous
        rises.append(np.maximum(np.diff(magnitude, axis=0, prepend=before), 0.0).sum(axis=1))
        previous = magnitude[-1:]
    rise = np.concatenate(rises)
    scale = float(np.percentile(rise, 99)) if rise.size else 0.0
    return (rise / scale if scale > 0 else rise).astype(np.float32)


#: Frames per block of :func:`spectral_flux` (a block's spectra stay in cache).
_FLUX_BLOCK_FRAMES = 1024


def noise_floor_db(energy_db: np.ndarray, quantile: float = 10.0) -> float:
    """Noise floor of a signal: a low percentile of its frame energies (dB re full scale)."""
    return float(np.percentile(energy_db, quantile)) if energy_db.size else -120.0


def clipping_fraction(samples: np.ndarray, level: float = 0.999) -> float:
    """Fraction of samples at or beyond ``level`` of full scale (clipped by the recorder)."""
    samples = np.asarray(samples)
    return float(np.mean(np.abs(samples) >= level)) if samples.size else 0.0


def silero_speech_probs(model: Any, samples: np.ndarray, window_samples: int = 512) -> np.ndarray:
    """Silero VAD speech probability per ``window_samples`` window (32 ms at 16 kHz), in order."""
    import torch

    model.reset_states()
    usable = np.pad(np.asarray(samples, dtype=np.float32), (0, -len(samples) % window_samples))
    probs = []
    tensor = torch.from_numpy(usable)
    # Thousands of tiny calls: inference mode skips no_grad's remaining bookkeeping (7 % faster,
    # the same probabilities).
    with torch.inference_mode():
        for start in range(0, len(usable), window_samples):
            probs.append(float(model(tensor[start : start + window_samples], SAMPLE_RATE).item()))
    model.reset_states()
    return np.asarray(probs, dtype=np.float32)


# ------------------------------------------------------------------ envelope features (detect)


def envelope_pulses(
    samples: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    prominence_db: float = 6.0,
    range_db: float = 20.0,
    min_gap_s: float = 0.06,
) -> np.ndarray:
    """Times (s) of the pulses of a sound: peaks of its 10 ms energy envelope that rise at least
    ``prominence_db`` above the dips on both sides and lie within ``range_db`` of the loudest.

    A laugh is a train of such pulses ("ha-ha-ha", 3-10 per second); a moan, a gasp or a breath
    is one smooth rise and fall. Peaks closer than ``min_gap_s`` count once.

    >>> t = np.arange(16000) / 16000
    >>> burst = np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 5 * t) > 0.5)
    >>> len(envelope_pulses(burst.astype(np.float32)))
    5
    """
    hop = max(1, sample_rate // 100)
    energy = frame_energy_db(samples, 2 * hop, hop).astype(np.float64)
    if energy.size < 3 or energy.max() <= -119.0:
        return np.zeros(0)
    envelope = np.convolve(np.pad(energy, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    loud = envelope.max() - range_db
    peaks: list[int] = []
    # Like the last peak, the first needs no dip on its outer side: the sound may start on it.
    candidate, dip = None, float(envelope.min())
    for index, value in enumerate(envelope):
        if candidate is None:
            if value - dip >= prominence_db and value > loud:
                candidate = index
            dip = min(dip, value)
        elif value > envelope[candidate]:
            candidate = index
        elif envelope[candidate] - value >= prominence_db:
            peaks.append(candidate)
            candidate, dip = None, value
    # A last peak needs no fall after it: the sound may end on it, or the span cut it off.
    if candidate is not None:
        peaks.append(candidate)
    merged: list[int] = []
    for peak in peaks:
        if merged and (peak - merged[-1]) * hop < min_gap_s * sample_rate:
            if envelope[peak] > envelope[merged[-1]]:
                merged[-1] = peak
        else:
            merged.append(peak)
    return (np.asarray(merged, dtype=np.float64) * hop + hop) / sample_rate
