"""The verdict rules: one function per rule, reading the curve's facts (:mod:`nbdetect.curve_facts`) and the
judge's numbers (:mod:`nbdetect.verdict_data`, read as ``_data.NAME`` so a patched threshold is the live one),
each returning a typed :class:`Finding` (its status, rule id, finding code, next action and its evidence as
numbers in ``details``) or None. The words come from :mod:`nbdetect.verdict_text`. The order the rules are
applied in, and how their findings compose, is :mod:`nbdetect.verdict`'s ``POLICY``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import recipes as _recipes
from . import verdict_data as _data
from . import verdict_text as _text
from .curve_facts import MEANINGFUL_MAP_GAIN, CurveFacts, bounded_exp, is_finite, significant_slope, theil_sen
from .verdict_data import _GUIDE_RULES, Rule, UserThresholds, rules
from .verdict_text import _metric_name, _pct, _recipe_title, describe_line, level, trend_text


@dataclass
class Finding:
    """What one rule found: its outcome, its one identifier (``rule_id``, see ``verdict_data.REGISTRY``), the
    public finding code, and the evidence as numbers (``details``); ``headline``/``rule_text`` say it."""

    status: str
    headline: str
    rule_text: str
    next_action: str | None = None
    rule_id: str | None = None
    epoch: int = 0
    details: dict = field(default_factory=dict)
    code: str = "curve_ok"


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
        return describe_line(self, value, which)


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
        return _data.CONVERGED_RATIO * self.ref, "the guide's 500/1750"

    def level(self) -> str:
        return level(self.facts)

    def trend_text(self) -> str:
        return trend_text(self.facts)

    def verdict(self, status, headline, text, next_action, rule_id, code, **details) -> Finding:
        return Finding(status, headline, text, next_action, rule_id, self.facts.n_epochs, details, code)



# -- the rules, most severe first ----------------------------------------------------------------------------
def rule_nonfinite(ctx: Context) -> Finding | None:
    f = ctx.facts
    if f.nonfinite is None and not ctx.error_nonfinite:
        return None
    return ctx.verdict("fail", *_text.nonfinite(f.nonfinite, ctx.error), "diagnose", "nonfinite", "lr_too_high",
                       epoch=f.nonfinite.epoch if f.nonfinite else None)


def rule_divergence(ctx: Context) -> Finding | None:
    f = ctx.facts
    if not f.points or not f.reference:
        return None
    last_e, last = f.points[-1]
    high = [v for _, v in f.points[-2:] if v > _data.DIVERGENCE_RATIO * f.reference]
    # a validation loss may spike for one epoch and come back; two in a row (or a training loss) is a blow-up
    train_high = bool(f.train_points) and f.train_points[-1][1] > _data.DIVERGENCE_RATIO * f.train_points[0][1]
    if last > _data.DIVERGENCE_RATIO * f.reference and (len(high) == 2 or f.metric == "train_loss" or train_high):
        return ctx.verdict("fail", *_text.divergence_from_start(f, last_e, last, _data.DIVERGENCE_RATIO), "lower_lr",
                           "divergence", "lr_too_high",
                           value=last, reference=f.reference)
    if f.best_epoch is None or f.best_epoch >= last_e or last_e <= f.lr.warmup_end + 1 or f.map_rising:
        return None  # (rising mAP: the model gets better at the task, whatever a noisy loss does)
    if not f.best or f.best <= 0:
        return None  # a rise relative to a best of 0 has no size (the text says "N% higher")
    rise = max(_data.DIVERGENCE_RISE, 4 * f.noise)
    sustained = [v for e, v in f.points if e > f.best_epoch][-2:]
    if len(sustained) < 2 or last < f.best * (1 + rise) or min(sustained) < f.best * (1 + rise / 2):
        return None
    if f.metric == "val_loss" and f.train_points:
        after = [v for e, v in f.train_points if e >= f.best_epoch]
        t_margin = max(0.1, 3 * f.train_noise)
        if not after or after[-1] < min(after) * (1 + t_margin):
            return None  # training still falls (or is flat): overfitting or noise, not divergence
        train_rise = (min(after), after[-1])
    else:
        train_rise = None
    return ctx.verdict("fail", *_text.divergence_from_best(f, last_e, last, rise, train_rise), "lower_lr", "divergence",
                       "lr_too_high", best_epoch=f.best_epoch, best=f.best, value=last)


def rule_overfitting(ctx: Context) -> Finding | None:
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
    recent = after[-_data.OVERFIT_PATIENCE:]
    if len(recent) < _data.OVERFIT_PATIENCE:
        return None
    rise = max(_data.OVERFIT_RISE, 4 * f.noise)
    # against the best level the curve held (a median of 3) when the best is one lucky epoch more than 2 noise
    # sd below it: a noisy curve's outlier is no best to overfit from
    level = min(sorted(v for _, v in f.points[i:i + 3])[1] for i in range(len(f.points) - 2))
    best = level if level > f.best * (1 + 2 * f.noise) else f.best
    by_loss = all(v > best * (1 + rise) for _, v in recent)
    by_map = f.map_falling and all(v > f.best * (1 + f.margin) for _, v in recent)
    if not (by_loss or by_map):
        return None
    last = f.points[-1][1]
    return ctx.verdict("warn", *_text.overfitting(f, last, rise if by_loss else None, _data.OVERFIT_PATIENCE,
                                                  t_best[-1], t_now), "use_best", "overfitting", "overfitting",
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
    if not falling and at_cut > _data.LEARNED_RATIO * f.reference:
        return None  # flat and never learning before the cut: the data is the suspect (not-learning speaks)
    if not falling and (goal is None or at_cut <= goal):
        return None  # flat before the cut and no goal missed: converged, the planned end of a step schedule
    helped = 1 - min(v for _, v in since[:2]) / at_cut
    if helped > max(_data.CUT_HELPED, f.margin):
        return None  # the loss dropped right after the cut: the cut did its job
    post_trend = theil_sen(since[-(f.window + 1):])[0]
    if falling and math.isfinite(post_trend) and post_trend < pre_trend / 2:
        return None  # still falling at more than half the pace it had before the cut
    return cut, at_cut, pre_trend, pre


def rule_lr_cut_too_early(ctx: Context) -> Finding | None:
    """The seed notebook's failure: an LR step cut while the loss was still falling (not converged), after which
    it stalled. Evidence from the curve itself: the fall before the cut beyond its noise, no drop after it."""
    f = ctx.facts
    if not f.lr.cuts or not f.reference or not f.enough_evidence or f.map_rising:
        return None
    if f.lr.plateau_driven:
        return None  # the cuts answered a stall (ReduceLROnPlateau): the stalled rule reports it
    if f.lr.current is not None and f.lr.current < _data.DETECTOR_LR_FLOOR:
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
        said_end = (projected, goal, goal_src)
    else:
        projected, said_end = f.projected_end, None
    nxt = ctx.next_on_failure
    return ctx.verdict(
        "switch", *_text.lr_cut_too_early(f, nxt, cut, at_cut, pre_trend, len(pre), goal, said_end), nxt, "lr_too_low",
        "lr_decay_before_convergence", peak_lr=f.lr.peak, cut_lr=cut.after,
        cut_epoch=cut.epoch, loss_at_cut=at_cut, loss_now=f.current, projected=projected, line=goal)


def rule_decision(ctx: Context) -> Finding | None:
    """The guide's tree at its decision epoch (and after it, re-judged with every new epoch)."""
    rule = ctx.rule("decision")
    f = ctx.facts
    if rule is None or f.finished:
        return None
    at = rule.scaled_epoch(f.total_epochs)
    if at is None or f.n_epochs < at or f.current is None or not f.reference:
        return None  # no positive finite loss to measure the guide's line from (e.g. a first loss of 0)
    lines = _Lines(rule, f.reference, ctx.thresholds)
    value = f.current
    details = {"decision_epoch": at, "value": value, "reference": f.reference, "line": lines.line}
    said = _text.Decision(f, _recipe_title(ctx.recipe), rule, lines, at)
    if value <= lines.line:
        return ctx.verdict("continue", *said.on_track(), None, rule.id, "curve_ok", **details)
    goal, goal_src = ctx.goal()
    projected = f.projected_end
    details.update(projected=projected, goal=goal)
    if projected is None:
        return ctx.verdict("warn", *said.no_projection(), None, rule.id, "below_expected_curve", **details)
    if projected <= goal or f.map_rising or not f.enough_evidence:
        return ctx.verdict("warn", *said.still_improving(projected, goal, goal_src), None, rule.id,
                           "below_expected_curve", **details)
    nxt = ctx.next_on_failure
    return ctx.verdict(rule.if_above, *said.stop(projected, goal, goal_src, nxt), nxt, rule.id, "below_expected_curve",
                       **details)


def rule_stalled(ctx: Context) -> Finding | None:
    """Learned something, but it stopped improving. The guide's recipes: at its pace the run ends above the
    goal. A run of unknown convention: neither the loss nor mAP has made a new best, beyond the noise, for a
    quarter of the run (at least 10 epochs)."""
    f = ctx.facts
    if f.current is None or not f.reference or f.finished or len(f.points) < f.window + 1 or f.map_rising:
        return None
    if f.points[-1][0] <= f.lr.warmup_end + 1 or not f.enough_evidence:
        return None
    if f.current > _data.LEARNED_RATIO * f.reference and f.dropped < f.margin:
        return None  # it has not learned yet: not-learning speaks
    plateau = f.plateau_epochs >= max(3, f.window)
    low = f.lr.fraction_of_peak is not None and f.lr.fraction_of_peak <= _data.LOW_LR_FRACTION
    if not ctx.guide:
        patience = max(_data.MIN_PATIENCE, math.ceil(_data.PATIENCE_SHARE * f.n_epochs))
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
        too_low = _lr_too_low(f, relative=False)  # a decayed schedule's tail is its end, not a fault
        if too_low:
            return ctx.verdict("warn", *_text.plateau_lr_too_low(f, since, too_low), _recipes.ALTERNATIVE_3.name,
                               "plateau", "lr_too_low", since_epoch=since)
        if f.current > _data.LEARNED_RATIO * f.reference and not f.has_map:
            return ctx.verdict("warn", *_text.stalled_without_learning(f, since), "diagnose", "not_learning",
                               "loss_plateau", since_epoch=since)
        return ctx.verdict("warn", *_text.plateau_own(f, since), "use_best", "plateau", "loss_plateau",
                           since_epoch=since)
    if f.current > _data.LEARNED_RATIO * f.reference:
        return None
    goal, goal_src = ctx.goal()
    projected = f.projected_end
    if projected is None or f.current <= goal or projected <= goal:
        return None
    code, nxt = ("lr_too_low", _recipes.ALTERNATIVE_3.name) if low else ("loss_plateau", ctx.next_on_failure)
    if low and _recipes.find(ctx.recipe) is not None:  # nbdetect's own recipe: the guide's next step
        nxt = ctx.next_on_failure
    since = f.points[-1][0] - f.plateau_epochs if plateau else None
    return ctx.verdict("warn", *_text.stalled_guide(f, since, projected, goal, goal_src), nxt, "plateau", code,
                       projected=projected, line=goal, since_epoch=since)


def _lr_too_low(f: CurveFacts, relative: bool = True) -> str:
    """Why the LR now is too low to learn ("" when it is not): below any detector's range (1e-6) whatever the
    schedule, or (``relative``) at most 10% of its own peak."""
    lr = f.lr
    if not lr.known or lr.current is None:
        return ""
    if lr.current < _data.DETECTOR_LR_FLOOR:
        return _text.lr_below_range(f)
    if not relative:
        return ""
    if lr.fraction_of_peak is not None and lr.fraction_of_peak <= _data.LOW_LR_FRACTION:
        return _text.lr_low_of_peak(f)
    return ""


def rule_not_learning(ctx: Context) -> Finding | None:
    """The guide's early warning ("if the loss doesn't drop by epoch 15, something is wrong"), read with the
    noise: "has not dropped" is a drop smaller than the noise allows; a slow fall that is still a fall is not
    warned. Without the guide's lines: flat since the start for enough epochs, and no mAP gain."""
    rule = ctx.rule("early_warning")
    f = ctx.facts
    if f.current is None or not f.reference or f.map_rising:
        return None
    if f.has_map and f.map_best[1] > f.map_points[0][1] + f.map_margin:
        return None  # mAP has improved since the first evaluation: it learns
    past_warmup = f.points[-1][0] > f.lr.warmup_end + _data.NOT_LEARNING_EPOCHS
    not_dropped = f.best >= f.reference * (1 - f.margin)
    flat_from_start = len(f.points) > _data.NOT_LEARNING_EPOCHS and not_dropped and past_warmup and f.enough_evidence
    if rule is None:  # own evidence only: lost less than 20% and not falling at a pace that matters, over
        # enough epochs for such a pace to stand out of the noise
        learned = f.dropped >= 1 - _data.LEARNED_RATIO or f.pace_matters(f.pace_window)
        if len(f.points) < f.pace_points or not (
                flat_from_start or (len(f.points) > _data.NOT_LEARNING_EPOCHS and past_warmup and f.enough_evidence
                                    and not learned)):
            return None
        early = False
    else:
        at = rule.scaled_epoch(f.total_epochs)
        if f.current <= rule.ratio * f.reference:
            return None
        slow = f.n_epochs >= at and len(f.points) >= 3 and not f.pace_matters() and past_warmup
        if not (flat_from_start or slow):
            return None
        early = f.n_epochs >= at
    decision = ctx.rule("decision")
    decision_at = decision.scaled_epoch(f.total_epochs) if decision is not None else None
    rule_id = rule.id if rule is not None else "not_learning"
    too_low = _lr_too_low(f) if f.lr.current is not None and f.lr.current < _data.DETECTOR_LR_FLOOR else ""
    if too_low:  # a flat curve at an LR no detector learns with: the LR is the cause, whatever the schedule
        return ctx.verdict("warn", *_text.not_learning_lr_range(f, too_low), _recipes.ALTERNATIVE_3.name, rule_id,
                           "lr_too_low", value=f.current, reference=f.reference)
    return ctx.verdict("warn", *_text.not_learning(f, rule, early, decision_at), "diagnose", rule_id, "loss_plateau",
                       value=f.current, reference=f.reference)


def rule_map_collapse(ctx: Context) -> Finding | None:
    """mAP fell below half of its best: whatever the loss says, the model got worse at the task."""
    f = ctx.facts
    if not f.map_collapsed:
        return None
    (be, bv), lv = f.map_best, f.map_points[-1][1]
    return ctx.verdict("warn", *_text.map_collapse(f), "use_best", "map_collapse", "map_collapse", best_epoch=be,
                       best_map=bv, map=lv)


def rule_final(ctx: Context) -> Finding | None:
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
    said = _text.Final(f, _recipe_title(ctx.recipe), rule, lines)
    details = {"best": best, "reference": ref, "line": lines.line}
    if rule.id == "final_lr_boost":
        first = _recipes.FIRST
        if best <= rule.ratio * ref:
            return ctx.verdict("partial", *said.boost_helped(first), first.name, rule.id, "curve_ok", **details)
        return ctx.verdict("fail", *said.boost_failed(nxt_fail), nxt_fail, rule.id, "below_expected_curve", **details)
    if best < lines.line:
        return ctx.verdict("success", *said.success(), "submission", rule.id, "curve_ok", **details)
    if lines.partial is not None:  # the text below cites the partial line: the plot draws that one
        details.update(line=lines.partial, success_line=lines.line)
    rising = _still_improving(f)
    if lines.partial is not None and best < lines.partial:
        return ctx.verdict("partial", *said.partial(rising), "submission", rule.id, "below_expected_curve", **details)
    target = lines.partial if lines.partial is not None else lines.line
    reaches = f.current is not None and f.current * bounded_exp(f.trend * f.n_epochs) <= target
    if rising and not reaches:
        rising = ""  # improving, but at this pace another run as long still ends above the line
    if rising:  # never 'not good enough' for a run that was still getting better
        return ctx.verdict("partial", *said.still_improving(rising), "train_longer", rule.id, "below_expected_curve",
                           **details)
    return ctx.verdict("fail", *said.not_good_enough(nxt_fail), nxt_fail, rule.id, "below_expected_curve", **details)


def _still_improving(f: CurveFacts) -> str:
    """How the run is still improving at its end, at a pace that matters: ``"map"`` (mAP), ``"loss"`` or ``""``
    (it is not): a significant trend that, kept for another half of the run (at least 10 epochs), gains more
    than the noise and 5% of the loss (or 0.01 mAP)."""
    horizon = max(10, f.n_epochs / 2)
    if f.map_rising and is_finite(f.map_trend) and f.map_trend * horizon > max(MEANINGFUL_MAP_GAIN, f.map_margin):
        return "map"
    if f.pace_matters():
        return "loss"
    return ""


def rule_final_own_evidence(ctx: Context, rule: Rule) -> Finding:
    """The grading of a run of unknown convention: what its own curves show, no guide line."""
    f = ctx.facts
    map_gain = f.has_map and f.map_best[1] > f.map_points[0][1] + f.map_margin
    learned = f.dropped > f.margin or map_gain
    little = not map_gain and f.dropped < 1 - _data.LEARNED_RATIO  # lost less than 20% of the start
    rising = _still_improving(f)
    said = _text.OwnEvidence(f, rule)
    details = {"best": f.best, "reference": f.reference}
    if not learned:
        return ctx.verdict("fail", *said.not_learned(), "diagnose", rule.id, "loss_plateau", **details)
    patience = max(_data.MIN_PATIENCE, math.ceil(_data.PATIENCE_SHARE * f.n_epochs))
    since = f.points[-1][0] - f.plateau_epochs
    at_start = f.lr.fraction_at(since)
    if not rising and f.plateau_epochs >= patience and at_start is not None and at_start >= 0.5 \
            and not (f.has_map and f.map_points[-1][0] - f.map_best[0] < patience):
        return ctx.verdict("partial", *said.plateau_at_full_lr(since, at_start), "lower_lr", rule.id, "loss_plateau",
                           **details)
    if little:
        return ctx.verdict("warn", *said.barely_learned(), "diagnose", rule.id, "loss_plateau", **details)
    if rising:
        return ctx.verdict("success", *said.still_improving(rising), "submission", rule.id, "curve_ok", **details)
    return ctx.verdict("success", *said.converged(), "submission", rule.id, "curve_ok", **details)
