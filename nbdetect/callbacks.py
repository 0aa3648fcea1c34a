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
    critical = False  # True: an error in this hook fails the run instead of disabling the hook

    def on_run_start(self, run) -> None:  # noqa: D401 - hook
        pass

    def on_epoch_start(self, run) -> None:
        pass

    def on_iteration_end(self, run, rec: dict) -> None:
        pass

    def on_validation_end(self, run, rec: dict) -> None:
        pass

    def on_epoch_end(self, run, rec: dict) -> None:
        pass

    def on_run_end(self, run) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


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
