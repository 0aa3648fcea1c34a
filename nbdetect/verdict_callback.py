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
from .verdict import Verdict, judge_history


def run_meta(run) -> dict:
    """What a run knows beyond its epoch records: recipe, planned epochs, loss convention, reference loss and
    the user's thresholds (as a dict), under the keys :func:`judge_history` reads."""
    recipe = getattr(run, "recipe", None)
    name = getattr(recipe, "name", "") if recipe is not None else ""
    judge = getattr(run, "judge", None)
    thresholds = getattr(judge, "thresholds", None)
    reference = getattr(judge, "reference_loss", None)
    if reference is None:
        reference = (getattr(run, "meta", None) or {}).get("reference_loss")
    meta = {"recipe": name, "total_epochs": getattr(run, "epochs", None) or None, "convention": "nbdetect",
            "source": f"nbdetect run ({getattr(run, 'out_dir', '')})"}
    if reference is not None:
        meta["reference_loss"] = float(reference)
    if thresholds is not None:
        meta["thresholds"] = asdict(thresholds)
    tiles = (getattr(run, "meta", None) or {}).get("tiles")
    if tiles:  # the run trains on tiles (nbdetect.data.tiles): said by diagnose(history=<run folder>)
        meta["tiles"] = dict(tiles)
    return meta


class VerdictCallback(Callback):
    """Sets ``run.verdict`` at run start (when resumed), after every epoch and at the end."""

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
