"""The verdict: the guide's decision tree and nbdetect's own evidence rules, composed into one judgement.

Pure Python: no torch, no widgets. ``decide(epochs, recipe_name, total_epochs)`` and
``judge_history(history)`` read the per-epoch records of a run and return a :class:`Verdict` naming what to do
next and the rule it applied, in words.

The judge is three files: :mod:`nbdetect.verdict_data` (the guide's numbers as ratios of the run's own
starting loss, the policy thresholds, ``UserThresholds`` and the ``REGISTRY`` of rule identifiers),
:mod:`nbdetect.verdict_rules` (one function per rule, each returning a typed ``Finding`` with its evidence as
numbers) with :mod:`nbdetect.verdict_text` (the prose), and this module: the ``Verdict`` type, the policy
(``POLICY``, most severe first: non-finite, divergence, overfitting, mAP collapse, LR cut before
convergence, the guide's decision, stalled, not learning; then the final grading, ``OVERRIDE_FINAL``) and its
composition. The policy reads the facts of :mod:`nbdetect.curve_facts`, computed once per epoch. A stop needs
evidence that the run will not reach the guide's goal by its planned end (an optimistic projection), not a
single-epoch ratio. The live verdict and diagnose() both call :func:`judge`; docs/JUDGE.md has the tables.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from . import recipes as _recipes
from .curve_facts import CurveFacts, by_epoch, curve_facts
# re-exported for importers; the thresholds here are copies: the rules read verdict_data's (patch those)
from .verdict_data import (CONVERGED_RATIO, CUT_HELPED, DETECTOR_LR_FLOOR, DIVERGENCE_RATIO,  # noqa: F401
                           DIVERGENCE_RISE, FRCNN_START, LEARNED_RATIO, LOW_LR_FRACTION, MIN_PATIENCE,
                           NOT_LEARNING_EPOCHS, OVERFIT_PATIENCE, OVERFIT_RISE, PATIENCE_SHARE, REGISTRY,
                           RETINA_START, RULES, Rule, RuleEntry, UserThresholds, rules)
from .verdict_rules import (Context, Finding, rule_decision, rule_divergence, rule_final,  # noqa: F401
                            rule_final_own_evidence, rule_lr_cut_too_early, rule_map_collapse, rule_nonfinite,
                            rule_not_learning, rule_overfitting, rule_stalled)
from . import verdict_text as _text
from .verdict_text import series_read

__all__ = ["OUTCOMES", "STOP_STATUSES", "POLICY", "OVERRIDE_FINAL", "REGISTRY", "RULES", "Context", "Finding", "Rule",
           "RuleEntry", "UserThresholds", "Verdict", "decide", "judge", "judge_history", "reference_of", "rules",
           "series_read", "thresholds_from", "uses_guide_lines", "verdict_from", "CONVERGED_RATIO", "CUT_HELPED",
           "DETECTOR_LR_FLOOR", "DIVERGENCE_RATIO", "DIVERGENCE_RISE", "FRCNN_START", "LEARNED_RATIO",
           "LOW_LR_FRACTION", "MIN_PATIENCE", "NOT_LEARNING_EPOCHS", "OVERFIT_PATIENCE", "OVERFIT_RISE",
           "PATIENCE_SHARE", "RETINA_START", "rule_decision", "rule_divergence", "rule_final",
           "rule_final_own_evidence", "rule_lr_cut_too_early", "rule_map_collapse", "rule_nonfinite",
           "rule_not_learning", "rule_overfitting", "rule_stalled"]

OUTCOMES = ("pending", "continue", "switch", "diagnose", "warn", "success", "partial", "fail")


@dataclass
class Verdict(Finding):
    """The judgement after the latest epoch: the most severe finding (a rule's :class:`Finding`: status, one of
    OUTCOMES; headline; rule_text; next_action; rule_id; epoch; details; code, the finding code diagnose()
    reports for the same judgement), with the others kept in ``findings`` and the facts it read."""

    findings: list = field(default_factory=list)  # every applicable Verdict, most severe first
    facts: CurveFacts | None = None

    @classmethod
    def of(cls, finding: Finding | None) -> Verdict | None:
        """The verdict of one rule's finding (None stays None)."""
        if finding is None:
            return None
        return cls(finding.status, finding.headline, finding.rule_text, finding.next_action, finding.rule_id,
                   finding.epoch, dict(finding.details), finding.code)

    @property
    def suggests_switch(self) -> bool:
        return self.status in ("switch", "fail") and _recipes.find(self.next_action) is not None

    @property
    def is_stop(self) -> bool:
        """The verdict says to stop this run (switch, diagnose, fail)."""
        return self.status in STOP_STATUSES

    @property
    def is_problem(self) -> bool:
        return self.status not in ("pending", "continue", "success")

    def as_dict(self) -> dict:
        return {"status": self.status, "headline": self.headline, "rule_text": self.rule_text,
                "next_action": self.next_action, "rule_id": self.rule_id, "code": self.code, "epoch": self.epoch,
                "details": dict(self.details),
                "findings": [{"rule_id": f.rule_id, "code": f.code, "status": f.status, "headline": f.headline}
                             for f in self.findings]}

    def __str__(self) -> str:
        return f"{self.headline}\n{self.rule_text}"


STOP_STATUSES = ("switch", "diagnose", "fail")


# -- helpers -----------------------------------------------------------------------------------------------
def reference_of(epochs: list[dict]) -> float | None:
    """The run's starting loss: max of the first finite training and validation losses."""
    return curve_facts(epochs).reference if epochs else None



#: Lightning's EarlyStopping checks (non-finite, divergence, ...), as verdict_data.REGISTRY lists them. Add a
#: rule: a function in verdict_rules.py and its REGISTRY entry (at its place in the order).
def policy_from(registry) -> tuple:
    """The rule functions to run, in the registry's order (severity = position): each entry's own function
    (its first), once, from :mod:`nbdetect.verdict_rules`."""
    from . import verdict_rules

    out = []
    for entry in registry:
        name = entry.functions[0] if entry.functions else ""
        if not name.startswith("rule_") or name.startswith("rule_final"):
            continue  # the final gradings (after the last epoch) and the failed run (judge_history) are not rules
        function = getattr(verdict_rules, name)
        if function not in out:
            out.append(function)
    return tuple(out)


POLICY: tuple = policy_from(REGISTRY)
#: After the last epoch the guide's grading leads, except over these (a broken run is never a success).
OVERRIDE_FINAL = ("nonfinite", "divergence", "map_collapse", "overfitting")


def uses_guide_lines(recipe_name: str, thresholds: UserThresholds | None, convention: str | None) -> bool:
    """The guide's loss lines judge the guide's recipes on nbdetect's loss, or any run with user thresholds."""
    if thresholds is not None:
        return True
    return _recipes.find(recipe_name) is not None and convention != "unknown"


def judge(facts: CurveFacts, recipe_name: str = "", thresholds: UserThresholds | None = None,
          error: BaseException | str | None = None, convention: str | None = None) -> list[Verdict]:
    """Every applicable finding for ``facts``, most severe first (the live verdict and diagnose() both call this)."""
    text = str(error) if error is not None else None
    nonfinite_error = error is not None and (type(error).__name__ == "NonFiniteLossError" or bool(
        re.search(r"\b(nan|inf|-inf|non-finite|nonfinite)\b", (text or "").lower())))
    ctx = Context(facts, recipe_name or "", thresholds, text, nonfinite_error,
                  uses_guide_lines(recipe_name or "", thresholds, convention))
    if not facts.reference and not ctx.error_nonfinite and facts.nonfinite is None:
        return []
    found = [Verdict.of(v) for v in (rule(ctx) for rule in POLICY) if v is not None]
    problems = [v for v in found if v.is_problem]
    fine = [v for v in found if not v.is_problem]
    final = Verdict.of(rule_final(ctx)) if facts.reference else None
    if final is not None and final.rule_id == "final_own_evidence":
        return problems + [final]  # no guide line: the run's own problems (their causes) come before its grade
    if final is not None:
        lead = [p for p in problems if p.rule_id in OVERRIDE_FINAL]
        rest = [p for p in problems if p.rule_id not in OVERRIDE_FINAL]
        return lead + [final] + rest
    return problems + fine



def _compose(found: list[Verdict], facts: CurveFacts, recipe_name: str) -> Verdict:
    top = found[0]
    others = [v for v in found[1:] if v.is_problem]
    if others:
        also = _text.also([v.headline for v in others[:2]])
        if top.rule_id and top.rule_id.startswith("final") and top.status in ("fail", "partial"):
            # the grading is the consequence; the most severe other finding is the cause, and names the code
            cause = others[0]
            top.headline = _text.with_cause(top.headline, cause.headline)
            top.code = cause.code
            if cause.rule_id == "lr_too_low":
                top.next_action = cause.next_action
        top.rule_text = f"{top.rule_text} {also}"
    read = series_read(facts)
    if read and read not in top.rule_text:
        top.rule_text = f"{top.rule_text} {read}"
    top.findings = list(found)
    top.facts = facts
    return top


def verdict_from(facts: CurveFacts, recipe_name: str = "", thresholds: UserThresholds | None = None,
                 error: BaseException | str | None = None, convention: str | None = None) -> Verdict | None:
    """The composed verdict for ``facts`` (None when no rule applies yet)."""
    found = judge(facts, recipe_name, thresholds, error, convention)
    return _compose(found, facts, recipe_name) if found else None


def thresholds_from(value) -> UserThresholds | None:
    """``UserThresholds`` from itself or from its fields as a dict (a history file's meta record)."""
    if value is None or isinstance(value, UserThresholds):
        return value
    if isinstance(value, dict):
        from dataclasses import fields

        known = {f.name for f in fields(UserThresholds)}
        return UserThresholds(**{k: v for k, v in value.items() if k in known})
    raise TypeError(f"thresholds must be UserThresholds, got {type(value).__name__}")


def judge_history(history, recipe: str | None = None, thresholds: UserThresholds | None = None,
                  total_epochs: int | None = None, reference_loss: float | None = None,
                  lr_per_epoch: list[float] | None = None, error: BaseException | str | None = None,
                  lr_plateau_driven: bool = False) -> Verdict:
    """The one judge: the verdict for a :class:`~nbdetect.history.History` after its latest epoch.

    The live verdict (``VerdictCallback``), ``diagnose()`` and ``decide()`` all call this on the same History;
    what the run knows (recipe, planned epochs, reference loss, loss convention, thresholds) comes from
    ``history.meta`` unless given here. A recipe named here means the caller vouches for its convention.
    """
    from .errors import InputError

    meta = getattr(history, "meta", {}) or {}
    named = recipe is not None
    recipe = recipe if named else meta.get("recipe")
    recipe = recipe or ""
    convention = "nbdetect" if named else meta.get("convention")
    if thresholds is None:
        thresholds = thresholds_from(meta.get("thresholds"))
    total = total_epochs if total_epochs is not None else meta.get("total_epochs")
    if total is not None and (isinstance(total, bool) or not isinstance(total, (int, float))
                              or not math.isfinite(total) or total < 1 or total != int(total)):
        raise InputError(f"total_epochs must be a whole number of epochs >= 1, got {total!r}", where="total_epochs",
                         fix="pass the run's planned number of epochs (or leave it out)")
    if reference_loss is None:
        reference_loss = meta.get("reference_loss")
    epochs = list(history.epochs)
    if not total:  # the plan is unknown: judged as one epoch short of its end, never graded as finished
        numbered = by_epoch([r for r in epochs if isinstance(r, dict)])  # the facts' own epoch numbers
        total = numbered[-1]["epoch"] + 1 if numbered else None
        unknown_plan = True
    else:
        unknown_plan = False
    facts = curve_facts(epochs, int(total) if total else None, lr_per_epoch, reference_loss, lr_plateau_driven)
    composed = verdict_from(facts, recipe, thresholds, error, convention)
    if error is not None and (composed is None or composed.rule_id != "nonfinite"):
        text = _text.error_text(error)
        return Verdict("fail", *_text.run_failed(text, composed.headline if composed is not None else None),
                       "diagnose", "run_failed", facts.n_epochs, {"error": text}, "run_failed",
                       [composed] if composed is not None else [], facts)
    if composed is not None:
        return composed
    if not epochs:
        return Verdict("pending", *_text.PENDING_NO_EPOCH, epoch=0, facts=facts)
    if not facts.reference:
        return Verdict("pending", *_text.PENDING_NO_LOSS, epoch=facts.n_epochs, facts=facts)
    ctx = Context(facts, recipe, thresholds, None, False, uses_guide_lines(recipe, thresholds, convention))
    decision = ctx.rule("decision")
    next_check = decision.scaled_epoch(facts.total_epochs) if decision is not None else None
    value = facts.current
    return Verdict("continue", *_text.no_rule_fires(facts, next_check, unknown_plan), None, None, facts.n_epochs,
                   {"value": value, "reference": facts.reference}, "curve_ok", [], facts)


def decide(history_epochs, recipe_name: str, total_epochs: int | None, lr_per_epoch: list[float] | None = None,
           thresholds: UserThresholds | None = None, reference_loss: float | None = None,
           error: BaseException | str | None = None) -> Verdict:
    """The verdict for a run after its latest epoch: :func:`judge_history` on whatever history is given.

    history_epochs: ``History.epochs`` (1-based ``epoch``, ``train_loss``, ``val_loss``, ``lr``, ``map50``...),
        a History, a list of per-epoch losses or a dict of lists (nbdetect.history_readers); an unreadable
        one (strings, nested lists, all missing, negative losses) is refused with a HistoryError.
    recipe_name: a registered recipe's name (nbdetect.recipes; its record names the rules that judge it, on
        the guide's convention) or any other name (then the run is judged on its own evidence).
    total_epochs: the run's planned number of epochs (decision epochs scale with it).
    lr_per_epoch: the LR of each epoch (default: the records' ``lr``).
    thresholds: :class:`UserThresholds` in your own loss convention.
    reference_loss: the starting loss, when known better than from the first epoch (Alternative 3: the loss
        before the boost).
    error: the training error, if the run failed (a non-finite loss is reported as divergence).
    """
    from .history import History
    from .history_readers import read_history

    history = read_history(history_epochs) if history_epochs else History()
    return judge_history(history, recipe_name or "", thresholds, total_epochs, reference_loss, lr_per_epoch, error)
