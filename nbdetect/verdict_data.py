"""The judge's numbers: the guide's rules as data, the policy thresholds, the user's own thresholds, and the
registry that gives every verdict rule its one identifier.

Pure data (no rule logic, no prose beyond the guide's own quoted wording). The rule functions
(:mod:`nbdetect.verdict_rules`) read every threshold here *through this module* (``_data.NAME``), so a test
that patches ``nbdetect.verdict_data.NAME`` changes the live judge.

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
"""
from __future__ import annotations

from dataclasses import dataclass

from . import families as _families
from . import recipes as _recipes


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
DETECTOR_LR_FLOOR = 1e-6  # below this no detector optimiser (SGD 1e-3..2e-2, Adam(W) 1e-5..1e-3) learns


@dataclass(frozen=True)
class RuleEntry:
    """One verdict rule under its one identifier.

    ``id`` is the verdict's ``rule_id``, the first column of docs/JUDGE.md's rule table and the name the tests
    use for it. ``functions`` are the rule functions of :mod:`nbdetect.verdict_rules` that report it (the first
    is its own); ``codes`` are the public finding codes (``checks/registry.py`` ``CODES``, docs/ERRORS.md) its
    findings carry, ``status`` their outcomes. ``final_*`` stands for every final grading on the guide's lines
    (``rules()`` of kind ``"final"``: the guide's and each family's ``final_rule``).
    """

    id: str
    functions: tuple[str, ...]
    codes: tuple[str, ...]
    status: tuple[str, ...]


#: Every verdict rule, in the order of the policy (most severe first), then the final gradings and the failed
#: run. docs/JUDGE.md's rule table is checked against it by a test.
REGISTRY: tuple[RuleEntry, ...] = (
    RuleEntry("nonfinite", ("rule_nonfinite",), ("lr_too_high",), ("fail",)),
    RuleEntry("divergence", ("rule_divergence",), ("lr_too_high",), ("fail",)),
    RuleEntry("overfitting", ("rule_overfitting",), ("overfitting",), ("warn",)),
    RuleEntry("map_collapse", ("rule_map_collapse",), ("map_collapse",), ("warn",)),
    RuleEntry("lr_too_low", ("rule_lr_cut_too_early",), ("lr_decay_before_convergence",), ("switch",)),
    RuleEntry("alt1_epoch20", ("rule_decision",), ("curve_ok", "below_expected_curve"), ("continue", "warn", "switch")),
    RuleEntry("alt2_epoch20", ("rule_decision",), ("curve_ok", "below_expected_curve"),
              ("continue", "warn", "diagnose")),
    RuleEntry("plateau", ("rule_stalled",), ("loss_plateau", "lr_too_low"), ("warn",)),
    RuleEntry("not_learning", ("rule_not_learning", "rule_stalled"), ("loss_plateau", "lr_too_low"), ("warn",)),
    RuleEntry("early_epoch15", ("rule_not_learning",), ("loss_plateau", "lr_too_low"), ("warn",)),
    RuleEntry("final_*", ("rule_final",), ("curve_ok", "below_expected_curve"), ("success", "partial", "fail")),
    RuleEntry("final_own_evidence", ("rule_final", "rule_final_own_evidence"), ("curve_ok", "loss_plateau"),
              ("success", "partial", "warn", "fail")),
    RuleEntry("run_failed", ("judge_history",), ("run_failed",), ("fail",)),
)


def entry(rule_id: str | None) -> RuleEntry | None:
    """The registry entry of a verdict's ``rule_id`` (a guide or family final grading is ``final_*``)."""
    for e in REGISTRY:
        if e.id == rule_id:
            return e
    if rule_id and any(r.id == rule_id and r.kind == "final" for r in rules()):
        return next(e for e in REGISTRY if e.id == "final_*")
    return None
