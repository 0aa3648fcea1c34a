"""The guide's decision tree as plain-data rules, on nbdetect's own loss scale.

Pure Python: no torch, no widgets. ``decide(epochs, recipe_name, total_epochs)``
reads the per-epoch records of a run (``History.epochs``) and returns a
:class:`Verdict` naming what to do next and the rule it applied, in words.

Why the guide's numbers are converted
-------------------------------------
The guide (MODEL_ALTERNATIVES_GUIDE.md) states absolute losses: RetinaNet
starts at 1500-2000, should be under 500 at epoch 20 of Alternative 1, and is
graded at the end as success (< 200), partial (200-500) or failed (> 500).
Those numbers belong to one notebook's loss convention (a loss summed over
batches, not averaged). nbdetect reports torchvision's own loss (the sum of the
loss dict, already averaged per image and normalised by matched anchors), on
which a fresh RetinaNet starts near 1-2. The guide's numbers are therefore
used as *ratios of the run's own starting loss* (the midpoint 1750 of the
guide's "initial 1500-2000"):

==========================================  =================  =======
guide                                       ratio              value
==========================================  =================  =======
Alt. 1, epoch 20 of 50: continue if < 500   500 / 1750         0.286
Step 4 grading: success if best < 200       200 / 1750         0.114
Step 4 grading: partial if best < 500       500 / 1750         0.286
Alt. 2, epoch 20 of 40: continue if < 2     2 / 4.5            0.444
Alt. 2 final ("~0.3-0.7"): success < 0.7    0.7 / 4.5          0.156
"loss should drop by epoch 15" (of 50)      drop >= 20%        0.80
==========================================  =================  =======

(4.5 is the midpoint of the guide's first Faster R-CNN figure, "epoch 5:
~3-6"; the Alternative 2 grading at the end extrapolates the guide's Step 4,
which only grades Alternative 1, with its decision ratio as the partial line.)

The run's reference ("starting") loss is the highest of the first epoch's
mean training loss and first validation loss: the first epoch's training mean
contains the untrained model's losses, the guide's "initial" row. A caller that
knows better (e.g. the mean loss of the first iterations) passes
``reference_loss``.

Decision epochs move with the run's length: the guide's "epoch 20 of 50" is
40% of the run, so a 10-epoch demo decides at epoch 4, and the rule text says
so.

Users who think in their notebook's convention pass
``UserThresholds(switch_above=500, success_below=200, partial_below=500,
loss_scale="sum_over_batches", batches_per_epoch=N)`` (or ``multiplier=``):
their numbers are converted to nbdetect's scale and used as absolute lines.

The policy (``POLICY``, most severe first: non-finite, divergence, overfitting, LR cut before
convergence, the guide's decision, stalled, not learning; then the final grading) reads the facts of
:mod:`nbdetect.curve_facts`, computed once per epoch. A stop needs evidence that the run will not reach
the guide's goal by its planned end (an optimistic projection), not a single-epoch ratio. The live
verdict and diagnose() both call :func:`judge`; docs/JUDGE.md has the tables.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from . import actions as _actions
from . import families as _families
from . import recipes as _recipes
from .curve_facts import (MEANINGFUL_MAP_GAIN, CurveFacts, by_epoch, curve_facts, is_finite, significant_slope,
                          theil_sen)
from .numbers import fmt_value as _fmt

OUTCOMES = ("pending", "continue", "switch", "diagnose", "warn", "success", "partial", "fail")


@dataclass(frozen=True)
class Rule:
    """One branch point of the guide's tree.

    ``kind``: ``"decision"`` (checked at ``guide_epoch`` of ``guide_total``, scaled to the run),
    ``"final"`` (grading after the last epoch) or ``"early_warning"`` (from ``guide_epoch`` on).
    ``ratio``/``partial_ratio`` are fractions of the run's starting loss (see the module
    docstring); ``guide_text`` is the guide's own wording, quoted in the verdict.
    """

    id: str
    kind: str
    metric: str = "val_loss"
    guide_epoch: int | None = None
    guide_total: int | None = None
    ratio: float = 1.0
    partial_ratio: float | None = None
    guide_text: str = ""
    if_below: str = "continue"
    if_above: str = "switch"
    ratio_source: str = ""  # how the ratio was derived, e.g. "500/1750"
    partial_source: str = ""
    generic: bool = False  # judges any run whose recipe names no rule of this kind

    def applies(self, recipe_name: str) -> bool:
        """The recipe's own rule of this kind (its record's ``rules``), else its family's default rule
        (``families.Family.final_rule``), else the generic one."""
        recipe = _recipes.find(recipe_name)
        if recipe is not None and self.id in recipe.rules:
            return True
        everything = rules()
        own = recipe is not None and any(r.kind == self.kind and r.id in recipe.rules for r in everything)
        if own:
            return False
        family = _families.of_recipe(recipe) if recipe is not None else None
        default = family.final_rule.id if family is not None and family.final_rule is not None else None
        if default is not None and any(r.kind == self.kind and r.id == default for r in everything):
            return self.id == default
        return self.generic

    def scaled_epoch(self, total_epochs: int) -> int | None:
        if self.guide_epoch is None:
            return None
        if not self.guide_total or total_epochs == self.guide_total:
            return self.guide_epoch
        return max(1, round(self.guide_epoch * total_epochs / self.guide_total))


RETINA_START = _families.RETINA_START  # midpoint of the guide's "1500-2000 (initial)"
FRCNN_START = _families.FRCNN_START  # midpoint of the guide's "epoch 5: ~3-6" for Faster R-CNN

# The rules of the guide's recipes; each family's final grading (final_retinanet, final_fasterrcnn, final_fcos...)
# is its record's ``final_rule`` (nbdetect.families), joined in by rules().
_GUIDE_RULES: tuple[Rule, ...] = (
    Rule("alt1_epoch20", "decision", guide_epoch=20, guide_total=50,
         ratio=500 / RETINA_START, guide_text="loss < 500 at epoch 20 -> continue to epoch 50, else stop and run Alternative 2",
         if_below="continue", if_above="switch", ratio_source="the guide's 500/1750"),
    Rule("alt2_epoch20", "decision", guide_epoch=20, guide_total=40,
         ratio=2 / FRCNN_START, guide_text="loss < 2 at epoch 20 -> continue to epoch 40, else data/preprocessing issue: run the diagnostic",
         if_below="continue", if_above="diagnose", ratio_source="the guide's 2/4.5"),
    Rule("early_epoch15", "early_warning", guide_epoch=15, guide_total=50, ratio=0.80,
         guide_text="if the loss doesn't drop by epoch 15, something is wrong",
         if_below="continue", if_above="warn", ratio_source="a drop of at least 20%", generic=True),
    Rule("final_seed", "final", ratio=200 / RETINA_START, partial_ratio=500 / RETINA_START,
         guide_text="a RetinaNet that learns ends far below 500 of a 1500-2000 start; one that does not: stop and "
                    "run Alternative 1",
         if_below="success", if_above="fail", ratio_source="the guide's 200/1750", partial_source="the guide's 500/1750"),
    Rule("final_generic", "final", ratio=200 / RETINA_START, partial_ratio=500 / RETINA_START,
         guide_text="Step 4 applied to any run: best loss below 200/1750 of the start success, below 500/1750 "
                    "partial, above: try Alternative 1",
         if_below="success", if_above="fail", ratio_source="the guide's 200/1750", partial_source="the guide's 500/1750",
         generic=True),
    Rule("final_own_evidence", "final",
         guide_text="a run of unknown loss convention (your own loop, another framework's log) is graded on its "
                    "own evidence: did it learn, is it still improving, did it get worse",
         if_below="success", if_above="fail"),
    Rule("final_lr_boost", "final", ratio=0.80,
         guide_text="Alternative 3 is a quick test: if the higher LR does not bring the loss down, run Alternative 1",
         if_below="partial", if_above="fail"),
)


def _family_rule(final: _families.FinalRule) -> Rule:
    return Rule(final.id, "final", ratio=final.ratio, partial_ratio=final.partial_ratio, guide_text=final.guide_text,
                if_below="success", if_above="fail", ratio_source=final.ratio_source,
                partial_source=final.partial_source)


_RULES_OF: dict[tuple, tuple[Rule, ...]] = {}


def rules() -> tuple[Rule, ...]:
    """Every rule: the guide's recipe rules and the final rule of every registered family (nbdetect.families)."""
    finals = tuple(f.final_rule for f in _families.FAMILIES.values() if f.final_rule is not None)
    found = _RULES_OF.get(finals)
    if found is None:
        own = {r.id for r in _GUIDE_RULES}
        found = _RULES_OF[finals] = _GUIDE_RULES + tuple(_family_rule(f) for f in finals if f.id not in own)
    return found


#: The rules at import (the built-in families'); rules() also has those of families registered later.
RULES: tuple[Rule, ...] = rules()

@dataclass(frozen=True)
class UserThresholds:
    """Absolute thresholds in the user's own loss convention, converted to nbdetect's scale.

    ``loss_scale``: ``"mean"`` (nbdetect's convention: the loss averaged over batches),
    ``"sum_over_batches"`` (a loss summed over the ``batches_per_epoch`` batches of an epoch,
    as in the notebook the guide was written for), or give ``multiplier`` directly
    (user loss = multiplier x nbdetect loss).
    """

    switch_above: float | None = None
    success_below: float | None = None
    partial_below: float | None = None
    loss_scale: str = "mean"
    batches_per_epoch: int | None = None
    multiplier: float | None = None

    def factor(self) -> float:
        if self.multiplier is not None:
            if not self.multiplier > 0:
                raise ValueError(f"multiplier must be > 0, got {self.multiplier}")
            return float(self.multiplier)
        if self.loss_scale == "mean":
            return 1.0
        if self.loss_scale == "sum_over_batches":
            if not self.batches_per_epoch or self.batches_per_epoch < 1:
                raise ValueError("loss_scale='sum_over_batches' needs batches_per_epoch (the number of batches summed)")
            return float(self.batches_per_epoch)
        raise ValueError(f"unknown loss_scale {self.loss_scale!r}: use 'mean', 'sum_over_batches' or multiplier=")

    def convention(self) -> str:
        if self.multiplier is not None:
            return f"your loss = {self.multiplier:g} x nbdetect's"
        if self.loss_scale == "sum_over_batches":
            return f"your loss summed over {self.batches_per_epoch} batches"
        return "nbdetect's scale"

    def to_nbdetect(self, value: float) -> float:
        return value / self.factor()


# -- policy constants (fractions and counts; all scale-free) --------------------------------------------------
DIVERGENCE_RATIO = 3.0  # a loss above 3x the starting loss: diverging, whatever the history
DIVERGENCE_RISE = 0.5  # ... or 50% above its best (and rising in training too): diverging
OVERFIT_RISE = 0.10  # validation loss 10% (or 4 noise sd) above its best ...
OVERFIT_PATIENCE = 3  # ... for this many validated epochs in a row, while the training loss keeps falling
LEARNED_RATIO = 0.80  # below 80% of the start: the model has learned something (the guide's "drop by epoch 15")
CUT_HELPED = 0.05  # a cut that lowered the loss by 5% (or 2 margins) within two epochs did its job
LOW_LR_FRACTION = 0.10  # an LR at or below 10% of its peak is "low"
NOT_LEARNING_EPOCHS = 5  # flat since the start for this many epochs: not learning, even before the guide's epoch 15
CONVERGED_RATIO = 500 / RETINA_START  # the guide's convergence line for recipes without a final rule
PATIENCE_SHARE = 0.25  # own evidence: no new best of the loss or mAP for 25% of the epochs so far ...
MIN_PATIENCE = 10  # ... and at least 10 epochs: a plateau


@dataclass
class Verdict:
    """The judgement after the latest epoch: the most severe finding, with the others kept in ``findings``."""

    status: str  # one of OUTCOMES
    headline: str
    rule_text: str
    next_action: str | None = None
    rule_id: str | None = None
    epoch: int = 0
    details: dict = field(default_factory=dict)
    code: str = "curve_ok"  # the finding code diagnose() reports for the same judgement
    findings: list = field(default_factory=list)  # every applicable Verdict, most severe first
    facts: CurveFacts | None = None

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


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _metric_name(key: str) -> str:
    return "val loss" if key == "val_loss" else "train loss (no validation data)"


def _map_name(f: CurveFacts) -> str:
    return "mAP@.5" if f.map_key == "map50" else "mAP@.5:.95"


def _action(name: str | None) -> str:
    return _actions.title(name)


def _recipe_title(recipe_name: str) -> str:
    return _recipes.short_title(recipe_name)


def _scaled_note(rule: Rule, total_epochs: int) -> str:
    at = rule.scaled_epoch(total_epochs)
    if rule.guide_total and total_epochs != rule.guide_total:
        return (f"the guide's epoch {rule.guide_epoch} of {rule.guide_total}, scaled to epoch {at} "
                f"of this {total_epochs}-epoch run")
    return f"epoch {at} of {total_epochs}"


class _Lines:
    """Threshold lines for one guide rule: relative to the start, or the user's absolute numbers."""

    def __init__(self, rule: Rule, ref: float, user: UserThresholds | None):
        self.rule, self.ref, self.user = rule, ref, user
        self.line = rule.ratio * ref
        self.partial = rule.partial_ratio * ref if rule.partial_ratio is not None else None
        self.source = "relative"
        if user is not None:
            if rule.kind == "decision" and user.switch_above is not None:
                self.line, self.source = user.to_nbdetect(user.switch_above), "user"
            elif rule.kind == "final" and rule.partial_ratio is not None and user.success_below is not None:
                self.line, self.source = user.to_nbdetect(user.success_below), "user"
                if user.partial_below is not None:
                    self.partial = user.to_nbdetect(user.partial_below)

    def describe(self, value: float, which: str = "line") -> str:
        line = self.line if which == "line" else self.partial
        if self.source == "user":
            raw = {"line": self.user.switch_above if self.rule.kind == "decision" else self.user.success_below,
                   "partial": self.user.partial_below}[which]
            return (f"{_fmt(value)} vs your threshold {_fmt(raw)} ({self.user.convention()}) = {_fmt(line)} "
                    f"on nbdetect's scale")
        ratio = self.rule.ratio if which == "line" else self.rule.partial_ratio
        source = self.rule.ratio_source if which == "line" else self.rule.partial_source
        source = f", {source}" if source else ""
        return (f"{_fmt(value)} is {_pct(value / self.ref)} of the starting loss {_fmt(self.ref)} "
                f"(line: {_pct(ratio)} = {_fmt(line)}{source})")


@dataclass
class Context:
    """What every rule reads: the facts, the recipe's guide rules and the user's thresholds."""

    facts: CurveFacts
    recipe: str
    thresholds: UserThresholds | None
    error: str | None
    error_nonfinite: bool
    guide: bool = True  # the guide's loss lines apply: one of its recipes on nbdetect's loss, or user thresholds

    def rule(self, kind: str) -> Rule | None:
        """The recipe's own rule of this kind (its record's ``rules``), else the generic one, if any.

        A run of unknown convention has no guide rule: no decision epoch, no loss-ratio warning, and the
        final grading on its own evidence (``final_own_evidence``)."""
        if not self.guide:
            return next((r for r in _GUIDE_RULES if r.id == "final_own_evidence"), None) if kind == "final" else None
        return next((r for r in rules() if r.kind == kind and r.id != "final_own_evidence" and r.applies(self.recipe)),
                    None)

    @property
    def ref(self) -> float:
        return self.facts.reference

    @property
    def metric(self) -> str:
        return _metric_name(self.facts.metric)

    @property
    def next_on_failure(self) -> str:
        return _recipes.next_on_failure(self.recipe)

    def goal(self) -> tuple[float, str]:
        """The line the run must reach by its end (the guide's partial-success line), and its source."""
        final = self.rule("final")
        user = self.thresholds
        if user is not None and final is not None and final.id != "final_lr_boost":
            if user.partial_below is not None:
                return user.to_nbdetect(user.partial_below), "your partial_below"
            if user.switch_above is not None:
                return user.to_nbdetect(user.switch_above), "your switch_above"
        if final is not None and final.id != "final_lr_boost":
            lines = _Lines(final, self.ref, self.thresholds)
            if lines.partial is not None:
                return lines.partial, final.partial_source or "the guide's partial-success line"
            return lines.line, final.ratio_source
        if final is not None:  # the LR boost: the loss must fall below 80% of the loss before it
            return final.ratio * self.ref, f"{_pct(final.ratio)} of the loss before the boost"
        return CONVERGED_RATIO * self.ref, "the guide's 500/1750"

    def level(self) -> str:
        """The name of the number ``facts.current`` is: the last value itself, or a trend-smoothed level (then
        the last epoch's value is said beside it, so no estimate reads as the epoch's value)."""
        f = self.facts
        if f.current is None or f.last is None or math.isclose(f.current, f.last, rel_tol=1e-9):
            return self.metric
        return f"smoothed {self.metric} (trend level; epoch {f.last_epoch} itself: {_fmt(f.last)})"

    def trend_text(self) -> str:
        f = self.facts
        if f.trend_from is None:
            return "too few epochs for a trend"
        series = "validated epochs" if f.trend_from == "val_loss" else "epochs"
        if f.trend_from != f.metric:
            series += " of the training loss (too few validated epochs)"
        pts = f.points if f.trend_from == f.metric else f.train_points
        used = min(len(pts), f.window + 1)
        return (f"trend {100 * (math.exp(f.trend) - 1):+.1f}%/epoch over the last {used} {series} "
                f"(noise {100 * f.noise:.1f}%)")

    def verdict(self, status, headline, text, next_action, rule_id, code, **details) -> Verdict:
        return Verdict(status, headline, text, next_action, rule_id, self.facts.n_epochs, details, code)


# -- the rules, most severe first ----------------------------------------------------------------------------
def rule_nonfinite(ctx: Context) -> Verdict | None:
    f = ctx.facts
    if f.nonfinite is None and not ctx.error_nonfinite:
        return None
    if f.nonfinite is not None:
        what = f"the {f.nonfinite.metric.replace('_', ' ')} is {f.nonfinite.value} at epoch {f.nonfinite.epoch}"
    else:
        what = "the loss became NaN/Inf and training stopped"
    said = f" Trainer said: {ctx.error}" if ctx.error else ""
    return ctx.verdict("fail", f"Diverged: {what}.",
                       "Rule (non-finite loss): a NaN/Inf loss means the weights were about to be destroyed. "
                       "Usual causes: degenerate boxes or labels out of range (run the diagnostic), an LR too high "
                       "for this model and batch size (lower it, keep gradient clipping on), fp16 overflow." + said,
                       "diagnose", "nonfinite", "lr_too_high",
                       epoch=f.nonfinite.epoch if f.nonfinite else None)


def rule_divergence(ctx: Context) -> Verdict | None:
    f = ctx.facts
    if not f.points or not f.reference:
        return None
    last_e, last = f.points[-1]
    high = [v for _, v in f.points[-2:] if v > DIVERGENCE_RATIO * f.reference]
    # a validation loss may spike for one epoch and come back; two in a row (or a training loss) is a blow-up
    train_high = bool(f.train_points) and f.train_points[-1][1] > DIVERGENCE_RATIO * f.train_points[0][1]
    if last > DIVERGENCE_RATIO * f.reference and (len(high) == 2 or f.metric == "train_loss" or train_high):
        return ctx.verdict("fail", f"Diverging: the {ctx.metric} {_fmt(last)} is {last / f.reference:.1f}x the "
                                   f"starting loss (epoch {last_e}).",
                           f"Rule (divergence): a loss above {DIVERGENCE_RATIO:g}x the starting loss "
                           f"{_fmt(f.reference)} means training is blowing up; lower the LR and keep gradient "
                           "clipping and warmup on.", "lower_lr", "divergence", "lr_too_high",
                           value=last, reference=f.reference)
    if f.best_epoch is None or f.best_epoch >= last_e or last_e <= f.lr.warmup_end + 1 or f.map_rising:
        return None  # (rising mAP: the model gets better at the task, whatever a noisy loss does)
    rise = max(DIVERGENCE_RISE, 4 * f.noise)
    sustained = [v for e, v in f.points if e > f.best_epoch][-2:]
    if len(sustained) < 2 or last < f.best * (1 + rise) or min(sustained) < f.best * (1 + rise / 2):
        return None
    if f.metric == "val_loss" and f.train_points:
        after = [v for e, v in f.train_points if e >= f.best_epoch]
        t_margin = max(0.1, 3 * f.train_noise)
        if not after or after[-1] < min(after) * (1 + t_margin):
            return None  # training still falls (or is flat): overfitting or noise, not divergence
        train_note = f"; the training loss rose too, from {_fmt(min(after))} to {_fmt(after[-1])}"
    else:
        train_note = ""
    return ctx.verdict("fail", f"Diverging: the {ctx.metric} rose from its best {_fmt(f.best)} (epoch "
                               f"{f.best_epoch}) to {_fmt(last)} (epoch {last_e}), {_pct(last / f.best - 1)} higher.",
                       f"Rule (divergence from the best): the loss has stayed more than {_pct(rise / 2)} above its "
                       f"best for the last 2 validated epochs and ends {_pct(last / f.best - 1)} above it (line "
                       f"{_pct(rise)}, from the noise {100 * f.noise:.1f}%/epoch){train_note}. The LR is too high "
                       "for this stage of training: lower it and keep gradient clipping on.",
                       "lower_lr", "divergence", "lr_too_high", best_epoch=f.best_epoch, best=f.best, value=last)


def rule_overfitting(ctx: Context) -> Verdict | None:
    """Validation loss above its best while training falls, and mAP (when logged) no longer improving; or mAP
    falling from its best while the validation loss rises."""
    f = ctx.facts
    if f.metric != "val_loss" or f.best_epoch is None or not f.train_points:
        return None
    if f.best_epoch <= max(1, f.lr.warmup_end) or f.map_rising:
        return None  # the best is inside the warm-up (a bump), or mAP still improves: the goal is still moving
    t_best = [v for e, v in f.train_points if e <= f.best_epoch]
    t_now = f.train_points[-1][1]
    if not t_best or t_now >= t_best[-1] * (1 - max(0.01, 2 * f.train_noise)):
        return None  # training not falling: not overfitting
    after = [(e, v) for e, v in f.points if e > f.best_epoch]
    recent = after[-OVERFIT_PATIENCE:]
    if len(recent) < OVERFIT_PATIENCE:
        return None
    rise = max(OVERFIT_RISE, 4 * f.noise)
    # against the best level the curve held (a median of 3) when the best is one lucky epoch more than 2 noise
    # sd below it: a noisy curve's outlier is no best to overfit from
    level = min(sorted(v for _, v in f.points[i:i + 3])[1] for i in range(len(f.points) - 2))
    best = level if level > f.best * (1 + 2 * f.noise) else f.best
    by_loss = all(v > best * (1 + rise) for _, v in recent)
    by_map = f.map_falling and all(v > f.best * (1 + f.margin) for _, v in recent)
    if not (by_loss or by_map):
        return None
    last = f.points[-1][1]
    map_note = ""
    if f.has_map:
        (be, bv), (le, lv) = f.map_best, f.map_points[-1]
        map_note = (f"; {_map_name(f)} {lv:.3f} at epoch {le}, best {bv:.3f} at epoch {be} "
                    f"({'falling' if f.map_falling else 'no longer improving'})")
    line = f"{_pct(rise)}" if by_loss else f"{_pct(f.margin)} (with mAP falling)"
    return ctx.verdict("warn", f"Overfitting: the validation loss is {_pct(last / f.best - 1)} above its best "
                               f"(epoch {f.best_epoch}) while the training loss keeps falling.",
                       f"Rule (overfitting): the validation loss has stayed more than {line} above its best "
                       f"{_fmt(f.best)} (epoch {f.best_epoch}) for {OVERFIT_PATIENCE} validated epochs (now "
                       f"{_fmt(last)}) while the training loss fell from {_fmt(t_best[-1])} to {_fmt(t_now)}"
                       f"{map_note}. The best checkpoint keeps the best epoch; stop here, or train on more data / "
                       "with augmentation.", "use_best", "overfitting", "overfitting",
                       best_epoch=f.best_epoch, best=f.best, value=last)


def _cut_before_convergence(f: CurveFacts, cut, goal: float | None = None):
    """``(cut, loss at the cut, trend before it, points before it)`` when this LR cut came before convergence
    and the loss stalled after it (no drop, less than half the pace); else None. Before convergence: the loss
    still fell beyond its noise, or (the guide's recipes, ``goal`` given) it was still above the guide's goal."""
    if f.lr.raised_after and f.lr.raised_after > cut.epoch:
        return None  # the LR was raised again since (an LR boost): judged as a new regime
    before = [(e, v) for e, v in f.points if e < cut.epoch]
    since = [(e, v) for e, v in f.points if e >= cut.epoch]
    if len(before) < 3 or len(since) < 3:
        return None
    at_cut = before[-1][1]
    pre = before[-(f.window + 1):]
    pre_trend = theil_sen(pre)[0]
    pre_span = pre[-1][0] - pre[0][0]
    falling = (math.isfinite(pre_trend) and -pre_trend * pre_span > f.margin
               and significant_slope(pre, f.noise) < 0)  # beyond the noise, not a noisy fit's tilt
    if not falling and at_cut > LEARNED_RATIO * f.reference:
        return None  # flat and never learning before the cut: the data is the suspect (not-learning speaks)
    if not falling and (goal is None or at_cut <= goal):
        return None  # flat before the cut and no goal missed: converged, the planned end of a step schedule
    helped = 1 - min(v for _, v in since[:2]) / at_cut
    if helped > max(CUT_HELPED, f.margin):
        return None  # the loss dropped right after the cut: the cut did its job
    post_trend = theil_sen(since[-(f.window + 1):])[0]
    if falling and math.isfinite(post_trend) and post_trend < pre_trend / 2:
        return None  # still falling at more than half the pace it had before the cut
    return cut, at_cut, pre_trend, pre


def rule_lr_cut_too_early(ctx: Context) -> Verdict | None:
    """The seed notebook's failure: an LR step cut while the loss was still falling (not converged), after which
    it stalled. Evidence from the curve itself: the fall before the cut beyond its noise, no drop after it."""
    f = ctx.facts
    if not f.lr.cuts or not f.reference or not f.enough_evidence or f.map_rising:
        return None
    if f.lr.plateau_driven:
        return None  # the cuts answered a stall (ReduceLROnPlateau): the stalled rule reports it
    if f.lr.current is not None and f.lr.current < DETECTOR_LR_FLOOR:
        return None  # the LR is now below any detector's range: the LR-range finding names it
    goal = ctx.goal()[0] if ctx.guide else None
    found = next((c for c in (_cut_before_convergence(f, cut, goal) for cut in f.lr.cuts) if c is not None), None)
    if found is None:
        return None
    cut, at_cut, pre_trend, pre = found
    goal, goal_src = ctx.goal()
    if ctx.guide:
        projected = f.projected_end if not f.finished else f.current
        if projected is None or projected <= goal:
            return None
        end_note = f", projected {_fmt(projected)} at epoch {f.total_epochs} vs the goal {_fmt(goal)} ({goal_src})"
    else:
        projected, end_note = f.projected_end, ""
    nxt = ctx.next_on_failure
    n_since = f.points[-1][0] - cut.epoch + 1
    return ctx.verdict(
        "switch", f"LR too low before convergence: stop and run {_action(nxt)}.",
        f"Rule (LR cut before convergence, the seed MultiStepLR failure): the LR fell from {_fmt(cut.before)} to "
        f"{_fmt(cut.after)} ({cut.factor:.0f}x) at epoch {cut.epoch} while the {ctx.metric} was "
        f"{_fmt(at_cut)} ({_pct(at_cut / f.reference)} of the start {_fmt(f.reference)}; "
        f"{100 * (math.exp(pre_trend) - 1):+.1f}%/epoch over the {len(pre)} validated epochs before it, noise "
        f"{100 * f.noise:.1f}%{', above the goal ' + _fmt(goal) if goal is not None and at_cut > goal else ''}); "
        f"in the {n_since} epochs since it is {_fmt(f.current)} ({_pct(1 - f.current / at_cut)} lower; "
        f"{ctx.trend_text()}){end_note}. More epochs at this LR will not fix it.",
        nxt, "lr_too_low", "lr_decay_before_convergence", peak_lr=f.lr.peak, cut_lr=cut.after,
        cut_epoch=cut.epoch, loss_at_cut=at_cut, loss_now=f.current, projected=projected, line=goal)


def rule_decision(ctx: Context) -> Verdict | None:
    """The guide's tree at its decision epoch (and after it, re-judged with every new epoch)."""
    rule = ctx.rule("decision")
    f = ctx.facts
    if rule is None or f.finished:
        return None
    at = rule.scaled_epoch(f.total_epochs)
    if at is None or f.n_epochs < at or f.current is None:
        return None
    lines = _Lines(rule, f.reference, ctx.thresholds)
    value = f.current
    title = _recipe_title(ctx.recipe)
    when = "at" if f.n_epochs == at else f"since (now epoch {f.n_epochs})"
    text = (f"Rule (guide, {title} {when} {_scaled_note(rule, f.total_epochs)}: {rule.guide_text}): "
            f"{ctx.level()} {lines.describe(value)}")
    details = {"decision_epoch": at, "value": value, "reference": f.reference, "line": lines.line}
    if value <= lines.line:
        return ctx.verdict("continue", f"On track: continue to epoch {f.total_epochs}.",
                           text + f" -> continue to epoch {f.total_epochs}.", None, rule.id, "curve_ok", **details)
    goal, goal_src = ctx.goal()
    projected = f.projected_end
    details.update(projected=projected, goal=goal)
    if projected is None:
        return ctx.verdict("warn", f"Behind the guide's line at epoch {at}; too few epochs to tell where it ends.",
                           text + f"; {ctx.trend_text()}, so no projection to epoch {f.total_epochs} yet -> "
                           "continue and re-check next epoch.", None, rule.id, "below_expected_curve", **details)
    proj = (f"; {ctx.trend_text()}, projected {_fmt(projected)} at epoch {f.total_epochs} vs the goal "
            f"{_fmt(goal)} ({goal_src})")
    if projected <= goal or f.map_rising or not f.enough_evidence:
        if f.map_rising and projected > goal:
            why = f"{_map_name(f)} is still rising ({f.map_points[-1][1]:.3f} now)"
        elif projected <= goal:
            why = "at its current pace it still reaches the goal"
        else:
            why = (f"{len(f.points)} validated epochs are too few to stop on at this noise (a stop needs "
                   f"{f.evidence_points})")
        return ctx.verdict("warn", f"Behind the guide's line at epoch {at}, but still improving: continue and "
                                   "re-check.", text + proj + f" -> {why}; continue and watch the next epochs.",
                           None, rule.id, "below_expected_curve", **details)
    nxt = ctx.next_on_failure
    if rule.if_above == "diagnose":
        head = f"Stop {title}: likely a data or preprocessing problem; run the diagnostic."
    else:
        head = f"Stop {title} and run {_action(nxt)}."
    return ctx.verdict(rule.if_above, head, text + proj + f" -> {head}", nxt, rule.id, "below_expected_curve",
                       **details)


def rule_stalled(ctx: Context) -> Verdict | None:
    """Learned something, but it stopped improving. The guide's recipes: at its pace the run ends above the
    goal. A run of unknown convention: neither the loss nor mAP has made a new best, beyond the noise, for a
    quarter of the run (at least 10 epochs)."""
    f = ctx.facts
    if f.current is None or not f.reference or f.finished or len(f.points) < f.window + 1 or f.map_rising:
        return None
    if f.points[-1][0] <= f.lr.warmup_end + 1 or not f.enough_evidence:
        return None
    if f.current > LEARNED_RATIO * f.reference and f.dropped < f.margin:
        return None  # it has not learned yet: not-learning speaks
    plateau = f.plateau_epochs >= max(3, f.window)
    low = f.lr.fraction_of_peak is not None and f.lr.fraction_of_peak <= LOW_LR_FRACTION
    lr_note = (f"; the LR is now {_fmt(f.lr.current)}, {_pct(f.lr.fraction_of_peak)} of its peak {_fmt(f.lr.peak)}"
               if f.lr.known else "")
    if not ctx.guide:
        patience = max(MIN_PATIENCE, math.ceil(PATIENCE_SHARE * f.n_epochs))
        # as Ultralytics' patience: any new best mAP resets it; the loss needs a best beyond its noise
        map_since = f.map_points[-1][0] - f.map_best[0] if f.has_map else patience
        # no new best for the patience, or a drift too slow to matter over it (never while the trailing
        # window still falls beyond its noise: a loss that has just started to fall is not a plateau)
        if len(f.points) < f.pace_points:
            return None  # too few epochs for a pace that matters to stand out of this noise: no "no pace" yet
        span = max(patience, f.pace_window)  # a slow fall in noise shows only over its pace window
        stalled = f.plateau_epochs >= patience or (len(f.points) >= patience and not f.pace_matters(span)
                                                   and not f.improving)
        if not stalled or map_since < patience or f.pace_matters(span) or f.map_improving(patience):
            return None
        since = f.points[-1][0] - f.plateau_epochs
        maps = f" and {_map_name(f)} has not improved either (best {f.map_best[1]:.3f})" if f.has_map else ""
        too_low = _lr_too_low(f, relative=False)  # a decayed schedule's tail is its end, not a fault
        if too_low:
            return ctx.verdict("warn", f"Plateau with the LR too low to learn: {too_low}.",
                               f"Rule (plateau, own evidence): the {ctx.metric} has not beaten its best "
                               f"{_fmt(f.best)} (epoch {f.best_epoch}) by more than {_pct(f.margin)} since epoch "
                               f"{since}{maps}; {ctx.trend_text()}; {too_low}: raise the LR and continue.",
                               _recipes.ALTERNATIVE_3.name, "plateau", "lr_too_low", since_epoch=since)
        if f.current > LEARNED_RATIO * f.reference and not f.has_map:
            return ctx.verdict("warn", f"Not learning: the {ctx.metric} fell only {_pct(f.dropped)} in {f.n_epochs} "
                                       "epochs and has stalled.",
                               f"Rule (stalled without learning, own evidence): {ctx.level()} {_fmt(f.current)} is "
                               f"{_pct(f.current / f.reference)} of the starting loss {_fmt(f.reference)}, no "
                               f"improvement beyond {_pct(f.margin)} since epoch {since}; {ctx.trend_text()}"
                               f"{lr_note}. A detector that learns loses far more than 20% of its starting loss: "
                               "check the data (boxes, labels, images) and the LR.", "diagnose", "not_learning",
                               "loss_plateau", since_epoch=since)
        return ctx.verdict("warn", f"Plateau: no improvement beyond the noise for {f.plateau_epochs} epochs.",
                           f"Rule (plateau, own evidence): the {ctx.metric} has not beaten its best {_fmt(f.best)} "
                           f"(epoch {f.best_epoch}) by more than {_pct(f.margin)} since epoch {since}{maps}; "
                           f"{ctx.trend_text()}{lr_note}. More epochs at this setting are unlikely to help: keep "
                           "the best checkpoint, or lower the LR if it is still high.", "use_best", "plateau",
                           "loss_plateau", since_epoch=since)
    if f.current > LEARNED_RATIO * f.reference:
        return None
    goal, goal_src = ctx.goal()
    projected = f.projected_end
    if projected is None or f.current <= goal or projected <= goal:
        return None
    code, nxt = ("lr_too_low", _recipes.ALTERNATIVE_3.name) if low else ("loss_plateau", ctx.next_on_failure)
    if low and _recipes.find(ctx.recipe) is not None:  # nbdetect's own recipe: the guide's next step
        nxt = ctx.next_on_failure
    if plateau:
        since = f.points[-1][0] - f.plateau_epochs
        head = (f"Plateau: the {ctx.metric} has not improved by more than {_pct(f.margin)} since epoch {since} "
                f"({f.plateau_epochs} epochs) and is above the goal.")
    else:
        since = None
        head = (f"Too slow: at this pace the {ctx.metric} ends near {_fmt(projected)} at epoch {f.total_epochs}, "
                f"above the goal {_fmt(goal)}.")
    return ctx.verdict("warn", head,
                       f"Rule (stalled): best {_fmt(f.best)} at epoch {f.best_epoch}, now {_fmt(f.current)} "
                       f"({_pct(f.current / f.reference)} of the start {_fmt(f.reference)}; {ctx.trend_text()}); "
                       f"even on an optimistic power law it is projected {_fmt(projected)} at epoch "
                       f"{f.total_epochs} vs the goal {_fmt(goal)} ({goal_src}){lr_note}.", nxt, "plateau", code,
                       projected=projected, line=goal, since_epoch=since)


DETECTOR_LR_FLOOR = 1e-6  # below this no detector optimiser (SGD 1e-3..2e-2, Adam(W) 1e-5..1e-3) learns


def _lr_too_low(f: CurveFacts, relative: bool = True) -> str:
    """Why the LR now is too low to learn ("" when it is not): below any detector's range (1e-6) whatever the
    schedule, or (``relative``) at most 10% of its own peak."""
    lr = f.lr
    if not lr.known or lr.current is None:
        return ""
    if lr.current < DETECTOR_LR_FLOOR:
        peak = (f", {_pct(lr.fraction_of_peak)} of its peak {_fmt(lr.peak)}"
                if lr.fraction_of_peak is not None and lr.fraction_of_peak < 1 else "")
        return (f"the LR is {_fmt(lr.current)}{peak}, below the range detectors train in (SGD 1e-3 to 2e-2, AdamW "
                "1e-5 to 1e-3)")
    if not relative:
        return ""
    if lr.fraction_of_peak is not None and lr.fraction_of_peak <= LOW_LR_FRACTION:
        return f"the LR is {_fmt(lr.current)}, {_pct(lr.fraction_of_peak)} of its peak {_fmt(lr.peak)}"
    return ""


def rule_not_learning(ctx: Context) -> Verdict | None:
    """The guide's early warning ("if the loss doesn't drop by epoch 15, something is wrong"), read with the
    noise: "has not dropped" is a drop smaller than the noise allows; a slow fall that is still a fall is not
    warned. Without the guide's lines: flat since the start for enough epochs, and no mAP gain."""
    rule = ctx.rule("early_warning")
    f = ctx.facts
    if f.current is None or not f.reference or f.map_rising:
        return None
    if f.has_map and f.map_best[1] > f.map_points[0][1] + f.map_margin:
        return None  # mAP has improved since the first evaluation: it learns
    past_warmup = f.points[-1][0] > f.lr.warmup_end + NOT_LEARNING_EPOCHS
    not_dropped = f.best >= f.reference * (1 - f.margin)
    flat_from_start = len(f.points) > NOT_LEARNING_EPOCHS and not_dropped and past_warmup and f.enough_evidence
    if rule is None:  # own evidence only: lost less than 20% and not falling at a pace that matters, over
        # enough epochs for such a pace to stand out of the noise
        learned = f.dropped >= 1 - LEARNED_RATIO or f.pace_matters(f.pace_window)
        if len(f.points) < f.pace_points or not (
                flat_from_start or (len(f.points) > NOT_LEARNING_EPOCHS and past_warmup and f.enough_evidence
                                    and not learned)):
            return None
        when, ratio_note = f"flat since the start for {f.points[-1][0] - 1} epochs", ""
    else:
        at = rule.scaled_epoch(f.total_epochs)
        if f.current <= rule.ratio * f.reference:
            return None
        slow = f.n_epochs >= at and len(f.points) >= 3 and not f.pace_matters() and past_warmup
        if not (flat_from_start or slow):
            return None
        when = (f"early warning at {_scaled_note(rule, f.total_epochs)}" if f.n_epochs >= at
                else f"flat since the start for {f.points[-1][0] - 1} epochs")
        ratio_note = f"; the guide expects a drop of {_pct(1 - rule.ratio)} by then"
    drop = 1 - f.current / f.reference
    what = ("has not dropped" if drop < f.margin else
            f"has dropped only {_pct(drop)} and stopped falling")
    decision = ctx.rule("decision")
    nc = (f" The decision comes at epoch {decision.scaled_epoch(f.total_epochs)}."
          if decision is not None and f.n_epochs < decision.scaled_epoch(f.total_epochs) else "")
    maps = (f"; {_map_name(f)} has not improved either ({f.map_points[-1][1]:.3f})" if f.has_map else "")
    guide_text = f": {rule.guide_text}" if rule is not None else ""
    too_low = _lr_too_low(f) if f.lr.current is not None and f.lr.current < DETECTOR_LR_FLOOR else ""
    if too_low:  # a flat curve at an LR no detector learns with: the LR is the cause, whatever the schedule
        return ctx.verdict("warn", f"Not learning: {too_low}.",
                           f"Rule (not learning, LR range): the {ctx.level()} {_fmt(f.current)} is "
                           f"{_pct(f.current / f.reference)} of the starting loss {_fmt(f.reference)} after "
                           f"{f.n_epochs} epochs ({ctx.trend_text()}); {too_low}: raise it.",
                           _recipes.ALTERNATIVE_3.name, rule.id if rule is not None else "not_learning",
                           "lr_too_low", value=f.current, reference=f.reference)
    return ctx.verdict("warn", f"Warning: the loss {what} by epoch {f.n_epochs}.",
                       f"Rule ({'guide, ' if rule is not None else ''}{when}{guide_text}): {ctx.metric} "
                       f"{_fmt(f.current)} is {_pct(f.current / f.reference)} of the starting loss "
                       f"{_fmt(f.reference)} (a drop below {_pct(f.margin)} is within the noise{ratio_note}; "
                       f"{ctx.trend_text()}){maps}. Check the data (nbdetect.diagnose()) and the LR." + nc,
                       "diagnose", rule.id if rule is not None else "not_learning", "loss_plateau",
                       value=f.current, reference=f.reference)


def rule_map_collapse(ctx: Context) -> Verdict | None:
    """mAP fell below half of its best: whatever the loss says, the model got worse at the task."""
    f = ctx.facts
    if not f.map_collapsed:
        return None
    (be, bv), (le, lv) = f.map_best, f.map_points[-1]
    return ctx.verdict("warn", f"{_map_name(f)} collapsed: {lv:.3f} at epoch {le}, below half of its best {bv:.3f} "
                               f"(epoch {be}).",
                       f"Rule (mAP collapse): the task metric fell {_pct(1 - lv / bv)} from its best while the "
                       f"{ctx.metric} reads {_fmt(f.current)}; the loss alone does not show it. Keep the checkpoint "
                       "of the best mAP epoch; if it keeps falling, lower the LR.", "use_best", "map_collapse",
                       "map_collapse", best_epoch=be, best_map=bv, map=lv)


def rule_final(ctx: Context) -> Verdict | None:
    """Step 4 of the guide: grading after the last epoch, on the best validation loss (what best.pt holds)."""
    rule = ctx.rule("final")
    f = ctx.facts
    if rule is None or not f.finished or f.best is None:
        return None
    if rule.id == "final_own_evidence":
        return rule_final_own_evidence(ctx, rule)
    best, ref = f.best, f.reference
    lines = _Lines(rule, ref, ctx.thresholds)
    nxt_fail = ctx.next_on_failure
    title = _recipe_title(ctx.recipe)
    details = {"best": best, "reference": ref, "line": lines.line}
    if rule.id == "final_lr_boost":
        text = (f"Rule (guide, {title}: {rule.guide_text}): best {ctx.metric} {_fmt(best)} is {_pct(best / ref)} "
                f"of the loss before the boost {_fmt(ref)} (needs <= {_pct(rule.ratio)})")
        first = _recipes.FIRST
        if best <= rule.ratio * ref:
            return ctx.verdict("partial", f"The LR boost helped; for a final model run {first.short_title}.",
                               text + " -> the higher LR helps; the guide does not recommend this for final "
                                      "training.", first.name, rule.id, "curve_ok", **details)
        return ctx.verdict("fail", f"The LR boost did not help: run {_action(nxt_fail)}.",
                           text + f" -> run {_action(nxt_fail)}.", nxt_fail, rule.id, "below_expected_curve",
                           **details)
    prefix = (f"Rule (guide, {title} after the last epoch {f.total_epochs}: {rule.guide_text}): best "
              f"{ctx.metric} ")
    if best < lines.line:
        return ctx.verdict("success", f"Success: use this model for the submission (best {ctx.metric} "
                                      f"{_fmt(best)}).", prefix + lines.describe(best) + " -> success.",
                           "submission", rule.id, "curve_ok", **details)
    if lines.partial is not None:  # the text below cites the partial line: the plot draws that one
        details.update(line=lines.partial, success_line=lines.line)
    rising = _still_improving(f)
    if lines.partial is not None and best < lines.partial:
        more = (f" It was still improving when it ended ({rising}): a longer run should get further."
                if rising else "")
        return ctx.verdict("partial", f"Partial success: the model might still work (best {ctx.metric} "
                                      f"{_fmt(best)}); use it for the submission.",
                           prefix + lines.describe(best, "partial") + " -> partial success (the guide: might still "
                           "work)." + more, "submission", rule.id, "below_expected_curve", **details)
    described = lines.describe(best, "partial" if lines.partial is not None else "line")
    target = lines.partial if lines.partial is not None else lines.line
    reaches = f.current is not None and f.current * math.exp(max(f.trend * f.n_epochs, -700.0)) <= target
    if rising and not reaches:
        rising = ""  # improving, but at this pace another run as long still ends above the line
    if rising:  # never 'not good enough' for a run that was still getting better
        return ctx.verdict("partial", f"Still improving when it ended: a longer run should get further (best "
                                      f"{ctx.metric} {_fmt(best)}, above the guide's line).",
                           prefix + described + f" -> above the line, but {rising}; the guide's line is not met "
                           f"yet, not missed: run more epochs before changing recipe.", "train_longer", rule.id,
                           "below_expected_curve", **details)
    return ctx.verdict("fail", f"Not good enough: run {_action(nxt_fail)}.",
                       prefix + described + f" and no longer improving -> {_action(nxt_fail)}.", nxt_fail, rule.id,
                       "below_expected_curve", **details)


def _still_improving(f: CurveFacts) -> str:
    """Why the run counts as still improving at its end, at a pace that matters ("" when it does not): a
    significant trend that, kept for another half of the run (at least 10 epochs), gains more than the noise
    and 5% of the loss (or 0.01 mAP)."""
    horizon = max(10, f.n_epochs / 2)
    if f.map_rising and is_finite(f.map_trend) and f.map_trend * horizon > max(MEANINGFUL_MAP_GAIN, f.map_margin):
        return f"{_map_name(f)} still rising, {f.map_points[-1][1]:.3f} at the end"
    if f.pace_matters():
        return f"the {_metric_name(f.metric)} still falling {100 * (1 - math.exp(f.trend)):.2g}%/epoch"
    return ""


def rule_final_own_evidence(ctx: Context, rule: Rule) -> Verdict:
    """The grading of a run of unknown convention: what its own curves show, no guide line."""
    f = ctx.facts
    map_gain = f.has_map and f.map_best[1] > f.map_points[0][1] + f.map_margin
    learned = f.dropped > f.margin or map_gain
    little = not map_gain and f.dropped < 1 - LEARNED_RATIO  # lost less than 20% of the start
    rising = _still_improving(f)
    maps = ""
    if f.has_map:
        (be, bv), (fe, fv), (le, lv) = f.map_best, f.map_points[0], f.map_points[-1]
        maps = f"; {_map_name(f)} {fv:.3f} (epoch {fe}) -> {lv:.3f} (epoch {le}), best {bv:.3f} at epoch {be}"
    text = (f"Rule ({rule.guide_text}): the {ctx.metric} went from {_fmt(f.reference)} to {_fmt(f.current)} "
            f"({_pct(f.dropped)} lower; best {_fmt(f.best)} at epoch {f.best_epoch}; {ctx.trend_text()}){maps}")
    details = {"best": f.best, "reference": f.reference}
    if not learned:
        return ctx.verdict("fail", "Finished without learning: neither the loss nor mAP improved beyond the noise.",
                           text + " -> check the data and the LR.", "diagnose", rule.id, "loss_plateau", **details)
    patience = max(MIN_PATIENCE, math.ceil(PATIENCE_SHARE * f.n_epochs))
    since = f.points[-1][0] - f.plateau_epochs
    at_start = f.lr.fraction_at(since)
    if not rising and f.plateau_epochs >= patience and at_start is not None and at_start >= 0.5 \
            and not (f.has_map and f.map_points[-1][0] - f.map_best[0] < patience):
        return ctx.verdict("partial", f"Finished on a plateau that began at epoch {since} with the LR still at "
                                      f"{_pct(at_start)} of its peak: a lower LR would likely go further.",
                           text + f" -> no improvement beyond the noise for {f.plateau_epochs} epochs, the plateau "
                           f"began at full LR ({_fmt(f.lr.peak * at_start)}), so it is not the schedule's end: lower "
                           "the LR (or decay it) and train again from the best checkpoint.", "lower_lr", rule.id,
                           "loss_plateau", **details)
    if little:
        return ctx.verdict("warn", f"Finished having lost only {_pct(f.dropped)} of its starting loss: it barely "
                                   "learned.", text + " -> a detector that learns loses far more than 20% of its "
                           "starting loss; check the data (boxes, labels, images) and the LR.", "diagnose", rule.id,
                           "loss_plateau", **details)
    if rising:
        return ctx.verdict("success", f"Finished and still improving ({rising}): use the best checkpoint; more "
                                      "epochs would likely help.", text + f" -> learned, {rising}.", "submission",
                           rule.id, "curve_ok", **details)
    return ctx.verdict("success", "Finished and converged: use the best checkpoint.",
                       text + " -> learned and levelled off.", "submission", rule.id, "curve_ok", **details)


#: The policy: every rule runs at every epoch; the first (most severe) applicable problem wins, in the order
#: Lightning's EarlyStopping checks (non-finite, divergence, ...). Add a rule: a function above + a line here.
POLICY: tuple = (
    rule_nonfinite,
    rule_divergence,
    rule_overfitting,
    rule_map_collapse,
    rule_lr_cut_too_early,
    rule_decision,
    rule_stalled,
    rule_not_learning,
)
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
    found = [v for v in (rule(ctx) for rule in POLICY) if v is not None]
    problems = [v for v in found if v.is_problem]
    fine = [v for v in found if not v.is_problem]
    final = rule_final(ctx) if facts.reference else None
    if final is not None and final.rule_id == "final_own_evidence":
        return problems + [final]  # no guide line: the run's own problems (their causes) come before its grade
    if final is not None:
        lead = [p for p in problems if p.rule_id in OVERRIDE_FINAL]
        rest = [p for p in problems if p.rule_id not in OVERRIDE_FINAL]
        return lead + [final] + rest
    return problems + fine


def series_read(facts: CurveFacts) -> str:
    """Which series the verdict read, and how many epochs of each (said with every verdict)."""
    parts = []
    if facts.metric == "val_loss":
        parts.append(f"val loss ({len(facts.points)} validated epochs)")
    if facts.train_points:
        parts.append(f"train loss ({len(facts.train_points)} epochs)")
    if facts.map_points:
        parts.append(f"{_map_name(facts)} ({len(facts.map_points)} evaluations)")
    if facts.lr.known:
        parts.append("LR")
    return "Read: " + ", ".join(parts) + "." if parts else ""


def _compose(found: list[Verdict], facts: CurveFacts, recipe_name: str) -> Verdict:
    top = found[0]
    others = [v for v in found[1:] if v.is_problem]
    if others:
        also = " ".join(f"Also: {v.headline}" for v in others[:2])
        if top.rule_id and top.rule_id.startswith("final") and top.status in ("fail", "partial"):
            # the grading is the consequence; the most severe other finding is the cause, and names the code
            cause = others[0]
            top.headline = f"{top.headline} {cause.headline}"
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
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        return Verdict("fail", f"Training failed: {text}",
                       "The run stopped with an error (its last checkpoint is kept; see the run's message). Fix "
                       "the cause and continue with resume=True." + (f" Before it: {composed.headline}"
                                                                    if composed is not None else ""),
                       "diagnose", "run_failed", facts.n_epochs, {"error": text}, "run_failed",
                       [composed] if composed is not None else [], facts)
    if composed is not None:
        return composed
    if not epochs:
        return Verdict("pending", "Waiting for the first epoch.", "No rule applies before the first epoch ends.",
                       epoch=0, facts=facts)
    if not facts.reference:
        return Verdict("pending", "No loss recorded yet.", "The first epoch has no finite loss to compare with.",
                       epoch=facts.n_epochs, facts=facts)
    ctx = Context(facts, recipe, thresholds, None, False, uses_guide_lines(recipe, thresholds, convention))
    decision = ctx.rule("decision")
    next_check = decision.scaled_epoch(facts.total_epochs) if decision is not None else None
    if next_check and next_check > facts.n_epochs:
        nxt = f"next check at epoch {next_check}"
    elif not unknown_plan:
        nxt = f"graded after epoch {facts.total_epochs}"
    else:
        nxt = "its planned length is unknown, so it is judged on its curves only"
    value = facts.current
    evidence = ("" if facts.enough_evidence else
                f"; {len(facts.points)} of the {facts.evidence_points} judged epochs a stop would need at this noise")
    return Verdict("continue", f"Training; {nxt}.",
                   f"No rule fires: {ctx.level()} {_fmt(value)} is {_pct(value / facts.reference)} of the starting "
                   f"loss {_fmt(facts.reference)} ({ctx.trend_text()}{evidence}); {nxt}. {series_read(facts)}",
                   None, None, facts.n_epochs, {"value": value, "reference": facts.reference}, "curve_ok", [], facts)


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
