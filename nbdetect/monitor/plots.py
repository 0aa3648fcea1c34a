"""Training curves drawn into a matplotlib ``Figure`` with the Agg canvas (no pyplot).

:class:`CurvePlot` draws three panels against epochs (fractional for per-iteration
values): the LR (planned schedule dashed, actual solid, log scale optional), the
training loss (raw faint, smoothed solid) with the validation loss per epoch, and
mAP / mAP@.5 per epoch. It keeps one Figure and its lines and updates them in
place (the live panel redraws every epoch end); ``render_png(run)`` is a one-off
drawing (curves.png). ``comparison_png`` puts several runs' epoch curves side by side.
"""
from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MAX_PLANNED_POINTS = 1500
PNG_COMPRESS_LEVEL = 1  # zlib level 1, RGB: ~5 ms and ~32 kB for the panel's 800x256 (level 6: ~7 ms, ~31 kB)


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


LOSS_TOPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)  # the loss axis ends at one of these x 10^k
MAP_TOPS = (1, 2, 5, 10)  # the mAP axis: 0.05, 0.1, 0.2, 0.5, then 1.05


def nice_ceil(x: float, steps=LOSS_TOPS) -> float:
    """The smallest ``step x 10^k`` >= x: axis ends that stay put while the data moves a little."""
    if not (_finite(x) and x > 0):
        return 1.0
    base = 10.0 ** math.floor(math.log10(x))
    return next((s * base for s in steps if x <= s * base * (1 + 1e-9)), 10 * base)


def epoch_axis_end(last: float, planned: float | None) -> float:
    """Where the loss and mAP panels' epoch axis ends: an eighth of the planned epochs (8 epochs if that is
    more, all of them if fewer) doubled until it holds ``last`` (past the first eighth the data fills at least
    half the width; the axis changes at most three times a run, never in a run of 8 epochs or fewer), the
    planned epochs at most unless the data goes beyond them; without a plan, powers of two."""
    end = max(planned / 8.0, min(planned, 8.0)) if planned else 1.0
    while end < last - 1e-9 and not (planned and end >= planned):
        end *= 2
    return max(min(end, planned) if planned else end, last)


class CurvePlot:
    """One Figure with its three axes and their lines, made once and updated in place.

    :meth:`update` sets the lines' data (``set_data``), sets the axes' limits and the title text, and draws
    with Agg into PNG bytes; no figure, axes, line or legend is built again (a legend only when the lines it
    names change). Drawing is split in two layers: the background (axes, ticks, grid, titles, labels,
    legends), drawn by a full ``canvas.draw()`` and kept as a pixel copy, and the data (lines, the verdict's
    marks, the figure title), drawn over a copy of it (``restore_region`` + ``draw_artist``, with the legends'
    pixels put back on top). An axes' part of the background is redrawn only when what it shows changes (its
    limits or scale, its legend's entries), and only that axes' strip of the figure. To keep that rare, the limits move in steps: the loss and mAP axes end at
    round values (:func:`nice_ceil`) and the epoch axis grows by doublings up to the planned epochs
    (:func:`epoch_axis_end`); the LR panel spans the planned epochs. Not thread-safe: one drawing at a time
    (the monitor holds a lock around it).
    """

    def __init__(self, *, size=(10.0, 3.2), dpi: int = 80):
        self.fig = Figure(figsize=size, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax_lr, self.ax_loss, self.ax_map = axes = self.fig.subplots(1, 3)
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.86, wspace=0.32)
        self.title = self.fig.suptitle("", fontsize=10)
        lr, loss, m = axes
        self.planned, = lr.plot([], [], "--", color="0.55", lw=1.2, label="planned")
        self.lr, = lr.plot([], [], color="tab:blue", lw=1.5, label="actual")
        self.raw, = loss.plot([], [], color="tab:orange", alpha=0.25, lw=0.8)
        self.smoothed, = loss.plot([], [], color="tab:orange", lw=1.6, label="train (smoothed)")
        self.val, = loss.plot([], [], "o-", color="tab:green", lw=1.6, ms=3.5, label="val (per epoch)")
        self.threshold = loss.axhline(0.0, color="tab:red", ls=":", lw=1.0, label="verdict line")
        self.decision = loss.axvline(1.0, color="0.4", ls=":", lw=1.0)
        self._marks = (self.threshold, self.decision)  # in the loss axes only while the verdict gives them
        for line in self._marks:
            line.remove()
        self.map, = m.plot([], [], "o-", color="tab:purple", ms=3.5, lw=1.4, label="mAP@[.5:.95]")
        self.map50, = m.plot([], [], "s-", color="tab:brown", ms=3.0, lw=1.2, label="mAP@.5")
        self.no_map = m.text(0.5, 0.5, "mAP appears after\nthe first evaluated epoch", ha="center", va="center",
                             fontsize=8, color="0.4", transform=m.transAxes)
        # fixed title heights: matplotlib otherwise measures every tick label to place each title, per drawing
        for ax, name in zip(axes, ("learning rate", "loss (nbdetect scale)", "mAP (validation)")):
            ax.set_title(name, fontsize=9, y=1.0, pad=4.0)
            ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.25)
        self.data_artists = [*lr.get_lines(), self.raw, self.smoothed, self.val, *self._marks, self.map, self.map50,
                             self.title]
        for artist in self.data_artists:
            artist.set_animated(True)  # not in the background: drawn over it by _draw_data
        self._legends = {}  # axes -> the lines its legend names
        self._log_lr = None
        self._background = None  # (what it shows, its pixels, the legends' pixels)
        self.drawings = 0
        self.background_drawings = 0  # whole backgrounds drawn (the first drawing, a new figure size)
        self.axes_redraws = 0  # one axes' part of the background drawn again (its limits or legend changed)

    def _show_marks(self, wanted: tuple) -> None:
        """The verdict's line and decision epoch in the loss axes, in that order, or out of them: a hidden line
        would still steer the legend's placement and the limits."""
        if tuple(line for line in self._marks if line.axes is not None) == wanted:
            return
        for line in self._marks:
            if line.axes is not None:
                line.remove()
        for line in wanted:
            self.ax_loss.add_line(line)

    def _legend(self, ax, lines, always=()) -> None:
        """The legend names ``lines`` that have data, and ``always`` whatever they have."""
        shown = tuple(line for line in lines if line.axes is ax and (len(line.get_xdata()) or line in always))
        if self._legends.get(ax) == shown:
            return
        self._legends[ax] = shown
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        if shown:
            ax.legend(handles=list(shown), fontsize=7, loc="best")

    @staticmethod
    def _rescale(ax) -> None:
        """Limits from the visible lines' data; an axis without data gets 0..1, as a new axes has."""
        ax.relim(visible_only=True)
        ax.autoscale_view()
        (x0, y0), (x1, y1) = ax.dataLim.get_points()
        if not (math.isfinite(x0) and math.isfinite(x1)):
            ax.set_xlim(0, 1)
        if not (math.isfinite(y0) and math.isfinite(y1)):
            ax.set_ylim(0, 1)

    def update(self, source, *, log_lr: bool = True, planned_lr=None, steps_per_epoch=None,
               decision_epoch: int | None = None, threshold: float | None = None, caption: str = "") -> bytes:
        """Set the curves of ``source`` (a run or a History) into the kept lines and return the PNG;
        ``caption`` (which epoch the curves show) goes into the title, so a reader can tell it next to the
        live text."""
        history, planned, spe, title = _curves(source, planned_lr, steps_per_epoch)
        self.title.set_text("  |  ".join(t for t in (title, caption) if t))
        its = list(getattr(history, "iterations", []))
        epochs = list(getattr(history, "epochs", []))
        planned_epochs = getattr(source, "epochs", None) if source is not history else None
        planned_epochs = planned_epochs or (getattr(history, "meta", None) or {}).get("total_epochs")
        planned_epochs = float(planned_epochs) if _finite(planned_epochs) and planned_epochs > 0 else None
        self.ax_lr.set_autoscale_on(True)  # the LR panel: limits from its data (the planned schedule)

        # learning rate
        if planned:
            step = max(1, len(planned) // MAX_PLANNED_POINTS)
            self.planned.set_data([i / spe for i in range(0, len(planned), step)], list(planned[::step]))
        else:
            self.planned.set_data([], [])
        x_it = [r.get("step", i + 1) / spe for i, r in enumerate(its)]
        lrs = [r.get("lr", math.nan) for r in its]
        self.lr.set_data(x_it, lrs)
        lr_values = [v for v in (list(planned or []) + lrs) if _finite(v) and v > 0]
        log = bool(log_lr and lr_values)
        if log != self._log_lr:
            self._log_lr = log
            self.ax_lr.set_yscale("log" if log else "linear")
        self.ax_lr.set_title("learning rate" + (" (log)" if log_lr else ""), fontsize=9, y=1.0, pad=4.0)
        self._rescale(self.ax_lr)
        span = max([planned_epochs or 0.0, len(planned or ()) / spe] + [x for x in x_it[-1:] if _finite(x)])
        if span > 0:  # the whole planned schedule, whichever step the run is at
            self.ax_lr.set_xlim(-0.05 * span, 1.05 * span)
        # "actual" from the planned schedule's first drawing on: the LR panel's legend then never changes in a run
        self._legend(self.ax_lr, (self.planned, self.lr), always=(self.lr,) if planned else ())

        # losses
        losses = [r.get("loss", math.nan) for r in its]
        self.raw.set_data(x_it, losses)
        self.smoothed.set_data(x_it, smooth(losses))
        ep_x = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
        val = [e.get("val_loss", math.nan) for e in epochs]
        has_val = any(_finite(v) for v in val)
        self.val.set_data(ep_x if has_val else [], val if has_val else [])
        has_line = threshold is not None and _finite(threshold)
        if has_line:
            self.threshold.set_ydata([threshold, threshold])
        if decision_epoch:
            self.decision.set_xdata([decision_epoch, decision_epoch])
        self._show_marks((self.threshold,) * has_line + (self.decision,) * bool(decision_epoch))
        last = max([x for x in x_it + ep_x if _finite(x)] + [0.0])
        end = epoch_axis_end(last, planned_epochs) if last > 0 else 1.0
        for ax in (self.ax_loss, self.ax_map):
            ax.set_xlim(-0.04 * end, 1.04 * end)
        finite = [v for v in losses + val if _finite(v)]
        if finite:
            top = sorted(finite)[int(0.98 * (len(finite) - 1))]  # ignore the first spikes when scaling
            self.ax_loss.set_ylim(0, nice_ceil(top * 1.15) if top > 0 else 1)
        else:
            self.ax_loss.set_ylim(0, 1)
        self._legend(self.ax_loss, (self.smoothed, self.val, self.threshold) if finite else ())

        # mAP
        m = [e.get("map", math.nan) for e in epochs]
        m50 = [e.get("map50", math.nan) for e in epochs]
        has_map = any(_finite(v) for v in m + m50)
        self.map.set_data(ep_x if has_map else [], m if has_map else [])
        self.map50.set_data(ep_x if has_map else [], m50 if has_map else [])
        self.no_map.set_visible(not has_map)
        top = max([v for v in m + m50 if _finite(v)] + [0.0]) * 1.15
        self.ax_map.set_ylim(0, min(1.05, nice_ceil(max(top, 0.05), MAP_TOPS)) if has_map else 1)
        self._legend(self.ax_map, (self.map, self.map50))
        return self.png()

    def _axes_key(self, ax) -> tuple:
        """What an axes' part of the background shows: its limits, scale and title, its legend's entries."""
        return (ax.get_xlim(), ax.get_ylim(), ax.get_yscale(), ax.get_title(), self._legends.get(ax, ()),
                self.no_map.get_visible() if ax is self.ax_map else None)

    def _slot(self, i: int):
        """The figure's strip that axes ``i`` and its labels occupy: full height, from the middle of the gap on
        its left (or the figure's edge) to the middle of the gap on its right."""
        from matplotlib.patches import Rectangle

        boxes = [ax.get_position() for ax in self.fig.axes]
        left = 0.0 if i == 0 else (boxes[i - 1].x1 + boxes[i].x0) / 2
        right = 1.0 if i == len(boxes) - 1 else (boxes[i].x1 + boxes[i + 1].x0) / 2
        return Rectangle((left, 0.0), right - left, 1.0, transform=self.fig.transFigure, figure=self.fig,
                         facecolor=self.fig.get_facecolor(), edgecolor="none", linewidth=0, animated=True)

    def _keep_background(self, keys) -> None:
        renderer = self.canvas.get_renderer()
        legends = [ax.get_legend().get_window_extent(renderer).padded(1.0)
                   for ax in self.fig.axes if ax.get_legend() is not None]
        self._background = (keys, self.canvas.copy_from_bbox(self.fig.bbox),
                            [self.canvas.copy_from_bbox(bbox) for bbox in legends])

    def _draw_data(self) -> None:
        for ax in self.fig.axes:
            for line in ax.get_lines():  # in the axes' order (the verdict's marks last), clipped to it
                ax.draw_artist(line)
        for pixels in self._background[2]:  # the legends stay on top of the lines, as in a full drawing
            self.canvas.restore_region(pixels)
        self.fig.draw_artist(self.title)

    def png(self) -> bytes:
        """Draw the data over the background (the parts of it whose axes changed drawn again first) and
        encode the pixels."""
        from PIL import Image

        keys = (tuple(self.fig.bbox.bounds), tuple(self._axes_key(ax) for ax in self.fig.axes))
        old = self._background[0] if self._background is not None else None
        if old is None or old[0] != keys[0]:
            self.canvas.draw()  # the whole background: everything but the animated data artists
            self.background_drawings += 1
            self._keep_background(keys)
        else:
            self.canvas.restore_region(self._background[1])
            changed = [i for i, (new, was) in enumerate(zip(keys[1], old[1])) if new != was]
            for i in changed:  # only that axes' strip: blanked, then the axes drawn without its data
                self.fig.draw_artist(self._slot(i))
                self.fig.draw_artist(self.fig.axes[i])
            self.axes_redraws += len(changed)
            if changed:
                self._keep_background(keys)
        self._draw_data()
        self.drawings += 1
        buf = io.BytesIO()
        rgba = Image.frombuffer("RGBA", self.canvas.get_width_height(), self.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        rgba.convert("RGB").save(buf, format="png", compress_level=PNG_COMPRESS_LEVEL)  # the figure is opaque
        return buf.getvalue()


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_png(source, *, log_lr: bool = True, size=(10.0, 3.2), dpi: int = 80, **kwargs) -> bytes:
    """PNG bytes of the curves of ``source`` (a TrainingRun or History) in a new :class:`CurvePlot` (one-off:
    files, reports); a live display keeps one CurvePlot and calls its ``update``."""
    return CurvePlot(size=size, dpi=dpi).update(source, log_lr=log_lr, **kwargs)


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
