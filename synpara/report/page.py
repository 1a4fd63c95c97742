"""The HTML page: totals, rejects, plots and per-label samples (audio, tagged text, picture)."""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from synpara.manifest import write_text_atomic
from synpara.report.stats import RunStats, gather

# Marks each <audio> as loaded or failed, so a browser test (and a reader) can tell a page whose
# players work from one whose files are missing.
_AUDIO_PROBE = """<script>
document.querySelectorAll('audio').forEach(function (a) {
  a.addEventListener('loadedmetadata', function () { a.dataset.loaded = '1'; });
  a.addEventListener('error', function () { a.dataset.loaded = 'error'; }, true);
  a.load();
});
</script>"""
_CSS = """body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
img{max-width:100%}.tag{color:#b03}"""


def render_report(
    run_dir: str | Path, output: str | Path, samples_per_label: int = 3, seed: int = 0
) -> Path:
    """Write ``output`` (HTML) and its ``<stem>_files/`` folder from the run in ``run_dir``."""
    run_dir, output = Path(run_dir), Path(output)
    stats = gather(run_dir, samples_per_label=samples_per_label, seed=seed)
    assets = output.parent / f"{output.stem}_files"
    tmp_assets = output.parent / f".{output.stem}_files.tmp"
    shutil.rmtree(tmp_assets, ignore_errors=True)
    tmp_assets.mkdir(parents=True)
    body = [f"<h1>synpara report: {html.escape(run_dir.name)}</h1>"]
    body += _totals(stats)
    body += _rejects(stats)
    body += _plots(stats, tmp_assets, assets.name)
    body += _samples(stats, tmp_assets, assets.name)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>synpara report: {html.escape(run_dir.name)}</title><style>{_CSS}</style>"
        f"</head><body>{''.join(body)}{_AUDIO_PROBE}</body></html>"
    )
    # page and assets appear together or not at all (a rerun replaces both)
    shutil.rmtree(assets, ignore_errors=True)
    os.replace(tmp_assets, assets)
    return write_text_atomic(output, page)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _totals(stats: RunStats) -> list[str]:
    rows: list[list[Any]] = [
        ["stages", html.escape(" → ".join(stats.stages))],
        ["hours in", f"{stats.hours_in:.3f}"],
        ["hours out", f"{stats.hours_out:.3f}"],
        ["utterances", stats.utterances],
        ["speakers", len(stats.speakers)],
        [
            "events (inserted / mined)",
            f"{stats.inserted + stats.mined} ({stats.inserted} / {stats.mined})",
        ],
    ]
    rows += [[f"events: {html.escape(label)}", n] for label, n in stats.events.most_common()]
    return ["<h2>Totals</h2>", _table(["what", "value"], rows)]


def _rejects(stats: RunStats) -> list[str]:
    if not stats.rejects:
        return ["<h2>Rejects</h2><p>none</p>"]
    rows = [
        [html.escape(stage), html.escape(reason), n]
        for (stage, reason), n in stats.rejects.most_common(50)
    ]
    return ["<h2>Rejects</h2>", _table(["stage", "reason", "count"], rows)]


def _plots(stats: RunStats, assets: Path, link_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = ["<h2>Distributions</h2>"]
    if stats.events:
        figure, axis = plt.subplots(figsize=(6, 3))
        labels, counts = zip(*stats.events.most_common())
        axis.bar(labels, counts)
        axis.set_title("events per label")
        per_hour = sum(counts) / max(stats.hours_out, 1e-9)
        axis.set_xlabel(f"{per_hour:.1f} events per hour of output")
        figure.tight_layout()
        figure.savefig(assets / "events.png", dpi=80)
        plt.close(figure)
        parts.append(f"<img alt='events per label' src='{link_dir}/events.png'>")
    for index, (name, reservoir) in enumerate(sorted(stats.distributions.items())):
        figure, axis = plt.subplots(figsize=(4, 2.5))
        axis.hist(reservoir.items, bins=30)
        axis.set_title(f"{name} (n={reservoir.seen})")
        figure.tight_layout()
        figure.savefig(assets / f"dist{index}.png", dpi=80)
        plt.close(figure)
        parts.append(f"<img alt='{html.escape(name)}' src='{link_dir}/dist{index}.png'>")
    return parts


def _samples(stats: RunStats, assets: Path, link_dir: str) -> list[str]:
    from synpara.audio import load_cut_audio, write_flac_atomic
    from synpara.manifest import EVENT, WORD, items

    parts = ["<h2>Samples per label</h2>"]
    for label in sorted(stats.samples):
        rows = []
        for index, cut in enumerate(stats.samples[label].items):
            stem = f"{_safe(label)}-{index}"
            samples = load_cut_audio(cut, 16000)
            write_flac_atomic(assets / f"{stem}.flac", samples, 16000)
            words = [(w.symbol, w.start - cut.start, w.end - cut.start) for w in items(cut, WORD)]
            events = [(e.symbol, e.start - cut.start, e.end - cut.start) for e in items(cut, EVENT)]
            _picture(samples, words, events, assets / f"{stem}.png")
            text = " ".join(
                (sup.custom or {}).get("tagged_text") or sup.text or "" for sup in cut.supervisions
            )
            rows.append(
                [
                    html.escape(cut.id),
                    f"<audio controls preload='metadata' src='{link_dir}/{stem}.flac'></audio>",
                    _highlight_tags(text),
                    f"<img alt='{html.escape(cut.id)}' src='{link_dir}/{stem}.png'>",
                ]
            )
        parts.append(f"<h3>{html.escape(label)}</h3>")
        parts.append(_table(["cut", "audio", "tagged text", "waveform and spectrogram"], rows))
    return parts


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label)


def _highlight_tags(text: str) -> str:
    import re

    return re.sub(
        r"(\[[^\]]+\]|\([^)]+\)|&lt;[^&]+&gt;)", r"<span class='tag'>\1</span>", html.escape(text)
    )


def _picture(samples: np.ndarray, words: list, events: list, path: Path) -> None:
    import matplotlib.pyplot as plt

    seconds = np.arange(len(samples)) / 16000
    figure, (wave, spec) = plt.subplots(2, 1, figsize=(7, 3), sharex=True)
    wave.plot(seconds, samples, linewidth=0.4)
    spec.specgram(samples + 1e-9, NFFT=512, Fs=16000, noverlap=352, cmap="magma")
    for symbol, start, end in words:
        wave.axvspan(start, end, color="tab:blue", alpha=0.12)
        wave.text(start, 0.9, symbol, fontsize=6, transform=wave.get_xaxis_transform())
    for symbol, start, end in events:
        for axis in (wave, spec):
            axis.axvspan(start, end, color="tab:red", alpha=0.3)
        spec.text(
            start, 0.85, symbol, color="white", fontsize=7, transform=spec.get_xaxis_transform()
        )
    spec.set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(path, dpi=70)
    plt.close(figure)
