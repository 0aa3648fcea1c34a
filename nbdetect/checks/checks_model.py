"""Model-definition checks: the classification prior bias of a family whose head has one (RetinaNet, FCOS)."""
from __future__ import annotations

import math

from ..families import get as get_family
from .model_probe import PRIOR_BIAS, PRIOR_PROBABILITY
from .report import Finding

CHECK = "model"

# Sigmoid focal loss (alpha 0.25, gamma 2) of one positive anchor-class at the prior probability:
# the classification loss per matched anchor that a head with its prior (RetinaNet, FCOS) starts from.
EXPECTED_INIT_CLS_LOSS = 0.25 * (1 - PRIOR_PROBABILITY) ** 2 * -math.log(PRIOR_PROBABILITY)  # ~1.13


def check_prior_bias(model_info, measured_components: dict | None = None) -> list[Finding]:
    if model_info is None:
        return []
    family = get_family(model_info.family)
    if family is None or not family.prior_head or model_info.cls_bias_mean is None:
        return [Finding(CHECK, "prior_bias_na", "skip",
                        f"prior-bias check not applicable ({model_info.family} model)")]
    name, head = family.title, family.prior_head.rpartition(":")[2]
    module = family.prior_head.partition(":")[0]
    b = model_info.cls_bias_mean
    cls = (measured_components or {}).get("classification")
    measured = f"; measured classification loss now {cls:.3g} per image" if cls is not None else ""
    evidence = (f"mean cls_logits bias {b:.3f}; {name} initialises it to -log((1-{PRIOR_PROBABILITY})/"
                f"{PRIOR_PROBABILITY}) = {PRIOR_BIAS:.2f} so every anchor starts at probability 0.01 and the "
                f"classification loss starts near {EXPECTED_INIT_CLS_LOSS:.2f} per matched anchor; "
                f"it stays strongly negative after training{measured}")
    if b > -2.0:
        return [Finding(CHECK, "prior_bias_lost", "fail",
                        f"{name}'s classification head lost its prior-probability bias: every anchor starts at "
                        f"p~{1 / (1 + math.exp(-b)):.2f}, so ~100k background anchors swamp the loss",
                        evidence,
                        "Re-create the head with torchvision's class (it sets the prior):\n"
                        f"  from {module} import {head}\n"
                        f"  model.head.classification_head = {head}(in_ch, num_anchors, K + 1)\n"
                        "or set it: torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, "
                        "-math.log(99))  (nbdetect.alternative_1 builds the head correctly)")]
    return [Finding(CHECK, "prior_bias_ok", "pass", f"{name} classification head has its prior bias", evidence)]


def run_model(ctx) -> list[Finding]:
    """The "model" check of the registry (nbdetect.checks.registry), on diagnose's shared context."""
    return check_prior_bias(ctx.info, ctx.measured_components)
