"""``synpara report RUN_DIR -o report.html``: one static page to see and hear a corpus.

The page (no server, one HTML file and an ``<name>_files/`` folder beside it) shows totals, rejects
by stage and reason, distribution plots and, per event label, a few sample utterances with an audio
player, the tagged text and a waveform + spectrogram with word and event spans drawn. Manifests are
streamed (:mod:`synpara.report.stats`): a 100 k-utterance run gives a page of bounded size because
samples are drawn by reservoir and plots aggregate.
"""

from __future__ import annotations

from synpara.report.page import render_report

__all__ = ["render_report"]
