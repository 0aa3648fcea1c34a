"""Box-aware training augmentation with ``torchvision.transforms.v2`` (not re-implemented here).

What detection training needs on small datasets, in the order applied, each with its own probability:

* photometric jitter (brightness, contrast, saturation, hue; channel order untouched);
* zoom out (the image placed on a larger canvas of the mean colour: objects get smaller);
* zoom in (a random crop that keeps boxes, IoU-constrained as in SSD: objects get larger);
* horizontal flip, OFF by default: for traffic signs a flip changes the meaning of some classes (keep right /
  keep left, turn left / turn right); ``flip=True`` for data where it does not.

The model's own transform resizes every image afterwards, so zooming in and out is the scale jitter. Boxes
that end up degenerate or outside are removed with their labels (``SanitizeBoundingBoxes``); an image may end
up with no box, which torchvision's detectors train on as background. Only the training split is augmented.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from ..config_dicts import record_from_dict


@dataclass(frozen=True)
class AugmentConfig:
    photometric: float = 0.5  # probability of the photometric jitter
    zoom_out: float = 0.3  # probability of zooming out (up to zoom_out_max x the side)
    zoom_out_max: float = 1.6
    zoom_in: float = 0.5  # probability of an IoU-constrained crop
    flip: bool = False  # horizontal flip (changes the meaning of some traffic signs)

    def describe(self) -> str:
        parts = [f"photometric p={self.photometric:g}", f"zoom out p={self.zoom_out:g} (<= {self.zoom_out_max:g}x)",
                 f"zoom-in crop p={self.zoom_in:g}", "horizontal flip" if self.flip else "no flip"]
        return ", ".join(parts)


def augment_config(value) -> AugmentConfig | bool | None:
    """``augment=`` checked: None (the recipe's), True/False, an AugmentConfig, or a dict of its fields (an
    AugmentConfig with those changed). Raises ValueError with the reason (nbdetect.arguments turns it into the
    argument's refusal)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        value = record_from_dict(AugmentConfig, value)
    if not isinstance(value, AugmentConfig):
        raise ValueError(f"is a {type(value).__name__}: give True, False or a dict such as {{'flip': True}}")
    for name in ("photometric", "zoom_out", "zoom_in"):
        p = getattr(value, name)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"has {name} {p!r}: a probability from 0 to 1")
    m = value.zoom_out_max
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not 1.0 <= m <= 4.0:
        raise ValueError(f"has zoom_out_max {m!r}: how many times the side a zoomed-out canvas may be, 1 to 4")
    if not isinstance(value.flip, bool):
        raise ValueError(f"has flip {value.flip!r}: True or False")
    return value


def build_transform(config: AugmentConfig):
    from torchvision.transforms import v2

    steps = []
    if config.photometric > 0:
        steps.append(v2.RandomApply([v2.ColorJitter(0.25, 0.25, 0.25, 0.03)], p=config.photometric))
    if config.zoom_out > 0:
        steps.append(v2.RandomApply([v2.RandomZoomOut(fill=0.45, side_range=(1.0, config.zoom_out_max))],
                                    p=config.zoom_out))
    if config.zoom_in > 0:
        steps.append(v2.RandomApply([v2.RandomIoUCrop(min_scale=0.4, sampler_options=[0.3, 0.5, 0.7, 0.9, 1.0],
                                                      trials=20)], p=config.zoom_in))
    if config.flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    steps.append(v2.ClampBoundingBoxes())
    steps.append(v2.SanitizeBoundingBoxes(min_size=2.0, labels_getter=lambda inputs: inputs[1]["labels"]))
    return v2.Compose(steps)


class Augmented(Dataset):
    """``dataset``'s samples, augmented (``(image float [3, H, W], target dict)`` in and out)."""

    def __init__(self, dataset, config: AugmentConfig | None = None):
        self.dataset = dataset
        self.config = config or AugmentConfig()
        self.transform = build_transform(self.config)
        for name in ("num_classes", "class_names"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        from torchvision import tv_tensors

        image, target = self.dataset[index]
        h, w = image.shape[-2:]
        boxes = tv_tensors.BoundingBoxes(target["boxes"].reshape(-1, 4).float(), format="XYXY", canvas_size=(h, w))
        out_image, out = self.transform(tv_tensors.Image(image), {**target, "boxes": boxes})
        out = dict(out)
        out["boxes"] = out["boxes"].as_subclass(torch.Tensor).reshape(-1, 4)
        out["labels"] = out["labels"].reshape(-1)
        for key in ("area", "iscrowd"):  # per-box fields that no longer match the boxes are dropped
            if key in out and torch.is_tensor(out[key]) and len(out[key]) != len(out["boxes"]):
                del out[key]
        return out_image.as_subclass(torch.Tensor), out
