"""The live panel's kernel-side cost, how current its curves are, and history memory.

1. Drawing: ms per epoch-end drawing of the curves. A new Figure per drawing (the code before: plots.py at
   commit 87e4bb5, read from git; and today's one-off ``render_png``) against the panel's one
   :class:`CurvePlot` updated in place (``set_data``): with its whole background drawn again (the first
   drawing), with two axes' strips drawn again (the epoch axis grew), and data only over the kept background
   (most drawings). For the demo notebook's history (8 epochs x 12 iterations) and a long run's (20k
   iterations, bounded records); one panel update (drawing + Image widget); the per-iteration hook in us.
2. Lag: from the epoch end (``on_epoch_end`` called) to the curves showing that epoch (``show_curves`` with
   that epoch drawn), and to its verdict shown (after the curves), over the demo's 8 epoch ends.
3. Cost: the demo notebook's Alternative 1 cell (tiny RetinaNet, 192 px, 48/16 synthetic images, batch 4,
   8 epochs, the CPU default thread count) trained with the headless panel as a callback. The monitor runs in
   the training thread, so the time inside its hooks is the time it takes from training: reported as a
   percentage of the run's wall time (target <= 2%), with the run's seconds per epoch and the drawings made.
4. History memory over a long simulated run (100k iterations): in-memory records and bytes stay bounded.

    python benchmarks/bench_monitor.py                 # ~1.5 minutes on 2 idle CPU cores
    python benchmarks/bench_monitor.py --demo-epochs 0  # without the training run (part 3)
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from common import report

import torch


def simulated_run(iterations: int, steps_per_epoch: int = 500):
    """A TrainingRun whose history is filled as a long run would fill it (no training)."""
    from nbdetect.models import build_model
    from nbdetect.recipes import ALTERNATIVE_1
    from nbdetect.trainer import TrainingRun

    epochs = max(1, iterations // steps_per_epoch)
    batches = [None] * steps_per_epoch
    run = TrainingRun(build_model("retinanet_tiny", 6, weights=None), batches, None, device="cpu",
                      recipe=ALTERNATIVE_1.replace(preset="retinanet_tiny", epochs=epochs),
                      out_dir=tempfile.mkdtemp(prefix="nbdetect-bench-monitor-"), tensorboard=False)
    return run


def fill(history, iterations, steps_per_epoch=500, first=1):
    for step in range(first, iterations + 1):
        epoch = 1 + (step - 1) // steps_per_epoch
        history.log_iteration(step=step, epoch=epoch, lr=5e-4, loss=1.7 * math.exp(-step / 30000) + 0.3,
                              classification=1.0, bbox_regression=0.5)
        if step % steps_per_epoch == 0:
            history.log_epoch(epoch=epoch, step=step, train_loss=1.0, val_loss=1.1 - 0.05 * epoch, map=0.2,
                              map50=0.4, lr=5e-4)


def median_ms(fn, n=7) -> float:
    fn()  # warm: fonts, caches
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


OLD_PLOTS = "87e4bb5"  # the last commit whose panel drew a new figure per drawing, at most every 1% of the time


def old_render_png():
    """``render_png`` of plots.py as it was at OLD_PLOTS (read from git), or None outside a git checkout."""
    import importlib.util
    import subprocess

    from common import REPO

    try:
        code = subprocess.run(["git", "-C", str(REPO), "show", f"{OLD_PLOTS}:nbdetect/monitor/plots.py"],
                              capture_output=True, text=True, check=True, timeout=30).stdout
    except Exception:
        return None
    path = Path(tempfile.mkdtemp(prefix="nbdetect-bench-monitor-")) / "old_plots.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("old_plots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render_png


def drawing_costs(figures: dict) -> None:
    from nbdetect.monitor import headless_monitor
    from nbdetect.monitor.plots import CurvePlot, render_png

    old = old_render_png()

    for name, iterations, spe in (("demo", 96, 12), ("20k", 20_000, 500)):
        run = simulated_run(iterations, spe)
        fill(run.history, iterations, spe)
        plot = CurvePlot()
        kwargs = dict(threshold=0.5, decision_epoch=3, caption=f"curves through epoch {run.epochs}/{run.epochs}")

        def redrawn_background():
            plot._background = None  # as at the first drawing: the whole background
            plot.update(run, **kwargs)

        def redrawn_axes():  # as when the loss and mAP axes' limits changed (the epoch axis grew)
            keys = plot._background[0]
            plot._background = ((keys[0], (keys[1][0], None, None)), *plot._background[1:])
            plot.update(run, **kwargs)

        if old is not None:
            figures[f"old_code_new_figure_ms_{name}"] = median_ms(lambda: old(run, **kwargs))
        figures[f"new_figure_ms_{name}"] = median_ms(lambda: render_png(run, **kwargs))
        figures[f"in_place_background_redrawn_ms_{name}"] = median_ms(redrawn_background)
        figures[f"in_place_2_axes_redrawn_ms_{name}"] = median_ms(redrawn_axes)
        figures[f"in_place_data_only_ms_{name}"] = median_ms(lambda: plot.update(run, **kwargs))
    # the whole panel update (drawing + Image widget value) and the per-iteration hook, on the long history
    run.step, run.epoch, run.status = 20_000, 40, "running"
    panel = headless_monitor().bind(run)
    figures["panel_update_ms"] = median_ms(lambda: panel.render(run, force=True))
    figures["png_kbytes"] = len(panel.last_png) / 1024
    rec = run.history.latest
    panel._last_render = time.monotonic()  # the hook alone: no drawing is due
    panel.render_seconds = 1e9
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        panel.on_iteration_end(run, rec)
    figures["iteration_hook_us"] = (time.perf_counter() - t0) / n * 1e6
    panel.render_seconds = figures["panel_update_ms"] / 1e3
    figures["in_epoch_redraw_interval_s"] = panel.render_interval()


def lag(figures: dict) -> None:
    """Epoch end -> curves showing that epoch -> its verdict, on the demo's history, epoch by epoch."""
    from nbdetect.monitor.panel import PanelMonitor

    class Timed(PanelMonitor):
        def show_curves(self, png):
            super().show_curves(png)
            self.curves_at[self.drawn_epoch] = time.perf_counter()

        def show_verdict(self, verdict):
            super().show_verdict(verdict)
            self.verdict_at[verdict.epoch] = time.perf_counter()

    spe, epochs = 12, 8
    run = simulated_run(spe * epochs, spe)
    mon = Timed()
    mon.curves_at, mon.verdict_at = {}, {}
    mon.render(run)  # the planned LR, as attach() draws it
    run.status = "running"
    mon.on_run_start(run)
    lags, verdict_lags, shown = [], [], []
    for epoch in range(1, epochs + 1):
        fill(run.history, epoch * spe, spe, first=(epoch - 1) * spe + 1)
        run.step, run.epoch = epoch * spe, epoch
        run.judge.on_epoch_end(run, run.history.epochs[-1])  # the run's verdict, before the monitor (as the loop)
        t0 = time.perf_counter()
        mon.on_epoch_end(run, run.history.epochs[-1])
        lags.append(mon.curves_at.get(epoch, math.inf) - t0)
        verdict_lags.append(mon.verdict_at.get(epoch, math.inf) - t0)
        shown.append(mon.drawn_epoch == epoch and f"curves through epoch {epoch}/" in mon.image_title)
    figures["epoch_end_to_curves_ms_median"] = statistics.median(lags) * 1e3
    figures["epoch_end_to_curves_ms_max"] = max(lags) * 1e3
    figures["epoch_end_to_verdict_ms_median"] = statistics.median(verdict_lags) * 1e3
    figures["epochs_drawn_at_their_end"] = f"{sum(shown)}/{epochs}"
    figures["curves_before_verdict"] = f"{sum(c <= v for c, v in zip(lags, verdict_lags))}/{epochs}"


def demo_cost(figures: dict, epochs: int) -> None:
    """The demo notebook's Alternative 1 cell, with the headless panel timed inside the training thread."""
    import nbdetect
    from nbdetect.monitor.panel import PanelMonitor

    class Timed(PanelMonitor):
        spent = 0.0
        calls = 0

    for hook in ("on_run_start", "on_iteration_end", "on_epoch_end", "on_run_end"):
        def timed(self, *args, _real=getattr(PanelMonitor, hook)):
            t0 = time.perf_counter()
            try:
                return _real(self, *args)
            finally:
                self.spent += time.perf_counter() - t0
                self.calls += 1
        setattr(Timed, hook, timed)

    class Attached(Timed):
        def on_run_start(self, run):
            if not self.renders:  # attach() draws the planned LR on the cell's thread before training starts
                self.render(run)
            super().on_run_start(run)

    torch.manual_seed(0)
    train, val = nbdetect.synthetic_split(n_train=48, n_val=16, image_size=(192, 192))
    mon = Attached()
    with tempfile.TemporaryDirectory() as out:
        run = nbdetect.alternative_1(train, val, num_classes=train.num_classes, epochs=epochs,
                                     preset="retinanet_tiny", image_size=192, batch_size=4, monitor=False,
                                     background=False, callbacks=[mon], out_dir=f"{out}/run")
        if run.status != "finished":
            raise RuntimeError(f"the demo run ended {run.status}: {run.message}")
        wall = run.ended_at - run.started_at  # training, validation, mAP, checkpoints, callbacks
    figures["demo_epochs"] = epochs
    figures["demo_run_s"] = wall
    figures["demo_s_per_epoch"] = wall / epochs
    figures["demo_train_s_per_epoch"] = statistics.mean(e["time_s"] for e in run.history.epochs)
    figures["demo_drawings_during_run"] = mon.renders - 1  # less the attach drawing, made before the run
    figures["demo_axes_redrawn_during_run"] = mon.plot.axes_redraws  # of 3 per drawing; the rest: data only
    figures["demo_drawing_s_during_run"] = mon._spent
    figures["demo_monitor_s"] = mon.spent  # every hook, drawings included
    figures["demo_monitor_cost_pct"] = 100.0 * mon.spent / wall


def history_memory(figures: dict) -> None:
    from nbdetect.history import History

    for total in (10_000, 100_000):
        tracemalloc.start()
        h = History()
        fill(h, total)
        current, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        figures[f"history_{total // 1000}k_records_in_memory"] = len(h.iterations)
        figures[f"history_{total // 1000}k_mbytes"] = current / 2**20
    figures["history_growth_100k_vs_10k"] = figures["history_100k_mbytes"] / figures["history_10k_mbytes"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo-epochs", type=int, default=8, help="epochs of the demo run timed in part 3 (0: skip)")
    args = ap.parse_args()
    figures = {"load_average_at_start": os.getloadavg()[0]}  # other work on the machine slows every figure
    drawing_costs(figures)
    lag(figures)
    if args.demo_epochs:
        demo_cost(figures, args.demo_epochs)
    history_memory(figures)
    figures["load_average_at_end"] = os.getloadavg()[0]
    report("monitor", figures)


if __name__ == "__main__":
    main()
