"""DataLoader pieces: collate, a resumable seeded sampler, and make_loader()."""
from __future__ import annotations

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
