"""Schedule and curve checks: LR timeline against the loss history."""
from __future__ import annotations

import math

from . import curve
from .report import Finding

CHECK = "lr"

# Peak LRs beyond which detection training usually diverges (fine-tuning torchvision detectors).
TOO_HIGH = {"adam": 3e-3, "sgd": 0.1}
# LRs below which progress is too slow to matter within a run.
TOO_LOW = {"adam": 1e-5, "sgd": 1e-4}


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


def check_lr(timeline, history, optimizer=None) -> list[Finding]:
    out: list[Finding] = []
    kind = optimizer_kind(optimizer)
    lrs = list(timeline.per_epoch) if timeline is not None else []
    if not lrs and history is not None and history.has_lr():
        lrs = list(history.lr)
    name, values = history.primary() if history is not None else ("loss", [])
    n = len(values)
    current = timeline.current_lr if timeline is not None else (lrs[n - 1] if n and len(lrs) >= n else None)
    finite_lrs = [x for x in lrs if math.isfinite(x)]
    peak = max(finite_lrs) if finite_lrs else None
    if timeline is not None:
        out.append(Finding(CHECK, "lr_timeline", "pass",
                           f"LR timeline reconstructed from {timeline.scheduler} (stepped per {timeline.interval})",
                           _fmt_runs(finite_lrs) + ("" if not timeline.notes else "; " + "; ".join(timeline.notes))))

    # divergence
    div = curve.divergence_index(values) if n else None
    if div is not None:
        lr_there = lrs[div] if div < len(lrs) else None
        at = f" (LR {lr_there:.3g} there)" if lr_there is not None and math.isfinite(lr_there) else ""
        shown = ", ".join(f"{v:.3g}" for v in values[max(0, div - 3):div + 1])
        out.append(Finding(CHECK, "lr_too_high", "fail",
                           f"the loss diverges at epoch {div + 1}{at}: the LR is too high for this model",
                           f"{name} ... {shown}" + (f"; peak LR {peak:.3g}" if peak else ""),
                           "Lower the LR (5e-4 to 1e-4 for AdamW, 0.005-0.01 for SGD at batch 4), add a warmup "
                           "and gradient clipping (max_norm=10): nbdetect.alternative_1 does all three."))
    elif peak is not None and kind is not None and peak > TOO_HIGH[kind]:
        out.append(Finding(CHECK, "lr_too_high", "warn",
                           f"peak LR {peak:.3g} is high for {type(optimizer).__name__} on a detector",
                           f"above ~{TOO_HIGH[kind]:g} detection training usually diverges",
                           "Use 1e-4..5e-4 (AdamW) or 0.005..0.02 (SGD) with warmup and gradient clipping."))

    # step decays versus convergence
    if n >= 4 and lrs and div is None:
        for d, factor in curve.lr_drops(lrs[:n]):
            if d < 2 or not math.isclose(lrs[d - 1], lrs[d - 2], rel_tol=1e-3):
                continue  # smooth decay (cosine tail), not a step
            j = curve.judge_decay(values, d)
            evidence = (f"LR {lrs[d - 1]:.3g} -> {lrs[d]:.3g} at epoch {d + 1}; {name} fell "
                        f"{j.rate_before:.1%}/epoch in the epochs before, "
                        + (f"{j.rate_after:.1%}/epoch after" if math.isfinite(j.rate_after) else "no epochs after yet")
                        + f"; {name} at the drop {values[d - 1]:.4g} (epoch 1: {values[0]:.4g})")
            if j.stalled_after:
                out.append(Finding(CHECK, "lr_decay_before_convergence", "fail",
                                   f"the LR was cut after {d} epochs (epoch {d + 1} onwards) while the loss was still falling, and "
                                   "learning stalled after the cut", evidence,
                                   "Decay only after the loss flattens: use warmup + cosine (alternative_1), or move "
                                   "the MultiStepLR milestones to the plateau; to test without restarting, raise the "
                                   "LR back (alternative_3)."))
                break
            if j.still_learning and not math.isfinite(j.rate_after):
                out.append(Finding(CHECK, "lr_decay_before_convergence", "warn",
                                   f"the LR was just cut at epoch {d + 1} while the loss was still falling",
                                   evidence, "Watch the next epochs; if the loss stalls, raise the LR back "
                                             "(alternative_3) or switch to warmup + cosine (alternative_1)."))
                break
    # LR too low now
    if n >= 6 and current is not None and peak and div is None:
        flat = curve.is_plateau(values, window=5, tol=0.03)
        rel_low = current <= 0.1 * peak
        abs_low = kind is not None and current < TOO_LOW[kind]
        if flat and (rel_low or abs_low):
            out.append(Finding(CHECK, "lr_too_low", "warn",
                               f"the LR is now {current:.3g} ({current / peak:.0%} of its peak) and the loss is flat",
                               f"{name} improved {curve.improvement(values, n - 6, n - 1):.1%} over the last 5 epochs",
                               "At this LR more epochs will not move the loss: raise it (alternative_3 for a quick "
                               "test) or restart with warmup + cosine (alternative_1)."))
    return out


def check_curve(history, expected=None) -> list[Finding]:
    if history is None or history.n_epochs == 0:
        return []
    name, values = history.primary()
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    out: list[Finding] = []
    if len(vals) < 2 or curve.divergence_index(values) is not None:
        return out
    total = curve.improvement(vals, 0, len(vals) - 1)
    evidence = (f"{name}: epoch 1 {vals[0]:.4g} -> epoch {len(vals)} {vals[-1]:.4g} ({total:.0%} lower); "
                f"min {min(vals):.4g}")
    if expected:
        above = curve.below_expected(values, expected)
        if above:
            shown = "; ".join(f"epoch {e}: {v:.4g} > {hi:g}" for e, v, lo, hi in above[:5])
            out.append(Finding("curve", "below_expected_curve", "warn" if len(above) < 2 else "fail",
                               f"the loss is above the expected curve at {len(above)} checkpoints",
                               shown + "; " + evidence,
                               "If the data checks pass, switch recipes: alternative_1, then alternative_2 if it "
                               "still lags at its decision epoch."))
    if len(vals) >= 6 and curve.is_plateau(vals, window=5, tol=0.03) and total < 0.3:
        out.append(Finding("curve", "loss_plateau", "warn",
                           f"the loss has barely moved: {total:.0%} lower than epoch 1 and flat for 5 epochs",
                           evidence, "If the data and model checks pass, the schedule is the problem: "
                                     "run alternative_1."))
    if not out:
        out.append(Finding("curve", "curve_ok", "pass", "the loss curve is falling or converged", evidence))
    return out
