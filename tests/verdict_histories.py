"""Synthesised epoch histories on nbdetect's loss scale (torchvision RetinaNet / Faster R-CNN losses)."""
from __future__ import annotations

import math


def cosine_lrs(epochs, peak=5e-4, floor=1e-6):
    return [floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * e / epochs)) for e in range(1, epochs + 1)]


def healthy(epochs=50, start=1.8, end=0.15, rate=0.12, lrs=None):
    """Exponential approach from ``start`` to ``end``: a RetinaNet that learns."""
    lrs = lrs or cosine_lrs(epochs)
    out = []
    for e in range(1, epochs + 1):
        val = end + (start - end) * math.exp(-rate * e)
        out.append({"epoch": e, "train_loss": val * 1.05, "val_loss": val, "lr": lrs[e - 1], "map": 0.0})
    return out


def seed_multistep_plateau(epochs=60, milestones=(30, 45), lr=2e-4):
    """The student's run: slow decline to ~0.9, LR cut 10x at epoch 30 while still high, flat after."""
    out = []
    for e in range(1, epochs + 1):
        cur = lr * 0.1 ** sum(e > m for m in milestones)
        if e <= milestones[0]:
            val = 0.95 + 0.85 * math.exp(-0.15 * e)
        else:
            val = out[milestones[0] - 1]["val_loss"] * (1 - 0.001 * (e - milestones[0]))
        out.append({"epoch": e, "train_loss": val * 1.02, "val_loss": val, "lr": cur})
    return out


def diverging(epochs=8, nan_at=6):
    out = healthy(epochs=epochs)
    for rec in out[nan_at - 1:]:
        rec["train_loss"] = float("nan")
        rec["val_loss"] = float("nan")
    return out


def flat_bad_data(epochs=50, level=1.7):
    """Labels/boxes unrelated to the images: the loss barely moves."""
    lrs = cosine_lrs(epochs)
    return [{"epoch": e, "train_loss": level * (1 - 0.002 * e), "val_loss": level * (1 - 0.001 * e), "lr": lrs[e - 1]}
            for e in range(1, epochs + 1)]
