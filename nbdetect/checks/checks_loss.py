"""Loss-scale checks: is the reported loss the model's loss, or a sum over batches / another scale?"""
from __future__ import annotations

import math

from ..families import get as get_family
from .report import Finding

CHECK = "loss_scale"

#: A detector of no known family: torchvision's detectors span this (sum of the loss dict, per image) over a run.
#: Each family's own range is its record's ``loss_range`` (nbdetect.families).
TYPICAL_RANGE = (0.05, 5.0)


def _last_finite(values):
    for v in reversed(values):
        if isinstance(v, (int, float)) and math.isfinite(v):
            return float(v)
    return None


def _diverges(history) -> bool:
    """The one judge says the history is non-finite or diverging (then its scale says nothing)."""
    from .checks_curve import curve_verdict

    v = curve_verdict(history, None, None)
    found = [v, *v.findings] if v is not None else []
    return any(f.rule_id in ("nonfinite", "divergence") for f in found)


def check_loss_scale(history, measured: float | None, n_batches: int | None, family: str | None,
                     batch_size: int | None = None, n_val_batches: int | None = None) -> list[Finding]:
    """``n_batches``: batches per epoch of the training loader; ``n_val_batches``: of the validation loader.
    Each loss is compared with its own loader's count (a validation loss is never divided by the training
    loader's batches)."""
    if history is None or history.n_epochs == 0:
        return []
    record = get_family(family)
    lo, hi = record.loss_range if record is not None else TYPICAL_RANGE
    scale = (record.loss_note if record is not None and record.loss_note
             else "RetinaNet ~1-2 at the start, ~0.2-0.5 trained")
    series = [("val_loss", history.val), ("train_loss", history.train)]
    series = [(name, vals) for name, vals in series if _last_finite(vals) is not None]
    if not series:
        return []
    if _diverges(history):
        return [Finding(CHECK, "loss_scale_unchecked", "skip",
                        "loss scale not compared: the history diverges (see the LR checks)")]
    if measured is not None and math.isfinite(measured) and measured > 0:
        ratios = [(name, _last_finite(vals), _last_finite(vals) / measured) for name, vals in series]
        evidence = "; ".join(f"last reported {name} {v:.4g} = {r:.3g} x the loss nbdetect measures now "
                             f"({measured:.4g} per image)" for name, v, r in ratios)
        counts = {"train_loss": n_batches, "val_loss": n_val_batches}
        for name, v, r in ratios:
            count = counts.get(name)
            if count and count >= 3 and 0.6 <= r / count <= 1.7:
                loader = "validation" if name == "val_loss" else "training"
                return [Finding(CHECK, "loss_summed_over_batches", "fail",
                                f"the reported {name.replace('_', ' ')} is summed over the {count} batches of the "
                                f"{loader} loader, not averaged",
                                evidence + f"; ratio / {loader} batches per epoch = {r / count:.2f}",
                                "Divide the epoch's summed loss by the number of batches: "
                                "epoch_loss = running_loss / len(loader). The model may be learning fine "
                                f"on torchvision's scale ({scale}).")]
        if batch_size and batch_size >= 3:
            for name, v, r in ratios:
                if 0.6 <= r / batch_size <= 1.7:
                    return [Finding(CHECK, "loss_scale_unexpected", "warn",
                                    f"the reported {name} is ~{batch_size}x the per-image loss: summed over the "
                                    "images of a batch?", evidence,
                                    "torchvision's loss dict is already averaged per image: do not multiply by "
                                    "the batch size.")]
        big = [(name, v, r) for name, v, r in ratios if r > 10 or r < 0.1]
        if big:
            name, v, r = big[0]
            return [Finding(CHECK, "loss_scale_unexpected", "warn",
                            f"the reported {name} is {r:.3g}x the model's own loss: it is not on torchvision's scale",
                            evidence, "Report sum(model(images, targets).values()) averaged over batches; compare "
                                      "thresholds on that scale.")]
        return [Finding(CHECK, "loss_scale_ok", "pass", "the reported loss matches the model's own loss scale",
                        evidence)]
    first = next((v for v in (history.train + history.val) if isinstance(v, (int, float)) and math.isfinite(v)), None)
    last = max(_last_finite(vals) for _, vals in series)
    if first is not None and max(first, last) > 20 * hi and not history.source.startswith("Ultralytics"):
        return [Finding(CHECK, "loss_scale_unexpected", "warn",
                        f"the reported loss ({max(first, last):.4g}) is far above torchvision's scale "
                        f"({lo:g}-{hi:g} for {record.title if record is not None else 'a torchvision detector'})",
                        "without the model and data the cause cannot be measured: a loss summed over batches, "
                        "or a RetinaNet head without its prior bias (starts in the hundreds) are the usual stories. "
                        "The guide's 'expected 1500-2000 at the start' is not torchvision's scale either.",
                        "Run diagnose(model=..., data=..., history=...) so the loss can be measured.")]
    return []


def run_loss_scale(ctx) -> list[Finding]:
    """The "loss_scale" check of the registry (nbdetect.checks.registry), on diagnose's shared context."""
    return check_loss_scale(ctx.history, ctx.measured, ctx.n_batches, ctx.info.family if ctx.info else None,
                            ctx.batch_size, ctx.n_val_batches)
