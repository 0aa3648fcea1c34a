"""The loss curve and the LR against it, judged by the same policy as the live verdict.

diagnose() does not judge curves itself: it hands the user's History (with the LR timeline rebuilt from
their optimizer and scheduler where the history logged none) to :func:`nbdetect.verdict.judge_history`, the
function the live verdict calls. Each finding keeps the verdict's code,
headline and evidence, so a run's panel and its diagnose() report always say the same thing.
"""
from __future__ import annotations

from .. import actions, recipes
from ..verdict import STOP_STATUSES, judge_history
from . import curve
from .report import Finding

CHECK = "curve"


def curve_verdict(history, ctx_recipe, total, timeline=None):
    """The verdict on ``history``: :func:`nbdetect.verdict.judge_history`, the live verdict's own function, on
    the same History. The LR rebuilt from the user's optimizer and scheduler fills epochs whose LR the history
    did not log; a recipe named to diagnose() vouches for the guide's convention."""
    lrs = None
    if timeline is not None and timeline.per_epoch and not history.has_lr():
        lrs = list(timeline.per_epoch)
    plateau_driven = timeline is not None and timeline.scheduler == "ReduceLROnPlateau"
    return judge_history(history, recipe=ctx_recipe, total_epochs=total, lr_per_epoch=lrs,
                         lr_plateau_driven=plateau_driven)


def _resolve(next_action: str | None, code: str, checked_inputs: bool) -> str | None:
    """'diagnose' means 'check the data and the model': inside diagnose() it is never the next step. Once the
    data and model were checked (and found fine), act on the curve; before, check the data."""
    if next_action != "diagnose":
        return next_action
    if not checked_inputs:
        return "fix_data"
    return "lower_lr" if code == "lr_too_high" else recipes.FIRST.name


def _finding(v, checked: bool, recipe: str | None = None) -> Finding:
    status = "fail" if v.status in STOP_STATUSES else "warn"
    nxt = _resolve(v.next_action, v.code, checked)
    if recipe and nxt == recipe:  # never send a recipe's own run back to that recipe: what comes after it
        nxt = recipes.next_on_failure(recipe)
    return Finding("lr" if v.code.startswith("lr_") else CHECK, v.code, status, v.headline, v.rule_text,
                   actions.instruction(nxt), next_action=nxt)


def check_curve(ctx) -> list[Finding]:
    history = ctx.history
    if history is None or history.n_epochs == 0:
        return []
    verdict = curve_verdict(history, ctx.recipe, ctx.total_epochs, ctx.timeline)
    run_recipe = ctx.recipe or history.meta.get("recipe")
    checked = ctx.model is not None and ctx.data is not None
    out: list[Finding] = []
    if verdict is not None and verdict.is_problem:
        # the verdict itself is the curve's finding; the other applicable rules follow it, never above it
        primary = _finding(verdict, checked, run_recipe)
        out.append(primary)
        for other in verdict.findings[1:]:
            if other.is_problem and other.code != verdict.code:
                f = _finding(other, checked, run_recipe)
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
        say = verdict.rule_text
        out.append(Finding(CHECK, "curve_ok", "pass", "the loss curve is falling or converged", say))
    return out
