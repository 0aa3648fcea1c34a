"""Checkpoints written atomically (temp file in the same folder, then rename)."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` so a crash mid-write never leaves a truncated file."""
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load an nbdetect checkpoint (plain tensors and containers only: ``weights_only=True``)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def scheduler_state(scheduler) -> dict | None:
    """A scheduler's state without its callables (LambdaLR's lr_lambdas are rebuilt from the recipe)."""
    if scheduler is None:
        return None
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}


def load_scheduler_state(scheduler, state: dict | None) -> None:
    if scheduler is None or state is None:
        return
    full = scheduler.state_dict()
    full.update(state)
    scheduler.load_state_dict(full)
