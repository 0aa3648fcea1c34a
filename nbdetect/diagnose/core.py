"""diagnose(): the guide's Step 2 as one call that checks whatever it is given."""
from __future__ import annotations

import math
import time

from . import (checks_boxes, checks_images, checks_labels, checks_loss, checks_lr, checks_model, checks_overfit,
               checks_validate)
from .data_scan import dataset_of, first_batches, n_batches_per_epoch, scan
from .history_io import load_history
from .lr_timeline import reconstruct
from .model_probe import probe
from .report import Finding, Report, SampleView

SAMPLE_VIEW_CODES = ("box_xywh", "box_normalized", "box_degenerate", "box_outside_image")


def diagnose(model=None, optimizer=None, scheduler=None, data=None, history=None, *,
             num_classes: int | None = None, label_base: int = 1, epochs: int | None = None,
             steps_per_epoch: int | None = None, scheduler_interval: str = "auto", batch_size: int | None = None,
             expected=None, overfit: bool | str = True, overfit_steps: int = 40, overfit_seconds: float = 30.0,
             loss_batches: int = 2, max_samples: int | None = None, max_image_stats: int = 32,
             data_seconds: float = 40.0, device=None, plots: bool = True) -> Report:
    """Check a detection run and say why it is not learning, root cause first.

    Give what you have; every argument may be missing and the report says what was skipped.

    model: a torchvision RetinaNet / Faster R-CNN (never modified; expensive checks use a deep copy).
    optimizer, scheduler: the live objects (replayed on copies to rebuild the LR per epoch).
    data: a Dataset yielding ``(image, target)`` or a DataLoader over one.
    history: per-epoch losses: a list of numbers, ``{"train": [...], "val": [...]}``, an nbdetect
      History / TrainingRun / ``history.jsonl`` / run folder, or an Ultralytics ``results.csv``.
    num_classes: real classes K (labels 1..K); read from the model when not given.
    label_base: 0 if the data's labels are 0-based and nbdetect is meant to shift them.
    epochs: planned epochs (for the LR timeline); steps_per_epoch: batches per epoch (for
      per-iteration schedulers); expected: ``{epoch: (lo, hi)}`` expected loss bounds.
    overfit: run the bounded overfit-one-batch test (``overfit_steps`` steps or ``overfit_seconds``);
      skipped for models over 5M parameters on CPU unless ``overfit="force"``.
    """
    t0 = time.perf_counter()
    findings: list[Finding] = []
    skipped: list[str] = []
    samples: list[SampleView] = []

    info = probe(model)
    hist = load_history(history)
    if model is None:
        skipped.append("model checks (prior bias, anchors, loss measurement, overfit): no model given")
    if data is None:
        skipped.append("data checks (images, boxes, labels) and loss measurement: no data given")
    if hist is None:
        skipped.append("curve checks (plateau, divergence, LR decay vs convergence, loss scale): no history given")
    if optimizer is None:
        skipped.append("LR timeline: no optimizer given" + (" (the history's logged LR is used)" if hist and hist.has_lr() else ""))

    k = num_classes if num_classes is not None else (info.num_classes if info else None)

    # -- data ----------------------------------------------------------------
    sc = None
    if data is not None:
        sc = scan(data, num_classes=k, label_base=label_base, max_samples=max_samples,
                  max_image_stats=max_image_stats, time_budget_s=data_seconds)
        skipped.extend(sc.notes)
        if sc.errors:
            i, msg = sc.errors[0]
            findings.append(Finding("data", "data_unreadable", "fail",
                                    f"{len(sc.errors)} samples could not be read", f"sample {i}: {msg}",
                                    "Fix the dataset's __getitem__.", [e[0] for e in sc.errors]))
        findings += checks_images.check_images(sc, info)
        findings += checks_boxes.check_boxes(sc, info)
        findings += checks_labels.check_labels(sc, info, num_classes, label_base)
        findings += checks_validate.uncovered(sc, findings)

    # -- model and measured loss ---------------------------------------------
    measured, components, batches = None, None, []
    data_broken = any(f.status == "fail" and f.check in ("images", "boxes", "labels", "data") for f in findings)
    if model is not None and data is not None:
        batches = first_batches(data, max(1, loss_batches), batch_size or 4)
        if info is not None and info.n_params > 5_000_000 and not str(device or info.device).startswith("cuda"):
            batches = [(ims[:2], tgs[:2]) for ims, tgs in batches[:1]]  # bounded on CPU: 2 images
        if label_base == 0:
            from ..conventions import shift_labels

            batches = [(ims, [shift_labels(t, 0) for t in tgs]) for ims, tgs in batches]
        measured, components, err = _measure(model, batches, device)
        if err:
            skipped.append(f"loss measurement failed: {err}")
    if info is not None:
        findings += checks_model.check_prior_bias(info, components)
    if hist is not None:
        nb = n_batches_per_epoch(data, batch_size) if data is not None else None
        bs = getattr(data, "batch_size", None) or batch_size
        findings += checks_loss.check_loss_scale(hist, measured, nb, info.family if info else None, bs)

    # -- overfit one batch ---------------------------------------------------
    if model is not None and batches:
        big_on_cpu = info is not None and info.n_params > 5_000_000 and not str(device or info.device).startswith("cuda")
        if not overfit:
            skipped.append("overfit-one-batch: overfit=False")
        elif big_on_cpu and overfit != "force":
            skipped.append(f"overfit-one-batch: a {info.n_params / 1e6:.0f}M-parameter model on CPU needs minutes "
                           "per step; run diagnose on a GPU or pass overfit='force'")
        else:
            ims, tgs = batches[0]
            res = checks_overfit.overfit_one_batch(model, ims, tgs, steps=overfit_steps, seconds=overfit_seconds,
                                                   device=device)
            finding = checks_overfit.judge_overfit(res, _batch_indices(data, len(ims)))
            if data_broken and finding.code == "overfit_failed":
                finding.evidence += " (expected: the data problems above break training)"
            findings.append(finding)

    # -- LR timeline and curve -----------------------------------------------
    timeline = None
    if optimizer is not None:
        n_done = hist.n_epochs if hist is not None else None
        spe = steps_per_epoch or (n_batches_per_epoch(data, batch_size) if data is not None else None)
        try:
            timeline = reconstruct(optimizer, scheduler, epochs=epochs, epochs_done=n_done,
                                   steps_per_epoch=spe, interval=scheduler_interval)
        except Exception as exc:
            skipped.append(f"LR timeline could not be rebuilt: {type(exc).__name__}: {exc}")
    if timeline is not None or hist is not None:
        findings += checks_lr.check_lr(timeline, hist, optimizer)
        findings += checks_lr.check_curve(hist, expected)

    # -- pictures --------------------------------------------------------------
    plot = None
    if plots:
        lrs = timeline.per_epoch if timeline is not None else (hist.lr if hist is not None else None)
        drops = [i + 1 for i in range(1, len(lrs or [])) if lrs[i] * 2 <= lrs[i - 1]]
        try:
            plot = _lr_loss_plot(lrs, hist, drops[:5])
        except Exception as exc:
            skipped.append(f"plot failed: {exc}")
        if data is not None:
            samples = _sample_views(data, findings)

    return Report(findings, skipped, plot_png=plot, samples=samples, lr_timeline=timeline, history=hist,
                  elapsed_s=time.perf_counter() - t0)


def _lr_loss_plot(lrs, hist, marks):
    from .plots import lr_loss_png

    return lr_loss_png(lrs, hist, marks)


def _measure(model, batches, device):
    """Mean loss per image (and components) on the given batches with nbdetect's evaluate_loss."""
    import torch

    from ..engine import evaluate_loss

    if not batches:
        return None, None, None
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    try:
        loss, parts = evaluate_loss(model, batches, dev)
    except Exception as exc:
        return None, None, f"{type(exc).__name__}: {exc}"
    return (loss if math.isfinite(loss) else None), parts, None


def _batch_indices(data, n):
    sampler = getattr(data, "sampler", None)
    if sampler is not None and type(sampler).__name__ == "SequentialSampler":
        return list(range(n))
    if not hasattr(data, "batch_size"):
        return list(range(n))
    return []


def _sample_views(data, findings, limit: int = 3) -> list[SampleView]:
    from .plots import sample_png

    ds = dataset_of(data)
    views = []
    for f in findings:
        if f.code not in SAMPLE_VIEW_CODES or f.status != "fail":
            continue
        for i in f.indices[:limit]:
            try:
                image, target = ds[i][:2]
                views.append(SampleView(i, f.code, sample_png(image, target.get("boxes"), f"#{i}")))
            except Exception:
                continue
        break
    return views
