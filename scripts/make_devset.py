"""Build the event-detection development set from the real recordings in ``../shared/data``.

Real nonverbal vocalizations from ``vocal/`` go into real speech from ``speech/`` two ways:

* ``pause``: the host is split at a pause that Silero VAD finds, and the vocalization is spliced
  in, padded with the host's own room tone (the pause's samples), at -6...+3 dB against the speech;
* ``overlay``: the vocalization is added on top of running speech at -6...0 dB against it
  (the hardest case: laughter or a cough over words);
* ``control``: the host unchanged (speech only, no events), for false alarms per minute.

Truth is exact: the vocalization's active samples (its leading and trailing silence trimmed) land at
known sample offsets. Output (deterministic under ``--seed``)::

    OUT/audio/<id>.flac      16 kHz mono
    OUT/truth.jsonl          {"id", "audio", "duration", "condition", "host", "events": [...]}
    OUT/cuts.jsonl.gz        a manifest over the audio, ready for ``synpara detect``

Example::

    python scripts/make_devset.py --out devset --seed 0
    synpara detect -i devset/cuts.jsonl.gz -o devset_detect
    synpara eval events --truth devset/truth.jsonl --pred devset_detect/cuts.jsonl.gz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synpara.audio import (  # noqa: E402
    SAMPLE_RATE,
    active_span,
    decode,
    resample,
    rms_db,
    to_mono,
    write_flac_atomic,
)

#: File-name marker -> canonical label (see ../shared/data/README.md, "vocal/").
VOCAL_LABELS = {"Laugh": "laughter", "laugh_": "laughter", "PoisonCough": "cough",
                "PoisonMoan": "groan", "gasp_": "gasp"}

#: Hosts: real speech, 16 kHz or more, 2-35 s, no marked nonverbal events.
#: mfa_breaths.flac is left out on purpose: its breaths are real but unlabelled.
HOST_GLOBS = [
    "speech/pocketsphinx/librivox/*.wav",
    "speech/jfk/jfk.wav",
    "speech/arctic/*.wav",
    "speech/pyannote_sample/sample.wav",
    "speech/codec2/speech_orig_16k.wav",
    "speech/pocketsphinx/misc/*.wav",
    "speech/mfa/wav/61-70968-0000.flac",
    "speech/mfa/wav/mfa_a*.flac",
    "speech/mfa/wav/mfa_c*.flac",
    "speech/mfa/wav/mfa_long.flac",
    "speech/mfa/wav/mfa_surround.flac",
    "speech/mfa/wav/mfa_words.flac",
    "speech/mfa/wav/mfa_youknow.flac",
    "speech/mfa/wav/acoustic_corpus.wav",
    "speech/mfa/wav/13697_11991_000000.opus",
]


@dataclass(frozen=True)
class Clip:
    name: str
    label: str
    samples: np.ndarray


@dataclass(frozen=True)
class Host:
    name: str
    samples: np.ndarray
    speech: list[tuple[int, int]]  # VAD speech spans, samples


def load_16k(path: Path) -> np.ndarray:
    decoded = decode(path)
    return resample(to_mono(decoded.samples), decoded.sample_rate, SAMPLE_RATE)


def vocal_label(name: str) -> str | None:
    for marker, label in VOCAL_LABELS.items():
        if marker in name:
            return label
    return None


def load_vocals(shared: Path) -> list[Clip]:
    clips, seen = [], set()
    for path in sorted((shared / "vocal").iterdir()):
        label = vocal_label(path.name)
        if label is None or path.suffix not in (".ogg", ".wav", ".flac"):
            continue
        samples = load_16k(path)
        start, end = active_span(samples)
        samples = samples[start:end]
        # Two packs ship the very same laugh; a duplicate would count one clip twice.
        digest = hashlib.sha256(np.round(samples, 3).tobytes()).hexdigest()
        if end - start < 1600 or digest in seen:
            continue
        seen.add(digest)
        clips.append(Clip(path.stem, label, samples.astype(np.float32)))
    return clips


def load_hosts(shared: Path) -> list[Host]:
    return load_hosts_from(shared, HOST_GLOBS)


def load_hosts_from(shared: Path, patterns: list[str]) -> list[Host]:
    """Speech files matching ``patterns`` (globs under ``shared``), with their VAD speech spans."""
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    vad = load_silero_vad()
    hosts = []
    for pattern in patterns:
        for path in sorted(shared.glob(pattern)):
            samples = load_16k(path)
            if not 2.0 <= len(samples) / SAMPLE_RATE <= 35.0:
                continue
            spans = get_speech_timestamps(torch.from_numpy(samples), vad, sampling_rate=SAMPLE_RATE)
            speech = [(int(s["start"]), int(s["end"])) for s in spans]
            if speech:
                hosts.append(Host(path.stem, samples, speech))
    return hosts


def speech_level_db(host: Host) -> float:
    return rms_db(np.concatenate([host.samples[a:b] for a, b in host.speech]))


def room_tone(host: Host, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` samples of the host's quietest 0.2 s, tiled with random phase: its own noise."""
    window = SAMPLE_RATE // 5
    if len(host.samples) <= window:
        return np.zeros(length, dtype=np.float32)
    starts = np.arange(0, len(host.samples) - window, window // 2)
    levels = [rms_db(host.samples[s:s + window]) for s in starts]
    quiet = host.samples[starts[int(np.argmin(levels))]:][:window]
    reps = int(np.ceil(length / window)) + 1
    tiled = np.concatenate([quiet[::-1] if i % 2 else quiet for i in range(reps)])
    offset = int(rng.integers(0, window))
    return tiled[offset:offset + length].astype(np.float32)


def splice_in_pause(host: Host, clip: Clip, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Insert ``clip`` (with room tone around it) at a pause; returns (audio, clip start sample)."""
    gaps = [(a_end, b_start) for (_, a_end), (b_start, _) in zip(host.speech, host.speech[1:])]
    if gaps:
        a, b = gaps[int(rng.integers(len(gaps)))]
        cut_at = (a + b) // 2
    else:  # one stretch of speech: splice after it (or before it, when it runs to the end)
        end = host.speech[-1][1]
        cut_at = end if end < len(host.samples) - 1600 else host.speech[0][0]
    gain_db = speech_level_db(host) + rng.uniform(-6.0, 3.0) - rms_db(clip.samples)
    vocal = clip.samples * np.float32(10 ** (gain_db / 20))
    pad_before = int(rng.uniform(0.15, 0.4) * SAMPLE_RATE)
    pad_after = int(rng.uniform(0.15, 0.4) * SAMPLE_RATE)
    bed = room_tone(host, pad_before + len(vocal) + pad_after, rng)
    bed[pad_before:pad_before + len(vocal)] += vocal
    audio = np.concatenate([host.samples[:cut_at], bed, host.samples[cut_at:]])
    return audio, cut_at + pad_before


def lay_over_speech(host: Host, clip: Clip, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Add ``clip`` over running speech at -6...0 dB against the speech it covers."""
    longest = max(host.speech, key=lambda span: span[1] - span[0])
    a, b = longest
    if b - a > len(clip.samples):
        start = int(rng.integers(a, b - len(clip.samples) + 1))
    else:
        start = max(0, min(a, len(host.samples) - len(clip.samples)))
    audio = host.samples.copy()
    if start + len(clip.samples) > len(audio):
        audio = np.pad(audio, (0, start + len(clip.samples) - len(audio)))
    covered = audio[start:start + len(clip.samples)]
    gain_db = max(rms_db(covered), speech_level_db(host) - 10) + rng.uniform(-6.0, 0.0)
    audio[start:start + len(clip.samples)] += clip.samples * np.float32(
        10 ** ((gain_db - rms_db(clip.samples)) / 20)
    )
    return audio, start


def build(shared: Path, out: Path, seed: int, per_condition: int, max_controls: int) -> int:
    rng = np.random.default_rng(seed)
    clips, hosts = load_vocals(shared), load_hosts(shared)
    if not clips or not hosts:
        raise SystemExit(f"no vocalizations or no hosts found under {shared}")
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    truth = []

    def emit(mix_id: str, audio: np.ndarray, condition: str, host: str, events: list[dict]) -> None:
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if peak > 0.99:  # keep the mix unclipped; the truth times do not move
            audio = audio * np.float32(0.99 / peak)
        path = audio_dir / f"{mix_id}.flac"
        write_flac_atomic(path, audio)
        truth.append({"id": mix_id, "audio": f"audio/{path.name}",
                      "duration": round(len(audio) / SAMPLE_RATE, 4), "condition": condition,
                      "host": host, "events": events})

    for clip in clips:
        for condition, place in (("pause", splice_in_pause), ("overlay", lay_over_speech)):
            for index in range(per_condition):
                host = hosts[int(rng.integers(len(hosts)))]
                audio, start = place(host, clip, rng)
                event = {"label": clip.label, "start": round(start / SAMPLE_RATE, 4),
                         "end": round((start + len(clip.samples)) / SAMPLE_RATE, 4),
                         "source": clip.name}
                emit(f"{condition}-{clip.name}-{index}", audio, condition, host.name, [event])
    for host in hosts[:max_controls]:
        emit(f"control-{host.name}", host.samples, "control", host.name, [])

    with open(out / "truth.jsonl", "w", encoding="utf-8") as handle:
        for record in truth:
            handle.write(json.dumps(record) + "\n")
    write_manifest(out, truth)
    return len(truth)


def write_manifest(out: Path, truth: list[dict]) -> None:
    from lhotse import Recording

    from synpara.manifest import write_cuts

    cuts = []
    for record in truth:
        recording = Recording.from_file(str((out / record["audio"]).resolve()),
                                        recording_id=record["id"])
        cuts.append(recording.to_cut())
    write_cuts(out / "cuts.jsonl.gz", cuts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-condition", type=int, default=3,
                        help="mixtures per vocalization and condition")
    parser.add_argument("--max-controls", type=int, default=100, help="speech-only controls")
    args = parser.parse_args(argv)
    count = build(args.shared_data, args.out, args.seed, args.per_condition, args.max_controls)
    print(f"{count} recordings -> {args.out}")


if __name__ == "__main__":
    main()
