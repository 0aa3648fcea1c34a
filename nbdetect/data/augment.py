"""Box-aware training augmentation with ``torchvision.transforms.v2`` (its transforms and kernels; two of its
random steps are made cheaper here, below).

What detection training needs on small datasets, in the order applied, each with its own probability:

* photometric jitter (brightness, contrast, saturation, then a hue shift as a rotation of the YIQ chroma plane;
  channel order untouched);
* zoom out (the image placed on a larger canvas of the mean colour: objects get smaller);
* zoom in (a random crop that keeps boxes, IoU-constrained as in SSD: objects get larger; torchvision's
  ``RandomIoUCrop`` with its trials drawn at once, ``IoUCrop``);
* horizontal flip, OFF by default: for traffic signs a flip changes the meaning of some classes (keep right /
  keep left, turn left / turn right); ``flip=True`` for data where it does not.

The model's own transform resizes every image afterwards, so zooming in and out is the scale jitter. Boxes
that end up degenerate or outside are removed with their labels (``SanitizeBoundingBoxes``); an image may end
up with no box, which torchvision's detectors train on as background. Only the training split is augmented.

Cost (GTSDB 320-px tiles, one thread, each step applied to all 709 tiles): torchvision's HSV hue shift took
6.0 s and ``RandomIoUCrop``'s Python loop of trials 6.8 s; at their probabilities they were 11% of a training
epoch. The chroma rotation is one 3x3 matrix per image and ``IoUCrop`` draws the same crops from the same
distribution in one tensor step: the data wait is 4% of an epoch now (benchmarks/bench_data.py measures both).
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


#: The largest hue shift, a share of a full turn (torchvision ColorJitter's hue argument; YOLOv8's hsv_h is 0.015).
HUE_SHIFT = 0.03
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rotate_hue(image: torch.Tensor, turn: float) -> torch.Tensor:
    """``image`` (float [3, H, W] in 0-1) with its hue moved by ``turn`` of a full circle: the chroma (I, Q) of
    YIQ rotated, the luma kept, clamped to 0-1. The linear form of a hue shift: one 3x3 matrix instead of the
    HSV round trip (about 30 passes over the pixels)."""
    import math

    c, s = math.cos(2 * math.pi * turn), math.sin(2 * math.pi * turn)
    rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    matrix = torch.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ
    return torch.einsum("ij,jhw->ihw", matrix.to(image.dtype), image).clamp_(0.0, 1.0)


def _photometric():
    """ColorJitter's brightness, contrast and saturation (torchvision), then a hue shift (rotate_hue)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    class HueShift(v2.Transform):
        _transformed_types = (tv_tensors.Image,)

        def make_params(self, flat_inputs):
            return {"turn": float(torch.empty(()).uniform_(-HUE_SHIFT, HUE_SHIFT))}

        def transform(self, inpt, params):
            return tv_tensors.Image(rotate_hue(inpt.as_subclass(torch.Tensor), params["turn"]))

        _get_params, _transform = make_params, transform  # the names before torchvision 0.21

    return v2.Compose([v2.ColorJitter(0.25, 0.25, 0.25), HueShift()])


def _iou_crop_class():
    from torchvision import tv_tensors
    from torchvision.ops import box_iou
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    class IoUCrop(v2.RandomIoUCrop):
        """torchvision's RandomIoUCrop (SSD's sampler) with each round's ``trials`` crops drawn and checked in one
        tensor step instead of a Python loop: the first crop that passes, so the same distribution of crops.

        On GTSDB tiles it mostly leaves the image as it is (a 20-px sign never overlaps a crop of 128+ px by
        IoU 0.3; 2% of tiles were cropped): torchvision's loop spent 9.6 ms per tile finding that out."""

        def make_params(self, flat_inputs):
            boxes = next(x for x in flat_inputs if isinstance(x, tv_tensors.BoundingBoxes))
            h, w = boxes.canvas_size
            xyxy = F.convert_bounding_box_format(boxes.as_subclass(torch.Tensor), boxes.format,
                                                 tv_tensors.BoundingBoxFormat.XYXY).reshape(-1, 4)
            cx, cy = (xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2
            if not len(xyxy):
                return {}  # without boxes only the leave-as-is option can end torchvision's loop
            while True:
                floor = self.options[int(torch.randint(low=0, high=len(self.options), size=(1,)))]
                if floor >= 1.0:  # a value of 1 or more encodes leave as is
                    return {}
                scale = self.min_scale + (self.max_scale - self.min_scale) * torch.rand(self.trials, 2)
                new_w, new_h = (w * scale[:, 0]).long(), (h * scale[:, 1]).long()
                place = torch.rand(self.trials, 2)
                left, top = ((w - new_w) * place[:, 0]).long(), ((h - new_h) * place[:, 1]).long()
                right, bottom = left + new_w, top + new_h
                ratio = new_w.double() / new_h.clamp(min=1).double()
                ok = (new_w > 0) & (new_h > 0) & (ratio >= self.min_aspect_ratio) & (ratio <= self.max_aspect_ratio)
                inside = ((left[:, None] < cx) & (cx < right[:, None]) & (top[:, None] < cy) & (cy < bottom[:, None]))
                iou = box_iou(torch.stack([left, top, right, bottom], 1).to(xyxy.dtype), xyxy)
                ok &= torch.where(inside, iou, torch.full_like(iou, -1.0)).amax(1) >= floor
                hit = ok.nonzero()
                if len(hit):
                    i = int(hit[0, 0])
                    return dict(top=int(top[i]), left=int(left[i]), height=int(new_h[i]), width=int(new_w[i]),
                                is_within_crop_area=inside[i])

        _get_params = make_params  # the name before torchvision 0.21

    return IoUCrop


def build_transform(config: AugmentConfig):
    from torchvision.transforms import v2

    steps = []
    if config.photometric > 0:
        steps.append(v2.RandomApply([_photometric()], p=config.photometric))
    if config.zoom_out > 0:
        steps.append(v2.RandomApply([v2.RandomZoomOut(fill=0.45, side_range=(1.0, config.zoom_out_max))],
                                    p=config.zoom_out))
    if config.zoom_in > 0:
        steps.append(v2.RandomApply([_iou_crop_class()(min_scale=0.4, sampler_options=[0.3, 0.5, 0.7, 0.9, 1.0],
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
