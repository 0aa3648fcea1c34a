"""The training run's default hooks, one concern each: mAP evaluation, history files, checkpoints, throughput.

(The verdict is one too: :class:`nbdetect.verdict_callback.VerdictCallback`.) ``TrainingRun`` installs them
before the user's callbacks; the loop itself only trains, validates and dispatches events.
"""
from __future__ import annotations

import dataclasses
import math
import time

from .callbacks import Callback
from .checkpoint import save_checkpoint
from .history_files import HistoryWriter


class MapEvaluator(Callback):
    """COCO mAP on the validation data every ``every`` epochs and after the last one (0: never)."""

    critical = True

    def __init__(self, every: int = 1):
        self.every = int(every or 0)

    def on_validation_end(self, run, rec: dict) -> None:
        epoch = rec["epoch"]
        if run.val_loader is None or not self.every:
            return
        if epoch % self.every == 0 or epoch == run.epochs:
            from .metrics import evaluate_map

            rec.update(evaluate_map(run.model, run.val_loader, run.device, run.amp))


class HistoryFiles(Callback):
    """history.jsonl (every record as it happens, a resume marker on resume), epochs.csv, TensorBoard."""

    critical = True

    def __init__(self, tensorboard: bool = False):
        self.tensorboard = tensorboard
        self.writer: HistoryWriter | None = None

    def on_run_start(self, run) -> None:
        self.writer = HistoryWriter(run.out_dir, tensorboard=self.tensorboard,
                                    resume_step=run.step if run.resumed else None)

    def on_iteration_end(self, run, rec: dict) -> None:
        if self.writer is not None:
            self.writer.iteration(rec)

    def on_epoch_end(self, run, rec: dict) -> None:
        if self.writer is not None:
            self.writer.epoch(rec, run.history.epochs)

    def on_run_end(self, run) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Checkpointer(Callback):
    """best.pt (model weights + what inference needs) when the metric improves, last.pt (the whole run),
    every ``every`` epochs and after the last one (0: only when stopping)."""

    critical = True

    def __init__(self, every: int = 1):
        self.every = int(every)
        self.best_metric = math.inf

    def on_epoch_end(self, run, rec: dict) -> None:
        if not self.every or not (run.epoch % self.every == 0 or run.epoch == run.epochs):
            return
        metric = rec.get("val_loss", rec.get("train_loss"))
        if metric is not None and metric < self.best_metric:
            self.best_metric = metric
            run.best_checkpoint = save_checkpoint(
                {"format": "nbdetect-model-1", "model": run.model.state_dict(), "epoch": run.epoch,
                 "metric": metric, "recipe": dataclasses.asdict(run.recipe), "meta": run.meta},
                run.out_dir / "best.pt")
        run.save("last.pt")

    def state_dict(self) -> dict:
        return {"best_metric": self.best_metric}

    def load_state_dict(self, state: dict) -> None:
        self.best_metric = float(state.get("best_metric", math.inf))


class Throughput(Callback):
    """Images per second over the last ``window_s`` seconds, and the ETA from it."""

    def __init__(self, window_s: float = 20.0):
        self.window_s = window_s
        self.recent: list[tuple[float, int]] = []

    def on_iteration_end(self, run, rec: dict) -> None:
        now = time.monotonic()
        self.recent.append((now, run.images_seen))
        while len(self.recent) > 2 and now - self.recent[0][0] > self.window_s:
            self.recent.pop(0)

    def images_per_s(self) -> float:
        if len(self.recent) >= 2:
            (t0, n0), (t1, n1) = self.recent[0], self.recent[-1]
            if t1 > t0:
                return (n1 - n0) / (t1 - t0)
        return math.nan

    def eta_s(self, run) -> float:
        ips = self.images_per_s()
        batch = run.images_seen / run.step if run.step else math.nan
        steps_left = run.total_steps - run.step
        return steps_left * batch / ips if ips > 0 and not math.isnan(ips) else math.nan


class LossBefore(Callback):
    """The loss before training starts (validation loss, else the first training batches), kept as the run's
    reference: Alternative 3 is judged against the loss before its LR change, not against its own first epoch."""

    def on_run_start(self, run) -> None:
        if run.epoch or run.meta.get("reference_loss") is not None:
            return
        from . import engine

        loader = run.val_loader if run.val_loader is not None else run.train_loader
        batches = loader if run.val_loader is not None else [b for _, b in zip(range(4), loader)]
        loss, _ = engine.evaluate_loss(run.model, batches, run.device, run.amp)
        if math.isfinite(loss) and loss > 0:
            run.meta["reference_loss"] = float(loss)
            which = "validation" if run.val_loader is not None else "training (first batches)"
            print(f"nbdetect: {which} loss before this run: {loss:.4g} (the verdict compares against it)")
