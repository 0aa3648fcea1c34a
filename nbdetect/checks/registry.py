"""Every diagnose() check as one record, and every finding code with its priority and next action.

A check declares what it needs (``model``, ``optimizer``, ``data``, ``history``...), the codes it can
emit, and the function that runs it on the shared :class:`~nbdetect.checks.core.Context`, by name
(``"checks_images:run_images"``, a module of :mod:`nbdetect.checks`): this module is data and imports no
checks module, at module level or in a function; :func:`run_check` imports the named module when the check
runs. (A check registered from your code may give the function itself.) A code
declares how fundamental it is (``priority``: lower is reported first) and what to run when it is the
root cause (``next_action``, a key of :data:`nbdetect.actions.ACTIONS`). A test fails when a check emits
an undeclared code or a code lacks either, or names a function that does not exist. Add a check: a
``run_<name>(ctx)`` function in its module + one record here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..recipes import ALTERNATIVE_2, ALTERNATIVE_3, FIRST

FIX_DATA = "fix_data"


@dataclass(frozen=True)
class Code:
    priority: int
    next_action: str
    observation: bool = False  # worth knowing, never the root cause unless it fails


#: Lower priority = more fundamental = reported first among findings of the same status.
CODES: dict[str, Code] = {
    # the run itself stopped with an error (the live verdict of a crashed run)
    "run_failed": Code(4, FIX_DATA),
    # a check that could not run, or an input that could not be read: inconclusive, never "no problem"
    "not_checked": Code(140, "fix_input", observation=True),
    # one of diagnose()'s own options given wrong: its default was used instead (named in the report's top lines)
    "option_ignored": Code(145, "fix_input", observation=True),
    # what goes into the model
    "data_unreadable": Code(5, FIX_DATA),
    "image_shape": Code(10, FIX_DATA),
    "image_dtype": Code(11, FIX_DATA),
    "image_not_float": Code(11, FIX_DATA),
    "image_range_255": Code(12, FIX_DATA),
    "image_double_normalized": Code(13, FIX_DATA),
    "box_normalized": Code(20, FIX_DATA),
    "box_xywh": Code(21, FIX_DATA),
    "box_not_xyxy": Code(21, FIX_DATA),
    "box_degenerate": Code(22, FIX_DATA),
    "box_outside_image": Code(23, FIX_DATA),
    "num_classes_too_small": Code(30, FIX_DATA),
    "labels_shifted": Code(31, FIX_DATA),
    "label_zero_background": Code(32, FIX_DATA),
    "label_zero": Code(33, FIX_DATA),
    "label_out_of_range": Code(34, FIX_DATA),
    "num_classes_mismatch": Code(35, FIX_DATA),
    "empty_dataset": Code(36, FIX_DATA),
    # the model definition
    "prior_bias_lost": Code(40, FIRST.name),
    # how the loss is reported
    "loss_summed_over_batches": Code(50, "fix_loss_reporting"),
    "loss_scale_unexpected": Code(55, "fix_loss_reporting"),
    # can the pipeline learn at all
    "overfit_failed": Code(60, FIX_DATA),
    "overfit_slow": Code(61, "lower_lr"),
    # the schedule and the curve (judged by nbdetect.verdict over nbdetect.curve_facts)
    "optimizer_misses_params": Code(45, "fix_optimizer"),
    "lr_too_high": Code(70, "lower_lr"),
    "lr_decay_before_convergence": Code(80, FIRST.name),
    "overfitting": Code(82, "use_best"),
    "map_collapse": Code(83, "use_best"),
    "lr_too_low": Code(85, ALTERNATIVE_3.name),
    "loss_plateau": Code(90, FIRST.name),
    "below_expected_curve": Code(92, ALTERNATIVE_2.name),
    # softer data observations
    "box_too_small_for_anchors": Code(100, ALTERNATIVE_2.name),
    "no_boxes": Code(101, FIX_DATA, observation=True),
    "class_never_present": Code(102, FIX_DATA, observation=True),
    "class_imbalance": Code(103, "continue", observation=True),
    # passes and skips (never a root cause)
    "images_ok": Code(200, "continue"), "boxes_ok": Code(200, "continue"), "anchors_ok": Code(200, "continue"),
    "labels_ok": Code(200, "continue"), "labels_unchecked": Code(200, "continue"),
    "prior_bias_ok": Code(200, "continue"), "prior_bias_na": Code(200, "continue"),
    "loss_scale_ok": Code(200, "continue"), "optimizer_ok": Code(200, "continue"), "loss_scale_unchecked": Code(200, "continue"),
    "overfit_ok": Code(200, "continue"), "overfit_inconclusive": Code(200, "continue"),
    "overfit_skipped": Code(200, "continue"), "lr_timeline": Code(200, "continue"), "curve_ok": Code(200, "continue"),
}
DEFAULT_PRIORITY = 150


@dataclass(frozen=True)
class Check:
    name: str
    needs: tuple[str, ...]  # Context attributes that must be present: "model", "data", "history", ...
    codes: tuple[str, ...]
    run: str | Callable  # "module:function" in nbdetect.checks (function(ctx) -> list[Finding]), or the function
    why_skipped: str = ""  # one line when a need is missing

    def function(self) -> Callable:
        """The function that runs this check: the one named, imported now, or the one given."""
        if callable(self.run):
            return self.run
        module, _, name = self.run.partition(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def run_check(check: Check, ctx) -> list:
    """Run ``check`` on diagnose's shared context; its findings."""
    return check.function()(ctx)


CHECKS: tuple[Check, ...] = (
    Check("readable", ("data",), ("data_unreadable",), "checks_validate:run_readable"),
    Check("images", ("data",), ("image_dtype", "image_shape", "image_range_255", "image_double_normalized",
                                 "images_ok"), "checks_images:run_images",
          "data checks (images, boxes, labels): no data given"),
    Check("boxes", ("data",), ("no_boxes", "box_normalized", "box_xywh", "box_degenerate", "box_outside_image",
                                "box_too_small_for_anchors", "anchors_ok", "boxes_ok"), "checks_boxes:run_boxes"),
    Check("labels", ("data",), ("num_classes_mismatch", "labels_unchecked", "label_zero_background",
                                 "labels_shifted", "label_zero", "num_classes_too_small", "label_out_of_range",
                                 "class_never_present", "class_imbalance", "labels_ok"), "checks_labels:run_labels"),
    Check("validate", ("data",), ("image_not_float", "image_range_255", "image_shape", "box_not_xyxy",
                                   "box_normalized", "box_outside_image", "box_degenerate", "no_boxes",
                                   "label_out_of_range", "label_zero", "num_classes_mismatch", "empty_dataset"),
          "checks_validate:run_validate"),
    Check("model", ("model",), ("prior_bias_na", "prior_bias_lost", "prior_bias_ok"), "checks_model:run_model",
          "model checks (prior bias, anchors, loss measurement, overfit): no model given"),
    Check("loss_scale", ("history",), ("loss_scale_unchecked", "loss_summed_over_batches",
                                        "loss_scale_unexpected", "loss_scale_ok"), "checks_loss:run_loss_scale"),
    Check("overfit", ("model", "data"), ("overfit_failed", "overfit_skipped", "overfit_inconclusive", "overfit_ok",
                                         "overfit_slow"), "checks_overfit:run_overfit"),
    Check("lr", ("optimizer",), ("lr_timeline", "lr_too_high", "lr_too_low"), "checks_lr:run_lr"),
    Check("optimizer", ("model", "optimizer"), ("optimizer_misses_params", "optimizer_ok"),
          "checks_lr:run_optimizer"),
    Check("curve", ("history",), ("lr_too_high", "lr_decay_before_convergence", "overfitting", "lr_too_low",
                                  "loss_plateau", "below_expected_curve", "curve_ok"), "checks_curve:check_curve",
          "curve checks (plateau, divergence, LR decay vs convergence, loss scale): no history given"),
)


def priority(name: str) -> int:
    spec = CODES.get(name)
    return spec.priority if spec else DEFAULT_PRIORITY


def next_action(name: str) -> str:
    spec = CODES.get(name)
    return spec.next_action if spec else "diagnose"


def is_observation(name: str) -> bool:
    spec = CODES.get(name)
    return bool(spec and spec.observation)


def register_check(check: Check, codes: dict[str, Code] | None = None) -> Check:
    """Add a check (and the codes only it emits) so every diagnose() call runs it after the built-in ones."""
    global CHECKS
    for name, spec in (codes or {}).items():
        if name in CODES and CODES[name] != spec:
            raise ValueError(f"finding code {name!r} is already declared differently")
        CODES[name] = spec
    missing = [c for c in check.codes if c not in CODES]
    if missing:
        raise ValueError(f"check {check.name!r} emits undeclared codes {missing}: declare them in CODES")
    if any(c.name == check.name for c in CHECKS):
        raise ValueError(f"a check named {check.name!r} is already registered")
    CHECKS = CHECKS + (check,)
    return check
