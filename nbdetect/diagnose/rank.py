"""Root-cause ordering as data.

A failing data or pipeline problem makes every schedule observation moot (a
model fed 0-255 images or shifted labels cannot be rescued by a better LR), so
causes are ranked from the most fundamental (what goes into the model) to the
most superficial (how the curve looks). ``PRIORITY`` holds that order per
finding code; ``NEXT_ACTION`` says which guide step to run next when that code
is the root cause.
"""
from __future__ import annotations

STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}

# Lower = more fundamental = reported first among findings of the same status.
PRIORITY: dict[str, int] = {
    # what goes into the model
    "image_shape": 10,
    "image_dtype": 11,
    "image_range_255": 12,
    "image_double_normalized": 13,
    "box_normalized": 20,
    "box_xywh": 21,
    "box_degenerate": 22,
    "box_outside_image": 23,
    "num_classes_too_small": 30,
    "labels_shifted": 31,
    "label_zero_background": 32,
    "label_zero": 33,
    "label_out_of_range": 34,
    "num_classes_mismatch": 35,
    # the model definition
    "prior_bias_lost": 40,
    # how the loss is reported
    "loss_summed_over_batches": 50,
    "loss_scale_unexpected": 55,
    # can the pipeline learn at all
    "overfit_failed": 60,
    # the schedule
    "lr_too_high": 70,
    "lr_decay_before_convergence": 80,
    "lr_too_low": 85,
    # the curve
    "loss_plateau": 90,
    "below_expected_curve": 92,
    # softer data observations
    "box_too_small_for_anchors": 100,
    "no_boxes": 101,
    "class_never_present": 102,
    "class_imbalance": 103,
}
DEFAULT_PRIORITY = 150

FIX_DATA = "fix_data"
# What to run next when a code is the root cause.
NEXT_ACTION: dict[str, str] = {
    "image_shape": FIX_DATA,
    "image_dtype": FIX_DATA,
    "image_range_255": FIX_DATA,
    "image_double_normalized": FIX_DATA,
    "box_normalized": FIX_DATA,
    "box_xywh": FIX_DATA,
    "box_degenerate": FIX_DATA,
    "box_outside_image": FIX_DATA,
    "num_classes_too_small": FIX_DATA,
    "labels_shifted": FIX_DATA,
    "label_zero_background": FIX_DATA,
    "label_zero": FIX_DATA,
    "label_out_of_range": FIX_DATA,
    "num_classes_mismatch": FIX_DATA,
    "prior_bias_lost": "alternative_1",
    "loss_summed_over_batches": "fix_loss_reporting",
    "loss_scale_unexpected": "fix_loss_reporting",
    "overfit_failed": FIX_DATA,
    "lr_too_high": "alternative_1",
    "lr_decay_before_convergence": "alternative_1",
    "lr_too_low": "alternative_1",
    "loss_plateau": "alternative_1",
    "below_expected_curve": "alternative_2",
    "box_too_small_for_anchors": "alternative_2",
    "no_boxes": FIX_DATA,
    "class_never_present": FIX_DATA,
    "class_imbalance": "continue",
}

NEXT_ACTION_TEXT = {
    FIX_DATA: "Fix the data/pipeline problem above first; no schedule can compensate for it. "
              "Then re-run diagnose() and start alternative_1.",
    "alternative_1": "Run alternative_1 (RetinaNet, warmup + cosine from 5e-4, head with its prior bias).",
    "alternative_2": "Run alternative_2 (Faster R-CNN): it handles small objects better than RetinaNet.",
    "fix_loss_reporting": "Fix how the loss is reported (average over batches/images); the training itself "
                          "may be fine - compare the corrected numbers before changing anything else.",
    "continue": "Nothing blocks learning: keep training (or run alternative_1 for a better schedule).",
}


# Observations worth knowing that do not by themselves stop a run from learning: never the root cause
# unless they fail.
OBSERVATIONS = {"class_imbalance", "class_never_present", "no_boxes"}


def can_be_root(finding) -> bool:
    return finding.status == "fail" or (finding.status == "warn" and finding.code not in OBSERVATIONS)


def sort_key(finding) -> tuple:
    return (STATUS_ORDER.get(finding.status, 9), finding.priority, finding.check, finding.code)


def rank(findings: list) -> list:
    """Findings sorted: failures first, then warnings, each from most to least fundamental."""
    return sorted(findings, key=sort_key)


def next_action_for(root) -> str:
    if root is None or root.status not in ("fail", "warn"):
        return "continue"
    return NEXT_ACTION.get(root.code, "alternative_1")
