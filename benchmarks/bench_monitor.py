"""Widget update cost and history memory.

1. Kernel-side cost of the live panel: the per-iteration hook (progress values, throttle check) in
   microseconds, one full panel update (curves drawn with Agg into the Image widget, verdict) in
   milliseconds, and how many curve updates per minute the drawing budget (1% of the time) allows.
2. History memory over a long simulated run (100k iterations): in-memory records and bytes stay bounded.

    python benchmarks/bench_monitor.py          # ~1 minute on 2 CPU cores
"""
from __future__ import annotations

import math
import time
import tracemalloc

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
                      out_dir="/tmp/nbdetect-bench-monitor", tensorboard=False)
    return run


def fill(history, iterations, steps_per_epoch=500):
    for step in range(1, iterations + 1):
        epoch = 1 + (step - 1) // steps_per_epoch
        history.log_iteration(step=step, epoch=epoch, lr=5e-4, loss=1.7 * math.exp(-step / 30000) + 0.3,
                              classification=1.0, bbox_regression=0.5)
        if step % steps_per_epoch == 0:
            history.log_epoch(epoch=epoch, step=step, train_loss=1.0, val_loss=1.1, map=0.2, map50=0.4, lr=5e-4)


def main():
    from nbdetect.history import History
    from nbdetect.monitor import headless_monitor

    figures = {}
    # -- 1. panel costs ----------------------------------------------------------------------------------
    run = simulated_run(20_000)
    fill(run.history, 20_000)
    run.step, run.epoch, run.status = 20_000, 40, "running"
    panel = headless_monitor().bind(run)
    rec = run.history.latest
    n = 20_000
    panel._last_render = time.monotonic()  # measure the hook alone: no drawing is due
    panel.render_seconds = 1e9
    t0 = time.perf_counter()
    for _ in range(n):
        panel.on_iteration_end(run, rec)
    figures["iteration_hook_us"] = (time.perf_counter() - t0) / n * 1e6
    draws = []
    for _ in range(5):
        t0 = time.perf_counter()
        panel.render(run, force=True)
        draws.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    panel.on_epoch_end(run, run.history.epochs[-1])
    figures["epoch_verdict_ms"] = (time.perf_counter() - t0) * 1e3
    draw_s = sorted(draws)[len(draws) // 2]
    figures["panel_update_ms"] = draw_s * 1e3
    panel.render_seconds = draw_s
    figures["curve_updates_per_min"] = 60.0 / panel.render_interval()
    figures["drawing_share_of_time_pct"] = 100.0 * draw_s / panel.render_interval()
    figures["png_kbytes"] = len(panel.last_png) / 1024

    # -- 2. history memory ------------------------------------------------------------------------------
    for total in (10_000, 100_000):
        tracemalloc.start()
        h = History()
        fill(h, total)
        current, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        figures[f"history_{total // 1000}k_records_in_memory"] = len(h.iterations)
        figures[f"history_{total // 1000}k_mbytes"] = current / 2**20
    figures["history_growth_100k_vs_10k"] = figures["history_100k_mbytes"] / figures["history_10k_mbytes"]
    report("monitor", figures)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
