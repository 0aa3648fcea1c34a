"""RankedRun: what a TrainingRun does differently as one process of a distributed run (nbdetect.distributed).

Rank 0 of a ``devices=N`` run forks the others when it starts (:meth:`_start_ranks`); each forked process takes
the same TrainingRun as rank r (:meth:`_train_as_rank`). Every rank trains on its share of each batch under
DDP, asks the others each iteration whether to stop, and computes the validation loss on its part of the images;
rank 0 alone keeps the hooks that write files and drive the display.
"""
from __future__ import annotations

import torch

from . import distributed
from .data.loader import shard_train_loader, shard_val_loader
from .errors import DistributedError


class RankedRun:
    """Mixin of TrainingRun; ``self.group`` is None for a run on one process."""

    @property
    def is_main(self) -> bool:
        """The process that writes files and drives the display (rank 0, or the only process)."""
        return self.group is None or self.group.is_main

    def _should_stop(self) -> bool:
        """Stop now? In a distributed run every rank gets the same answer at the same iteration."""
        if self.group is None:
            return self.stop_event.is_set()
        if self.group.agree(self.stop_event.is_set()):
            self.stop_event.set()
        return self.stop_event.is_set()

    def _val_part(self):
        """The validation images this process computes the loss on (all of them, or its rank's part)."""
        if self.group is None:
            return self.val_loader
        if self._val_shard is None:
            self._val_shard = shard_val_loader(self.val_loader, self.group.rank, self.group.world)
        return self._val_shard

    def _become_rank(self, group) -> None:
        """This (forked or torchrun) process trains as rank ``group.rank``: its share of every batch; a rank other
        than 0 also its part of the validation images, and no files and no display (rank 0 has them)."""
        from .hooks import WeightEMA

        self.group = group
        self.device = distributed.device_of(group, self.device)
        self.model = self.model.to(self.device)
        self.eval_model = self.model
        self.train_loader = shard_train_loader(self.train_loader, group.rank, group.world)
        if group.is_main:
            return
        self.hooks = [h for h in self.hooks if isinstance(h, WeightEMA)]
        self.callbacks = list(self.hooks)
        self.monitor = None
        self.threads = 1 if self.device.type == "cpu" else self.threads  # CPU processes share the cores
        self._restored_rng = None  # rank 0's draws are restored from a checkpoint, not copied
        torch.manual_seed(torch.initial_seed() + 1000 * group.rank)  # its own augmentation and sampling draws

    def _start_ranks(self) -> None:
        """Rank 0 of a ``devices=N`` run: fork the other ranks, join the group, wrap the model in DDP."""
        from torch.nn.parallel import DistributedDataParallel

        if self.group is None and self.devices > 1:
            self._become_rank(distributed.fork_workers(self.devices, self.device, self._train_as_rank))
            share = self.train_loader.batch_size
            print(f"nbdetect: {self.devices} processes ({self.group.backend}); batch {share * self.devices} per "
                  f"step = {share} per process, {self.steps_per_epoch} steps per epoch as on one process")
            if self.device.type == "cpu" and self.threads:
                self.threads = max(1, self.threads // self.devices)
                torch.set_num_threads(self.threads)
        if self.group is not None:
            if self.sync_bn:
                self.model = distributed.sync_batchnorm(self.model)  # BatchNorm layers replaced in place
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)

    def _rank_failure(self, exc: BaseException) -> BaseException:
        """Rank 0's error when another rank failed first: that rank and its error, not a broken connection."""
        if self.group is None or not self.is_main or not self.group.workers:
            return exc
        said = self.group.failure()
        if not said:
            return exc
        err = DistributedError(f"a training process failed ({said}); every process stopped with it",
                               where="devices", fix="fix the error above (it is the same on one process: try "
                                                    "devices=1), then resume=True continues from last.pt")
        err.__cause__ = exc
        return err

    def _train_as_rank(self, group) -> None:
        """In a forked process: train as ``group.rank`` of this run, then end (errors reach rank 0)."""
        self._thread = None
        self._become_rank(group)
        self._fit()
        if self.error is not None:
            raise self.error
