"""How many processes train one run, and what that changes: the training loop calls a Strategy and holds no
distributed branch (as Lightning's SingleDeviceStrategy / DDPStrategy do for its loop).

A strategy places and wraps the model, gives each process its share of the data, averages the loss over the
processes, makes them agree on stopping, and says which process is rank 0 (the one that writes files and drives
the display). :class:`SingleProcess` does each of these as the identity; :class:`DDP` does them with
torch.distributed (nbdetect.distributed: forked ranks from a notebook, or a torchrun job's processes).

The loop's calls, in order: :meth:`~Strategy.place` (building the run), :meth:`~Strategy.attach` (the end of
``TrainingRun.__init__``), :meth:`~Strategy.launch` (the start of training; returns the module the step calls),
then per iteration :meth:`~Strategy.agree` and :meth:`~Strategy.mean`, per epoch :meth:`~Strategy.val_part`
and :meth:`~Strategy.gather`, and at the end :meth:`~Strategy.failure` (an error) and :meth:`~Strategy.teardown`.
"""
from __future__ import annotations

import torch

from . import distributed
from .data.loader import shard_train_loader, shard_val_loader
from .errors import DistributedError


class SingleProcess:
    """One process trains the run: every method is the identity (the loop's plain case)."""

    group = None  # a torch.distributed group: none
    rank = 0
    world = 1
    backend = None

    @property
    def is_global_zero(self) -> bool:
        """True in the process that writes checkpoints and files and drives the display (always, here)."""
        return self.rank == 0

    def device_for(self, device: torch.device) -> torch.device:
        """The device this process trains on, given the run's device."""
        return device

    def place(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model on its device, when the run is built."""
        return model.to(device)

    def attach(self, run) -> None:
        """The end of building ``run``: nothing to change for one process."""

    def launch(self, run) -> torch.nn.Module:
        """The start of training: the module the training step calls (the model itself)."""
        return run.model

    def agree(self, flag: bool) -> bool:
        """Every process's answer to a yes/no question (stop now?): true when it is true in any process."""
        return flag

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over the processes of a small CPU tensor (the loss and its components)."""
        return values

    def gather(self, obj) -> list:
        """``obj`` of every process, in rank order (a validation part's sums, a GPU's peak memory)."""
        return [obj]

    def val_part(self, loader):
        """The validation batches this process computes the loss on: all of them."""
        return loader

    def failure(self, exc: BaseException) -> BaseException:
        """The error to report for ``exc`` (another process's, when one failed first)."""
        return exc

    def teardown(self, run) -> None:
        """The run ended (finished, stopped or failed): release what :meth:`launch` set up."""


class DDP(SingleProcess):
    """``world`` processes under DistributedDataParallel, each on its share of every global batch.

    ``group`` given (a torchrun process, already in its process group): this process is ``group.rank`` from the
    start. ``group`` None (``devices=N`` from a notebook): this process is rank 0 and forks ranks 1..N-1 in
    :meth:`launch`, so everything built in the kernel is in every rank; CUDA stays uninitialised until then."""

    def __init__(self, world: int, group: distributed.Group | None = None, sync_bn: bool = False):
        self.world = group.world if group is not None else int(world)
        self.group = group
        self.sync_bn = bool(sync_bn)  # BatchNorm statistics over the global batch (GPUs only)
        self._val = None  # this rank's part of the validation data, made once
        self._joined = group is not None  # a torchrun process: it joined its group itself, so it leaves it too

    @property
    def rank(self) -> int:
        return self.group.rank if self.group is not None else 0

    @property
    def backend(self):
        return self.group.backend if self.group is not None else None

    def device_for(self, device: torch.device) -> torch.device:
        """Rank r trains on (local) GPU r on CUDA; every rank on the CPU otherwise."""
        return distributed.device_of(self.group, device) if self.group is not None else device

    def place(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """A run that forks keeps the model off the GPU until it has forked (CUDA cannot be forked)."""
        return model.to(device) if self.group is not None else model

    def attach(self, run) -> None:
        """A torchrun process takes its share of the run now."""
        if self.group is not None:
            self._become(run)

    def launch(self, run) -> torch.nn.Module:
        """Fork the other ranks first if this is a notebook's rank 0; then wrap the model in DDP."""
        from torch.nn.parallel import DistributedDataParallel

        if self.group is None:
            self.group = distributed.fork_workers(self.world, run.device, lambda group: self._train_as(run, group))
            self._become(run)
            share = run.train_loader.batch_size
            print(f"nbdetect: {self.world} processes ({self.group.backend}); batch {share * self.world} per "
                  f"step = {share} per process, {run.steps_per_epoch} steps per epoch as on one process")
            if run.device.type == "cpu" and run.threads:  # CPU processes share the cores
                run.threads = max(1, run.threads // self.world)
                torch.set_num_threads(run.threads)
        if self.sync_bn:
            run.model = distributed.sync_batchnorm(run.model)  # BatchNorm layers replaced in place
        ids = [run.device.index] if run.device.type == "cuda" else None
        return DistributedDataParallel(run.model, device_ids=ids)

    def agree(self, flag: bool) -> bool:
        return self.group.agree(flag)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        return self.group.mean(values)

    def gather(self, obj) -> list:
        return self.group.gather(obj)

    def val_part(self, loader):
        """This rank's part of the validation images (the loss is then gathered over all of them)."""
        if self._val is None and loader is not None:
            self._val = shard_val_loader(loader, self.rank, self.world)
        return self._val

    def failure(self, exc: BaseException) -> BaseException:
        """Rank 0's error when a forked rank failed first: that rank and its error, not a broken connection."""
        if self.group is None or not self.is_global_zero or not self.group.workers:
            return exc
        said = self.group.failure()
        if not said:
            return exc
        err = DistributedError(f"a training process failed ({said}); every process stopped with it",
                               where="devices", fix="fix the error above (it is the same on one process: try "
                                                    "devices=1), then resume=True continues from last.pt")
        err.__cause__ = exc
        return err

    def teardown(self, run) -> None:
        """Rank 0 ends the process group and waits for its forked ranks (or ends them): no orphans. Every
        process of a torchrun job leaves its group here (torch.distributed's documented shutdown), not at the
        interpreter's exit; ``python -m nbdetect`` then also ends such a process without that exit (__main__)."""
        if self.group is not None and (self.is_global_zero or self._joined):
            self.group.close()

    # -- becoming a rank ---------------------------------------------------------
    def _become(self, run) -> None:
        """``run`` trains as this rank: its share of every batch; a rank other than 0 also without files, display
        or the user's hooks (hooks marked ``every_rank``, as the weights' average, stay), and with its own draws."""
        run.device = self.device_for(run.device)
        run.model = run.model.to(run.device)
        run.eval_model = run.model
        run.train_loader = shard_train_loader(run.train_loader, self.rank, self.world)
        if self.is_global_zero:
            return
        run.callbacks = [h for h in run.callbacks if getattr(h, "every_rank", False)]
        run.monitor = None
        run.threads = 1 if run.device.type == "cpu" else run.threads
        run._restored_rng = None  # rank 0's draws are restored from a checkpoint, not copied
        torch.manual_seed(torch.initial_seed() + 1000 * self.rank)  # its own augmentation and sampling draws

    def _train_as(self, run, group) -> None:
        """In a forked process: train as ``group.rank`` of this run, then end (errors reach rank 0)."""
        run._thread = None
        self.group = group
        self._become(run)
        run._fit()
        if run.error is not None:
            raise run.error


def choose(devices: int = 1, group=None, sync_bn: bool = False):
    """The strategy for ``devices`` processes (or a torchrun process's ``group``)."""
    if group is not None or int(devices) > 1:
        return DDP(devices, group, sync_bn)
    return SingleProcess()
