"""DataLoader pieces: collate, a resumable seeded sampler, make_loader() and epoch_batches()."""
from __future__ import annotations

import itertools

import torch
from torch.utils.data import DataLoader, Sampler


def collate_fn(batch):
    """Detection batches are lists (images differ in size): ``(images, targets)``."""
    return tuple(zip(*batch))


class ResumableSampler(Sampler):
    """A permutation that depends only on ``seed + epoch``; ``set_start(i)`` skips the first i samples once.

    A run resumed from the middle of an epoch therefore sees exactly the batches an
    uninterrupted run would have seen, without loading the skipped ones.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle = int(n), int(seed), bool(shuffle)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_start(self, index: int) -> None:
        self.start = max(0, int(index))

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self):
        start, self.start = self.start, 0
        return iter(self.order()[start:])

    def __len__(self) -> int:
        return self.n


def make_loader(dataset, batch_size: int = 4, shuffle: bool = True, seed: int = 0, num_workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader over ``dataset`` with nbdetect's sampler and collate; a DataLoader is returned as is."""
    if isinstance(dataset, DataLoader):
        return dataset
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ResumableSampler(len(dataset), seed=seed, shuffle=shuffle),
        collate_fn=collate_fn,
        num_workers=num_workers,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
    )


def epoch_batches(loader, epoch: int, start_iteration: int = 0):
    """An iterator over ``loader``'s batches for ``epoch`` (0-based), skipping ``start_iteration`` batches.

    A loader whose sampler has ``set_epoch``/``set_start`` (nbdetect's ResumableSampler)
    gives the same order on resume without loading the skipped batches.
    """
    sampler = getattr(loader, "sampler", None)
    batch_size = getattr(loader, "batch_size", None) or 1
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    if hasattr(sampler, "set_start"):
        sampler.set_start(start_iteration * batch_size)
        return iter(loader)
    it = iter(loader)
    return itertools.islice(it, start_iteration, None) if start_iteration else it


def resumable(user_loader: DataLoader, seed: int = 0) -> tuple[DataLoader, str]:
    """A user's DataLoader made resumable mid-epoch, and a note saying what was done.

    A shuffling loader (RandomSampler) is rebuilt around :class:`ResumableSampler` with the same dataset,
    batch size, collate function, workers and drop_last, so a stopped and resumed run sees the batches an
    uninterrupted one would. A sequential loader is already resumable. A custom sampler is kept as it is,
    and the note says that a mid-epoch resume then continues in a different order.
    """
    from torch.utils.data import RandomSampler, SequentialSampler

    sampler = getattr(user_loader, "sampler", None)
    if isinstance(sampler, (SequentialSampler, ResumableSampler)):
        return user_loader, ""
    if not isinstance(sampler, RandomSampler) or getattr(user_loader, "batch_size", None) is None:
        return user_loader, (f"your DataLoader uses {type(sampler).__name__}: a run stopped mid-epoch resumes "
                             "with a different batch order for that epoch (later epochs are unaffected)")
    workers = user_loader.num_workers
    rebuilt = _rebuilt(user_loader, user_loader.batch_size,
                       ResumableSampler(len(user_loader.dataset), seed=seed, shuffle=True), user_loader.drop_last)
    return rebuilt, ("your shuffling DataLoader was rebuilt around a resumable sampler (same dataset, batch size "
                     f"{user_loader.batch_size}, collate_fn and {workers} workers): a stopped run resumes with "
                     "exactly the batch order of an uninterrupted one")


class ShardedSampler(Sampler):
    """Rank ``rank`` of ``world``'s share of a :class:`ResumableSampler`'s global batches of ``batch_size``:
    positions ``rank*b .. (rank+1)*b`` of each (``b = batch_size // world``). The last short global batch is
    filled from the start of the epoch's order (as torch's DistributedSampler pads), so every rank takes the same
    number of steps as one process: ``ceil(n / batch_size)``. ``set_start`` counts this rank's samples."""

    def __init__(self, base: ResumableSampler, batch_size: int, rank: int, world: int):
        self.base, self.batch_size, self.rank, self.world = base, int(batch_size), int(rank), int(world)
        self.share = self.batch_size // self.world
        self.steps = -(-base.n // self.batch_size)
        self.start_step = 0

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def set_start(self, index: int) -> None:
        self.start_step = max(0, int(index)) // self.share

    def __iter__(self):
        start, self.start_step = self.start_step, 0
        order = self.base.order()
        need = self.steps * self.batch_size
        padded = (order * (-(-need // max(len(order), 1))))[:need]
        for step in range(start, self.steps):
            first = step * self.batch_size + self.rank * self.share
            yield from padded[first:first + self.share]

    def __len__(self) -> int:
        return self.steps * self.share


class StridedSampler(Sampler):
    """Every ``world``-th index from ``rank``: a rank's part of the validation set (no padding, no overlap)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(int(rank), int(n), int(world)))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _base_sampler(loader: DataLoader) -> ResumableSampler | None:
    from torch.utils.data import RandomSampler, SequentialSampler

    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, ResumableSampler):
        return sampler
    n = len(loader.dataset)
    if isinstance(sampler, SequentialSampler):
        return ResumableSampler(n, shuffle=False)
    if isinstance(sampler, RandomSampler):
        return ResumableSampler(n, shuffle=True)
    return None


def _rebuilt(loader: DataLoader, batch_size: int, sampler: Sampler, drop_last: bool = False) -> DataLoader:
    """``loader`` with another sampler and batch size; its dataset, collate_fn, workers and settings kept."""
    return DataLoader(loader.dataset, batch_size=batch_size, sampler=sampler, collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers, drop_last=drop_last, pin_memory=loader.pin_memory,
                      worker_init_fn=loader.worker_init_fn, persistent_workers=loader.num_workers > 0,
                      timeout=loader.timeout)


def shard_train_loader(loader: DataLoader, rank: int, world: int) -> DataLoader:
    """This rank's DataLoader over its share of every global batch (see :class:`ShardedSampler`)."""
    from ..errors import InputError

    base = _base_sampler(loader) if isinstance(loader, DataLoader) else None
    if base is None or loader.batch_size is None:
        raise InputError("devices > 1 needs a training DataLoader nbdetect can split between processes "
                         f"(this one has a {type(getattr(loader, 'sampler', None)).__name__} / a batch_sampler)",
                         where="train", fix="pass the Dataset itself (nbdetect builds the loader), or a DataLoader "
                                            "with shuffle=True/False and a batch_size")
    return _rebuilt(loader, loader.batch_size // world, ShardedSampler(base, loader.batch_size, rank, world))


def shard_val_loader(loader, rank: int, world: int):
    """This rank's part of the validation data (every world-th image): the ranks' parts add up to all of it."""
    if loader is None or not isinstance(loader, DataLoader) or loader.batch_size is None:
        return loader
    return _rebuilt(loader, loader.batch_size, StridedSampler(len(loader.dataset), rank, world))
