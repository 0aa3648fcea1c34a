"""DetectionDataset: records (image source + boxes + labels) with an in-memory decoded-image cache.

Decoded images are kept as uint8 CHW tensors (a quarter of float32's size) up
to a byte budget, so epochs after the first do not decode the JPEGs again.
The cache lives in the dataset object: with DataLoader worker processes use
``persistent_workers=True`` (make_loader does) or each worker starts empty.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from ..errors import reading
from torch.utils.data import Dataset


@dataclass
class Record:
    source: Any  # a file path, or a callable returning a uint8 CHW tensor
    boxes: torch.Tensor  # float32 [N, 4] xyxy pixels
    labels: torch.Tensor  # int64 [N], 1..K
    image_id: int
    file_name: str = ""
    size: tuple[int, int] | None = None  # (height, width) when known without decoding
    extra: dict = field(default_factory=dict)  # e.g. {"difficult": tensor}


def default_cache_limit() -> int:
    """min(4 GiB, 25% of the memory available now)."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        available = 8 << 30
    return int(min(4 << 30, available // 4))


def decode(path: str | Path) -> torch.Tensor:
    """Decode an image file to a uint8 [3, H, W] tensor with PIL.

    (torchvision.io decodes JPEGs ~2x faster but is deprecated from torchvision 0.29;
    with the cache, decoding is a first-epoch cost only.)
    """
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    with reading(path, what="this image could not be decoded"), Image.open(path) as im:
        return pil_to_tensor(im.convert("RGB"))


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    from PIL import Image

    with reading(path, what="this image could not be opened"), Image.open(path) as im:
        return im.height, im.width


class ImageCache:
    """Thread-safe byte-bounded store of decoded images, shared by a dataset and its subsets."""

    def __init__(self, limit_bytes: int | None):
        self.limit = limit_bytes  # None: unlimited; 0: off
        self.store: dict[Any, torch.Tensor] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def get(self, key, load: Callable[[], torch.Tensor]) -> torch.Tensor:
        img = self.store.get(key)
        if img is not None:
            self.hits += 1
            return img
        self.misses += 1
        img = load()
        size = img.numel() * img.element_size()
        if self.limit != 0 and (self.limit is None or self.bytes + size <= self.limit):
            with self._lock:
                if key not in self.store:
                    self.store[key] = img
                    self.bytes += size
        return img

    def info(self) -> dict:
        return {"hits": self.hits, "misses": self.misses, "images": len(self.store), "bytes": self.bytes,
                "limit_bytes": self.limit}


class DetectionDataset(Dataset):
    """Samples ``(image float32 [3, H, W] in [0, 1], target)`` following nbdetect's conventions."""

    def __init__(self, records: list[Record], class_names: list[str], cache: bool | str = "auto",
                 cache_limit_bytes: int | None = None, _cache: ImageCache | None = None):
        self.records = list(records)
        self.class_names = list(class_names)
        if _cache is not None:
            self.cache = _cache
        elif cache is False:
            self.cache = ImageCache(0)
        elif cache is True:
            self.cache = ImageCache(cache_limit_bytes)
        else:
            self.cache = ImageCache(cache_limit_bytes if cache_limit_bytes is not None else default_cache_limit())

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.records)

    def load_uint8(self, index: int) -> torch.Tensor:
        rec = self.records[index]
        key = rec.source if isinstance(rec.source, (str, Path)) else id(rec)
        loader = rec.source if callable(rec.source) else (lambda: decode(rec.source))
        return self.cache.get(key, loader)

    def image_size(self, index: int) -> tuple[int, int]:
        rec = self.records[index]
        if rec.size is None:
            rec.size = image_size(rec.source) if isinstance(rec.source, (str, Path)) else tuple(
                self.load_uint8(index).shape[-2:])
        return rec.size

    def target(self, index: int) -> dict:
        rec = self.records[index]
        t = {"boxes": rec.boxes.clone(), "labels": rec.labels.clone(), "image_id": rec.image_id,
             "file_name": rec.file_name}
        t.update({k: (v.clone() if torch.is_tensor(v) else v) for k, v in rec.extra.items()})
        return t

    def __getitem__(self, index: int):
        image = self.load_uint8(index).float().div_(255.0)
        target = self.target(index)
        target["orig_size"] = tuple(image.shape[-2:])
        return image, target

    def cache_info(self) -> dict:
        return self.cache.info()

    def subset(self, indices) -> "DetectionDataset":
        """A dataset of the given records, sharing this one's cache."""
        return DetectionDataset([self.records[i] for i in indices], self.class_names, _cache=self.cache)

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple["DetectionDataset", "DetectionDataset"]:
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed)).tolist()
        n_val = max(1, round(len(self) * val_fraction))
        return self.subset(sorted(order[n_val:])), self.subset(sorted(order[:n_val]))

    def __repr__(self) -> str:
        boxes = sum(len(r.boxes) for r in self.records)
        return f"<{type(self).__name__}: {len(self)} images, {boxes} boxes, {self.num_classes} classes>"


def make_record(source, boxes, labels, image_id, file_name="", size=None, **extra) -> Record:
    return Record(source, torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                  torch.as_tensor(labels, dtype=torch.int64).reshape(-1), int(image_id), file_name, size,
                  dict(extra))
