"""Train an event head (:mod:`synpara.detectors.head`) on mixtures of a bank in host speech,
and score it.

The steps, each cached under the output directory so a rerun only redoes what changed:

1. split the bank by group (speaker/source) and the hosts by file into train and dev;
2. write train and dev mixtures with exact labels (:mod:`synpara.training.mixtures`);
3. extract frame features once per feature set (``features/<name>/<split>.npz``);
4. fit the head (torch, CPU, deterministic under the seed) on the train mixtures;
5. choose per-label thresholds (:mod:`synpara.training.thresholds`) on the first half of the dev
   mixtures (``dev-tune``) and report
   precision/recall/F1 and onset error on the other half (``dev-test``), which shares no clip,
   speaker or host with training - and no threshold choice with itself.

>>> report = train_detector(TrainConfig(bank="../shared/data/vocal",
...                                     hosts=("../shared/data/speech",), out="output/head"))
...                                                                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from synpara.detectors.features import FRAME_SECONDS, load_features
from synpara.detectors.head import (
    INSIDE,
    PRIOR_MAP,
    EventHead,
    PostProcess,
    save_head,
)
from synpara.errors import SynparaError
from synpara.training.mixtures import MixConfig, mix_recipe, read_truth, write_mixtures
from synpara.training.sources import (
    espeak_hosts,
    scan_bank,
    scan_hosts,
    split_bank,
    split_hosts,
)
from synpara.training.thresholds import (
    constrain_false_alarms,
    events_of,
    rules_false_alarms,
    score_events,
    tune_thresholds,
)

log = logging.getLogger(__name__)

#: The head's label set (issue 12); ``pause`` comes from timing, not from a head.
HEAD_LABELS = ("laughter", "giggle", "sigh", "breath", "gasp", "cough", "throat_clearing", "sniff",
               "sneeze", "groan", "cry", "tsk", "yawn", "snore")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything ``synpara train-detector`` takes; the head file records it as provenance."""

    bank: str = field(metadata={"help": "folder of vocalization clips (label = folder/file name)"})
    hosts: tuple[str, ...] = field(metadata={"help": "host speech files or folders"})
    out: str = field(metadata={"help": "output directory (mixtures, features, head.pt)"})
    seed: int = field(default=0, metadata={"help": "seed for splits, mixtures and training"})
    feature: str = field(default="yamnet", metadata={"help": "yamnet or whisper"})
    train_mixtures: int = field(default=400, metadata={"help": "training mixtures"})
    dev_mixtures: int = field(default=120, metadata={"help": "dev mixtures (half tune, half test)"})
    dev_fraction: float = field(default=0.3, metadata={"help": "share of bank groups for dev"})
    espeak: bool = field(default=True, metadata={"help": "add espeak-ng voices as hosts"})
    espeak_voices: int = field(default=3, metadata={
        "help": "espeak-ng voices per language (default voice, +f3, +m3)"})
    epochs: int = field(default=30, metadata={"help": "training epochs"})
    hidden: int = field(default=64, metadata={"help": "channels of the temporal convolutions"})
    kernel: int = field(default=5, metadata={"help": "temporal kernel (frames)"})
    threads: int = field(default=1, metadata={"help": "CPU threads for the encoders"})
    pos_weight_max: float = field(
        default=1.0, metadata={"help": "cap on the weight of a rare label's positive frames"})
    mix: MixConfig = field(default_factory=MixConfig, metadata={
        "help": "how mixtures are drawn (speech-only share, overlay, crosstalk, domain spread)"})
    calib_mixtures: int = field(default=200, metadata={
        "help": "extra speech-only mixtures from the dev hosts on which the false-alarm budget "
                "is measured, for the rules and the head alike (a few minutes of dev-tune "
                "audio alone give a rate too noisy to hold)"})
    fa_budget: str = field(default="rules", metadata={
        "help": "false alarms per minute the thresholds may raise on the speech-only dev-tune "
                "mixtures: 'rules' (what the YAMNet rules raise on that same audio), a number, "
                "or 'none' (thresholds for F1 alone)"})
    inside: str = field(default="words", metadata={
        "help": "where the budget may raise a second threshold per label: 'words' (inside the "
                "confident words of word_model; one threshold per label without one) or "
                "'speech' (frames YAMNet's Speech class hears: no transcription, and detect "
                "needs no words; more events found in mixtures, more false alarms in the pauses "
                "of real speech: docs/detector.md)"})
    word_model: str = field(default="", metadata={
        "help": "Whisper model (e.g. base) that transcribes the dev and calib mixtures, so the "
                "false-alarm budget can also raise per-label thresholds inside confident words, "
                "as detect sees them ('' = one threshold per label everywhere; slow on CPU)"})


# --------------------------------------------------------------------------- data


def prepare_data(config: TrainConfig) -> dict[str, Any]:
    """Split the bank and hosts, write (or reuse) the mixture sets; returns what went where."""
    out = Path(config.out)
    clips = scan_bank(config.bank)
    train_clips, dev_clips = split_bank(clips, config.dev_fraction, config.seed)
    hosts = scan_hosts(list(config.hosts))
    train_hosts, dev_hosts = split_hosts(hosts, config.dev_fraction, config.seed)
    if config.espeak:  # synthetic voices split by language so dev hears unseen ones
        voices = espeak_hosts(out / "espeak", config.espeak_voices)
        a, b = split_hosts(voices, config.dev_fraction, config.seed)
        train_hosts, dev_hosts = train_hosts + a, dev_hosts + b
    if not train_clips:
        raise SynparaError("the bank split left no training clips", config.bank)
    sets = {}
    plan = [("train", train_clips, train_hosts, config.train_mixtures, 0, config.mix),
            ("dev", dev_clips, dev_hosts, config.dev_mixtures, 1, config.mix)]
    if config.fa_budget != "none" and config.calib_mixtures > 0:
        # Speech only (dev clips only as unlabelled hard negatives): no event to split.
        plan.append(("calib", dev_clips, dev_hosts, config.calib_mixtures, 2,
                     replace(config.mix, negative_fraction=1.0)))
    for split, chosen, split_hosts_, count, offset, mix in plan:
        directory = out / "mixtures" / split
        key = json.dumps({"clips": [str(c.path) for c in chosen],
                          "hosts": [str(h) for h in split_hosts_], "count": count,
                          "seed": config.seed, "mix": mix_recipe(mix)}, sort_keys=True)
        stamp = directory / "recipe.json"
        if not (stamp.exists() and stamp.read_text() == key):
            if any(c.label for c in chosen):
                write_mixtures(directory, chosen, split_hosts_, count,
                               seed=config.seed * 1000 + offset, config=mix)
                stamp.write_text(key)
            else:
                directory.mkdir(parents=True, exist_ok=True)
                (directory / "truth.jsonl").write_text("")
                stamp.write_text(key)
        sets[split] = directory
    return {"clips": clips, "train_clips": train_clips, "dev_clips": dev_clips,
            "train_hosts": train_hosts, "dev_hosts": dev_hosts, "sets": sets}


def extract_features(directory: Path, feature: str, threads: int, cache: Path) -> list[np.ndarray]:
    """Features of every mixture in ``directory`` (cached in ``cache`` as one npz)."""
    import hashlib

    from synpara.training.sources import load_mono

    truth = read_truth(directory / "truth.jsonl")
    ids = [line["id"] for line in truth]
    # The cache is valid for exactly these mixtures: the same ids and the same truth file.
    recipe = hashlib.sha256((directory / "truth.jsonl").read_bytes()).hexdigest()
    if cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            if list(stored["ids"]) == ids and str(stored.get("recipe", "")) == recipe:
                # Read each array once: an NpzFile decompresses the array again on every access.
                offsets, every = stored["offsets"], stored["frames"]
                return [every[offsets[i]:offsets[i + 1]] for i in range(len(ids))]
    extractor = load_features(feature, threads)
    start = time.perf_counter()
    audio = [load_mono(directory / f"{i}.flac") for i in ids]
    frames = extractor.many(audio) if audio else []
    seconds = sum(len(a) for a in audio) / 16000
    log.info("%s features of %d mixtures (%.0f s audio) in %.0f s", feature, len(ids), seconds,
             time.perf_counter() - start)
    cache.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(f) for f in frames])
    np.savez(cache, ids=np.array(ids), offsets=offsets, recipe=np.array(recipe),
             frames=np.concatenate(frames) if frames else np.zeros((0, 1), np.float32))
    return frames


#: Words of at least this probability count as confident (detect's ``word_confidence``).
WORD_CONFIDENCE = 0.5


def mixture_words(directory: Path, model: str, threads: int, cache: Path
                  ) -> dict[str, list[tuple[float, float, float]]]:
    """Confident Whisper words ``(start, end, probability)`` of every mixture in ``directory``,
    as the transcribe stage finds them (cached in ``cache`` for exactly these mixtures)."""
    import hashlib

    from synpara.asr import WhisperOptions, transcribe_words
    from synpara.models.whisper import load_whisper
    from synpara.training.sources import load_mono

    recipe = hashlib.sha256((directory / "truth.jsonl").read_bytes() + model.encode()).hexdigest()
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("recipe") == recipe:
            return {k: [tuple(w) for w in v] for k, v in stored["words"].items()}
    whisper = load_whisper(model, threads=threads)
    start = time.perf_counter()
    words = {}
    for line in read_truth(directory / "truth.jsonl"):
        # Greedy decoding: about 3x faster than transcribe's beam of 5, for words that only
        # mark where speech is confidently recognised.
        found = transcribe_words(whisper, load_mono(directory / f"{line['id']}.flac"),
                                 WhisperOptions(beam_size=1))
        words[line["id"]] = [(round(w.start, 3), round(w.end, 3), round(w.probability, 3))
                             for w in found if w.probability >= WORD_CONFIDENCE]
    log.info("Whisper %s words of %d mixtures in %.0f s", model, len(words),
             time.perf_counter() - start)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"recipe": recipe, "words": words}) + "\n")
    return words  # type: ignore[return-value]


def frame_targets(events: list[dict[str, Any]], frames: int, labels: list[str]) -> np.ndarray:
    """``(frames, 1 + len(labels))`` 0/1 targets: column 0 is ``none`` (no labelled event).

    A frame is on for an event when its centre lies inside the event's span.
    """
    target = np.zeros((frames, 1 + len(labels)), np.float32)
    centres = (np.arange(frames) + 0.5) * FRAME_SECONDS
    for event in events:
        if event["label"] in labels:
            inside = (centres >= event["start"]) & (centres < event["end"])
            if not inside.any():  # a very short event still marks its nearest frame
                inside[min(frames - 1, int(event["start"] / FRAME_SECONDS))] = True
            target[inside, 1 + labels.index(event["label"])] = 1.0
    target[:, 0] = target[:, 1:].max(axis=1) == 0
    return target


# --------------------------------------------------------------------------- fitting


def fit_head(features: list[np.ndarray], targets: list[np.ndarray], *, seed: int, epochs: int,
             hidden: int, kernel: int, pos_weight_max: float = 1.0, crop: int = 64,
             batch: int = 16) -> tuple[Any, np.ndarray, np.ndarray]:
    """Train the temporal head on random crops; returns ``(network, mean, std)``."""
    import torch

    from synpara.detectors.head import build_network

    torch.manual_seed(seed)
    # One thread: the batches are small, and on shared cores two OpenMP threads measured 10x
    # slower per step than one (spin-waiting); it also keeps the result independent of the host.
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    stacked = np.concatenate(features)
    mean = stacked.mean(axis=0)
    std = stacked.std(axis=0) + 1e-4
    all_targets = np.concatenate(targets)
    positives = all_targets.sum(axis=0)
    # Rare labels weigh more, within limits: a few clips should not dominate the loss.
    pos_weight = np.sqrt(np.maximum((len(all_targets) - positives) / np.maximum(positives, 1), 1))
    pos_weight = np.minimum(pos_weight, pos_weight_max)
    network = build_network(stacked.shape[1], all_targets.shape[1], hidden, kernel)
    optimiser = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-2)
    loss_fn = torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.as_tensor(pos_weight, dtype=torch.float32), reduction="none")
    norm = [((f - mean) / std).astype(np.float32) for f in features]
    steps = max(1, len(norm) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3,
                                                   total_steps=epochs * steps)
    network.train()
    for _epoch in range(epochs):
        order = rng.permutation(len(norm))
        for step in range(steps):
            xs, ys, ms = [], [], []
            for i in order[step * batch:(step + 1) * batch]:
                f, t = norm[i], targets[i]
                start = int(rng.integers(0, max(1, len(f) - crop + 1)))
                x, y = f[start:start + crop], t[start:start + crop]
                pad = crop - len(x)
                mask = np.r_[np.ones(len(x)), np.zeros(pad)].astype(np.float32)
                xs.append(np.pad(x, ((0, pad), (0, 0))))
                ys.append(np.pad(y, ((0, pad), (0, 0))))
                ms.append(mask)
            x_t, y_t, m_t = (torch.as_tensor(np.stack(a)) for a in (xs, ys, ms))
            loss = (loss_fn(network(x_t), y_t).mean(dim=2) * m_t).sum() / m_t.sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    network.eval()
    return network, mean, std


# --------------------------------------------------------------------------- scoring


def fa_budget_of(config: TrainConfig, sets: list[tuple[Path, list[dict[str, Any]]]],
                 words: dict[str, list[tuple[float, float, float]]] | None = None
                 ) -> float | None:
    """The false-alarm budget ``config.fa_budget`` names, on the speech-only mixtures of
    ``sets`` (None: no constraint)."""
    if config.fa_budget == "none":
        return None
    if config.fa_budget == "rules":
        return rules_false_alarms(sets, config.threads,
                                  Path(config.out) / "rules_false_alarms.json", words)
    try:
        return float(config.fa_budget)
    except ValueError:
        raise SynparaError(f"fa_budget must be 'rules', 'none' or a number, not "
                           f"{config.fa_budget!r}") from None


# --------------------------------------------------------------------------- the command


def train_recipe(config: TrainConfig) -> dict[str, Any]:
    """``config`` as a head's provenance records it: options added after heads were shipped are
    left out at the value that trains as before (as :func:`mix_recipe` does for the mixtures), so
    a shipped head is still reproduced byte for byte by its own recipe."""
    recipe = {**asdict(config), "mix": mix_recipe(config.mix)}
    if recipe["inside"] == "words":
        del recipe["inside"]
    return recipe


def train_detector(config: TrainConfig) -> dict[str, Any]:
    """Run every step; writes ``out/head.pt`` and ``out/report.json`` and returns the report."""
    started = time.perf_counter()
    if config.inside not in INSIDE:
        raise SynparaError(f"inside must be one of {', '.join(INSIDE)}, not {config.inside!r}")
    if config.inside == "speech" and config.word_model:
        raise SynparaError("a word model is for inside 'words'; inside 'speech' needs none")
    data = prepare_data(config)
    out = Path(config.out)
    counts: dict[str, int] = {}
    for clip in data["train_clips"]:
        if clip.label:
            counts[clip.label] = counts.get(clip.label, 0) + 1
    dev_counts: dict[str, int] = {}
    for clip in data["dev_clips"]:
        if clip.label:
            dev_counts[clip.label] = dev_counts.get(clip.label, 0) + 1
    unknown = sorted(set(counts) - set(HEAD_LABELS))
    if unknown:
        log.warning("bank labels outside the head's label set, not trained: %s", unknown)
    trained = [label for label in HEAD_LABELS if label in counts]
    prior = [label for label in HEAD_LABELS if label not in counts and label in PRIOR_MAP]
    missing = [label for label in HEAD_LABELS if label not in counts and label not in PRIOR_MAP]

    train_truth = read_truth(data["sets"]["train"] / "truth.jsonl")
    dev_truth = read_truth(data["sets"]["dev"] / "truth.jsonl")
    cache = out / "features" / config.feature
    train_frames = extract_features(data["sets"]["train"], config.feature, config.threads,
                                    cache / "train.npz")
    dev_frames = extract_features(data["sets"]["dev"], config.feature, config.threads,
                                  cache / "dev.npz")
    targets = [frame_targets(line["events"], len(f), trained)
               for line, f in zip(train_truth, train_frames)]
    network, mean, std = fit_head(train_frames, targets, seed=config.seed, epochs=config.epochs,
                                  hidden=config.hidden, kernel=config.kernel,
                                  pos_weight_max=config.pos_weight_max)
    provenance = {"config": train_recipe(config),
                  "train_clips": counts, "dev_clips": dev_counts,
                  "train_hosts": [str(h) for h in data["train_hosts"]],
                  "dev_hosts": [str(h) for h in data["dev_hosts"]],
                  "train_mixtures": len(train_truth), "dev_mixtures": len(dev_truth),
                  "untrained_no_clips": missing, "prior_only": prior}
    head_path = save_head(out / "head.pt", network=network, feature=config.feature,
                          trained_labels=trained, prior_labels=prior,
                          thresholds={label: 0.5 for label in trained + prior}, mean=mean,
                          std=std, hidden=config.hidden, kernel=config.kernel,
                          provenance=provenance, post=PostProcess(), inside=config.inside)
    head = EventHead.load(head_path)
    half = len(dev_truth) // 2
    tune_truth, test_truth = dev_truth[:half], dev_truth[half:]
    thresholds = tune_thresholds(head, dev_frames[:half], tune_truth) if half else head.thresholds
    # The budget is measured, and held, on dev-tune's speech-only mixtures plus the calib set.
    calib_sets = [(data["sets"]["dev"], tune_truth)]
    fa_truth, fa_frames = list(tune_truth), list(dev_frames[:half])
    words: dict[str, list[tuple[float, float, float]]] | None = None
    if config.word_model and config.fa_budget != "none":
        words = mixture_words(data["sets"]["dev"], config.word_model, config.threads,
                              out / "words" / config.word_model / "dev.json")
    if "calib" in data["sets"]:
        calib_truth = read_truth(data["sets"]["calib"] / "truth.jsonl")
        calib_sets.append((data["sets"]["calib"],
                           [{**line, "id": f"calib/{line['id']}"} for line in calib_truth]))
        fa_truth += calib_sets[-1][1]
        fa_frames += extract_features(data["sets"]["calib"], config.feature, config.threads,
                                      cache / "calib.npz")
        if words is not None:
            calib_words = mixture_words(data["sets"]["calib"], config.word_model, config.threads,
                                        out / "words" / config.word_model / "calib.json")
            words.update({f"calib/{k}": v for k, v in calib_words.items()})
    budget = fa_budget_of(config, calib_sets, words) if half else None
    word_thresholds: dict[str, float] = {}
    if budget is not None:
        thresholds, word_thresholds = constrain_false_alarms(head, fa_frames, fa_truth,
                                                             thresholds, budget, words=words)
    head.thresholds, head.word_thresholds = thresholds, word_thresholds
    test_ids = [line["id"] for line in test_truth]
    scores = score_events(test_truth, events_of(head, dev_frames[half:], test_ids,
                                                words=words))
    report = {"head": str(head_path), "feature": config.feature, "seed": config.seed,
              "labels": {}, "dev_test": scores.to_dict(),
              "false_alarms_per_minute_speech_only": _clean(scores.false_alarms_per_minute()),
              "false_alarm_budget_dev_tune": None if budget is None else _clean(budget),
              "seconds": round(time.perf_counter() - started, 1)}
    for label in HEAD_LABELS:
        if label in trained:
            status = "trained" if dev_counts.get(label) else "trained (no dev clips: not measured)"
        elif label in prior:
            status = "no clips: not trained (YAMNet prior)"
        else:
            status = "no clips: not trained"
        report["labels"][label] = {"status": status, "train_clips": counts.get(label, 0),
                                   "dev_clips": dev_counts.get(label, 0),
                                   "threshold": thresholds.get(label),
                                   "threshold_in_words": word_thresholds.get(label)}
    provenance["thresholds_tuned_on"] = f"first {half} dev mixtures"
    provenance["false_alarm_budget"] = {
        "rule": config.fa_budget, "per_minute": None if budget is None else _clean(budget),
        "measured_on": "speech-only dev-tune mixtures" + (
            f" and {config.calib_mixtures} speech-only calib mixtures (dev hosts)"
            if "calib" in data["sets"] else "")}
    provenance["dev_test"] = {k: v for k, v in scores.to_dict()["categories"].items()}
    save_head(head_path, network=network, feature=config.feature, trained_labels=trained,
              prior_labels=prior, thresholds=thresholds, mean=mean, std=std, hidden=config.hidden,
              kernel=config.kernel, provenance=provenance, post=PostProcess(),
              word_thresholds=word_thresholds, inside=config.inside)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _clean(value: float) -> float | None:
    return None if value != value else round(float(value), 4)


def format_report(report: dict[str, Any]) -> str:
    """The table ``synpara train-detector`` prints."""
    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.2f}"

    cats = report["dev_test"]["categories"]
    lines = [f"feature {report['feature']}, seed {report['seed']}; dev-test figures "
             "(clips, speakers and hosts unseen in training; thresholds from dev-tune)",
             f"{'label':<16}{'P':>6}{'R':>6}{'F1':>6}{'onset_s':>9}{'truth':>6}  status"]
    for label, info in report["labels"].items():
        row = cats.get(label, {})
        lines.append(f"{label:<16}{fmt(row.get('precision')):>6}{fmt(row.get('recall')):>6}"
                     f"{fmt(row.get('f1')):>6}{fmt(row.get('median_onset_error_s')):>9}"
                     f"{row.get('truths', 0):>6}  {info['status']}")
    row = cats.get("all", {})
    lines.append(f"{'all':<16}{fmt(row.get('precision')):>6}{fmt(row.get('recall')):>6}"
                 f"{fmt(row.get('f1')):>6}{fmt(row.get('median_onset_error_s')):>9}"
                 f"{row.get('truths', 0):>6}")
    lines.append(f"false alarms per minute of speech-only audio: "
                 f"{fmt(report['false_alarms_per_minute_speech_only'])}")
    if report.get("false_alarm_budget_dev_tune") is not None:
        lines.append(f"thresholds held to {report['false_alarm_budget_dev_tune']:.2f} false "
                     "alarms per minute on the speech-only dev-tune mixtures")
    lines.append(f"head: {report['head']} ({report['seconds']:.0f} s)")
    return "\n".join(lines)
