"""TrainingRun: epochs, checkpoints, resume, stop flag and the non-finite-loss guard.

A run owns a model, an optimizer, a per-iteration LR schedule and two loaders.
``run()`` trains in the calling thread; ``start()`` trains in a background
thread (the live monitor's mode) and ``wait()`` joins it, re-raising any
training error. ``stop()`` sets a flag checked between iterations: the run
saves a checkpoint at that exact iteration and ends with status ``"stopped"``;
``TrainingRun.resume`` (or ``alternative_1(resume=True)``) continues from it
with the same LR sequence and batch order as an uninterrupted run.

The loop (``_fit``) is the same code on one process and on each of N: what differs (placing and wrapping the
model, each process's share of the data, the mean of the loss, agreeing on stop, which process writes) is a
method of ``run.strategy`` (:mod:`nbdetect.strategy`).
"""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import torch

from . import engine, run_guard, schedules
from .callbacks import check_state_keys, dispatch
from .data.loader import epoch_batches
from .history import History
from .hooks import Checkpointer, HistoryFiles, MapEvaluator, Throughput, WeightEMA
from .models import default_device
from .recipes import Recipe
from .run_dirs import FolderLock
from .run_state import RunState, size_of
from .strategy import choose as choose_strategy
from .threads import choose_threads
from .verdict import Verdict
from .verdict_callback import VerdictCallback
from .errors import DataError, InputError

STATUSES = ("pending", "running", "stopping", "stopped", "finished", "failed")


class TrainingRun(RunState):
    """One training run; see the module docstring."""

    def __init__(self, model: torch.nn.Module, train_loader, val_loader=None, *, recipe: Recipe,
                 optimizer: torch.optim.Optimizer | None = None, device=None, out_dir: str | Path = "nbdetect_runs/run",
                 amp: bool = True, eval_map_every: int = 1, callbacks=(), meta: dict | None = None,
                 tensorboard: bool = True, max_history_points: int = 4000, checkpoint_every: int = 1,
                 threads: int | None = None, devices: int = 1, group=None, sync_bn: bool = False, strategy=None):
        self.recipe = recipe
        # how many processes train (nbdetect.strategy): devices > 1 forks the others when the run starts; group:
        # a process of a torchrun job, already in its process group; sync_bn: BatchNorm over the global batch
        self.strategy = strategy if strategy is not None else choose_strategy(devices, group, sync_bn)
        self.device = self.strategy.device_for(torch.device(device) if device is not None else default_device())
        self.threads = choose_threads(self.device.type, threads)  # applied while the run trains (nbdetect.threads)
        self.model = self.strategy.place(model, self.device)
        self.rank_memory_gb: list | None = None  # a run on GPUs: each process's peak memory
        self.eval_model = self.model  # what validation, mAP and best.pt use (the weights' EMA when the recipe has one)
        self.train_loader, self.val_loader = train_loader, val_loader
        try:
            self.steps_per_epoch = len(train_loader)
        except TypeError:
            raise InputError("the training data has no length", where="train",
                             fix="pass a Dataset or DataLoader, not a generator") from None
        if self.steps_per_epoch == 0:
            raise DataError("the training data is empty: no batch to train on", where="train",
                            fix="check that the dataset found its images and annotations (len(train) > 0)")
        self.epochs = recipe.epochs
        self.total_steps = self.epochs * self.steps_per_epoch
        self.optimizer = optimizer if optimizer is not None else recipe.make_optimizer(self.model)
        self.schedule = recipe.make_schedule(self.steps_per_epoch)
        self.scheduler = schedules.to_torch(self.optimizer, self.schedule)
        self.planned_lr = self.schedule.planned()
        self.amp = bool(amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.meta = dict(meta or {})
        self.out_dir = Path(out_dir)
        self.history = History(max_points=max_history_points)
        # the default hooks, one concern each; the verdict hook comes last so it sees the finished epoch
        self.throughput = Throughput()
        self.checkpointer = Checkpointer(checkpoint_every)
        self.judge = VerdictCallback()
        self.callbacks = [FolderLock(), *([WeightEMA()] if recipe.ema else []), MapEvaluator(eval_map_every),
                          HistoryFiles(tensorboard), self.checkpointer, self.throughput, self.judge, *callbacks]
        check_state_keys(self.callbacks)
        self.verdict = Verdict("pending", "Waiting for the first epoch.", "No rule applies yet.")

        self.epoch = 0  # completed epochs
        self.iteration = 0  # iterations done inside the current epoch
        self.step = 0  # global iterations done
        self.images_seen = 0
        self.status = "pending"
        self.error: BaseException | None = None
        self.message = ""
        self.last_checkpoint: Path | None = None
        self.best_checkpoint: Path | None = None
        self.stop_event = threading.Event()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.images_at_start = 0  # images_seen when this session of the run started (resume counts from there)
        self.resumed = False
        self.monitor = None  # the live display attached by nbdetect.monitor.attach
        self._thread: threading.Thread | None = None
        self._epoch_acc = {"loss_sum": 0.0, "iterations": 0, "images": 0, "seconds": 0.0, "data_seconds": 0.0}
        self._restored_rng = None
        self.strategy.attach(self)  # a torchrun process: its share of every batch; rank > 0 without files or display

    @property
    def is_main(self) -> bool:
        """The process that writes files and drives the display (rank 0, or the only process)."""
        return self.strategy.is_global_zero

    @property
    def group(self):
        """The torch.distributed group of a run on several processes (None on one)."""
        return self.strategy.group

    @property
    def devices(self) -> int:
        """How many processes train this run."""
        return self.strategy.world

    # -- control -----------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to stop at the next iteration boundary (it saves a checkpoint there)."""
        if self.status in ("running", "pending"):
            self.status = "stopping" if self.status == "running" else self.status
        self.stop_event.set()

    @property
    def is_active(self) -> bool:
        return self.status in ("running", "stopping") or (self._thread is not None and self._thread.is_alive())

    def run(self) -> "TrainingRun":
        """Train in the calling thread; raises the training error if there was one."""
        self._fit()
        if self.error is not None:
            raise self.error
        return self

    def start(self) -> "TrainingRun":
        """Train in a background thread and return at once."""
        if self._thread is not None:
            raise RuntimeError("this run was already started")
        self.status = "running"
        self._thread = threading.Thread(target=self._fit, name=f"nbdetect-{self.recipe.name}", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> "TrainingRun":
        """Wait for a background run; re-raises its error. Returns self (still running if timed out)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None and not self.is_active:
            raise self.error
        return self

    def where(self) -> str:
        """'at epoch 3, iteration 5' inside an epoch, 'after epoch 2' at an epoch boundary."""
        if self.iteration or not self.epoch:
            return f"at epoch {self.epoch + 1}, iteration {self.iteration}"
        return f"after epoch {self.epoch}"

    # -- views of the run (the panel, a cell's value) ------------------------------
    def progress(self) -> dict:
        """Where the run is: counters, images/s and ETA (the Throughput hook's view of the run)."""
        return self.throughput.progress(self)

    def gpu_memory_gb(self) -> float | None:
        """Peak GPU memory this process allocated on the run's device (None on a CPU)."""
        if self.device.type != "cuda" or not torch.cuda.is_available():
            return None
        return torch.cuda.max_memory_allocated(self.device) / 1e9

    def _ipython_display_(self) -> None:
        """A run as the value of a cell shows its live panel again (after a re-run cell or a reopened notebook)."""
        from IPython.display import display

        widget = getattr(self.monitor, "widget", None)
        if widget is not None:
            display(widget)
        else:
            print(f"{self!r}\n{self.message or self.status}\nverdict: {self.verdict.headline}")

    def __repr__(self) -> str:
        return (f"<TrainingRun {self.recipe.name} {self.status}: epoch {self.epoch}/{self.epochs}, "
                f"step {self.step}/{self.total_steps}, out_dir={str(self.out_dir)!r}>")

    # -- the loop --------------------------------------------------------------
    def _should_stop(self) -> bool:
        """Stop now? Every process gets the same answer at the same iteration (the strategy agrees on it)."""
        stop = self.strategy.agree(self.stop_event.is_set())
        if stop:
            self.stop_event.set()
        return stop

    def _on_iteration(self, epoch_idx: int):
        def on_iteration(i, loss, components, n_images, lr):
            self.step += 1
            self.iteration = i + 1
            self.images_seen += n_images * self.strategy.world
            rec = self.history.log_iteration(step=self.step, epoch=epoch_idx + 1, lr=lr, loss=loss, **components)
            dispatch(self.callbacks, "on_iteration_end", self, rec)

        return on_iteration

    def _describe(self, epoch_idx: int):
        def describe(i: int) -> str:
            lr = self.optimizer.param_groups[0]["lr"]
            return (f"epoch {epoch_idx + 1}/{self.epochs}, iteration {i + 1}/{self.steps_per_epoch} "
                    f"(step {self.step + 1}, lr {lr:.3g})")

        return describe

    def _end_epoch(self, epoch_idx: int) -> dict:
        acc = self._epoch_acc
        rec = {"epoch": epoch_idx + 1, "step": self.step,
               "train_loss": acc["loss_sum"] / acc["iterations"] if acc["iterations"] else math.nan,
               "lr": self.history.iterations[-1]["lr"] if self.history.iterations else math.nan,
               "time_s": acc["seconds"], "images_per_s": acc["images"] / acc["seconds"] if acc["seconds"] else math.nan,
               "data_wait_frac": acc["data_seconds"] / acc["seconds"] if acc["seconds"] else math.nan}
        if self.device.type == "cuda":  # every process's peak, for rank 0's panel
            self.rank_memory_gb = self.strategy.gather(self.gpu_memory_gb())
        if self.val_loader is not None:
            val_loss, parts = engine.evaluate_loss(self.eval_model, self.strategy.val_part(self.val_loader),
                                                   self.device, self.amp, gather=self.strategy.gather)
            if not math.isfinite(val_loss):
                raise engine.NonFiniteLossError(f"the validation loss became {val_loss} after epoch {epoch_idx + 1}")
            rec.update(val_loss=val_loss, **{f"val_{k}": v for k, v in parts.items()})
        dispatch(self.callbacks, "on_validation_end", self, rec)
        self.epoch, self.iteration = epoch_idx + 1, 0
        self._epoch_acc = {k: 0.0 if isinstance(v, float) else 0 for k, v in acc.items()}
        self.history.log_epoch(**rec)
        dispatch(self.callbacks, "on_epoch_end", self, rec)
        return rec

    def _fit(self) -> None:
        """The loop: the same code for one process and for each of N (``self.strategy`` does what differs)."""
        self.status = "running"
        self.started_at, self.ended_at, self.images_at_start = time.monotonic(), None, self.images_seen
        threads_before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed-size batches after the model's resize: worth tuning
        train_model = None
        try:
            train_model = self.strategy.launch(self)  # the model, or DDP around it
            dispatch(self.callbacks, "on_run_start", self)
            for epoch_idx in range(self.epoch, self.epochs):
                if self._should_stop():
                    break
                dispatch(self.callbacks, "on_epoch_start", self)
                batches = epoch_batches(self.train_loader, epoch_idx, self.iteration)
                self._restore_rng()
                res = engine.train_one_epoch(
                    train_model, self.optimizer, batches, self.device,
                    scheduler=self.scheduler, scaler=self.scaler, grad_clip=self.recipe.grad_clip, amp=self.amp,
                    should_stop=self._should_stop, on_iteration=self._on_iteration(epoch_idx),
                    describe=self._describe(epoch_idx), start_iteration=self.iteration, average=self.strategy.mean)
                for key, value in (("loss_sum", res.loss * res.iterations if res.iterations else 0.0),
                                   ("iterations", res.iterations), ("images", res.images * self.strategy.world),
                                   ("seconds", res.seconds), ("data_seconds", res.data_seconds)):
                    self._epoch_acc[key] += value
                if res.stopped:
                    break
                self._end_epoch(epoch_idx)
            if self.stop_event.is_set() and self.step < self.total_steps:
                self.save("last.pt")
                self.status = "stopped"
                self.message = f"stopped {self.where()}; checkpoint: {self.last_checkpoint}"
            else:
                self.status = "finished"
                self.message = (f"finished {self.epochs} epochs; best checkpoint: {self.best_checkpoint}"
                                f"{size_of(self.best_checkpoint)}, last: {self.last_checkpoint}"
                                f"{size_of(self.last_checkpoint)}")
        except KeyboardInterrupt:
            self.save("last.pt")
            self.status = "stopped"
            self.message = (f"interrupted {self.where()}; nothing lost: checkpoint {self.last_checkpoint} "
                            "(resume with resume=True)")
        except engine.NonFiniteLossError as exc:
            self.status = "failed"
            where = (f"last good checkpoint: {self.last_checkpoint} (epoch {self.epoch})"
                     if self.last_checkpoint else "no checkpoint was written before it")
            self.error = engine.NonFiniteLossError(
                f"Training stopped: {exc}. The model was not updated with it; {where}. Likely causes: an LR too "
                f"high for this model and batch size (this run's peak LR is {max(self.planned_lr):.3g}), bad boxes "
                f"or labels (run nbdetect.diagnose()), or fp16 overflow with AMP. Lower lr or keep grad_clip on.")
            self.message = str(self.error)
        except BaseException as exc:  # keep the weights of a crashed run
            self.status = "failed"
            self.error = self.strategy.failure(exc)
            said = f"{type(self.error).__name__}: {self.error}"
            try:
                self.save("last.pt")
                self.message = f"failed with {said}; state saved to {self.last_checkpoint}"
            except Exception:
                self.message = f"failed with {said}"
        finally:
            self.ended_at = time.monotonic()
            train_model = None  # no DDP (and its process group) outlives the run
            self.strategy.teardown(self)  # rank 0 of N: the group ends, the forked ranks are waited for (or ended)
            torch.set_num_threads(threads_before)
            run_guard.release(self)
            try:
                dispatch(self.callbacks, "on_run_end", self)
            except Exception as exc:  # a critical hook failing at the very end (closing files) fails the run
                self.status, self.error = "failed", self.error or exc
                self.message = self.message or f"failed with {type(exc).__name__}: {exc}"
