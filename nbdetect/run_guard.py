"""The run guard: which training runs are active in this process, so a re-run cell cannot silently start a
second one. A run is claimed when a cell starts it and releases itself when it ends (finished, stopped, failed).

A notebook executed top to bottom ("Run All", nbclient) works because a cell that needs the active run to be
over (another recipe, the submission, a comparison) waits for it with a visible note (:func:`wait_for_active`);
re-running the cell of the run that is still active is refused instead (it would train the same thing twice).
When the process exits (kernel shutdown or restart), active runs are stopped at their next iteration and save
``last.pt`` (best effort: a kernel killed outright keeps the checkpoint of its last epoch).
"""
from __future__ import annotations

import atexit
import threading

from .errors import RunError

_LOCK = threading.Lock()
_RUNS: list = []
_LAST: list = []  # the last run claimed in this process: "the latest run" for the submission cell
EXIT_STOP_TIMEOUT_S = 20.0


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
    from .arguments import check_one

    timeout = check_one("timeout", timeout)
    runs = active_runs()
    for r in runs:
        r.stop()
    for r in runs:
        try:
            r.wait(timeout)
        except Exception:  # its error is shown in its panel / kept in run.error
            pass
    return runs


def name_of(run) -> str:
    return getattr(getattr(run, "recipe", None), "name", "a run")


def last_run():
    """The run claimed most recently in this process (active or not), or None."""
    with _LOCK:
        return _LAST[-1] if _LAST else None


def _stop_note(runs) -> str:
    """Where Stop is while a cell waits. A panel's Stop click is handled in nbdetect's own kernel subshell while
    this cell holds the main shell (monitor/comm_routing.py); a kernel without comm routing to subshells
    (ipykernel < 7.4) handles it only once this cell ends, so the note says to interrupt the wait first."""
    routed = [getattr(getattr(r, "monitor", None), "stop_in_subshell", None) for r in runs]
    if any(flag is False for flag in routed):
        return ("Stop is on its panel, but this kernel handles the click only once this cell ends: interrupt "
                "the kernel first, or use nbdetect.stop_all()")
    if any(flag for flag in routed):
        return "Stop is on its panel and works while this cell waits"
    return "Stop is on its panel"


def wait_for_active(before: str, *, exclude=None, poll_s: float = 1.0, out=print) -> list:
    """Wait until no run (other than ``exclude``) is active, saying so first; returns the runs waited for.

    The kernel's interrupt stops the wait, not the run: a RunError then says what is still training and what
    to do. A run that failed meanwhile is not this cell's error (its panel shows it); the cell goes on."""
    runs = [r for r in active_runs() if r is not exclude]
    if not runs:
        return []
    names = "; ".join(describe(r) for r in runs)
    out(f"nbdetect: waiting for {names} to finish before {before}. Interrupt the kernel to stop waiting "
        f"(the run keeps training; {_stop_note(runs)}).", flush=True)
    try:
        for r in runs:
            while is_active(r):
                try:
                    r.wait(poll_s)
                except KeyboardInterrupt:
                    raise
                except Exception:  # the run failed: its own panel says why
                    break
    except KeyboardInterrupt:
        raise RunError(f"stopped waiting; still training: {names}", where=names,
                       fix="re-run this cell to wait again, or stop that run (Stop on its panel or "
                           "nbdetect.stop_all()) and re-run this cell") from None
    out("nbdetect: " + "; ".join(f"{name_of(r)} {getattr(r, 'status', 'ended')}" for r in runs)
        + f"; {before} now.", flush=True)
    return runs


def claim(run, replace: bool = False, timeout: float | None = 120.0, wait: bool = False) -> None:
    """Register ``run`` as the process's training run.

    If another run is still active: with ``replace`` it is stopped (checkpoint saved) and waited for; with
    ``wait`` a run of another recipe is waited for (:func:`wait_for_active`); otherwise, and always for a run
    of the same recipe (a re-run cell), a RunError names it and the ways out.
    """
    others = [r for r in active_runs() if r is not run]
    if others and wait and not replace and not any(name_of(r) == name_of(run) for r in others):
        wait_for_active(f"starting {name_of(run)}", exclude=run)
        others = [r for r in active_runs() if r is not run]
    if others and not replace:
        names = "; ".join(describe(r) for r in others)
        same = any(name_of(r) == name_of(run) for r in others)
        raise RunError(
            (f"{name_of(run)} is still training in this kernel: {names}. "
             "Re-running its cell would train the same recipe twice at once" if same else
             f"another training run is still active in this kernel: {names}. Two runs at once would compete for "
             "the same GPU/CPU") + " (interrupting the kernel does not stop a background run)", where=names,
            fix="let it finish (run.wait()), or click Stop on its panel (or nbdetect.stop_all()) and re-run this "
                "cell to start afresh (resume=True continues the stopped run); or pass replace=True to stop it "
                "(saving its checkpoint) and start this one")
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
        _LAST[:] = [run]
    _stop_at_exit()


_EXIT_HOOKED = []


def _stop_at_exit() -> None:
    """Once per process: at exit, stop the active runs so each saves last.pt at its next iteration."""
    if not _EXIT_HOOKED:
        _EXIT_HOOKED.append(True)
        atexit.register(stop_all, timeout=EXIT_STOP_TIMEOUT_S)


def release(run) -> None:
    with _LOCK:
        _RUNS[:] = [r for r in _RUNS if r is not run]
