"""PNG pictures for the report: LR timeline beside the loss, and samples with their boxes.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global state).
"""
from __future__ import annotations

import io
import math

import numpy as np


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def lr_loss_png(lrs: list[float] | None, history, marks: list[int] | None = None) -> bytes | None:
    """LR per epoch (log scale, left) and the loss curves (right); vertical lines at ``marks`` (1-based epochs)."""
    from matplotlib.figure import Figure

    has_lr = bool(lrs) and any(math.isfinite(x) and x > 0 for x in lrs)
    has_loss = history is not None and history.n_epochs > 0
    if not (has_lr or has_loss):
        return None
    fig = Figure(figsize=(8, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlabel("epoch")
    if has_lr:
        xs = np.arange(1, len(lrs) + 1)
        ax.step(xs, lrs, where="post", color="tab:blue", label="LR")
        ax.set_yscale("log")
        ax.set_ylabel("learning rate", color="tab:blue")
    if has_loss:
        ax2 = ax.twinx() if has_lr else ax
        for label, vals, colour in (("train loss", history.train, "tab:orange"), ("val loss", history.val, "tab:red")):
            if vals:
                ax2.plot(np.arange(1, len(vals) + 1), [v if math.isfinite(v) else np.nan for v in vals],
                         color=colour, marker=".", label=label)
        ax2.set_ylabel("loss")
        ax2.legend(loc="upper right", fontsize=8)
    for m in marks or []:
        ax.axvline(m, color="grey", linestyle="--", linewidth=1)
    ax.set_title("LR timeline and loss" if has_lr and has_loss else ("LR timeline" if has_lr else "loss"))
    fig.tight_layout()
    return _png(fig)


def sample_png(image, boxes, title: str = "", max_side: int = 240) -> bytes:
    """One image (tensor [3,H,W] / HWC / PIL) with its boxes drawn as given, small."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    h, w = arr.shape[:2]
    scale = max_side / max(h, w)
    fig = Figure(figsize=(max(1.5, w * scale / 80), max(1.2, h * scale / 80)))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
    b = boxes.detach().cpu().numpy() if hasattr(boxes, "detach") else np.asarray(boxes, dtype=float)
    for x1, y1, x2, y2 in b.reshape(-1, 4)[:30]:
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="red", linewidth=1.5))
    ax.set_xlim(min(0, b[:, 0].min() if len(b) else 0), max(w, b[:, 2].max() if len(b) else w))
    ax.set_ylim(max(h, b[:, 3].max() if len(b) else h), min(0, b[:, 1].min() if len(b) else 0))
    ax.axis("off")
    if title:
        ax.text(2, 2, title, color="yellow", fontsize=7, va="top")
    return _png(fig)
