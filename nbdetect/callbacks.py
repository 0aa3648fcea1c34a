"""Hooks the training loop calls, in its own thread (the way detectron2's HookBase and Lightning callbacks do).

Events, in order: ``on_run_start`` (before the first epoch, also after a resume), then per epoch
``on_epoch_start``, ``on_iteration_end`` after every optimizer step (``rec``: the iteration record),
``on_validation_end`` (``rec``: the epoch record being built; hooks may add metrics to it, as the mAP
evaluator does), ``on_epoch_end`` (the epoch record, already in ``run.history``), and ``on_run_end``
(finished, stopped or failed). A hook that carries state returns it from ``state_dict`` and takes it back in
``load_state_dict``: it travels in the run's checkpoints, so a resumed run continues exactly.

A failing hook is reported once and disabled, so a broken display never stops training; a hook marked
``critical`` (checkpoints, history files, evaluation) fails the run instead, with its error kept.
"""
from __future__ import annotations

EVENTS = ("on_run_start", "on_epoch_start", "on_iteration_end", "on_validation_end", "on_epoch_end", "on_run_end")


class Callback:
    """A training hook: override the events it needs. Every event runs in the training thread (the background
    thread of ``run.start()``, the caller's of ``run.run()``), between optimizer steps, so a hook sees a
    consistent run and may read anything on it; what each may change is said per event."""

    critical = False  # True: an error in this hook fails the run instead of disabling the hook

    def on_run_start(self, run) -> None:  # noqa: D401 - hook
        """Once before the first epoch, also after a resume (then ``run.resumed`` is True and ``run.epoch`` /
        ``run.history`` hold what was restored; hooks' ``load_state_dict`` has already run). May set up the
        hook's own state, add to ``run.meta`` (e.g. a reference loss) or set ``run.eval_model``; it must not
        replace ``run.model`` or the optimizer."""

    def on_epoch_start(self, run) -> None:
        """Before the first batch of each epoch (``run.epoch`` is the number of epochs completed). May call
        ``run.stop()``; the weights and the optimizer are not the hook's to change."""

    def on_iteration_end(self, run, rec: dict) -> None:
        """After every optimizer step; ``rec`` is the iteration record already in ``run.history`` (step, epoch,
        lr, loss and its components). May read the model (e.g. average its weights) and call ``run.stop()``
        (honoured at this boundary, last.pt saved); it must not change ``rec`` or the weights being trained."""

    def on_validation_end(self, run, rec: dict) -> None:
        """After the epoch's validation loss, before the epoch record is logged: ``rec`` is that record being
        built (train_loss, val_loss, lr, time...). May add keys (a metric, as the mAP evaluator adds map and
        map50): they go into the history, epochs.csv and the panel; it should not change the losses."""

    def on_epoch_end(self, run, rec: dict) -> None:
        """After the epoch record ``rec`` is in ``run.history`` (read-only from here). May write files
        (checkpoints, history), set ``run.verdict`` or call ``run.stop()``."""

    def on_run_end(self, run) -> None:
        """Once when the run ends: finished, stopped or failed (``run.status``, ``run.error``); the run slot is
        already released. May close files and show the outcome; an error of a critical hook here fails the run."""

    def state_dict(self) -> dict:
        """The hook's state to keep in the run's checkpoints (last.pt); {} for a hook without state."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Take back what ``state_dict`` returned, on resume, before ``on_run_start``."""


def dispatch(callbacks, hook: str, *args) -> None:
    """Call ``hook`` on every callback; a failing non-critical callback is reported once and then ignored."""
    for cb in list(callbacks):
        if getattr(cb, "_nbdetect_failed", False):
            continue
        method = getattr(cb, hook, None)
        if method is None:  # an object implementing only some events
            continue
        if getattr(cb, "critical", False):
            method(*args)
            continue
        try:
            method(*args)
        except Exception as exc:  # a broken display must never kill training
            cb._nbdetect_failed = True
            import warnings

            warnings.warn(f"nbdetect: callback {type(cb).__name__}.{hook} failed and was disabled: {exc!r}")
