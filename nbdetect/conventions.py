"""Label and box conventions shared by every part of nbdetect.

``num_classes`` in nbdetect's API is the number of real (foreground) classes K.
Labels are 1..K and 0 is background, as in torchvision; every model is built
with K + 1 outputs. See docs/ARCHITECTURE.md.
"""
from __future__ import annotations

from typing import Any, Mapping

BACKGROUND = 0


def model_outputs(num_classes: int) -> int:
    """Number of classifier outputs a torchvision detector needs for K real classes."""
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1 (number of real classes), got {num_classes}")
    return int(num_classes) + 1


def shift_labels(target: Mapping[str, Any], label_base: int) -> dict:
    """Return a copy of ``target`` whose labels follow nbdetect's 1..K convention.

    ``label_base`` is the label the user's data gives its first class (0 or 1).
    """
    if label_base not in (0, 1):
        raise ValueError(f"label_base must be 0 or 1, got {label_base!r}")
    out = dict(target)
    if label_base == 0 and "labels" in out:
        out["labels"] = out["labels"] + 1
    return out


def class_name(class_names, label: int) -> str:
    """Name of ``label`` (1..K) or ``'class <label>'`` when names are unknown."""
    if class_names and 1 <= label <= len(class_names):
        return str(class_names[label - 1])
    return f"class {label}"
