"""The run guard: which training runs are active in this process, so a re-run cell cannot silently start a
second one. A run is claimed when a cell starts it and releases itself when it ends (finished, stopped, failed).
"""
from __future__ import annotations

import threading

from .errors import RunError

_LOCK = threading.Lock()
_RUNS: list = []


def is_active(run) -> bool:
    active = getattr(run, "is_active", None)
    if isinstance(active, bool):
        return active
    return getattr(run, "status", "") in ("running", "stopping")


def active_runs() -> list:
    with _LOCK:
        return [r for r in _RUNS if is_active(r)]


def active_run():
    """The active run (the most recent one), or None."""
    runs = active_runs()
    return runs[-1] if runs else None


def describe(run) -> str:
    name = getattr(getattr(run, "recipe", None), "name", "a run")
    return (f"{name} ({getattr(run, 'status', '?')}, epoch {getattr(run, 'epoch', '?')}/{getattr(run, 'epochs', '?')}, "
            f"out_dir={str(getattr(run, 'out_dir', '?'))!r})")


def stop_all(timeout: float | None = 120.0) -> list:
    """Stop every active run (each at its next iteration, with a checkpoint) and wait for them."""
    runs = active_runs()
    for r in runs:
        r.stop()
    for r in runs:
        try:
            r.wait(timeout)
        except Exception:  # its error is shown in its panel / kept in run.error
            pass
    return runs


def claim(run, replace: bool = False, timeout: float | None = 120.0) -> None:
    """Register ``run`` as the process's training run.

    If another run is still active, raise a RuntimeError naming it, unless ``replace`` is true: then the
    other run is stopped (checkpoint saved) and waited for first.
    """
    others = [r for r in active_runs() if r is not run]
    if others and not replace:
        names = "; ".join(describe(r) for r in others)
        raise RunError(
            f"another training run is still active in this kernel: {names}. Two runs at once would compete for "
            "the same GPU/CPU (interrupting the kernel does not stop a background run)", where=names,
            fix="click Stop on its panel, or run nbdetect.stop_all(), then re-run this cell; or pass replace=True "
                "to stop it (saving its checkpoint) and start this one; or run.wait() to let it finish first")
    for r in others:
        r.stop()
        try:
            r.wait(timeout)
        except Exception:
            pass
        if is_active(r):
            raise RunError(f"{describe(r)} did not stop within {timeout} s; not starting another run",
                           fix="wait for it to reach its next iteration and re-run this cell")
    with _LOCK:
        _RUNS[:] = [r for r in _RUNS if r is not run and is_active(r)]
        _RUNS.append(run)


def release(run) -> None:
    with _LOCK:
        _RUNS[:] = [r for r in _RUNS if r is not run]
