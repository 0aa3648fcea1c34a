"""The verdict as a training callback: every run judges itself once per epoch, with or without a display.

The panel, the text monitor, the CLI summary and the benchmarks all read ``run.verdict``; none of them
calls the judge again (one judgement per epoch, one place).
"""
from __future__ import annotations

from .callbacks import Callback
from .verdict import Verdict, decide


class VerdictCallback(Callback):
    """Sets ``run.verdict`` at run start (when resumed), after every epoch and at the end."""

    def __init__(self, thresholds=None, reference_loss: float | None = None):
        self.thresholds = thresholds
        self.reference_loss = reference_loss

    def judge(self, run) -> Verdict:
        recipe = getattr(run, "recipe", None)
        name = getattr(recipe, "name", "") if recipe is not None else ""
        error = getattr(run, "error", None) if getattr(run, "status", "") == "failed" else None
        epochs = run.history.epochs
        reference = self.reference_loss
        if reference is None:
            reference = (getattr(run, "meta", None) or {}).get("reference_loss")
        run.verdict = decide(epochs, name, getattr(run, "epochs", 0) or len(epochs), thresholds=self.thresholds,
                             reference_loss=reference, error=error)
        return run.verdict

    def on_run_start(self, run) -> None:
        if run.history.epochs:  # resumed: the verdict so far
            self.judge(run)

    def on_epoch_end(self, run, rec: dict) -> None:
        self.judge(run)

    def on_run_end(self, run) -> None:
        self.judge(run)


def verdict_of(run, thresholds=None) -> Verdict:
    """The run's current verdict: the one its callback computed, or (for a run without one) a fresh judgement."""
    judge = getattr(run, "judge", None)
    if isinstance(judge, VerdictCallback):
        if thresholds is not None and judge.thresholds is None:
            judge.thresholds = thresholds
            return judge.judge(run)
        current = getattr(run, "verdict", None)
        return current if isinstance(current, Verdict) else judge.judge(run)
    return VerdictCallback(thresholds).judge(run)
