"""Overfit one batch: on a deep copy of the model, can the loss be driven down on a single batch?

If a detector cannot fit four images in a few dozen steps with a safe optimizer,
the pipeline (data, targets, model head) is broken; no schedule will fix it.
The user's model is never touched.
"""
from __future__ import annotations

import copy
import math
import time

from .report import Finding

CHECK = "overfit"
MIN_STEPS_FOR_FAIL = 20  # fewer steps than this never call a pipeline broken: a quick check is inconclusive


def ratio_of(losses) -> float:
    first = losses[0]
    return min(losses[-3:]) / first if first > 0 else math.nan


def overfit_one_batch(model, images, targets, *, steps: int = 40, seconds: float = 30.0,
                      lr: float | None = None, device=None) -> dict:
    """Train a copy on one batch; returns ``{"losses": [...], "error": str|None, "lr": float, "seconds": float}``."""
    import torch

    device = torch.device(device) if device is not None else next(model.parameters()).device
    m = copy.deepcopy(model).to(device)
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    if lr is None:
        lr = 3e-4 if sum(p.numel() for p in params) < 5_000_000 else 1e-4
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    images = [img.to(device) for img in images]
    targets = [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in t.items()} for t in targets]
    losses: list[float] = []
    error = None
    rng = torch.get_rng_state()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    try:
        for _ in range(steps):
            loss = sum(m(images, targets).values())
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value):
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            if time.perf_counter() - t0 > seconds:
                break
    except Exception as exc:  # a broken batch is itself the finding
        error = f"{type(exc).__name__}: {exc}"
    finally:
        torch.set_rng_state(rng)
    return {"losses": losses, "error": error, "lr": lr, "seconds": time.perf_counter() - t0, "steps": steps}


def judge_overfit(result: dict, batch_indices: list[int] | None = None) -> Finding:
    losses, err = result["losses"], result["error"]
    idx = list(batch_indices or [])
    if err:
        return Finding(CHECK, "overfit_failed", "fail", "the model cannot even run a training step on one batch",
                       err, "Fix the data/targets named above; the error comes from the model's forward/backward.",
                       idx)
    if not losses:
        return Finding(CHECK, "overfit_skipped", "skip", "overfit-one-batch produced no step")
    if len(losses) < MIN_STEPS_FOR_FAIL and math.isfinite(losses[-1]) and not ratio_of(losses) <= 0.5:
        return Finding(CHECK, "overfit_inconclusive", "skip",
                       f"overfit-one-batch inconclusive: {len(losses)} steps are too few to call the pipeline "
                       f"broken (needs {MIN_STEPS_FOR_FAIL}; {result['seconds']:.0f} s)",
                       "raise overfit_steps (on a GPU) to tell slow from broken", indices=idx)
    if len(losses) < 5:
        return Finding(CHECK, "overfit_inconclusive", "skip",
                       f"overfit-one-batch inconclusive: only {len(losses)} steps fitted in the time budget "
                       f"({result['seconds']:.0f} s)", "run it on a GPU or raise overfit_seconds", indices=idx)
    first = losses[0]
    tail = min(losses[-3:])
    ratio = tail / first if first > 0 else math.nan
    evidence = (f"{len(losses)} AdamW steps at lr {result['lr']:g} on {len(idx) or 'one'} batch images "
                f"({result['seconds']:.1f} s): loss {first:.3g} -> {tail:.3g} ({ratio:.0%} of the start)")
    if not math.isfinite(losses[-1]):
        return Finding(CHECK, "overfit_failed", "fail", "the loss became NaN/Inf while fitting one batch",
                       evidence, "Check for degenerate boxes and images out of range; lower the LR.", idx)
    if ratio <= 0.5:
        return Finding(CHECK, "overfit_ok", "pass", "the model can fit one batch: the pipeline learns", evidence)
    done = len(losses) >= min(result["steps"], 20)
    if ratio > 0.85 and done:
        return Finding(CHECK, "overfit_failed", "fail",
                       "the model cannot fit a single batch: the pipeline is broken, not the schedule",
                       evidence, "Check the images, boxes and labels this batch feeds the model, and the head "
                                 "(num_classes, prior bias). A healthy detector halves its loss on one batch quickly.",
                       idx)
    return Finding(CHECK, "overfit_slow", "warn",
                   "the loss falls slowly even on one batch" + ("" if done else " (stopped by the time budget)"),
                   evidence, "Give it more steps (overfit_steps=) on a GPU to tell slow from broken.", idx)


def run_overfit(ctx) -> list[Finding]:
    """The "overfit" check of the registry (nbdetect.checks.registry): overfit the first batch, bounded (skipped
    for a big model on a CPU unless ``overfit="force"``)."""
    info = ctx.info
    if not ctx.batches:
        return []
    big_on_cpu = (info is not None and info.n_params > 5_000_000
                  and not str(ctx.device or info.device).startswith("cuda"))
    if not ctx.overfit:
        ctx.skipped.append("overfit-one-batch: overfit=False")
        return []
    if big_on_cpu and ctx.overfit != "force":
        ctx.skipped.append(f"overfit-one-batch: a {info.n_params / 1e6:.0f}M-parameter model on CPU needs "
                           "minutes per step; run diagnose on a GPU or pass overfit='force'")
        return []
    ims, tgs = ctx.batches[0]
    res = overfit_one_batch(ctx.model, ims, tgs, steps=ctx.overfit_steps, seconds=ctx.overfit_seconds,
                            device=ctx.device)
    finding = judge_overfit(res, _batch_indices(ctx.data, len(ims)))
    data_broken = any(f.status == "fail" and f.check in ("images", "boxes", "labels", "data") for f in ctx.findings)
    if data_broken and finding.code == "overfit_failed":
        finding.evidence += " (expected: the data problems above break training)"
    return [finding]


def _batch_indices(data, n):
    """The dataset indices of the first batch when they are known (a sequential loader, or a Dataset)."""
    sampler = getattr(data, "sampler", None)
    if sampler is not None and type(sampler).__name__ == "SequentialSampler":
        return list(range(n))
    if not hasattr(data, "batch_size"):
        return list(range(n))
    return []
