"""Anchors that fit the data's boxes: coverage of box shapes by anchor shapes, and a fit that keeps the layout.

Pure numpy. Box shapes are (w, h) in the model's input pixels (after its resize). An anchor "covers" a box
when their shapes, centred on each other, overlap with IoU >= ``thr`` (an upper bound on the real match, as
the best-possible-recall figure of YOLOv5's autoanchor). :func:`fit` keeps the preset's layout (levels,
sizes per level, ratios per level: so pretrained heads still load) and changes two things: one factor on
every anchor size (the FPN's octave structure stays, small anchors on fine levels), chosen to cover the most
boxes, and the aspect ratios, read from the quantiles of the boxes' h/w. ``diagnose()`` reads the same
coverage (``checks_boxes``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def best_anchor_iou(w: np.ndarray, h: np.ndarray, sizes, ratios) -> np.ndarray:
    """Best IoU of each (w, h) box with any anchor shape, both centred (an upper bound on the real match).
    ``sizes``/``ratios``: per feature level, as torchvision's AnchorGenerator holds them (ratio = h / w)."""
    w, h = np.asarray(w, dtype=float), np.asarray(h, dtype=float)
    best = np.zeros(len(w))
    for level_sizes, level_ratios in zip(sizes, ratios):
        for a in level_sizes:
            for r in level_ratios:
                ah, aw = a * np.sqrt(r), a / np.sqrt(r)
                inter = np.minimum(w, aw) * np.minimum(h, ah)
                best = np.maximum(best, inter / (w * h + aw * ah - inter))
    return best


def coverage(w, h, sizes, ratios, thr: float = 0.5) -> float:
    """Share of boxes some anchor shape matches with IoU >= ``thr`` (0..1; 1.0 for no boxes)."""
    if len(w) == 0:
        return 1.0
    return float((best_anchor_iou(w, h, sizes, ratios) >= thr).mean())


@dataclass(frozen=True)
class AnchorFit:
    sizes: tuple  # per level
    ratios: tuple  # per level
    coverage_before: float
    coverage_after: float
    factor: float  # every size was multiplied by this
    boxes: int

    @property
    def changed(self) -> bool:
        return self.coverage_after > self.coverage_before

    def describe(self) -> str:
        shown = ", ".join("/".join(f"{s:.0f}" for s in level) for level in self.sizes)
        ratios = "/".join(f"{r:.2g}" for r in self.ratios[0])
        return (f"anchors from {self.boxes} training boxes: sizes {shown} px (x{self.factor:.2g}), h/w ratios "
                f"{ratios}; boxes an anchor shape covers (IoU >= 0.5): {self.coverage_before:.0%} -> "
                f"{self.coverage_after:.0%}")


def _ratios_from(w, h, n: int) -> tuple:
    """``n`` aspect ratios (h / w) at evenly spaced quantiles of the boxes', at least 15% apart."""
    r = np.clip(np.asarray(h, float) / np.asarray(w, float), 0.2, 5.0)
    qs = np.quantile(np.log(r), [(2 * i + 1) / (2 * n) for i in range(n)])
    mid = float(np.median(qs))
    step = np.log(1.15)
    out = [mid + (i - (n - 1) / 2) * step for i in range(n)]  # the minimum spread around the median
    spread = [q for q in qs]
    if n > 1 and (spread[-1] - spread[0]) > step * (n - 1):
        out = spread
    return tuple(float(np.exp(v)) for v in out)


def fit(w, h, sizes, ratios, *, thr: float = 0.5, factors=None, min_gain: float = 0.02) -> AnchorFit:
    """The preset's anchors with one size factor and data aspect ratios, when that covers more boxes (by at
    least ``min_gain``); otherwise the preset's anchors unchanged."""
    w, h = np.asarray(w, float), np.asarray(h, float)
    ok = (w > 0) & (h > 0)
    w, h = w[ok], h[ok]
    sizes = tuple(tuple(float(s) for s in level) for level in sizes)
    ratios = tuple(tuple(float(r) for r in level) for level in ratios)
    before = coverage(w, h, sizes, ratios, thr)
    if len(w) == 0:
        return AnchorFit(sizes, ratios, before, before, 1.0, 0)
    new_ratios = tuple(_ratios_from(w, h, len(level)) for level in ratios)
    factors = np.geomspace(0.25, 4.0, 41) if factors is None else factors
    scored = []
    for f in factors:
        cand = tuple(tuple(float(s * f) for s in level) for level in sizes)
        scored.append((coverage(w, h, cand, new_ratios, thr), -abs(np.log(f)), float(f), cand))
    best_cov, _, factor, best_sizes = max(scored)
    if best_cov < before + min_gain:
        return AnchorFit(sizes, ratios, before, before, 1.0, len(w))
    return AnchorFit(best_sizes, new_ratios, before, best_cov, factor, len(w))
