"""Schedule and curve checks: LR timeline against the loss history."""
from __future__ import annotations

import math

from .report import Finding

CHECK = "lr"

# Peak LRs beyond which detection training usually diverges (fine-tuning torchvision detectors).
TOO_HIGH = {"adam": 3e-3, "sgd": 0.1}


def optimizer_kind(optimizer) -> str | None:
    if optimizer is None:
        return None
    name = type(optimizer).__name__.lower()
    if "adam" in name:
        return "adam"
    if "sgd" in name:
        return "sgd"
    return None


def _fmt_runs(lrs: list[float]) -> str:
    """'2e-04 for epochs 1-30, 2e-05 for epochs 31-45, ...' (first few runs)."""
    runs, start = [], 0
    for i in range(1, len(lrs) + 1):
        if i == len(lrs) or not math.isclose(lrs[i], lrs[start], rel_tol=0.02):
            runs.append((start, i - 1, lrs[start]))
            start = i
    if len(runs) > 6:
        return f"{lrs[0]:.3g} at epoch 1 -> {max(lrs):.3g} peak -> {lrs[-1]:.3g} at epoch {len(lrs)} (smooth)"
    return ", ".join(f"{lr:.3g} for epochs {a + 1}-{b + 1}" if a != b else f"{lr:.3g} at epoch {a + 1}"
                     for a, b, lr in runs)


def check_lr_config(timeline, optimizer=None, history=None) -> list[Finding]:
    """The LR timeline rebuilt from the optimizer/scheduler, and a peak LR far above what detectors take.

    What the LR did to the loss curve is judged by the curve check (nbdetect.verdict over curve facts).
    """
    out: list[Finding] = []
    kind = optimizer_kind(optimizer)
    lrs = [x for x in (timeline.per_epoch if timeline is not None else []) if math.isfinite(x)]
    if not lrs and history is not None and history.has_lr():
        lrs = [x for x in history.lr if math.isfinite(x)]
    if timeline is not None:
        shown = _fmt_runs(lrs) if lrs else f"current LR {timeline.current_lr:.3g}"
        out.append(Finding(CHECK, "lr_timeline", "pass",
                           f"LR timeline reconstructed from {timeline.scheduler} (stepped per {timeline.interval})",
                           shown + ("" if not timeline.notes else "; " + "; ".join(timeline.notes))))
    peak = max(lrs) if lrs else None
    if peak is not None and kind is not None and peak > TOO_HIGH[kind]:
        out.append(Finding(CHECK, "lr_too_high", "warn",
                           f"peak LR {peak:.3g} is high for {type(optimizer).__name__} on a detector",
                           f"above ~{TOO_HIGH[kind]:g} detection training usually diverges",
                           "Use 1e-4..5e-4 (AdamW) or 0.005..0.02 (SGD) with warmup and gradient clipping."))
    return out
