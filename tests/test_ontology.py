"""Ontology additions: tsk and snore, Deeply folder names, labels read from file names."""

from __future__ import annotations

import pytest

from synpara.ontology import LABELS, canonical_label, label_from_name


@pytest.mark.parametrize(
    ("spelling", "label"),
    [
        ("click", "tsk"),
        ("tut", "tsk"),
        ("[tsk]", "tsk"),
        ("tongue-clicking", "tsk"),
        ("tongue_clicking", "tsk"),
        ("snoring", "snore"),
        ("panting", "breath"),
        ("moaning", "groan"),
        ("throat-clearing", "throat_clearing"),
    ],
)
def test_new_aliases(spelling: str, label: str) -> None:
    assert canonical_label(spelling) == label
    assert label in LABELS


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("hedgewars_Mobster_Laugh.ogg", "laughter"),
        ("hedgewars_Default_PoisonCough.ogg", "cough"),
        ("hedgewars_Default_PoisonMoan.ogg", "groan"),
        ("Sneeze.wav", "sneeze"),
        ("sneeze_scratch_female.wav", "sneeze"),
        ("snicker_xemacs.wav", "giggle"),
        ("sigh_tkabber.wav", "sigh"),
        ("gasp_oa_neko.ogg", "gasp"),
        ("snore_xemacs.wav", "snore"),
        ("throat-clearing", "throat_clearing"),
        ("TongueClicking_03.wav", "tsk"),
        ("recording_042.wav", None),
        ("laugh_then_cough.wav", None),
    ],
)
def test_label_from_name(name: str, label: str | None) -> None:
    assert label_from_name(name) == label
