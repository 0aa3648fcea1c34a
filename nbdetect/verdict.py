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

Besides the tree, three failures are called out: divergence (a non-finite
loss, or a validation loss above 3x the start), the seed notebook's failure
(the LR cut >= 5x from its peak while the model was learning but the
loss was still above the convergence line, and the loss flat since), and no drop by the guide's
epoch 15 (an early warning).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

OUTCOMES = ("pending", "continue", "switch", "diagnose", "warn", "success", "partial", "fail")

#: What the guide says to run when a recipe fails.
NEXT_ON_FAILURE = {
    "seed_multistep": "alternative_1",
    "alternative_1": "alternative_2",
    "alternative_2": "diagnose",
    "alternative_3": "alternative_1",
}

ACTION_NAMES = {
    "alternative_1": "Alternative 1 (RetinaNet, warmup + cosine)",
    "alternative_2": "Alternative 2 (Faster R-CNN)",
    "alternative_3": "Alternative 3 (LR boost)",
    "diagnose": "the diagnostic (nbdetect.diagnose())",
    "submission": "the submission (nbdetect.make_submission())",
    "lower_lr": "a lower learning rate",
}


@dataclass(frozen=True)
class Rule:
    """One branch point of the guide's tree.

    ``kind``: ``"decision"`` (checked at ``guide_epoch`` of ``guide_total``, scaled to the run),
    ``"final"`` (grading after the last epoch) or ``"early_warning"`` (from ``guide_epoch`` on).
    ``ratio``/``partial_ratio`` are fractions of the run's starting loss (see the module
    docstring); ``guide_text`` is the guide's own wording, quoted in the verdict.
    """

    id: str
    applies_to: tuple[str, ...]
    kind: str
    metric: str = "val_loss"
    guide_epoch: int | None = None
    guide_total: int | None = None
    ratio: float = 1.0
    partial_ratio: float | None = None
    guide_text: str = ""
    if_below: str = "continue"
    if_above: str = "switch"
    next_if_above: str | None = None
    next_if_below: str | None = None
    ratio_source: str = ""  # how the ratio was derived, e.g. "500/1750"
    partial_source: str = ""

    def applies(self, recipe_name: str) -> bool:
        return not self.applies_to or recipe_name in self.applies_to

    def scaled_epoch(self, total_epochs: int) -> int | None:
        if self.guide_epoch is None:
            return None
        if not self.guide_total or total_epochs == self.guide_total:
            return self.guide_epoch
        return max(1, round(self.guide_epoch * total_epochs / self.guide_total))


RETINA_START = 1750.0  # midpoint of the guide's "1500-2000 (initial)"
FRCNN_START = 4.5  # midpoint of the guide's "epoch 5: ~3-6" for Faster R-CNN

RULES: tuple[Rule, ...] = (
    Rule("alt1_epoch20", ("alternative_1",), "decision", guide_epoch=20, guide_total=50,
         ratio=500 / RETINA_START, guide_text="loss < 500 at epoch 20 -> continue to epoch 50, else stop and run Alternative 2",
         if_below="continue", if_above="switch", next_if_above="alternative_2", ratio_source="the guide's 500/1750"),
    Rule("alt2_epoch20", ("alternative_2",), "decision", guide_epoch=20, guide_total=40,
         ratio=2 / FRCNN_START, guide_text="loss < 2 at epoch 20 -> continue to epoch 40, else data/preprocessing issue: run the diagnostic",
         if_below="continue", if_above="diagnose", next_if_above="diagnose", ratio_source="the guide's 2/4.5"),
    Rule("early_epoch15", (), "early_warning", guide_epoch=15, guide_total=50, ratio=0.80,
         guide_text="if the loss doesn't drop by epoch 15, something is wrong",
         if_below="continue", if_above="warn", ratio_source="a drop of at least 20%"),
    Rule("final_retinanet", ("alternative_1",), "final", ratio=200 / RETINA_START,
         partial_ratio=500 / RETINA_START,
         guide_text="Step 4: best val loss < 200 success, 200-500 partial success, > 500 try Alternative 2",
         if_below="success", if_above="fail", next_if_below="submission",
         ratio_source="the guide's 200/1750", partial_source="the guide's 500/1750"),
    Rule("final_seed", ("seed_multistep",), "final", ratio=200 / RETINA_START, partial_ratio=500 / RETINA_START,
         guide_text="a RetinaNet that learns ends far below 500 of a 1500-2000 start; one that does not: stop and "
                    "run Alternative 1",
         if_below="success", if_above="fail", next_if_below="submission",
         ratio_source="the guide's 200/1750", partial_source="the guide's 500/1750"),
    Rule("final_fasterrcnn", ("alternative_2",), "final", ratio=0.7 / FRCNN_START, partial_ratio=2 / FRCNN_START,
         guide_text="expected final loss ~0.3-0.7 (of ~3-6 at epoch 5); above the epoch-20 line of 2: run the diagnostic",
         if_below="success", if_above="fail", next_if_below="submission",
         ratio_source="the guide's 0.7/4.5", partial_source="the guide's 2/4.5"),
    Rule("final_lr_boost", ("alternative_3",), "final", ratio=0.80,
         guide_text="Alternative 3 is a quick test: if the higher LR does not bring the loss down, run Alternative 1",
         if_below="partial", if_above="fail", next_if_below="alternative_1"),
)

DIVERGENCE_RATIO = 3.0  # val loss above 3x the starting loss: diverging
STEP_FROM_PEAK = 0.5  # the epoch before a cut still trains at >= half the peak LR
LR_CUT_FACTOR = 5.0  # an LR at or below peak/5 counts as "cut"
PLATEAU_DROP = 0.10  # less than 10% lower than at the cut: plateaued
PLATEAU_MIN_EPOCHS = 2  # epochs after the cut before calling a plateau
OVERFIT_RISE = 0.25  # validation loss 25% above its best ...
OVERFIT_PATIENCE = 3  # ... for this many epochs in a row, while the training loss keeps falling
LEARNING_RATIO = 0.80  # below 80% of the start at the cut: the model was learning when the LR fell
CONVERGED_RATIO = 500 / RETINA_START  # the guide's convergence line (500 of 1750)


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


@dataclass
class Verdict:
    status: str  # one of OUTCOMES
    headline: str
    rule_text: str
    next_action: str | None = None
    rule_id: str | None = None
    epoch: int = 0
    details: dict = field(default_factory=dict)

    @property
    def suggests_switch(self) -> bool:
        return self.status in ("switch", "fail") and self.next_action in ("alternative_1", "alternative_2")

    def as_dict(self) -> dict:
        return {"status": self.status, "headline": self.headline, "rule_text": self.rule_text,
                "next_action": self.next_action, "rule_id": self.rule_id, "epoch": self.epoch,
                "details": dict(self.details)}

    def __str__(self) -> str:
        return f"{self.headline}\n{self.rule_text}"


# -- helpers -----------------------------------------------------------------------------------------------
def _num(rec: dict, key: str) -> float | None:
    v = rec.get(key)
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _metric_key(epochs: list[dict]) -> str:
    return "val_loss" if any(_num(e, "val_loss") is not None for e in epochs) else "train_loss"


def _metric_name(key: str) -> str:
    return "val loss" if key == "val_loss" else "train loss (no validation data)"


def reference_of(epochs: list[dict]) -> float | None:
    """The run's starting loss: max of the first epoch's train mean and val loss (finite ones)."""
    if not epochs:
        return None
    vals = [v for v in (_num(epochs[0], "train_loss"), _num(epochs[0], "val_loss")) if v is not None and math.isfinite(v)]
    return max(vals) if vals else None


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 0.01:
        return f"{x:.3g}"
    return f"{x:.2e}"


def _action(name: str | None) -> str:
    return ACTION_NAMES.get(name, name or "")


def _scaled_note(rule: Rule, total_epochs: int) -> str:
    at = rule.scaled_epoch(total_epochs)
    if rule.guide_total and total_epochs != rule.guide_total:
        return (f"the guide's epoch {rule.guide_epoch} of {rule.guide_total}, scaled to epoch {at} "
                f"of this {total_epochs}-epoch run")
    return f"epoch {at} of {total_epochs}"


def _recipe_title(recipe_name: str) -> str:
    return {"alternative_1": "Alternative 1", "alternative_2": "Alternative 2", "alternative_3": "Alternative 3",
            "seed_multistep": "the seed MultiStepLR config"}.get(recipe_name, recipe_name)


class _Lines:
    """Threshold lines for one rule: relative to the start, or the user's absolute numbers."""

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
        return (f"{_fmt(value)} is {100 * value / self.ref:.0f}% of the starting loss {_fmt(self.ref)} "
                f"(line: {100 * ratio:.0f}% = {_fmt(line)}{source})")


# -- the rules -----------------------------------------------------------------------------------------------
def _divergence(epochs, key, ref, error) -> Verdict | None:
    epoch_n = len(epochs)
    if error is not None:
        text = str(error)
        nonfinite = type(error).__name__ == "NonFiniteLossError" or any(
            w in text.lower() for w in ("nan", "inf", "non-finite", "nonfinite"))
        if nonfinite:
            return Verdict("fail", "Diverged: the loss became NaN/Inf and training stopped.",
                           "Rule (divergence): a non-finite loss means the weights were about to be destroyed; "
                           "lower the LR, keep gradient clipping on, and check boxes/labels with the diagnostic. "
                           f"Trainer said: {text}", "diagnose", "divergence", epoch_n, {"error": text})
    for e in epochs:
        for k in ("train_loss", "val_loss"):
            v = _num(e, k)
            if v is not None and not math.isfinite(v):
                return Verdict("fail", f"Diverged: the {k.replace('_', ' ')} is {v} at epoch {e.get('epoch')}.",
                               "Rule (divergence): any NaN/Inf loss means training has diverged; lower the LR, keep "
                               "gradient clipping on, and run the diagnostic.", "diagnose", "divergence", epoch_n,
                               {"epoch": e.get("epoch"), "metric": k})
    if ref:
        last = _num(epochs[-1], key)
        if last is not None and last > DIVERGENCE_RATIO * ref:
            return Verdict("fail", f"Diverging: the {_metric_name(key)} {_fmt(last)} is {last / ref:.1f}x the start.",
                           f"Rule (divergence): a loss above {DIVERGENCE_RATIO:g}x the starting loss {_fmt(ref)} "
                           "means training is blowing up; lower the LR and run the diagnostic.",
                           "diagnose", "divergence", epoch_n, {"value": last, "reference": ref})
    return None


def _lr_too_low(epochs, key, ref, lrs, recipe_name) -> Verdict | None:
    if not lrs or len(lrs) != len(epochs) or not ref:
        return None
    # A cut is a step: from (near) the peak LR to >= LR_CUT_FACTOR below it between two epochs, as
    # MultiStepLR does. A planned cosine glide is not one, though its tail also ends far below the peak.
    peak, prev, cut_at = 0.0, None, None
    for i, lr in enumerate(lrs):
        if lr is None or not math.isfinite(lr):
            continue
        if prev is not None and prev >= STEP_FROM_PEAK * peak and lr <= peak / LR_CUT_FACTOR:
            cut_at = i
            break
        peak, prev = max(peak, lr), lr
    if cut_at is None or cut_at == 0:
        return None
    at_cut = _num(epochs[cut_at - 1], key)  # the loss when the LR was cut (end of the epoch before)
    now = _num(epochs[-1], key)
    line = CONVERGED_RATIO * ref
    since = len(epochs) - cut_at
    if at_cut is None or now is None or at_cut <= line or since < PLATEAU_MIN_EPOCHS:
        return None
    if at_cut > LEARNING_RATIO * ref:  # it was not learning before the cut either: not the LR's fault
        return None
    if now < at_cut * (1 - PLATEAU_DROP) or now <= line:
        return None
    nxt = NEXT_ON_FAILURE.get(recipe_name, "alternative_1")
    cut_epoch = epochs[cut_at].get("epoch", cut_at + 1)
    return Verdict(
        "switch",
        f"LR too low before convergence: stop and run {_action(nxt)}.",
        f"Rule (LR cut before convergence, the seed MultiStepLR failure): the LR fell from {_fmt(peak)} to "
        f"{_fmt(lrs[cut_at])} (>= {LR_CUT_FACTOR:g}x) at epoch {cut_epoch} while the {_metric_name(key)} "
        f"{_fmt(at_cut)} was still above the convergence line {_fmt(line)} ({100 * CONVERGED_RATIO:.0f}% of the "
        f"start {_fmt(ref)}, the guide's 500/1750); {since} epochs later it is {_fmt(now)} (less than "
        f"{100 * PLATEAU_DROP:.0f}% lower). More epochs at this LR will not fix it.",
        nxt, "lr_too_low", len(epochs),
        {"peak_lr": peak, "cut_lr": lrs[cut_at], "cut_epoch": cut_epoch, "loss_at_cut": at_cut, "loss_now": now})


def _final(rule, epochs, key, ref, user, recipe_name, total) -> Verdict:
    vals = [v for v in (_num(e, key) for e in epochs) if v is not None and math.isfinite(v)]
    best = min(vals)
    lines = _Lines(rule, ref, user)
    nxt_fail = NEXT_ON_FAILURE.get(recipe_name)
    title = _recipe_title(recipe_name)
    prefix = f"Rule (guide, {title} after the last epoch {total}: {rule.guide_text}): best {_metric_name(key)} "
    details = {"best": best, "reference": ref, "line": lines.line, "partial_line": lines.partial}
    if rule.id == "final_lr_boost":
        first = vals[0]
        dropped = best <= rule.ratio * first
        text = (f"Rule (guide, {title}: {rule.guide_text}): best {_metric_name(key)} {_fmt(best)} is "
                f"{100 * best / first:.0f}% of its first epoch {_fmt(first)} (needs <= {100 * rule.ratio:.0f}%)")
        if dropped:
            return Verdict("partial", "The LR boost helped; for a final model run Alternative 1.",
                           text + " -> the higher LR helps; the guide does not recommend this for final training.",
                           "alternative_1", rule.id, len(epochs), details)
        return Verdict("fail", "The LR boost did not help: run Alternative 1.", text + " -> run Alternative 1.",
                       "alternative_1", rule.id, len(epochs), details)
    if best < lines.line:
        return Verdict("success", f"Success: use this model for the submission (best {_metric_name(key)} {_fmt(best)}).",
                       prefix + lines.describe(best) + " -> success.", "submission", rule.id, len(epochs), details)
    if lines.partial is not None and best < lines.partial:
        return Verdict("partial", f"Partial success: the model might still work (best {_metric_name(key)} {_fmt(best)}); "
                       f"{_action(nxt_fail)} may do better.",
                       prefix + lines.describe(best, "partial") + " -> partial success.", nxt_fail, rule.id,
                       len(epochs), details)
    return Verdict("fail", f"Not good enough: run {_action(nxt_fail)}.",
                   prefix + lines.describe(best, "partial" if lines.partial is not None else "line")
                   + f" -> {_action(nxt_fail)}.", nxt_fail, rule.id, len(epochs), details)


def _decision(rule, epochs, key, ref, user, total, recipe_name) -> Verdict | None:
    at = rule.scaled_epoch(total)
    if at is None or len(epochs) < at:
        return None
    value = _num(epochs[at - 1], key)
    if value is None or not math.isfinite(value):
        return None
    lines = _Lines(rule, ref, user)
    title = _recipe_title(recipe_name)
    text = (f"Rule (guide, {title} at {_scaled_note(rule, total)}: {rule.guide_text}): "
            f"{_metric_name(key)} at epoch {at} {lines.describe(value)}")
    details = {"decision_epoch": at, "value": value, "reference": ref, "line": lines.line}
    if value <= lines.line:
        return Verdict("continue", f"On track: continue to epoch {total}.",
                       text + f" -> continue to epoch {total}.", None, rule.id, len(epochs), details)
    nxt = rule.next_if_above
    if rule.if_above == "diagnose":
        head = f"Stop {title}: likely a data or preprocessing problem; run the diagnostic."
    else:
        head = f"Stop {title} and run {_action(nxt)}."
    return Verdict(rule.if_above, head, text + f" -> {head}", nxt, rule.id, len(epochs), details)


def _overfitting(epochs) -> Verdict | None:
    """Validation loss risen well above its best for several epochs while the training loss keeps falling."""
    val = [_num(e, "val_loss") for e in epochs]
    train = [_num(e, "train_loss") for e in epochs]
    if len(epochs) <= OVERFIT_PATIENCE or any(v is None for v in val):
        return None
    best_i = min(range(len(val)), key=val.__getitem__)
    recent = range(len(val) - OVERFIT_PATIENCE, len(val))
    if best_i >= recent[0] or not all(val[i] > (1 + OVERFIT_RISE) * val[best_i] for i in recent):
        return None
    if train[best_i] is None or train[-1] is None or train[-1] >= train[best_i]:
        return None  # both rising: not overfitting (divergence or a broken setup)
    best_epoch = epochs[best_i].get("epoch", best_i + 1)
    rise = val[-1] / val[best_i] - 1
    return Verdict("warn", f"Overfitting: the validation loss is {100 * rise:.0f}% above its best (epoch {best_epoch}).",
                   f"Rule (overfitting): the validation loss has stayed more than {100 * OVERFIT_RISE:.0f}% above its "
                   f"best {_fmt(val[best_i])} for {OVERFIT_PATIENCE} epochs while the training loss fell from "
                   f"{_fmt(train[best_i])} to {_fmt(train[-1])}. best.pt keeps the lowest validation loss; "
                   "stop here, or train on more data / with augmentation.", None, "overfitting", len(epochs),
                   {"best_epoch": best_epoch, "best": val[best_i], "value": val[-1]})


def _early(rule, epochs, key, ref, total, next_check) -> Verdict | None:
    at = rule.scaled_epoch(total)
    if len(epochs) < at:
        return None
    value = _num(epochs[-1], key)
    if value is None:
        return None
    if value <= rule.ratio * ref:
        return None
    nc = f" The decision comes at epoch {next_check}." if next_check else ""
    return Verdict("warn", f"Warning: the loss has not dropped by epoch {len(epochs)}.",
                   f"Rule (guide, early warning at {_scaled_note(rule, total)}: {rule.guide_text}): "
                   f"{_metric_name(key)} {_fmt(value)} is {100 * value / ref:.0f}% of the starting loss {_fmt(ref)} "
                   f"(should be below {100 * rule.ratio:.0f}%). Check the data (nbdetect.diagnose()) and the LR." + nc,
                   "diagnose", rule.id, len(epochs), {"value": value, "reference": ref})


def decide(history_epochs: list[dict], recipe_name: str, total_epochs: int, lr_per_epoch: list[float] | None = None,
           thresholds: UserThresholds | None = None, reference_loss: float | None = None,
           error: BaseException | str | None = None) -> Verdict:
    """The verdict for a run after its latest epoch.

    history_epochs: ``History.epochs`` (1-based ``epoch``, ``train_loss``, ``val_loss``, ``lr``...).
    recipe_name: ``"alternative_1"``, ``"alternative_2"``, ``"alternative_3"``, ``"seed_multistep"``
        or any other name (then only the generic rules apply).
    total_epochs: the run's planned number of epochs (decision epochs scale with it).
    lr_per_epoch: the LR at the end of each epoch (default: the records' ``lr``).
    thresholds: :class:`UserThresholds` in your own loss convention.
    reference_loss: the starting loss, when known better than from the first epoch.
    error: the training error, if the run failed (a non-finite loss is reported as divergence).
    """
    epochs = [e for e in history_epochs if isinstance(e, dict)]
    key = _metric_key(epochs) if epochs else "val_loss"
    ref = reference_loss if reference_loss and reference_loss > 0 else reference_of(epochs)
    div = _divergence(epochs, key, ref, error)
    if div is not None:
        return div
    if not epochs:
        return Verdict("pending", "Waiting for the first epoch.", "No rule applies before the first epoch ends.",
                       epoch=0)
    if not ref:
        return Verdict("pending", "No loss recorded yet.", "The first epoch has no finite loss to compare with.",
                       epoch=len(epochs))
    n = len(epochs)
    rules = [r for r in RULES if r.applies(recipe_name)]
    lrs = lr_per_epoch if lr_per_epoch is not None else [_num(e, "lr") for e in epochs]
    low = _lr_too_low(epochs, key, ref, list(lrs)[:n], recipe_name)
    finished = n >= total_epochs
    final_rule = next((r for r in rules if r.kind == "final"), None)
    if finished and final_rule is not None:
        verdict = _final(final_rule, epochs, key, ref, thresholds, recipe_name, total_epochs)
        if low is not None and verdict.status in ("fail", "partial"):
            low.headline = verdict.headline + " " + low.headline
            low.rule_text = verdict.rule_text + " Also: " + low.rule_text
            return low
        return verdict
    if low is not None:
        return low
    decision = next((r for r in rules if r.kind == "decision"), None)
    if decision is not None:
        v = _decision(decision, epochs, key, ref, thresholds, total_epochs, recipe_name)
        if v is not None:
            return v
    over = _overfitting(epochs)
    if over is not None:
        return over
    next_check = decision.scaled_epoch(total_epochs) if decision is not None else None
    early = next((r for r in rules if r.kind == "early_warning"), None)
    if early is not None:
        v = _early(early, epochs, key, ref, total_epochs, next_check)
        if v is not None:
            return v
    value = _num(epochs[-1], key)
    nxt = f"next check at epoch {next_check}" if next_check else f"graded after epoch {total_epochs}"
    return Verdict("continue", f"Training; {nxt}.",
                   f"No rule fires yet: {_metric_name(key)} {_fmt(value)} is {100 * value / ref:.0f}% of the starting "
                   f"loss {_fmt(ref)}; {nxt}.", None, None, n, {"value": value, "reference": ref})
