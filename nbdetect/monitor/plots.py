"""Training curves drawn into a matplotlib ``Figure`` with the Agg canvas (no pyplot, thread-safe per call).

``render_png(run)`` draws four panels against epochs (fractional for per-iteration
values): the LR (planned schedule dashed, actual solid, log scale optional), the
training loss (raw faint, smoothed solid, per-epoch means as dots) with the
validation loss per epoch, and mAP / mAP@.5 per epoch. ``comparison_png`` puts
several runs' epoch curves side by side.
"""
from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_PLANNED_POINTS = 1500


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def smooth(values: list[float], span: float | None = None) -> list[float]:
    """Exponential moving average (bias-corrected, NaN-skipping); ``span`` defaults to ~2% of the points."""
    if not values:
        return []
    span = span or max(5.0, len(values) / 50.0)
    alpha = 2.0 / (span + 1.0)
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        if _finite(v):
            avg = (1 - alpha) * avg + alpha * v
            weight = (1 - alpha) * weight + alpha
        out.append(avg / weight if weight else math.nan)
    return out


def _curves(source, planned_lr=None, steps_per_epoch=None):
    """(history, planned_lr, steps_per_epoch, title) from a TrainingRun-like object or a History."""
    history = getattr(source, "history", source)
    planned = planned_lr if planned_lr is not None else getattr(source, "planned_lr", None)
    spe = steps_per_epoch or getattr(source, "steps_per_epoch", None)
    if not spe:
        its = getattr(history, "iterations", [])
        last = its[-1] if its else {}
        spe = (last.get("step", 0) / last["epoch"]) if last.get("epoch") else 1
    recipe = getattr(source, "recipe", None)
    title = getattr(recipe, "title", None) or getattr(recipe, "name", None) or ""
    return history, planned, max(float(spe), 1e-9), title


def draw(fig: Figure, source, *, log_lr: bool = True, planned_lr=None, steps_per_epoch=None,
         decision_epoch: int | None = None, threshold: float | None = None, caption: str = "") -> Figure:
    """Draw the four panels of ``source`` (a run or a History) into ``fig``; ``caption`` (which epoch the curves
    show) goes into the title, so a reader can tell it next to the live text."""
    history, planned, spe, title = _curves(source, planned_lr, steps_per_epoch)
    title = "  |  ".join(t for t in (title, caption) if t)
    its = list(getattr(history, "iterations", []))
    epochs = list(getattr(history, "epochs", []))
    ax_lr, ax_loss, ax_map = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.86, wspace=0.32)
    if title:
        fig.suptitle(title, fontsize=10)

    # learning rate
    if planned:
        step = max(1, len(planned) // MAX_PLANNED_POINTS)
        xs = [i / spe for i in range(0, len(planned), step)]
        ax_lr.plot(xs, planned[::step], "--", color="0.55", lw=1.2, label="planned")
    x_it = [r.get("step", i + 1) / spe for i, r in enumerate(its)]
    lrs = [r.get("lr", math.nan) for r in its]
    if its:
        ax_lr.plot(x_it, lrs, color="tab:blue", lw=1.5, label="actual")
    lr_values = [v for v in (list(planned or []) + lrs) if _finite(v) and v > 0]
    if log_lr and lr_values:
        ax_lr.set_yscale("log")
    ax_lr.set_title("learning rate" + (" (log)" if log_lr else ""), fontsize=9)
    ax_lr.set_xlabel("epoch", fontsize=8)
    if planned or its:
        ax_lr.legend(fontsize=7, loc="best")

    # losses
    losses = [r.get("loss", math.nan) for r in its]
    if its:
        ax_loss.plot(x_it, losses, color="tab:orange", alpha=0.25, lw=0.8)
        ax_loss.plot(x_it, smooth(losses), color="tab:orange", lw=1.6, label="train (smoothed)")
    ep_x = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
    val = [e.get("val_loss", math.nan) for e in epochs]
    if any(_finite(v) for v in val):
        ax_loss.plot(ep_x, val, "o-", color="tab:green", lw=1.6, ms=3.5, label="val (per epoch)")
    if threshold is not None and _finite(threshold):
        ax_loss.axhline(threshold, color="tab:red", ls=":", lw=1.0, label="verdict line")
    if decision_epoch:
        ax_loss.axvline(decision_epoch, color="0.4", ls=":", lw=1.0)
    finite = [v for v in losses + val if _finite(v)]
    if finite:
        top = sorted(finite)[int(0.98 * (len(finite) - 1))]  # ignore the first spikes when scaling
        ax_loss.set_ylim(0, top * 1.15 if top > 0 else 1)
        ax_loss.legend(fontsize=7, loc="best")
    ax_loss.set_title("loss (nbdetect scale)", fontsize=9)
    ax_loss.set_xlabel("epoch", fontsize=8)

    # mAP
    m = [e.get("map", math.nan) for e in epochs]
    m50 = [e.get("map50", math.nan) for e in epochs]
    if any(_finite(v) for v in m + m50):
        ax_map.plot(ep_x, m, "o-", color="tab:purple", ms=3.5, lw=1.4, label="mAP@[.5:.95]")
        ax_map.plot(ep_x, m50, "s-", color="tab:brown", ms=3.0, lw=1.2, label="mAP@.5")
        ax_map.legend(fontsize=7, loc="best")
        ax_map.set_ylim(0, max(0.05, max(v for v in m + m50 if _finite(v)) * 1.15))
    else:
        ax_map.text(0.5, 0.5, "mAP appears after\nthe first evaluated epoch", ha="center", va="center",
                    fontsize=8, color="0.4", transform=ax_map.transAxes)
    ax_map.set_title("mAP (validation)", fontsize=9)
    ax_map.set_xlabel("epoch", fontsize=8)
    for ax in (ax_lr, ax_loss, ax_map):
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    return fig


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_png(source, *, log_lr: bool = True, size=(10.0, 3.2), dpi: int = 80, **kwargs) -> bytes:
    """PNG bytes of :func:`draw` for ``source`` (a TrainingRun or History)."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    draw(fig, source, log_lr=log_lr, **kwargs)
    return _png(fig, dpi)


def comparison_png(curves: dict, *, size=(10.0, 3.6), dpi: int = 90) -> bytes:
    """Val loss and mAP@.5 per epoch for several runs: ``{name: [epoch records]}``."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    ax_loss, ax_map = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    for name, epochs in curves.items():
        xs = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
        ax_loss.plot(xs, [e.get("val_loss", math.nan) for e in epochs], "o-", ms=3, label=name)
        ax_map.plot(xs, [e.get("map50", math.nan) for e in epochs], "o-", ms=3, label=name)
    ax_loss.set_title("validation loss (nbdetect scale)", fontsize=9)
    ax_map.set_title("mAP@.5", fontsize=9)
    for ax in (ax_loss, ax_map):
        ax.set_xlabel("epoch", fontsize=8)
        ax.grid(alpha=0.25)
        ax.tick_params(labelsize=7)
        if curves:
            ax.legend(fontsize=7)
    return _png(fig, dpi)
