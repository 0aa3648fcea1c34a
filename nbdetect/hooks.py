"""The training run's default hooks, one concern each: mAP evaluation, history files, checkpoints, throughput,
the weights' moving average.

(The verdict is one too: :class:`nbdetect.verdict_callback.VerdictCallback`.) ``TrainingRun`` installs them
before the user's callbacks; the loop itself only trains, validates and dispatches events.
"""
from __future__ import annotations

import dataclasses
import math
import time

import torch

from .callbacks import Callback
from .checkpoint import save_checkpoint
from .history_files import HistoryWriter


class MapEvaluator(Callback):
    """COCO mAP on the validation data every ``every`` epochs and after the last one (0: never).

    Runs ``on_validation_end`` (after the validation loss): adds ``map``/``map50``... to the epoch record being
    built, with ``run.eval_model``; changes nothing else. Critical: a failed evaluation fails the run."""

    critical = True

    def __init__(self, every: int = 1):
        self.every = int(every or 0)

    def on_validation_end(self, run, rec: dict) -> None:
        epoch = rec["epoch"]
        if run.val_loader is None or not self.every:
            return
        if epoch % self.every == 0 or epoch == run.epochs:
            from .data.tiles import tiled_of
            from .metrics import evaluate_map

            tiled = tiled_of(run.val_loader)  # a tiled run: its full validation frames, predicted by slices
            rec.update(evaluate_map(run.eval_model, run.val_loader, run.device, run.amp) if tiled is None else
                       evaluate_map(run.eval_model, frames_of(tiled, run.val_loader), run.device, run.amp,
                                    slices=tiled.cfg))


def frames_of(tiled, loader):
    """Batches of the full frames a TiledDataset was cut from (the val loader's batch size)."""
    from .data.loader import make_loader

    return make_loader(tiled.base, batch_size=getattr(loader, "batch_size", None) or 1, shuffle=False)


class HistoryFiles(Callback):
    """history.jsonl (every record as it happens, a resume marker on resume), epochs.csv, TensorBoard.

    Opens its writer ``on_run_start``, appends each record ``on_iteration_end`` / ``on_epoch_end`` (with the
    run's meta when it changed) and closes ``on_run_end``; it writes files in ``run.out_dir`` only and changes
    nothing on the run. Critical: a failed write fails the run."""

    critical = True

    def __init__(self, tensorboard: bool = False):
        self.tensorboard = tensorboard
        self.writer: HistoryWriter | None = None
        self._meta: dict | None = None

    def on_run_start(self, run) -> None:
        self.writer = HistoryWriter(run.out_dir, tensorboard=self.tensorboard,
                                    resume_step=run.step if run.resumed else None)

    def on_iteration_end(self, run, rec: dict) -> None:
        if self.writer is not None:
            self.writer.iteration(rec)

    def on_epoch_end(self, run, rec: dict) -> None:
        if self.writer is not None:
            from .history import run_meta

            meta = {**run_meta(run), **{k: v for k, v in run.history.meta.items() if k == "thresholds"}}
            if meta != self._meta:  # what the run knows, for diagnose(history=<run folder>) to judge alike
                self.writer.meta(meta)
                self._meta = meta
            self.writer.epoch(rec, run.history.epochs)

    def on_run_end(self, run) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Checkpointer(Callback):
    """best.pt (model weights + what inference needs) when the metric improves, last.pt (the whole run),
    every ``every`` epochs and after the last one (0: only when stopping).

    Runs ``on_epoch_end``: writes the files and sets ``run.best_checkpoint``; keeps its best metric in its
    state (so a resumed run only replaces best.pt with a better one). Critical."""

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
                {"format": "nbdetect-model-1", "model": run.eval_model.state_dict(), "epoch": run.epoch,
                 "metric": metric, "recipe": dataclasses.asdict(run.recipe), "meta": run.meta},
                run.out_dir / "best.pt")
        run.save("last.pt")

    def state_dict(self) -> dict:
        return {"best_metric": self.best_metric}

    def load_state_dict(self, state: dict) -> None:
        self.best_metric = float(state.get("best_metric", math.inf))


class Throughput(Callback):
    """Images per second over the last ``window_s`` seconds, and the ETA from it.

    Runs ``on_iteration_end``: records (time, images seen) in its own window; changes nothing on the run.
    :meth:`progress` is the run's progress view (``run.progress()``: counters, images/s, ETA) for the displays."""

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

    def progress(self, run) -> dict:
        """Where the run is: epoch/iteration counters, images/s over the last seconds, ETA.

        A run that has ended shows where it ended (a finished run: its last epoch, every iteration done) and no
        ETA; images/s is then the mean over the whole run."""
        elapsed = (run.ended_at or time.monotonic()) - run.started_at if run.started_at else 0.0
        ended = run.status in ("finished", "stopped", "failed")
        epoch, iteration = run.epoch, run.iteration
        if iteration or (run.status == "running" and epoch < run.epochs):
            epoch += 1  # inside epoch ``epoch + 1``
        elif epoch:
            iteration = run.steps_per_epoch  # at an epoch boundary: the last epoch is complete
        if ended:
            seconds = ((run.ended_at or time.monotonic()) - run.started_at) if run.started_at else 0.0
            ips = (run.images_seen - run.images_at_start) / seconds if seconds > 0 else math.nan
            eta = math.nan
        else:
            ips, eta = self.images_per_s(), self.eta_s(run)
        return {"epoch": epoch, "epochs": run.epochs, "iteration": iteration, "steps_per_epoch": run.steps_per_epoch,
                "step": run.step, "total_steps": run.total_steps, "elapsed_s": elapsed,
                "images_per_s": ips, "eta_s": eta, "status": run.status, "device": run.device.type,
                "threads": run.threads, "gpu_memory_gb": run.gpu_memory_gb(), "processes": run.devices,
                "gpu_memory_gb_per_process": run.rank_memory_gb}


class LossBefore(Callback):
    """The loss before training starts (validation loss, else the first training batches), kept as the run's
    reference: Alternative 3 is judged against the loss before its LR change, not against its own first epoch.

    Runs ``on_run_start`` of a fresh run without a reference: evaluates the model (no step taken) and sets
    ``run.meta["reference_loss"]``; nothing else."""

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


class WeightEMA(Callback):
    """An exponential moving average of the weights (``torch.optim.swa_utils.AveragedModel``), updated after
    every optimizer step; the run validates, scores and saves best.pt with it (``run.eval_model``), and last.pt
    keeps it for resume.

    The averaging window is ``min(max_window, share x total steps)`` updates (decay = 1 - 1/window), ramped in
    over the first window so early random weights fade out: Ultralytics' fixed 0.9999 would, over a run of a
    few hundred steps, freeze the average near its first weights.

    ``on_run_start`` builds the average around ``run.model`` (or loads the resumed one) and sets
    ``run.eval_model`` to it; ``on_iteration_end`` updates it after each step. It never changes the trained
    weights. Critical: its state is in last.pt."""

    critical = True
    every_rank = True  # each process averages its own replica (they stay equal under DDP)

    def __init__(self, share: float = 0.05, max_window: int = 2000):
        self.share, self.max_window = share, max_window
        self.ema = None
        self.updates = 0
        self._saved = None

    def window(self, run) -> float:
        return max(1.0, min(self.max_window, self.share * run.total_steps))

    def _build(self, run) -> None:
        from torch.optim.swa_utils import AveragedModel

        window = self.window(run)

        def lerp(averaged, current, _num_averaged):  # one call per (device, dtype) group
            if not averaged[0].is_floating_point():  # counters such as BatchNorm's num_batches_tracked
                torch._foreach_copy_(averaged, current)
                return
            decay = (1 - 1 / window) * (1 - math.exp(-self.updates / window))
            torch._foreach_lerp_(averaged, current, 1 - decay)

        self.ema = AveragedModel(run.model, multi_avg_fn=lerp, use_buffers=True)
        self.ema.eval()
        if self._saved is not None:
            self.ema.load_state_dict(self._saved)
            self._saved = None

    def on_run_start(self, run) -> None:
        if self.ema is None:
            self._build(run)
        run.eval_model = self.ema.module

    def on_iteration_end(self, run, rec: dict) -> None:
        self.updates += 1
        self.ema.update_parameters(run.model)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "ema": self.ema.state_dict() if self.ema is not None else self._saved}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state.get("updates", 0))
        self._saved = state.get("ema")
        self.ema = None  # rebuilt around the run's model at the next start, then loaded
