"""The monitor's logic, separate from its outputs (panel, text, nothing).

:class:`Monitor` is a :class:`~nbdetect.callbacks.Callback`. Per iteration it does
O(1) work: a clock read and, at most every ``progress_interval`` seconds, one
progress update. The verdict is recomputed at each epoch end and shown at once.

Curves are drawn when the monitor is attached (the planned LR schedule), at every
epoch end, and at the run end if the last epoch end did not already draw what it
would. An epoch end is always drawn, at the epoch end itself and before its verdict
is shown, whatever the epoch's length: the curves on show include every epoch the
verdict's text cites (``drawn_epoch``; the plot's title names it). Only the redraws
inside an epoch (the per-iteration curves of long epochs) are on a budget: one every
``render_interval()`` seconds (a drawing's cost / ``render_budget``), while all
drawing so far, epoch ends included, stays within ``render_budget`` (1%) of the time
since the run started. What keeps a drawing per epoch cheap is one
:class:`~.plots.CurvePlot` updated in place: lines get new data (``set_data``) and
are drawn over a kept background (axes, ticks, legends), redrawn only for an axes
whose limits changed (``docs/ARCHITECTURE.md``, "Live curves";
``benchmarks/bench_monitor.py``). Subclasses show the state: ``show_progress``,
``show_curves``, ``show_verdict``, ``show_status``.
"""
from __future__ import annotations

import math
import threading
import time

from ..callbacks import Callback
from ..verdict import Verdict
from ..verdict_callback import verdict_of


def format_duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def progress_of(run) -> dict:
    """``run.progress()`` when the run has it, else the counters it holds."""
    if hasattr(run, "progress"):
        try:
            return run.progress()
        except Exception:
            pass
    return {"epoch": getattr(run, "epoch", 0), "epochs": getattr(run, "epochs", 0),
            "iteration": getattr(run, "iteration", 0), "steps_per_epoch": getattr(run, "steps_per_epoch", 0),
            "step": getattr(run, "step", 0), "total_steps": getattr(run, "total_steps", 0),
            "images_per_s": math.nan, "eta_s": math.nan, "status": getattr(run, "status", "")}


ENDED = ("finished", "stopped", "failed")


def progress_line(p: dict, loss: float | None = None, lr: float | None = None) -> str:
    parts = [f"epoch {p.get('epoch', 0)}/{p.get('epochs', 0)}",
             f"iteration {p.get('iteration', 0)}/{p.get('steps_per_epoch', 0)}"]
    if loss is not None and math.isfinite(loss):
        parts.append(f"loss {loss:.4g}")
    if lr is not None and math.isfinite(lr):
        parts.append(f"lr {lr:.3g}")
    ips = p.get("images_per_s", math.nan)
    where = ""
    if p.get("device"):  # images/s means little without what produced it
        threads = p.get("threads")
        processes = p.get("processes") or 1  # a distributed run: images/s of all its processes together
        where = (f" ({p['device']}" + (f" x {processes} processes" if processes > 1 else "")
                 + (f", {threads} thread{'s' if threads != 1 else ''}" + (" each" if processes > 1 else "")
                    if threads else "") + ")")
    parts.append((f"{ips:.1f} images/s" if ips is not None and math.isfinite(ips) else "-- images/s") + where)
    per_process = [m for m in p.get("gpu_memory_gb_per_process") or () if m is not None]
    if len(per_process) > 1:
        parts.append(f"GPU memory {' / '.join(f'{m:.1f}' for m in per_process)} GB peak per process")
    elif p.get("gpu_memory_gb") is not None:
        parts.append(f"GPU memory {p['gpu_memory_gb']:.1f} GB peak")
    if p.get("status") in ENDED:  # no ETA once the run is over: how long it ran instead
        parts.append(f"{p['status']} after {format_duration(p.get('elapsed_s', math.nan))}")
    else:
        parts.append(f"ETA {format_duration(p.get('eta_s', math.nan))}")
    return " | ".join(parts)


def status_line(run) -> str:
    status = getattr(run, "status", "")
    message = getattr(run, "message", "") or ""
    if status == "stopping":
        return "stopping: finishing the current iteration, then saving a checkpoint..."
    if status == "stopped":
        ckpt = getattr(run, "last_checkpoint", None)
        if message and str(ckpt) in message:
            return message  # "stopped after epoch 2; checkpoint: ..."
        return f"stopped; checkpoint: {ckpt}" + (f" ({message})" if message else "")
    if status == "finished":
        return message or f"finished; best checkpoint: {getattr(run, 'best_checkpoint', None)}"
    if status == "failed":
        err = getattr(run, "error", None)
        return f"failed: {message or f'{type(err).__name__}: {err}'}"
    return status


class Monitor(Callback):
    """Training-state logic shared by the outputs; see the module docstring."""

    wants_curves = True

    def __init__(self, *, thresholds=None, progress_interval: float = 0.5, min_render_interval: float = 1.0,
                 render_budget: float = 0.01, log_lr: bool = True, clock=time.monotonic):
        self.thresholds = thresholds
        self.progress_interval = progress_interval
        self.min_render_interval = min_render_interval
        self.render_budget = render_budget
        self.log_lr = log_lr
        self.run = None
        self.verdict: Verdict = Verdict("pending", "Waiting for the first epoch.", "No rule applies yet.")
        self.renders = 0
        self.render_seconds = 0.05  # running estimate of one drawing's cost
        self.last_png: bytes | None = None
        self.clock = clock
        self._last_progress = 0.0
        self._last_render = -math.inf
        self._started = None  # clock() at run start: the drawing budget is counted from there
        self._spent = 0.0  # seconds spent drawing since then
        self.drawn_epoch = -1  # the completed epochs the curves on show include
        self.image_title = ""  # what the curves' title says they show
        self.plot = None  # the CurvePlot, made at the first drawing and updated in place after it
        self._drawn_key = None  # what the curves on show were drawn from (see _state_key)
        self._render_lock = threading.Lock()

    # -- state ---------------------------------------------------------------------------------------------
    def bind(self, run) -> "Monitor":
        self.run = run
        return self

    def render_interval(self) -> float:
        return max(self.min_render_interval, self.render_seconds / self.render_budget)

    def budget_allows(self, now: float) -> bool:
        """One more drawing inside an epoch keeps the time spent drawing (epoch ends included) within
        ``render_budget`` of the run's time (one drawing ahead allowed), and the last drawing is at least
        ``min_render_interval`` old."""
        if now - self._last_render < self.min_render_interval:
            return False
        if self._started is None:
            return True
        return self._spent <= self.render_budget * (now - self._started)

    def compute_verdict(self, run=None) -> Verdict:
        """The run's verdict, as its VerdictCallback computed it (the monitor never judges on its own)."""
        self.verdict = verdict_of(run or self.run, self.thresholds)
        return self.verdict

    def render(self, run=None, force: bool = True) -> bytes | None:
        """Draw the curves now (skipped if another thread is drawing and ``force`` is false)."""
        run = run or self.run
        if run is None or not self.wants_curves:
            return None
        if not self._render_lock.acquire(blocking=force):
            return None
        try:
            from .plots import CurvePlot

            t0 = self.clock()
            details = self.verdict.details if self.verdict else {}
            epoch = self._epochs_done(run)
            title = f"curves through epoch {epoch}/{getattr(run, 'epochs', '?')}"
            if self.plot is None:
                self.plot = CurvePlot()
            png = self.plot.update(run, log_lr=self.log_lr, decision_epoch=details.get("decision_epoch"),
                                   threshold=details.get("line"), caption=title)
            self.image_title = title
            self._drawn_key = self._state_key(run)
            took = self.clock() - t0
            self._spent += took
            self.drawn_epoch = epoch
            self.render_seconds = took if self.renders == 0 else 0.7 * self.render_seconds + 0.3 * took
            self.renders += 1
            self._last_render = self.clock()
            self.last_png = png
            self.show_curves(png)
            return png
        except Exception as exc:  # a broken drawing must not stop training
            self.show_status(f"could not draw the curves: {type(exc).__name__}: {exc}", "warning")
            return None
        finally:
            self._render_lock.release()

    def _state_key(self, run) -> tuple:
        """What a drawing shows: the records, the verdict's line and decision epoch, the LR scale."""
        history = getattr(run, "history", None)
        details = self.verdict.details if self.verdict else {}
        its = getattr(history, "iterations", None) or ()
        return (len(getattr(history, "epochs", None) or ()), len(its), its[-1].get("step") if its else None,
                details.get("line"), details.get("decision_epoch"), self.log_lr)

    def _epochs_done(self, run) -> int:
        epochs = getattr(getattr(run, "history", None), "epochs", None)
        return int(epochs[-1].get("epoch", len(epochs))) if epochs else 0

    def _draw_if_due(self, run, now: float) -> None:
        """Inside an epoch: the per-iteration curves, on the budget (epoch ends are drawn by ``on_epoch_end``)."""
        if not self.wants_curves:
            return
        if self._epochs_done(run) > self.drawn_epoch:  # an epoch end whose drawing failed: as soon as allowed
            due = self.budget_allows(now)
        else:  # a render_interval() after the last drawing or the run's start (the attach drawing shows it)
            since = now - max(self._last_render, self._started if self._started is not None else -math.inf)
            due = since >= self.render_interval() and self.budget_allows(now)
        if due:
            self.render(run, force=False)

    # -- callback hooks ------------------------------------------------------------------------------------
    def on_run_start(self, run) -> None:
        self.run = run
        self._started, self._spent = self.clock(), 0.0
        if self.renders:  # drawn when attached (the planned LR): that drawing shows the epochs done so far
            self.drawn_epoch = self._epochs_done(run)
        self.show_status(status_line(run) or "running", "running")
        self.show_progress(progress_of(run), None)
        if run.history.epochs:  # resumed: the verdict so far
            self.show_verdict(self.compute_verdict(run))

    def on_iteration_end(self, run, rec: dict) -> None:
        now = self.clock()
        if now - self._last_progress >= self.progress_interval:
            self._last_progress = now
            self.show_progress(progress_of(run), rec)
        self._draw_if_due(run, now)

    def on_epoch_end(self, run, rec: dict) -> None:
        self.show_epoch(run, rec)  # the epoch first, then the verdict it led to: lines in time order
        verdict = self.compute_verdict(run)
        if self.wants_curves:  # always, and before the verdict: its text never cites an epoch not on show
            self.render(run, force=True)
        self.show_verdict(verdict)
        self._last_progress = self.clock()
        self.show_progress(progress_of(run), None)

    def on_run_end(self, run) -> None:
        verdict = self.compute_verdict(run)
        if self.wants_curves and self._state_key(run) != self._drawn_key:  # not again what the epoch end drew
            self.render(run, force=True)
        self.show_verdict(verdict)
        self.show_progress(progress_of(run), None)
        kind = run.status if run.status in ("stopped", "finished", "failed") else "running"
        self.show_status(status_line(run), kind)

    # -- outputs (subclasses) -------------------------------------------------------------------------------
    def show_progress(self, progress: dict, rec: dict | None) -> None:
        pass

    def show_curves(self, png: bytes) -> None:
        pass

    def show_verdict(self, verdict: Verdict) -> None:
        pass

    def show_epoch(self, run, rec: dict) -> None:
        pass

    def show_status(self, text: str, kind: str) -> None:
        pass
