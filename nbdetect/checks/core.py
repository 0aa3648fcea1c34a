"""diagnose(): the guide's Step 2 as one call that checks whatever it is given."""
from __future__ import annotations

import inspect
import math
import time

from .. import arguments
from . import registry
from .data_scan import dataset_of, first_batches, n_batches_per_epoch, scan
from .history_io import load_history
from .lr_timeline import reconstruct
from .model_probe import probe
from .report import Finding, Report, SampleView

SAMPLE_VIEW_CODES = ("box_xywh", "box_normalized", "box_degenerate", "box_outside_image")


class Context:
    """What the checks share, each piece built once: the model probe, the data scan, a forward pass on the
    first batches, the LR timeline and the loss history."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.findings: list[Finding] = []

    def has(self, need: str) -> bool:
        return getattr(self, need, None) is not None


def diagnose(model=None, optimizer=None, scheduler=None, data=None, history=None, *,
             num_classes: int | None = None, label_base: int = 1, epochs: int | None = None,
             steps_per_epoch: int | None = None, scheduler_interval: str = "auto", batch_size: int | None = None,
             expected=None, overfit: bool | str = True, overfit_steps: int = 40, overfit_seconds: float = 30.0,
             loss_batches: int = 2, max_samples: int | None = None, max_image_stats: int = 32,
             data_seconds: float = 40.0, device=None, plots: bool = True, recipe: str | None = None,
             val_data=None, history_kind: str = "auto") -> Report:
    """Check a detection run and say why it is not learning, root cause first.

    Give what you have; every argument may be missing and the report says what was skipped. diagnose()
    never raises on a student's input: what cannot be read or checked is reported in one line.

    model: a torchvision RetinaNet / Faster R-CNN (never modified; expensive checks use a deep copy).
    optimizer, scheduler: the live objects (replayed on copies to rebuild the LR per epoch).
    data: a Dataset yielding ``(image, target)`` or a DataLoader over one.
    history: per-epoch losses: a list of numbers, ``{"train": [...], "val": [...]}``, an nbdetect
      History / TrainingRun / ``history.jsonl`` / run folder, or an Ultralytics ``results.csv``.
    num_classes: real classes K (labels 1..K); read from the model when not given.
    label_base: 0 if the data's labels are 0-based and nbdetect is meant to shift them.
    epochs: planned epochs (for the LR timeline and the curve's projection); steps_per_epoch: batches per
      epoch (for per-iteration schedulers); expected: ``{epoch: (lo, hi)}`` expected loss bounds.
    recipe: the nbdetect recipe the history comes from (``"alternative_1"``...); default: your own run.
    val_data: the validation Dataset/DataLoader (its batch count tells a validation loss summed over batches).
    history_kind: ``"val"`` when a plain list of losses is your validation loss (an AS4 ``val_losses``),
      ``"train"`` for training losses; ``"auto"`` reads a plain list as the training loss.
    overfit: run the bounded overfit-one-batch test (``overfit_steps`` steps or ``overfit_seconds``);
      skipped for models over 5M parameters on CPU unless ``overfit="force"``.
    """
    from ..run_guard import active_runs, wait_for_active

    if model is not None and any(getattr(r, "model", None) is model for r in active_runs()):
        wait_for_active("diagnosing the model it trains")  # probing weights that change meanwhile checks nothing
    t0 = time.perf_counter()
    options, refused = arguments.check_or_default(dict(
        num_classes=num_classes, label_base=label_base, epochs=epochs, steps_per_epoch=steps_per_epoch,
        scheduler_interval=scheduler_interval, batch_size=batch_size, expected=expected, overfit=overfit,
        overfit_steps=overfit_steps, overfit_seconds=overfit_seconds, loss_batches=loss_batches,
        max_samples=max_samples, max_image_stats=max_image_stats, data_seconds=data_seconds, device=device,
        plots=plots, recipe=recipe, history_kind=history_kind), DEFAULTS)
    (num_classes, label_base, epochs, steps_per_epoch, scheduler_interval, batch_size, expected, overfit,
     overfit_steps, overfit_seconds, loss_batches, max_samples, max_image_stats, data_seconds, device, plots, recipe,
     history_kind) = options.values()
    skipped: list[str] = []
    failed = NotChecked()
    samples: list[SampleView] = []
    info = _guard(failed, "the model (probe failed)", probe, model) if model is not None else None
    try:
        hist = load_history(history)
    except Exception as exc:  # an unreadable history is an inconclusive curve check, never a verdict
        hist = None
        what = exc.what if hasattr(exc, "what") else f"{type(exc).__name__}: {exc}"
        failed.add("the loss curve (the history could not be read)",
                   f"{what}. Pass a list of per-epoch losses, {{'train': [...], 'val': [...]}}, or a history file "
                   "(history.jsonl, results.csv, results.txt, metrics.json, *.log.json, metrics.csv) or run folder")
    if hist is not None and history_kind == "val" and not hist.val and any(math.isfinite(v) for v in hist.train):
        hist = hist.as_validation()  # the list you gave is your validation loss: named as such
    if hist is not None and hist.n_epochs == 0:
        skipped.append("history is empty: no epoch to judge")
        hist = None
    k = num_classes if num_classes is not None else (info.num_classes if info else None)

    sc = None
    if data is not None:
        sc = _guard(failed, "the data (scan failed)", scan, data, num_classes=k, label_base=label_base, max_samples=max_samples,
                    max_image_stats=max_image_stats, time_budget_s=data_seconds)
        if sc is not None:
            skipped.extend(sc.notes)
            if not sc.samples and not sc.errors:
                skipped.append("data is empty: no sample to check (pass the Dataset you train on)")
                sc = None

    batches, measured, components = [], None, None
    if model is not None and sc is not None:
        batches = _guard(skipped, "first batches", first_batches, data, max(1, loss_batches), batch_size or 4) or []
        if info is not None and info.n_params > 5_000_000 and not str(device or info.device).startswith("cuda"):
            batches = [(ims[:2], tgs[:2]) for ims, tgs in batches[:1]]  # bounded on CPU: 2 images
        if label_base == 0:
            from ..conventions import shift_labels

            batches = [(ims, [shift_labels(t, 0) for t in tgs]) for ims, tgs in batches]
        measured, components, err = _measure(model, batches, device)
        if err:
            failed.add("the loss scale (measuring the model's loss failed)", err)

    timeline = None
    if optimizer is not None:
        n_done = hist.n_epochs if hist is not None else None
        spe = steps_per_epoch or (n_batches_per_epoch(data, batch_size) if data is not None else None)
        try:
            timeline = reconstruct(optimizer, scheduler, epochs=epochs, epochs_done=n_done,
                                   steps_per_epoch=spe, interval=scheduler_interval)
        except Exception as exc:
            failed.add("the LR schedule (the timeline could not be rebuilt from the optimizer and scheduler)", exc)
    total = planned_epochs(epochs, timeline, hist, recipe)

    ctx = Context(model=model if info is not None else None, info=info, optimizer=optimizer, scheduler=scheduler,
                  data=data if sc is not None else None, scan=sc, history=hist, timeline=timeline,
                  num_classes=num_classes, label_base=label_base, batches=batches, measured=measured,
                  measured_components=components, n_batches=_guard(skipped, "batch count", n_batches_per_epoch,
                                                                   data, batch_size) if data is not None else None,
                  n_val_batches=_guard(skipped, "validation batch count", n_batches_per_epoch, val_data, batch_size)
                  if val_data is not None else None,
                  batch_size=getattr(data, "batch_size", None) or batch_size, device=device, overfit=overfit,
                  overfit_steps=overfit_steps, overfit_seconds=overfit_seconds, expected=expected,
                  total_epochs=total, recipe=recipe, skipped=skipped)
    for check in registry.CHECKS:
        missing = [need for need in check.needs if not ctx.has(need)]
        if missing:
            if check.why_skipped:
                skipped.append(check.why_skipped)
            continue
        try:
            ctx.findings += registry.run_check(check, ctx)
        except Exception as exc:  # a check that breaks on odd input says so and the others go on
            failed.add(f"{check.name} (the check could not run)", exc)
    ctx.findings += failed.findings()
    ctx.findings += [Finding("arguments", "option_ignored", "warn", what, fix=fix) for what, fix in refused]
    tiles = (hist.meta.get("tiles") if hist is not None else None) or {}
    for f in ctx.findings if tiles.get("size") else ():  # a run folder of a run trained on tiles says so
        if f.check == "curve":
            f.evidence = (f.evidence + "\n" if f.evidence else "") + (
                f"the run trains on {tiles['size']}-px tiles at native resolution ({tiles.get('tiles', '?')} tiles "
                f"from {tiles.get('frames', '?')} frames); its mAP predicts whole frames by slices")
    if optimizer is None:
        skipped.append("LR timeline: no optimizer given" + (" (the history's logged LR is used)"
                                                            if hist is not None and hist.has_lr() else ""))

    plot = None
    if plots:
        lrs = timeline.per_epoch if timeline is not None else (hist.lr if hist is not None else None)
        lrs = [x if math.isfinite(x) else math.nan for x in (lrs or [])]
        drops = [i + 1 for i in range(1, len(lrs)) if lrs[i] * 2 <= lrs[i - 1]]
        try:
            plot = _lr_loss_plot(lrs or None, hist, drops[:5])
        except Exception as exc:
            skipped.append(f"plot failed: {exc}")
        if sc is not None:
            samples = _sample_views(data, ctx.findings)

    return Report(ctx.findings, _unique(skipped + [f"{what}: {why}" for what, why in failed]), plot_png=plot, samples=samples, lr_timeline=timeline,
                  history=hist, elapsed_s=time.perf_counter() - t0,
                  checked=bool(failed) or any(ctx.has(n) for n in ("model", "data", "history", "optimizer")))


#: diagnose()'s defaults: what a refused option is replaced by (arguments.check_or_default)
DEFAULTS = {name: p.default for name, p in inspect.signature(diagnose).parameters.items()
            if p.default is not inspect.Parameter.empty}


def planned_epochs(epochs, timeline, hist, recipe=None) -> int | None:
    """The run's planned length: given, read from the scheduler (milestones, T_max...), written in the history
    (a run folder, an Ultralytics args.yaml), the named recipe's, or unknown.

    A history that reached its planned length is graded as finished; one whose plan is unknown is never
    graded as finished (it may still be running): None.
    """
    if epochs:
        return int(epochs)
    done = hist.n_epochs if hist is not None else 0
    if timeline is not None and len(timeline.per_epoch) > done:
        return len(timeline.per_epoch)
    written = (hist.meta.get("total_epochs") if hist is not None else None)
    if written:
        return max(int(written), done)
    from ..recipes import find

    known = find(recipe) if recipe else None
    if known is not None:
        return max(known.epochs, done + 1)
    return None


class NotChecked(list):
    """What could not be read or could not run: ``(what, why)``; each becomes a ``not_checked`` finding, so a
    report with a gap never reads "No problem found"."""

    def add(self, what: str, why) -> None:
        why = f"{type(why).__name__}: {why}" if isinstance(why, BaseException) else str(why)
        self.append((what, why))

    def findings(self) -> list[Finding]:
        return [Finding("inputs", "not_checked", "warn", f"Not checked: {what}", why,
                        "pass this input in a form nbdetect reads (the line above says what failed)")
                for what, why in self]


def _guard(skipped, what, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        skipped.append(f"{what} failed: {type(exc).__name__}: {exc}")
        if isinstance(skipped, NotChecked):
            skipped.add(what, exc)
        return None


def _unique(lines):
    return list(dict.fromkeys(lines))


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
