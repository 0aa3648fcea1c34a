"""Checkpoints written atomically (temp file in the same folder, then rename)."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write
from .errors import CheckpointError


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` so a crash mid-write never leaves a truncated file.

    A failed write (disk full, folder not writable) raises a CheckpointError saying so; the previous file at
    ``path`` is untouched and the half-written temp file is removed.
    """
    try:
        return atomic_write(path, lambda fh: torch.save(state, fh))
    except (OSError, RuntimeError) as exc:
        import errno

        text = f"{type(exc).__name__}: {exc}"
        full = getattr(exc, "errno", None) == errno.ENOSPC or "unexpected pos" in str(exc) or "No space" in str(exc)
        previous = "the previous checkpoint there is intact" if Path(path).exists() else "no earlier checkpoint there"
        raise CheckpointError(("the disk is full: " if full else "") + f"could not write {Path(path).name} ({text}); "
                              f"{previous}", where=str(path),
                              fix="free disk space (or pass another out_dir) and resume the run with resume=True"
                              if full else "check that the folder is writable, then resume with resume=True") from exc


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
