"""Pure sample checks: every malformed sample is named with its index before training starts.

``check_sample`` / ``check_dataset`` return :class:`Problem` records (data, not
exceptions) so ``diagnose()`` can reuse them; ``raise_if_invalid`` turns the
errors into one readable ``ValueError``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from ..conventions import shift_labels
from ..numbers import fmt_box
from .box_rules import looks_normalised
from .base import DetectionDataset
from ..errors import DataError

BOX_TOLERANCE_PX = 2.0


@dataclass(frozen=True)
class Problem:
    index: int  # sample index (-1: the dataset as a whole)
    code: str
    message: str
    severity: str = "error"  # "error" | "warning" | "info" (normal data worth knowing: a background image)


def check_image(index: int, image) -> tuple[list[Problem], tuple[int, int] | None]:
    """Problems of one image, and its (height, width) when it is usable."""
    where = f"sample {index}"
    if not torch.is_tensor(image):
        kind = type(image).__module__.split(".")[0] + "." + type(image).__name__
        return [Problem(index, "image_not_float", f"{where}: image is a {kind}, expected a float tensor "
                        "[3, H, W] in [0, 1] (convert with torchvision.transforms.functional.to_tensor)")], None
    if image.ndim != 3:
        return [Problem(index, "image_shape", f"{where}: image has shape {tuple(image.shape)}, expected [3, H, W]")], None
    if image.shape[0] != 3:
        if image.shape[-1] in (1, 3, 4) and image.shape[0] not in (1, 3, 4):
            msg = f"{where}: image has shape {tuple(image.shape)} (channels last, HWC); expected CHW [3, H, W] (use image.permute(2, 0, 1))"
        else:
            msg = f"{where}: image has {image.shape[0]} channels (shape {tuple(image.shape)}); expected 3 (RGB)"
        return [Problem(index, "image_shape", msg)], None
    hw = (int(image.shape[1]), int(image.shape[2]))
    if not image.is_floating_point():
        return [Problem(index, "image_not_float", f"{where}: image dtype is {image.dtype}, expected float in [0, 1] "
                        "(divide by 255: image.float() / 255)")], hw
    lo, hi = float(image.min()), float(image.max())
    if lo < -0.01:
        return [Problem(index, "image_normalized", f"{where}: image values go down to {lo:.3g}: it looks "
                        "mean/std-normalised; torchvision detectors normalise internally, so pass [0, 1] images")], hw
    if hi > 1.5:
        return [Problem(index, "image_range_255", f"{where}: image values go up to {hi:.4g}; expected [0, 1] "
                        "(divide by 255)")], hw
    if not bool(torch.isfinite(image).all()):
        return [Problem(index, "image_not_finite", f"{where}: image contains NaN or Inf")], hw
    return [], hw


def check_target(index: int, target, num_classes: int, hw: tuple[int, int] | None, label_base: int = 1) -> list[Problem]:
    where = f"sample {index}"
    wrong = target_format_problem(index, target)
    if wrong:
        return [wrong]
    try:
        boxes = torch.as_tensor(target["boxes"], dtype=torch.float32)
        labels = torch.as_tensor(target["labels"])
    except (TypeError, ValueError, RuntimeError) as exc:
        return [Problem(index, "target_format", f"{where}: boxes / labels cannot be read as tensors ({exc})")]
    return _check_boxes(index, where, boxes, labels, num_classes, hw, label_base)


def target_format_problem(index: int, target) -> Problem | None:
    """A target that is not a dict with 'boxes' and 'labels' (a list, a tuple, a missing key); else None."""
    where = f"sample {index}"
    if not isinstance(target, dict):
        return Problem(index, "target_format", f"{where}: target is a {type(target).__name__}; it must be a dict "
                       "with 'boxes' and 'labels' (torchvision's detection format)")
    if "boxes" not in target or "labels" not in target:
        missing = " and ".join(repr(k) for k in ("boxes", "labels") if k not in target)
        return Problem(index, "target_format", f"{where}: target has no {missing} (its keys: "
                        f"{', '.join(map(repr, list(target)[:6]))}); it must be a dict with 'boxes' and 'labels'")
    return None


def _check_boxes(index, where, boxes, labels, num_classes, hw, label_base) -> list[Problem]:
    if boxes.numel() == 0:
        return [Problem(index, "no_boxes", f"{where}: no objects (a background image)", "info")]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        return [Problem(index, "box_shape", f"{where}: boxes have shape {tuple(boxes.shape)}, expected [N, 4]")]
    out = []
    if labels.numel() != boxes.shape[0]:
        out.append(Problem(index, "label_count", f"{where}: {boxes.shape[0]} boxes but {labels.numel()} labels"))
    if not bool(torch.isfinite(boxes).all()):
        return out + [Problem(index, "box_not_finite", f"{where}: boxes contain NaN or Inf")]
    x1, y1, x2, y2 = boxes.unbind(1)
    if looks_normalised(boxes, hw):
        out.append(Problem(index, "box_normalized", f"{where}: boxes look normalised to 0-1 (e.g. {fmt_box(boxes[0])} "
                           f"on a {hw[1]}x{hw[0]} image); nbdetect expects absolute pixels: multiply x by the "
                           "width and y by the height"))
    else:
        flipped = (x2 < x1) | (y2 < y1)
        flat = ~flipped & ((x2 - x1 <= 0) | (y2 - y1 <= 0))
        if bool(flipped.any()):
            j = int(flipped.nonzero()[0])
            out.append(Problem(index, "box_not_xyxy", f"{where}: {int(flipped.sum())} box(es) with x2 < x1 or "
                               f"y2 < y1, e.g. box {j} = {fmt_box(boxes[j])}; boxes must be [x1, y1, x2, y2] "
                               "(if yours are [x, y, w, h], convert with torchvision.ops.box_convert)"))
        if bool(flat.any()):
            j = int(flat.nonzero()[0])
            out.append(Problem(index, "box_degenerate", f"{where}: {int(flat.sum())} box(es) with zero width or "
                               f"height, e.g. box {j} = {fmt_box(boxes[j])}"))
        if hw is not None:
            h, w = hw
            t = BOX_TOLERANCE_PX
            outside = (x1 < -t) | (y1 < -t) | (x2 > w + t) | (y2 > h + t)
            if bool(outside.any()):
                j = int(outside.nonzero()[0])
                out.append(Problem(index, "box_outside_image", f"{where}: {int(outside.sum())} box(es) outside the "
                                   f"{w}x{h} image, e.g. box {j} = {fmt_box(boxes[j])}"))
    return out + label_problems(index, where, labels, num_classes, label_base)


def label_problems(index: int, where: str, labels, num_classes: int, label_base: int = 1) -> list[Problem]:
    """Labels outside ``label_base``..``num_classes - 1 + label_base`` (0 under 1-based labels: the background's).
    The one label-range rule: the data check reads it on raw samples, ``find_lr`` on its first batches."""
    out = []
    if labels.numel():
        lo, hi = int(labels.min()), int(labels.max())
        first, last = label_base, num_classes - 1 + label_base
        if label_base == 1 and lo == 0:
            out.append(Problem(index, "label_zero", f"{where}: label 0 is reserved for background (labels must be "
                               f"1..{num_classes}); if your labels are 0-based (0..{num_classes - 1}), pass label_base=0"))
        elif lo < first:
            out.append(Problem(index, "label_out_of_range", f"{where}: label {lo} is below {first} "
                               f"(labels must be {first}..{last})"))
        if hi > last:
            out.append(Problem(index, "label_out_of_range", f"{where}: label {hi} is larger than num_classes="
                               f"{num_classes} allows (labels {first}..{last}); is num_classes too small?"))
    return out


def label_range_error(targets, classes: int | None, where: str):
    """The DataError for the first label of a batch's ``targets`` (shifted to 1..K) outside 1..``classes``, the
    mistake a wrong ``label_base`` or ``num_classes`` makes, or None. find_lr checks its first batches with it,
    the training step every batch before the model sees it (engine.train_one_epoch)."""
    from ..errors import DataError

    for i, target in enumerate(targets if classes else ()):
        labels = target.get("labels") if isinstance(target, dict) else None
        found = label_problems(i, f"{where}, image {i} of the batch", torch.as_tensor(labels).cpu(), classes) \
            if labels is not None else []
        if found:
            return DataError(found[0].message + " (labels as shifted by label_base)", where="label_base / num_classes",
                             fix="label_base=0 for labels 0..K-1, label_base=1 (the default) for labels 1..K; "
                                 "num_classes=K real classes")
    return None


def check_sample(index: int, image, target, num_classes: int, label_base: int = 1) -> list[Problem]:
    problems, hw = check_image(index, image)
    return problems + check_target(index, target, num_classes, hw, label_base)


def check_dataset(dataset, num_classes: int, label_base: int = 1, max_samples: int | None = None) -> list[Problem]:
    """All problems of ``dataset`` (the first ``max_samples`` samples when given).

    nbdetect's own datasets are checked from their records without decoding
    images; other datasets are read sample by sample.
    """
    n = len(dataset)
    if n == 0:
        return [Problem(-1, "empty_dataset", "the dataset is empty: there is nothing to train on")]
    problems = []
    own = getattr(dataset, "num_classes", None)
    if own is not None and int(own) != int(num_classes):
        problems.append(Problem(-1, "num_classes_mismatch", f"num_classes={num_classes} but the dataset has {own} "
                                f"classes ({', '.join(map(str, getattr(dataset, 'class_names', [])[:5]))}...)"))
    count = n if max_samples is None else min(n, max_samples)
    if isinstance(dataset, DetectionDataset):
        for i in range(count):
            problems += check_target(i, dataset.target(i), num_classes, dataset.image_size(i), label_base)
    else:
        for i in range(count):
            image, target = dataset[i]
            problems += check_sample(i, image, target, num_classes, label_base)
    return problems


def verify_images(dataset) -> list[Problem]:
    """Decode every image of one of nbdetect's datasets once (into its cache, so the first epoch reads them
    from memory): a truncated or corrupt file is named before training instead of failing inside epoch 1."""
    if not isinstance(dataset, DetectionDataset):
        return []  # a user's dataset is read sample by sample by check_dataset already
    out = []
    for i in range(len(dataset)):
        try:
            dataset.load_uint8(i)
        except Exception as exc:  # decode() names the file
            out.append(Problem(i, "image_unreadable", f"sample {i}: {getattr(exc, 'message', exc)}"))
    return out


def raise_if_invalid(problems: list[Problem], limit: int = 3) -> None:
    errors = [p for p in problems if p.severity == "error"]
    if not errors:
        return
    lines = [f"  - {p.message}" for p in errors[:limit]]
    more = f"\n  ... and {len(errors) - limit} more" if len(errors) > limit else ""
    samples = len({p.index for p in errors})
    first = sorted({p.index for p in errors if p.index >= 0})[:limit]
    raise DataError(f"nbdetect found {len(errors)} problem(s) in {samples} sample(s) before training:\n"
                    + "\n".join(lines) + more,
                    fix="fix these samples in your Dataset (nbdetect.diagnose(data=...) draws them and names the "
                        "likely cause), or pass label_base=0 if your labels are 0..K-1",
                    where=f"samples {first}" if first else "the dataset")


class UserDataset(Dataset):
    """A torchvision-style dataset passed through: PIL images become float tensors, 0-based labels shift to 1..K."""

    def __init__(self, dataset, label_base: int = 1):
        self.dataset, self.label_base = dataset, label_base
        for attr in ("class_names",):
            if hasattr(dataset, attr):
                setattr(self, attr, getattr(dataset, attr))
        if hasattr(dataset, "num_classes"):
            self.num_classes = dataset.num_classes

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        from ..errors import NbdetectError

        try:
            sample = self.dataset[index]
        except NbdetectError:
            raise
        except Exception as exc:  # the user's __getitem__ failed on this index: say which, keep the cause
            raise DataError(f"your dataset raised {type(exc).__name__} on sample {index}: {exc}",
                            where=f"sample {index}", fix="fix the dataset's __getitem__ for this index (the cause "
                                                         "is chained: %tb shows where it failed)") from exc
        if not isinstance(sample, (tuple, list)) or len(sample) != 2:
            size = f" of {len(sample)} items" if isinstance(sample, (tuple, list)) else ""
            raise DataError(f"sample {index} is a {type(sample).__name__}{size}, not (image, target)",
                            where=f"sample {index}", fix="make __getitem__ return (image, target): a float tensor "
                                                         "[3, H, W] in [0, 1] and a dict with 'boxes' and 'labels'")
        image, target = sample
        if type(image).__module__.startswith("PIL"):
            from torchvision.transforms.functional import to_tensor

            image = to_tensor(image.convert("RGB"))
        elif torch.is_tensor(image) and image.dtype == torch.float64:  # unambiguous: the same values, as float32
            image = image.float()
        if isinstance(target, dict):
            target = dict(target)
            if "labels" in target:
                labels = torch.as_tensor(target["labels"])
                if labels.is_floating_point() and not torch.equal(labels, labels.round()):
                    raise DataError(f"labels must be whole class numbers, got {labels.tolist()}",
                                    where=f"sample {index}", fix="give each box its class as an int (1..K); "
                                    "a fractional label is never truncated silently")
                target["labels"] = labels.to(torch.int64)
            if "boxes" in target:
                target["boxes"] = torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4)
            if "image_id" not in target:
                target["image_id"] = index
            target = shift_labels(target, self.label_base)
        return image, target


def as_detection_dataset(obj, label_base: int = 1):
    """nbdetect's datasets as they are; anything else wrapped in :class:`UserDataset`."""
    if obj is None:
        return None
    if isinstance(obj, DetectionDataset) and label_base == 1:
        return obj
    return UserDataset(obj, label_base)
