"""Read what diagnose needs from a torchvision detector without changing it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..families import of_model

PRIOR_PROBABILITY = 0.01
PRIOR_BIAS = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)  # -4.595


@dataclass
class ModelInfo:
    family: str  # a nbdetect.families name ("retinanet", "fasterrcnn", "fcos"...) or "unknown"
    num_outputs: int | None  # classifier outputs (K + 1 for nbdetect's convention)
    anchor_sizes: list[tuple[float, ...]] = field(default_factory=list)  # per feature level
    aspect_ratios: list[tuple[float, ...]] = field(default_factory=list)
    min_size: int | None = None  # the model's internal resize (short side)
    max_size: int | None = None
    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    cls_bias_mean: float | None = None  # classification-logit bias of a head with a prior (RetinaNet, FCOS: -4.6)
    n_params: int = 0
    device: str = "cpu"

    @property
    def num_classes(self) -> int | None:
        """Real classes K the model can learn with labels 1..K."""
        return None if self.num_outputs is None else self.num_outputs - 1

    @property
    def normalizes(self) -> bool:
        return self.image_mean is not None and any(abs(m) > 1e-6 for m in self.image_mean)

    def scale_for(self, height: int, width: int) -> float:
        """Factor the model's transform resizes an image of this size by (torchvision's rule)."""
        if not self.min_size:
            return 1.0
        short, long = min(height, width), max(height, width)
        s = self.min_size / short
        if self.max_size and long * s > self.max_size:
            s = self.max_size / long
        return s


def probe(model) -> ModelInfo | None:
    """What diagnose needs from ``model``, read through its family's record (nbdetect.families): classifier
    outputs, anchors (only anchor boxes matched by IoU: a point-per-location family such as FCOS has no anchor
    shapes to compare boxes with or fit), the prior bias of a head that has one."""
    if model is None:
        return None
    fam = of_model(model)
    family = fam.name if fam is not None else "unknown"
    outputs = fam.outputs(model) if fam is not None else None
    anchors = fam.anchors(model) if fam is not None and fam.anchor_boxes else None
    bias_mean = None
    cls_head = fam.classification_head(model) if fam is not None and fam.prior_head else None
    logits = getattr(cls_head, "cls_logits", None)
    if logits is not None and getattr(logits, "bias", None) is not None:
        bias_mean = float(logits.bias.detach().float().mean())
    elif logits is not None:
        bias_mean = 0.0  # a head rebuilt with bias=False: every anchor starts at p = 0.5, no prior at all
    transform = getattr(model, "transform", None)
    min_size = getattr(transform, "min_size", None)
    if isinstance(min_size, (tuple, list)):
        min_size = min(min_size)
    params = list(model.parameters())
    return ModelInfo(
        family=family,
        num_outputs=outputs,
        anchor_sizes=[tuple(float(x) for x in s) for s in getattr(anchors, "sizes", [])],
        aspect_ratios=[tuple(float(x) for x in r) for r in getattr(anchors, "aspect_ratios", [])],
        min_size=int(min_size) if min_size else None,
        max_size=int(getattr(transform, "max_size", 0)) or None,
        image_mean=list(getattr(transform, "image_mean", []) or []) or None,
        image_std=list(getattr(transform, "image_std", []) or []) or None,
        cls_bias_mean=bias_mean,
        n_params=sum(p.numel() for p in params),
        device=str(params[0].device) if params else "cpu",
    )
