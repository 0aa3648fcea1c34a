"""Event hooks the Trainer calls from its own thread. Callbacks must be cheap and never raise."""
from __future__ import annotations


class Callback:
    def on_run_start(self, run) -> None:  # noqa: D401 - hook
        pass

    def on_iteration_end(self, run, rec: dict) -> None:
        pass

    def on_epoch_end(self, run, rec: dict) -> None:
        pass

    def on_run_end(self, run) -> None:
        pass


def dispatch(callbacks, hook: str, *args) -> None:
    """Call ``hook`` on every callback; a failing callback is reported once and then ignored."""
    for cb in list(callbacks):
        if getattr(cb, "_nbdetect_failed", False):
            continue
        try:
            getattr(cb, hook)(*args)
        except Exception as exc:  # a broken display must never kill training
            cb._nbdetect_failed = True
            import warnings

            warnings.warn(f"nbdetect: callback {type(cb).__name__}.{hook} failed and was disabled: {exc!r}")
