"""Schedule and curve checks: LR timeline against the loss history."""
from __future__ import annotations

import math

from ..verdict_data import DETECTOR_LR_FLOOR  # the verdict's floor: no detector learns below it
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




def check_optimizer_covers_model(model, optimizer) -> list[Finding]:
    """The optimizer must hold the model's trainable parameters, the head's in particular: an optimizer built
    before the head was replaced (or a head frozen by mistake) trains nothing where it matters."""
    if model is None or optimizer is None or not hasattr(model, "named_parameters"):
        return []
    held = {id(p) for g in getattr(optimizer, "param_groups", []) for p in g.get("params", [])}
    params = list(model.named_parameters())
    trainable = [(n, p) for n, p in params if p.requires_grad]
    head = [(n, p) for n, p in params if n.startswith(("head.", "roi_heads.", "rpn."))]
    missing = [n for n, p in trainable if id(p) not in held]
    if trainable and len(missing) == len(trainable):  # none of this model's tensors: another model's optimizer
        return [Finding(CHECK, "optimizer_ok", "skip",
                        "optimizer coverage not checked: the optimizer holds none of this model's parameters "
                        "(an optimizer of another model, or a copy)")]
    frozen_head = [n for n, p in head if not p.requires_grad]
    out = []
    if head and frozen_head and len(frozen_head) == len(head):
        out.append(Finding(CHECK, "optimizer_misses_params", "fail",
                           "the detection head is frozen (requires_grad=False): it cannot learn",
                           f"{len(frozen_head)} head parameters frozen, e.g. {frozen_head[0]}",
                           "Unfreeze it: for p in model.head.parameters(): p.requires_grad = True; then rebuild the "
                           "optimizer over the trainable parameters."))
    if missing:
        head_missing = [n for n in missing if n.startswith(("head.", "roi_heads.", "rpn."))]
        what = "the head's parameters" if head_missing else "some trainable parameters"
        out.append(Finding(CHECK, "optimizer_misses_params", "fail",
                           f"the optimizer does not hold {what}: {len(missing)} of {len(trainable)} trainable "
                           "tensors are never updated",
                           f"e.g. {', '.join((head_missing or missing)[:3])} (an optimizer built before the head was "
                           "replaced keeps the old head's tensors)",
                           "Build the optimizer after the model is final: torch.optim.AdamW([p for p in "
                           "model.parameters() if p.requires_grad], lr=...)."))
    if not out and trainable:
        out.append(Finding(CHECK, "optimizer_ok", "pass",
                           f"the optimizer holds all {len(trainable)} trainable tensors, the head's included"))
    return out


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
    current = lrs[-1] if lrs else None
    if current is None and optimizer is not None:
        groups = [g.get("lr") for g in getattr(optimizer, "param_groups", []) if isinstance(g.get("lr"), (int, float))]
        current = max(groups) if groups else None
    if current is not None and 0 < current < DETECTOR_LR_FLOOR and (peak is None or peak < DETECTOR_LR_FLOOR):
        out.append(Finding(CHECK, "lr_too_low", "warn",
                           f"the LR is {current:.3g} and never higher: below the range detectors train in",
                           "SGD trains detectors at 1e-3..2e-2, Adam(W) at 1e-5..1e-3; below 1e-6 the weights barely "
                           "move, so a flat curve says nothing about the data",
                           "Raise the LR into that range (nbdetect.alternative_3 raises a live optimizer's LR)."))
    if peak is not None and kind is not None and peak > TOO_HIGH[kind]:
        out.append(Finding(CHECK, "lr_too_high", "warn",
                           f"peak LR {peak:.3g} is high for {type(optimizer).__name__} on a detector",
                           f"above ~{TOO_HIGH[kind]:g} detection training usually diverges",
                           "Use 1e-4..5e-4 (AdamW) or 0.005..0.02 (SGD) with warmup and gradient clipping."))
    return out


def run_lr(ctx) -> list[Finding]:
    """The "lr" check of the registry (nbdetect.checks.registry): the LR timeline of the optimizer/scheduler."""
    return check_lr_config(ctx.timeline, ctx.optimizer, ctx.history)


def run_optimizer(ctx) -> list[Finding]:
    """The "optimizer" check: does the optimizer hold every trainable parameter of the model."""
    return check_optimizer_covers_model(ctx.model, ctx.optimizer)
