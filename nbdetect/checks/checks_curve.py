"""The loss curve and the LR against it, judged by the same policy as the live verdict.

diagnose() does not judge curves itself: it turns the user's history (and the LR timeline rebuilt from
their optimizer and scheduler) into epoch records, computes :func:`nbdetect.curve_facts.curve_facts` and
asks :func:`nbdetect.verdict.judge` for every applicable finding. Each finding keeps the verdict's code,
headline and evidence, so a run's panel and its diagnose() report always say the same thing.
"""
from __future__ import annotations

import math

from .. import actions, recipes
from ..curve_facts import curve_facts
from ..verdict import STOP_STATUSES, verdict_from
from . import curve
from .report import Finding

CHECK = "curve"


def epoch_records(history, lrs=None) -> list[dict]:
    """The history as ``History.epochs``-style records (missing values as None)."""
    n = history.n_epochs
    lrs = list(lrs or [])

    def at(values, i):
        v = values[i] if i < len(values) else None
        return v if isinstance(v, (int, float)) else None

    out = []
    for i in range(n):
        lr = lrs[i] if i < len(lrs) and isinstance(lrs[i], (int, float)) and math.isfinite(lrs[i]) else None
        if lr is None and i < len(history.lr) and math.isfinite(history.lr[i]):
            lr = history.lr[i]
        rec = {"epoch": i + 1, "train_loss": at(history.train, i), "lr": lr}
        if history.val:
            rec["val_loss"] = at(history.val, i)
        out.append(rec)
    return out


def _resolve(next_action: str | None, code: str, checked_inputs: bool) -> str | None:
    """'diagnose' means 'check the data and the model': inside diagnose(), once they were checked, act."""
    if next_action != "diagnose" or not checked_inputs:
        return next_action
    return "lower_lr" if code == "lr_too_high" else recipes.FIRST.name


def _finding(v, checked: bool) -> Finding:
    status = "fail" if v.status in STOP_STATUSES else "warn"
    nxt = _resolve(v.next_action, v.code, checked)
    return Finding("lr" if v.code.startswith("lr_") else CHECK, v.code, status, v.headline, v.rule_text,
                   actions.instruction(nxt), next_action=nxt)


def check_curve(ctx) -> list[Finding]:
    history = ctx.history
    if history is None or history.n_epochs == 0:
        return []
    lrs = ctx.timeline.per_epoch if ctx.timeline is not None else None
    records = epoch_records(history, lrs)
    total = max(ctx.total_epochs or 0, history.n_epochs)
    plateau_driven = ctx.timeline is not None and ctx.timeline.scheduler == "ReduceLROnPlateau"
    facts = curve_facts(records, total, lr_plateau_driven=plateau_driven)
    verdict = verdict_from(facts, ctx.recipe or "custom")
    checked = ctx.model is not None and ctx.data is not None
    out: list[Finding] = []
    if verdict is not None and verdict.is_problem:
        # the verdict itself is the curve's finding; the other applicable rules follow it, never above it
        primary = _finding(verdict, checked)
        out.append(primary)
        for other in verdict.findings[1:]:
            if other.is_problem and other.code != verdict.code:
                f = _finding(other, checked)
                f.status = "warn"
                f.priority = max(f.priority, primary.priority + 1)
                out.append(f)
    if ctx.expected:
        name, values = history.primary()
        above = curve.below_expected(values, ctx.expected)
        if above:
            shown = "; ".join(f"epoch {e}: {val:.4g} > {hi:g}" for e, val, lo, hi in above[:5])
            out.append(Finding(CHECK, "below_expected_curve", "warn" if len(above) < 2 else "fail",
                               f"the loss is above the expected curve at {len(above)} checkpoints", shown,
                               actions.instruction(recipes.ALTERNATIVE_2.name)))
    if not out:
        say = verdict.rule_text if verdict is not None else f"{facts.metric}: {len(facts.points)} finite epochs"
        out.append(Finding(CHECK, "curve_ok", "pass", "the loss curve is falling or converged", say))
    return out
