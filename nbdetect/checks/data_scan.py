"""One bounded pass over the user's dataset: targets, image sizes and image statistics.

Everything the data checks need is gathered here so images are decoded once.
``nbdetect.data.validate.check_sample`` is run on each scanned sample when it
is available; its Problems carry the per-sample messages.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SampleInfo:
    index: int
    height: int
    width: int
    boxes: np.ndarray  # [N, 4] as given
    labels: np.ndarray  # [N]


@dataclass
class ImageStats:
    index: int
    kind: str  # "tensor" | "ndarray" | "PIL" | type name
    dtype: str
    shape: tuple
    min: float
    max: float
    mean: float
    std: float


@dataclass
class Scan:
    samples: list[SampleInfo] = field(default_factory=list)
    images: list[ImageStats] = field(default_factory=list)
    problems: list = field(default_factory=list)  # validate.Problem
    n_total: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    validated: bool = False
    notes: list[str] = field(default_factory=list)
    dataset: object = field(default=None, repr=False)  # what was scanned (its declared classes, if any)

    @property
    def n_scanned(self) -> int:
        return len(self.samples)


def dataset_of(data):
    """The indexable dataset behind a DataLoader (or the data itself)."""
    ds = getattr(data, "dataset", None)
    if ds is not None and hasattr(data, "batch_size"):
        return ds
    return data


def _to_array(image):
    """(kind, numpy array, original dtype name) for a tensor / ndarray / PIL image."""
    if hasattr(image, "detach"):
        return "tensor", image.detach().cpu().numpy(), str(image.dtype).replace("torch.", "")
    if isinstance(image, np.ndarray):
        return "ndarray", image, str(image.dtype)
    if hasattr(image, "size") and hasattr(image, "mode"):
        arr = np.asarray(image)
        return "PIL", arr, "PIL." + image.mode
    return type(image).__name__, None, type(image).__name__


def image_hw(arr: np.ndarray | None, target) -> tuple[int, int]:
    if arr is not None and arr.ndim == 3:
        if arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            return int(arr.shape[1]), int(arr.shape[2])
        if arr.shape[-1] in (1, 3, 4) and arr.shape[0] not in (1, 3, 4):
            return int(arr.shape[0]), int(arr.shape[1])
        return int(arr.shape[1]), int(arr.shape[2])
    if arr is not None and arr.ndim == 2:
        return int(arr.shape[0]), int(arr.shape[1])
    size = target.get("orig_size") if isinstance(target, dict) else None
    if size is not None:
        h, w = [int(x) for x in list(size)[:2]]
        return h, w
    return 0, 0


def _as_np(v, dtype, shape_tail=None):
    if v is None:
        return np.zeros((0,) + ((shape_tail,) if shape_tail else ()), dtype=dtype)
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    arr = np.asarray(v, dtype=dtype)
    if shape_tail:
        arr = arr.reshape(-1, shape_tail) if arr.size else np.zeros((0, shape_tail), dtype=dtype)
    return arr.reshape(-1) if not shape_tail else arr


def _stats_indices(n: int, k: int) -> set[int]:
    if n <= k:
        return set(range(n))
    return {int(round(i * (n - 1) / (k - 1))) for i in range(k)}


def _validator():
    from ..data.validate import check_sample

    return check_sample


def scan(data, *, num_classes: int | None, label_base: int = 1, max_samples: int | None = None,
         max_image_stats: int = 32, time_budget_s: float = 40.0) -> Scan:
    ds = dataset_of(data)
    out = Scan()
    try:
        n = len(ds)
    except TypeError:
        out.notes.append("the dataset has no length: only the first batches were used")
        return out
    out.n_total = n
    out.dataset = ds
    limit = n if max_samples is None else min(n, int(max_samples))
    stats_at = _stats_indices(limit, max_image_stats)
    check_sample = _validator() if num_classes else None
    out.validated = check_sample is not None
    if check_sample is None:
        out.notes.append("per-sample validation (nbdetect.data.validate) not run: "
                         + ("num_classes unknown" if not num_classes else "module unavailable"))
    t0 = time.perf_counter()
    for i in range(limit):
        if time.perf_counter() - t0 > time_budget_s:
            out.notes.append(f"data scan stopped after {i} of {n} samples (time budget {time_budget_s:.0f} s)")
            break
        try:
            image, target = ds[i][:2]
        except Exception as exc:
            out.errors.append((i, f"{type(exc).__name__}: {exc}"))
            continue
        kind, arr, dtype = _to_array(image)
        h, w = image_hw(arr, target)
        target = target if isinstance(target, dict) else {}
        boxes = _as_np(target.get("boxes"), np.float64, 4)
        labels = _as_np(target.get("labels"), np.int64)
        out.samples.append(SampleInfo(i, h, w, boxes, labels))
        if i in stats_at and arr is not None and arr.size:
            a = arr.astype(np.float64, copy=False)
            out.images.append(ImageStats(i, kind, dtype, tuple(arr.shape), float(a.min()), float(a.max()),
                                         float(a.mean()), float(a.std())))
        if check_sample is not None and kind == "tensor":
            try:
                out.problems.extend(check_sample(i, image, target, num_classes, label_base=label_base))
            except Exception as exc:
                out.notes.append(f"validate.check_sample failed on sample {i}: {exc}")
                check_sample = None
    if limit < n:
        out.notes.append(f"scanned the first {limit} of {n} samples (max_samples={max_samples})")
    return out


def first_batches(data, n_batches: int, batch_size: int = 4):
    """Up to ``n_batches`` batches ``(images, targets)`` as the model would see them."""
    batches = []
    if hasattr(data, "batch_size") and hasattr(data, "__iter__"):
        for b, (images, targets) in enumerate(data):
            if b >= n_batches:
                break
            batches.append((list(images), list(targets)))
        return batches
    n = len(data)
    for start in range(0, min(n, n_batches * batch_size), batch_size):
        items = [data[i] for i in range(start, min(n, start + batch_size))]
        batches.append(([it[0] for it in items], [it[1] for it in items]))
    return batches


def n_batches_per_epoch(data, batch_size: int | None) -> int | None:
    if hasattr(data, "batch_size") and hasattr(data, "__len__"):
        try:
            return len(data)
        except TypeError:
            return None
    if batch_size and hasattr(data, "__len__"):
        return math.ceil(len(data) / batch_size)
    return None
