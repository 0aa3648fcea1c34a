"""The judge's prose in one place: how numbers, series, rules and actions are said in a verdict.

Every verdict sentence is built from these helpers and the finding's evidence (the numbers the rule found);
no helper decides anything.
"""
from __future__ import annotations

import math

from . import actions as _actions
from . import recipes as _recipes
from .curve_facts import CurveFacts, bounded_exp
from .numbers import fmt_value as _fmt

__all__ = ["_fmt", "_pct", "_metric_name", "_map_name", "_action", "_recipe_title", "_scaled_note", "series_read",
           "trend_text", "level"]


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


def _scaled_note(rule, total_epochs: int) -> str:
    at = rule.scaled_epoch(total_epochs)
    if rule.guide_total and total_epochs != rule.guide_total:
        return (f"the guide's epoch {rule.guide_epoch} of {rule.guide_total}, scaled to epoch {at} "
                f"of this {total_epochs}-epoch run")
    return f"epoch {at} of {total_epochs}"



def trend_text(f: CurveFacts) -> str:
    """The trend the verdict read, with its window and noise."""
    if f.trend_from is None:
        return "too few epochs for a trend"
    series = "validated epochs" if f.trend_from == "val_loss" else "epochs"
    if f.trend_from != f.metric:
        series += " of the training loss (too few validated epochs)"
    pts = f.points if f.trend_from == f.metric else f.train_points
    used = min(len(pts), f.window + 1)
    return (f"trend {100 * (bounded_exp(f.trend) - 1):+.1f}%/epoch over the last {used} {series} "
            f"(noise {100 * f.noise:.1f}%)")


def level(f: CurveFacts) -> str:
    """The name of the number ``facts.current`` is: the last value itself, or a trend-smoothed level (then
    the last epoch's value is said beside it, so no estimate reads as the epoch's value)."""
    metric = _metric_name(f.metric)
    if f.current is None or f.last is None or math.isclose(f.current, f.last, rel_tol=1e-9):
        return metric
    return f"smoothed {metric} (trend level; epoch {f.last_epoch} itself: {_fmt(f.last)})"


def describe_line(lines, value: float, which: str = "line") -> str:
    """A value against a rule's line (``verdict_rules._Lines``): the user's own threshold, or a fraction of the
    starting loss and where the guide's ratio comes from."""
    line = lines.line if which == "line" else lines.partial
    if lines.source == "user":
        raw = {"line": lines.user.switch_above if lines.rule.kind == "decision" else lines.user.success_below,
               "partial": lines.user.partial_below}[which]
        return (f"{_fmt(value)} vs your threshold {_fmt(raw)} ({lines.user.convention()}) = {_fmt(line)} "
                f"on nbdetect's scale")
    ratio = lines.rule.ratio if which == "line" else lines.rule.partial_ratio
    source = lines.rule.ratio_source if which == "line" else lines.rule.partial_source
    source = f", {source}" if source else ""
    return (f"{_fmt(value)} is {_pct(value / lines.ref)} of the starting loss {_fmt(lines.ref)} "
            f"(line: {_pct(ratio)} = {_fmt(line)}{source})")


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



# -- each rule's words, from its evidence ---------------------------------------------------------------------
def nonfinite(bad, error: str | None) -> tuple[str, str]:
    """``bad``: the facts' first non-finite value (None when only the trainer's error says so)."""
    if bad is not None:
        what = f"the {bad.metric.replace('_', ' ')} is {bad.value} at epoch {bad.epoch}"
    else:
        what = "the loss became NaN/Inf and training stopped"
    said = f" Trainer said: {error}" if error else ""
    return (f"Diverged: {what}.",
            "Rule (non-finite loss): a NaN/Inf loss means the weights were about to be destroyed. "
            "Usual causes: degenerate boxes or labels out of range (run the diagnostic), an LR too high "
            "for this model and batch size (lower it, keep gradient clipping on), fp16 overflow." + said)


def divergence_from_start(f: CurveFacts, last_e: int, last: float, ratio: float) -> tuple[str, str]:
    return (f"Diverging: the {_metric_name(f.metric)} {_fmt(last)} is {last / f.reference:.1f}x the starting loss "
            f"(epoch {last_e}).",
            f"Rule (divergence): a loss above {ratio:g}x the starting loss {_fmt(f.reference)} means training is "
            "blowing up; lower the LR and keep gradient clipping and warmup on.")


def divergence_from_best(f: CurveFacts, last_e: int, last: float, rise: float,
                         train_rise: tuple[float, float] | None) -> tuple[str, str]:
    train_note = (f"; the training loss rose too, from {_fmt(train_rise[0])} to {_fmt(train_rise[1])}"
                  if train_rise is not None else "")
    return (f"Diverging: the {_metric_name(f.metric)} rose from its best {_fmt(f.best)} (epoch {f.best_epoch}) to "
            f"{_fmt(last)} (epoch {last_e}), {_pct(last / f.best - 1)} higher.",
            f"Rule (divergence from the best): the loss has stayed more than {_pct(rise / 2)} above its "
            f"best for the last 2 validated epochs and ends {_pct(last / f.best - 1)} above it (line "
            f"{_pct(rise)}, from the noise {100 * f.noise:.1f}%/epoch){train_note}. The LR is too high "
            "for this stage of training: lower it and keep gradient clipping on.")


def overfitting(f: CurveFacts, last: float, rise: float | None, patience: int, t_from: float,
                t_now: float) -> tuple[str, str]:
    """``rise``: the loss line crossed (None: the margin crossed with mAP falling)."""
    map_note = ""
    if f.has_map:
        (be, bv), (le, lv) = f.map_best, f.map_points[-1]
        map_note = (f"; {_map_name(f)} {lv:.3f} at epoch {le}, best {bv:.3f} at epoch {be} "
                    f"({'falling' if f.map_falling else 'no longer improving'})")
    line = f"{_pct(rise)}" if rise is not None else f"{_pct(f.margin)} (with mAP falling)"
    return (f"Overfitting: the validation loss is {_pct(last / f.best - 1)} above its best (epoch {f.best_epoch}) "
            "while the training loss keeps falling.",
            f"Rule (overfitting): the validation loss has stayed more than {line} above its best "
            f"{_fmt(f.best)} (epoch {f.best_epoch}) for {patience} validated epochs (now "
            f"{_fmt(last)}) while the training loss fell from {_fmt(t_from)} to {_fmt(t_now)}"
            f"{map_note}. The best checkpoint keeps the best epoch; stop here, or train on more data / "
            "with augmentation.")


def lr_cut_too_early(f: CurveFacts, nxt: str, cut, at_cut: float, pre_trend: float, n_before: int, goal: float | None,
                     end: tuple[float, float, str] | None) -> tuple[str, str]:
    """``end``: (projected end, goal, its source) when the guide's goal is checked."""
    n_since = f.points[-1][0] - cut.epoch + 1
    end_note = (f", projected {_fmt(end[0])} at epoch {f.total_epochs} vs the goal {_fmt(end[1])} ({end[2]})"
                if end is not None else "")
    return (f"LR too low before convergence: stop and run {_action(nxt)}.",
            f"Rule (LR cut before convergence, the seed MultiStepLR failure): the LR fell from {_fmt(cut.before)} to "
            f"{_fmt(cut.after)} ({cut.factor:.0f}x) at epoch {cut.epoch} while the {_metric_name(f.metric)} was "
            f"{_fmt(at_cut)} ({_pct(at_cut / f.reference)} of the start {_fmt(f.reference)}; "
            f"{100 * (bounded_exp(pre_trend) - 1):+.1f}%/epoch over the {n_before} validated epochs before it, noise "
            f"{100 * f.noise:.1f}%{', above the goal ' + _fmt(goal) if goal is not None and at_cut > goal else ''}); "
            f"in the {n_since} epochs since it is {_fmt(f.current)} ({_pct(1 - f.current / at_cut)} lower; "
            f"{trend_text(f)}){end_note}. More epochs at this LR will not fix it.")


class Decision:
    """The words of the guide's decision (``alt1_epoch20``/``alt2_epoch20``) at epoch ``at`` on ``lines``."""

    def __init__(self, f: CurveFacts, title: str, rule, lines, at: int):
        self.f, self.title, self.rule, self.at = f, title, rule, at
        when = "at" if f.n_epochs == at else f"since (now epoch {f.n_epochs})"
        self.text = (f"Rule (guide, {title} {when} {_scaled_note(rule, f.total_epochs)}: {rule.guide_text}): "
                     f"{level(f)} {lines.describe(f.current)}")

    def on_track(self) -> tuple[str, str]:
        total = self.f.total_epochs
        return f"On track: continue to epoch {total}.", self.text + f" -> continue to epoch {total}."

    def no_projection(self) -> tuple[str, str]:
        return (f"Behind the guide's line at epoch {self.at}; too few epochs to tell where it ends.",
                self.text + f"; {trend_text(self.f)}, so no projection to epoch {self.f.total_epochs} yet -> "
                "continue and re-check next epoch.")

    def _projection(self, projected: float, goal: float, goal_src: str) -> str:
        return (f"; {trend_text(self.f)}, projected {_fmt(projected)} at epoch {self.f.total_epochs} vs the goal "
                f"{_fmt(goal)} ({goal_src})")

    def still_improving(self, projected: float, goal: float, goal_src: str) -> tuple[str, str]:
        f = self.f
        if f.map_rising and projected > goal:
            why = f"{_map_name(f)} is still rising ({f.map_points[-1][1]:.3f} now)"
        elif projected <= goal:
            why = "at its current pace it still reaches the goal"
        else:
            why = (f"{len(f.points)} validated epochs are too few to stop on at this noise (a stop needs "
                   f"{f.evidence_points})")
        return (f"Behind the guide's line at epoch {self.at}, but still improving: continue and re-check.",
                self.text + self._projection(projected, goal, goal_src)
                + f" -> {why}; continue and watch the next epochs.")

    def stop(self, projected: float, goal: float, goal_src: str, nxt: str) -> tuple[str, str]:
        if self.rule.if_above == "diagnose":
            head = f"Stop {self.title}: likely a data or preprocessing problem; run the diagnostic."
        else:
            head = f"Stop {self.title} and run {_action(nxt)}."
        return head, self.text + self._projection(projected, goal, goal_src) + f" -> {head}"


def _lr_note(f: CurveFacts) -> str:
    lr = f.lr
    if not lr.known:
        return ""
    return f"; the LR is now {_fmt(lr.current)}, {_pct(lr.fraction_of_peak)} of its peak {_fmt(lr.peak)}"


def _maps_not_improved(f: CurveFacts) -> str:
    return f" and {_map_name(f)} has not improved either (best {f.map_best[1]:.3f})" if f.has_map else ""


def lr_below_range(f: CurveFacts) -> str:
    lr = f.lr
    peak = (f", {_pct(lr.fraction_of_peak)} of its peak {_fmt(lr.peak)}"
            if lr.fraction_of_peak is not None and lr.fraction_of_peak < 1 else "")
    return (f"the LR is {_fmt(lr.current)}{peak}, below the range detectors train in (SGD 1e-3 to 2e-2, AdamW "
            "1e-5 to 1e-3)")


def lr_low_of_peak(f: CurveFacts) -> str:
    lr = f.lr
    return f"the LR is {_fmt(lr.current)}, {_pct(lr.fraction_of_peak)} of its peak {_fmt(lr.peak)}"


def plateau_lr_too_low(f: CurveFacts, since: int, too_low: str) -> tuple[str, str]:
    return (f"Plateau with the LR too low to learn: {too_low}.",
            f"Rule (plateau, own evidence): the {_metric_name(f.metric)} has not beaten its best "
            f"{_fmt(f.best)} (epoch {f.best_epoch}) by more than {_pct(f.margin)} since epoch "
            f"{since}{_maps_not_improved(f)}; {trend_text(f)}; {too_low}: raise the LR and continue.")


def stalled_without_learning(f: CurveFacts, since: int) -> tuple[str, str]:
    return (f"Not learning: the {_metric_name(f.metric)} fell only {_pct(f.dropped)} in {f.n_epochs} "
            "epochs and has stalled.",
            f"Rule (stalled without learning, own evidence): {level(f)} {_fmt(f.current)} is "
            f"{_pct(f.current / f.reference)} of the starting loss {_fmt(f.reference)}, no "
            f"improvement beyond {_pct(f.margin)} since epoch {since}; {trend_text(f)}"
            f"{_lr_note(f)}. A detector that learns loses far more than 20% of its starting loss: "
            "check the data (boxes, labels, images) and the LR.")


def plateau_own(f: CurveFacts, since: int) -> tuple[str, str]:
    return (f"Plateau: no improvement beyond the noise for {f.plateau_epochs} epochs.",
            f"Rule (plateau, own evidence): the {_metric_name(f.metric)} has not beaten its best {_fmt(f.best)} "
            f"(epoch {f.best_epoch}) by more than {_pct(f.margin)} since epoch {since}{_maps_not_improved(f)}; "
            f"{trend_text(f)}{_lr_note(f)}. More epochs at this setting are unlikely to help: keep "
            "the best checkpoint, or lower the LR if it is still high.")


def stalled_guide(f: CurveFacts, since: int | None, projected: float, goal: float, goal_src: str) -> tuple[str, str]:
    """``since``: the epoch the plateau began (None: still falling, too slowly)."""
    metric = _metric_name(f.metric)
    if since is not None:
        head = (f"Plateau: the {metric} has not improved by more than {_pct(f.margin)} since epoch {since} "
                f"({f.plateau_epochs} epochs) and is above the goal.")
    else:
        head = (f"Too slow: at this pace the {metric} ends near {_fmt(projected)} at epoch {f.total_epochs}, "
                f"above the goal {_fmt(goal)}.")
    return (head,
            f"Rule (stalled): best {_fmt(f.best)} at epoch {f.best_epoch}, now {_fmt(f.current)} "
            f"({_pct(f.current / f.reference)} of the start {_fmt(f.reference)}; {trend_text(f)}); "
            f"even on an optimistic power law it is projected {_fmt(projected)} at epoch "
            f"{f.total_epochs} vs the goal {_fmt(goal)} ({goal_src}){_lr_note(f)}.")


def not_learning_lr_range(f: CurveFacts, too_low: str) -> tuple[str, str]:
    return (f"Not learning: {too_low}.",
            f"Rule (not learning, LR range): the {level(f)} {_fmt(f.current)} is "
            f"{_pct(f.current / f.reference)} of the starting loss {_fmt(f.reference)} after "
            f"{f.n_epochs} epochs ({trend_text(f)}); {too_low}: raise it.")


def not_learning(f: CurveFacts, rule, early: bool, decision_at: int | None) -> tuple[str, str]:
    """``rule``: the guide's early warning (None: own evidence); ``early``: said at its (scaled) epoch."""
    if rule is not None and early:
        when = f"early warning at {_scaled_note(rule, f.total_epochs)}"
    else:
        when = f"flat since the start for {f.points[-1][0] - 1} epochs"
    ratio_note = f"; the guide expects a drop of {_pct(1 - rule.ratio)} by then" if rule is not None else ""
    drop = 1 - f.current / f.reference
    what = ("has not dropped" if drop < f.margin else
            f"has dropped only {_pct(drop)} and stopped falling")
    nc = f" The decision comes at epoch {decision_at}." if decision_at is not None and f.n_epochs < decision_at else ""
    maps = (f"; {_map_name(f)} has not improved either ({f.map_points[-1][1]:.3f})" if f.has_map else "")
    guide_text = f": {rule.guide_text}" if rule is not None else ""
    return (f"Warning: the loss {what} by epoch {f.n_epochs}.",
            f"Rule ({'guide, ' if rule is not None else ''}{when}{guide_text}): {_metric_name(f.metric)} "
            f"{_fmt(f.current)} is {_pct(f.current / f.reference)} of the starting loss "
            f"{_fmt(f.reference)} (a drop below {_pct(f.margin)} is within the noise{ratio_note}; "
            f"{trend_text(f)}){maps}. Check the data (nbdetect.diagnose()) and the LR." + nc)


def map_collapse(f: CurveFacts) -> tuple[str, str]:
    (be, bv), (le, lv) = f.map_best, f.map_points[-1]
    return (f"{_map_name(f)} collapsed: {lv:.3f} at epoch {le}, below half of its best {bv:.3f} (epoch {be}).",
            f"Rule (mAP collapse): the task metric fell {_pct(1 - lv / bv)} from its best while the "
            f"{_metric_name(f.metric)} reads {_fmt(f.current)}; the loss alone does not show it. Keep the checkpoint "
            "of the best mAP epoch; if it keeps falling, lower the LR.")


def still_improving(f: CurveFacts, how: str) -> str:
    """``how``: ``verdict_rules._still_improving``'s ``"map"`` or ``"loss"``."""
    if how == "map":
        return f"{_map_name(f)} still rising, {f.map_points[-1][1]:.3f} at the end"
    return f"the {_metric_name(f.metric)} still falling {100 * (1 - bounded_exp(f.trend)):.2g}%/epoch"


class Final:
    """The words of the guide's grading after the last epoch (``final_*``) on ``lines``."""

    def __init__(self, f: CurveFacts, title: str, rule, lines):
        self.f, self.title, self.rule, self.lines = f, title, rule, lines
        self.metric = _metric_name(f.metric)
        self.prefix = (f"Rule (guide, {title} after the last epoch {f.total_epochs}: {rule.guide_text}): best "
                       f"{self.metric} ")

    def _boost(self) -> str:
        f, rule = self.f, self.rule
        return (f"Rule (guide, {self.title}: {rule.guide_text}): best {self.metric} {_fmt(f.best)} is "
                f"{_pct(f.best / f.reference)} of the loss before the boost {_fmt(f.reference)} (needs <= "
                f"{_pct(rule.ratio)})")

    def boost_helped(self, first) -> tuple[str, str]:
        return (f"The LR boost helped; for a final model run {first.short_title}.",
                self._boost() + " -> the higher LR helps; the guide does not recommend this for final training.")

    def boost_failed(self, nxt: str) -> tuple[str, str]:
        return f"The LR boost did not help: run {_action(nxt)}.", self._boost() + f" -> run {_action(nxt)}."

    def success(self) -> tuple[str, str]:
        best = self.f.best
        return (f"Success: use this model for the submission (best {self.metric} {_fmt(best)}).",
                self.prefix + self.lines.describe(best) + " -> success.")

    def partial(self, rising: str) -> tuple[str, str]:
        best = self.f.best
        more = (f" It was still improving when it ended ({still_improving(self.f, rising)}): a longer run should "
                "get further." if rising else "")
        return (f"Partial success: the model might still work (best {self.metric} {_fmt(best)}); use it for the "
                "submission.",
                self.prefix + self.lines.describe(best, "partial") + " -> partial success (the guide: might still "
                "work)." + more)

    def _described(self) -> str:
        return self.lines.describe(self.f.best, "partial" if self.lines.partial is not None else "line")

    def still_improving(self, rising: str) -> tuple[str, str]:
        return (f"Still improving when it ended: a longer run should get further (best {self.metric} "
                f"{_fmt(self.f.best)}, above the guide's line).",
                self.prefix + self._described() + f" -> above the line, but {still_improving(self.f, rising)}; the "
                "guide's line is not met yet, not missed: run more epochs before changing recipe.")

    def not_good_enough(self, nxt: str) -> tuple[str, str]:
        return (f"Not good enough: run {_action(nxt)}.",
                self.prefix + self._described() + f" and no longer improving -> {_action(nxt)}.")


class OwnEvidence:
    """The words of the grading of a run of unknown convention (``final_own_evidence``)."""

    def __init__(self, f: CurveFacts, rule):
        self.f = f
        maps = ""
        if f.has_map:
            (be, bv), (fe, fv), (le, lv) = f.map_best, f.map_points[0], f.map_points[-1]
            maps = f"; {_map_name(f)} {fv:.3f} (epoch {fe}) -> {lv:.3f} (epoch {le}), best {bv:.3f} at epoch {be}"
        self.text = (f"Rule ({rule.guide_text}): the {_metric_name(f.metric)} went from {_fmt(f.reference)} to "
                     f"{_fmt(f.current)} ({_pct(f.dropped)} lower; best {_fmt(f.best)} at epoch {f.best_epoch}; "
                     f"{trend_text(f)}){maps}")

    def not_learned(self) -> tuple[str, str]:
        return ("Finished without learning: neither the loss nor mAP improved beyond the noise.",
                self.text + " -> check the data and the LR.")

    def plateau_at_full_lr(self, since: int, at_start: float) -> tuple[str, str]:
        f = self.f
        return (f"Finished on a plateau that began at epoch {since} with the LR still at {_pct(at_start)} of its "
                "peak: a lower LR would likely go further.",
                self.text + f" -> no improvement beyond the noise for {f.plateau_epochs} epochs, the plateau "
                f"began at full LR ({_fmt(f.lr.peak * at_start)}), so it is not the schedule's end: lower "
                "the LR (or decay it) and train again from the best checkpoint.")

    def barely_learned(self) -> tuple[str, str]:
        return (f"Finished having lost only {_pct(self.f.dropped)} of its starting loss: it barely learned.",
                self.text + " -> a detector that learns loses far more than 20% of its starting loss; check the "
                "data (boxes, labels, images) and the LR.")

    def still_improving(self, rising: str) -> tuple[str, str]:
        said = still_improving(self.f, rising)
        return (f"Finished and still improving ({said}): use the best checkpoint; more epochs would likely help.",
                self.text + f" -> learned, {said}.")

    def converged(self) -> tuple[str, str]:
        return "Finished and converged: use the best checkpoint.", self.text + " -> learned and levelled off."


# -- the composed verdict's own words (nbdetect.verdict) ------------------------------------------------------
PENDING_NO_EPOCH = ("Waiting for the first epoch.", "No rule applies before the first epoch ends.")
PENDING_NO_LOSS = ("No loss recorded yet.", "The first epoch has no finite loss to compare with.")


def error_text(error) -> str:
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)


def run_failed(text: str, before: str | None) -> tuple[str, str]:
    """``before``: the headline of the verdict before the error, if any."""
    return (f"Training failed: {text}",
            "The run stopped with an error (its last checkpoint is kept; see the run's message). Fix "
            "the cause and continue with resume=True." + (f" Before it: {before}" if before is not None else ""))


def no_rule_fires(f: CurveFacts, next_check: int | None, unknown_plan: bool) -> tuple[str, str]:
    if next_check and next_check > f.n_epochs:
        nxt = f"next check at epoch {next_check}"
    elif not unknown_plan:
        nxt = f"graded after epoch {f.total_epochs}"
    else:
        nxt = "its planned length is unknown, so it is judged on its curves only"
    value = f.current
    evidence = ("" if f.enough_evidence else
                f"; {len(f.points)} of the {f.evidence_points} judged epochs a stop would need at this noise")
    return (f"Training; {nxt}.",
            f"No rule fires: {level(f)} {_fmt(value)} is {_pct(value / f.reference)} of the starting "
            f"loss {_fmt(f.reference)} ({trend_text(f)}{evidence}); {nxt}. {series_read(f)}")


def also(headlines: list[str]) -> str:
    return " ".join(f"Also: {h}" for h in headlines)


def with_cause(headline: str, cause: str) -> str:
    return f"{headline} {cause}"
