"""Hooks the training loop calls, in its own thread (the way detectron2's HookBase and Lightning callbacks do).

Events, in order: ``on_run_start`` (before the first epoch, also after a resume), then per epoch
``on_epoch_start``, ``on_iteration_end`` after every optimizer step (``rec``: the iteration record),
``on_validation_end`` (``rec``: the epoch record being built; hooks may add metrics to it, as the mAP
evaluator does), ``on_epoch_end`` (the epoch record, already in ``run.history``), and ``on_run_end``
(finished, stopped or failed). A hook that carries state returns it from ``state_dict`` and takes it back in
``load_state_dict``: it travels in the run's checkpoints under its ``state_key``, so a resumed run continues
exactly. The key is the class name; a hook whose arguments make two instances keep different things names
them in its key (``self.generate_state_key(every=self.every)``, as Lightning's ``Callback.state_key``), so two
such hooks in one run keep their states apart; two stateful hooks with one key are refused when the run is built.
A checkpoint's state for a hook the resumed run does not have is ignored with a warning.

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
    every_rank = False  # True: kept by every process of a distributed run (else rank 0 alone runs it)

    @property
    def state_key(self) -> str:
        """The hook's state's key in the run's checkpoints: its class name by default. Override it with
        :meth:`generate_state_key` when instances with other arguments keep other state."""
        return type(self).__name__

    def generate_state_key(self, **arguments) -> str:
        """A key naming the class and ``arguments``, e.g. ``"EveryN{'n': 2}"``: stable across sessions."""
        return f"{type(self).__name__}{arguments!r}"

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


def state_key(hook) -> str:
    """``hook.state_key``, or the class name for an object not derived from Callback."""
    return getattr(hook, "state_key", None) or type(hook).__name__


def _stateful(hook) -> bool:
    method = getattr(type(hook), "state_dict", None)
    return method is not None and method is not Callback.state_dict


def check_state_keys(callbacks) -> None:
    """Two hooks with state under one key would overwrite each other in the checkpoint: refuse them."""
    seen: dict[str, object] = {}
    for hook in callbacks:
        if not _stateful(hook):
            continue
        key = state_key(hook)
        if key in seen:
            from .errors import InputError

            raise InputError(f"two hooks keep their state under the key {key!r} ({type(seen[key]).__name__} and "
                             f"{type(hook).__name__}): a checkpoint would keep only one of them", where="callbacks",
                             fix="give the hook's class a state_key naming its arguments: "
                                 "return self.generate_state_key(every=self.every)")
        seen[key] = hook


def hook_states(callbacks) -> dict:
    """Every hook's non-empty state, by its state key (what a checkpoint keeps under ``"hooks"``)."""
    states = {}
    for hook in callbacks:
        state = hook.state_dict() if hasattr(hook, "state_dict") else None
        if state:
            states[state_key(hook)] = state
    return states


def load_hook_states(callbacks, states: dict, where: str = "the checkpoint", warn: bool = True) -> list:
    """Give each hook its state from ``states``; returns the keys no hook took (warned about when ``warn``).

    A checkpoint written before hooks had state keys keyed them by class name: a hook whose key is not there
    takes its class name's state."""
    taken = set()
    for hook in callbacks:
        if not hasattr(hook, "load_state_dict"):
            continue
        for key in (state_key(hook), type(hook).__name__):
            if key in states and key not in taken:
                hook.load_state_dict(states[key])
                taken.add(key)
                break
    unknown = [k for k, v in states.items() if k not in taken and v]
    if unknown and warn:
        import warnings

        warnings.warn(f"nbdetect: {where} holds the state of hooks this run does not have: {', '.join(unknown)}; "
                      "it is ignored (pass the same callbacks as the run that wrote it to keep it)", stacklevel=3)
    return unknown


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
