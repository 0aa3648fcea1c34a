"""The verdict as a training callback: every run judges itself once per epoch, with or without a display.

The panel, the text monitor, the CLI summary and the benchmarks all read ``run.verdict``; none of them
calls the judge again (one judgement per epoch, one place). The judgement is
:func:`nbdetect.verdict.judge_history` on the run's own :class:`~nbdetect.history.History`, whose ``meta``
(:func:`run_meta`) says what the run knows; ``history.jsonl`` keeps the same meta, so
``diagnose(history=<run folder>)`` judges the same History and says the same thing.
"""
from __future__ import annotations

from dataclasses import asdict

from .callbacks import Callback
from .history import run_meta
from .verdict import Verdict, judge_history


class VerdictCallback(Callback):
    """Sets ``run.verdict`` at run start (when resumed), after every epoch and at the end.

    ``on_run_start`` (a resumed run only), ``on_epoch_end`` and ``on_run_end``: writes what the run knows into
    ``run.history.meta`` and sets ``run.verdict``; it never stops the run (a stop is the user's, or the panel's)."""

    def __init__(self, thresholds=None, reference_loss: float | None = None):
        self.thresholds = thresholds
        self.reference_loss = reference_loss

    def judge(self, run) -> Verdict:
        error = getattr(run, "error", None) if getattr(run, "status", "") == "failed" else None
        meta = run_meta(run)
        if self.thresholds is not None:
            meta["thresholds"] = asdict(self.thresholds)
        if self.reference_loss is not None:
            meta["reference_loss"] = float(self.reference_loss)
        run.history.meta.update(meta)
        run.verdict = judge_history(run.history, error=error)
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
