"""Training on tiles: fixed-size windows cut at native resolution from full frames.

Small objects in large frames (GTSDB: 20-120 px signs in 1360x800 frames) shrink below the smallest anchor
when a CPU-sized model resizes the whole frame. Cutting tiles of the model's input size keeps every pixel.

* :class:`TileConfig`: size, overlap, background share, seed, and the "mostly inside" rule (``min_visible``).
* :func:`tile_config`: an int (``tiles=320``), a dict or a TileConfig, as one TileConfig (``None`` when off).
* :func:`grid`: the window positions along one side (the last one aligned with the far edge).
* :func:`plan_tiles`: the tiles of a dataset, deterministic from (config, the images' sizes and boxes): every
  window holding a box mostly inside is kept; windows touching no box at all are background and a seeded
  sample of them is kept so that they are ``background`` of the plan; windows that only cut a box are dropped
  (an unlabelled half sign would teach "not a sign").
* :func:`cut`: one tile's image and target (boxes shifted, clipped, kept when at least ``min_visible`` of their
  area is inside).
* :class:`TiledDataset`: a dataset's tiles, cut on the fly (a resumed run sees the same tiles: the plan is
  rebuilt from the same seed and data; the run records the config in its meta and checkpoint).

Pure functions on tensors; nothing here trains.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields, replace

import torch
from torch.utils.data import Dataset

from ..config_dicts import record_from_dict

MIN_TILE, MAX_TILE = 64, 4096


@dataclass(frozen=True)
class TileConfig:
    size: int = 320  # tile side in pixels (square tiles; the model's input size)
    overlap: float = 0.25  # share of a tile that neighbouring windows (training grid and inference slices) share
    background: float = 0.2  # share of the plan's tiles that hold no object
    seed: int = 0  # which background tiles are kept
    min_visible: float = 0.6  # a cut box is kept when at least this share of its area is inside the tile

    @property
    def stride(self) -> int:
        return max(1, int(round(self.size * (1 - self.overlap))))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_summary(cls, summary: dict) -> "TileConfig":
        """The config of a run's saved tiles (``meta["tiles"]``: TiledDataset.summary(), which adds counts)."""
        return cls(**{f.name: summary[f.name] for f in fields(cls)})

    def describe(self) -> str:
        return (f"{self.size}x{self.size} px tiles at native resolution (overlap {self.overlap:g}, "
                f"background share {self.background:g}, seed {self.seed})")


def tile_config(value) -> TileConfig | None:
    """``tiles=`` as a TileConfig: None/False (off), an int size, a dict of TileConfig fields or a TileConfig.
    Raises ValueError with the reason (nbdetect.arguments turns it into the argument's refusal)."""
    if value is None or value is False:
        return None
    if isinstance(value, TileConfig):
        cfg = value
    elif isinstance(value, bool):
        raise ValueError("is a bool: give the tile size, e.g. 320")
    elif isinstance(value, numbers.Integral):
        cfg = TileConfig(size=int(value))
    elif isinstance(value, dict):
        cfg = record_from_dict(TileConfig, value)
    else:
        raise ValueError(f"is a {type(value).__name__}: give a tile size (int) or a dict")
    if isinstance(cfg.size, numbers.Integral) and isinstance(cfg.seed, numbers.Integral):
        cfg = replace(cfg, size=int(cfg.size), seed=int(cfg.seed))
    if isinstance(cfg.size, bool) or not isinstance(cfg.size, int) or not MIN_TILE <= cfg.size <= MAX_TILE:
        raise ValueError(f"has size {cfg.size!r}: a tile side is a whole number of pixels from {MIN_TILE} to {MAX_TILE}")
    for name, lo, hi, hi_open in (("overlap", 0.0, 0.9, False), ("background", 0.0, 1.0, True),
                                  ("min_visible", 0.01, 1.0, False)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v < hi if hi_open else lo <= v <= hi):
            raise ValueError(f"has {name} {v!r}: it must be a number from {lo:g} to {hi:g}" + (" (excluded)" if hi_open else ""))
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ValueError(f"has seed {cfg.seed!r}: it must be a whole number >= 0")
    return cfg


def grid(length: int, size: int, stride: int) -> list[int]:
    """Window starts covering [0, length) with windows of ``size``: every ``stride``, the last one aligned with
    the far edge; one window at 0 when the side is not longer than a window."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def windows(height: int, width: int, size: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(x1, y1, x2, y2) of the windows covering a ``height`` x ``width`` image (clamped to the image)."""
    return [(x, y, min(x + size, width), min(y + size, height))
            for y in grid(height, size, stride) for x in grid(width, size, stride)]


def clip_boxes(boxes: torch.Tensor, window, min_visible: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``boxes`` (xyxy, frame pixels) seen through ``window``: (kept boxes in window pixels, kept mask,
    overlapping mask). A box is kept when at least ``min_visible`` of its area is inside."""
    x1, y1, x2, y2 = window
    boxes = boxes.reshape(-1, 4).float()
    clipped = torch.stack([boxes[:, 0].clamp(x1, x2), boxes[:, 1].clamp(y1, y2),
                           boxes[:, 2].clamp(x1, x2), boxes[:, 3].clamp(y1, y2)], dim=1)
    inter = (clipped[:, 2] - clipped[:, 0]).clamp(min=0) * (clipped[:, 3] - clipped[:, 1]).clamp(min=0)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1e-6)
    kept = inter >= min_visible * area
    kept &= (clipped[:, 2] - clipped[:, 0] >= 1) & (clipped[:, 3] - clipped[:, 1] >= 1)
    overlapping = inter > 0
    shifted = clipped[kept] - torch.tensor([x1, y1, x1, y1], dtype=torch.float32)
    return shifted, kept, overlapping


@dataclass(frozen=True)
class Tile:
    image: int  # index in the full-frame dataset
    window: tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels
    objects: int  # boxes kept in it (0: a background tile)


def plan_tiles(sizes, boxes, cfg: TileConfig) -> list[Tile]:
    """The tiles of a dataset whose image ``i`` is ``sizes[i]`` = (height, width) with ``boxes[i]`` (xyxy).

    Object tiles (a box mostly inside) are all kept; background tiles (touching no box) are sampled with
    ``cfg.seed`` so that they are ``cfg.background`` of the plan (all of them when there are too few); tiles
    that only cut a box are dropped. The same config and data give the same plan, in image order."""
    objects, background = [], []
    for i, ((h, w), b) in enumerate(zip(sizes, boxes)):
        b = torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4)
        for win in windows(int(h), int(w), cfg.size, cfg.stride):
            _, kept, overlapping = clip_boxes(b, win, cfg.min_visible)
            if bool(kept.any()):
                objects.append(Tile(i, win, int(kept.sum())))
            elif not bool(overlapping.any()):
                background.append(Tile(i, win, 0))
    share = cfg.background
    want = len(background) if not objects else int(round(share / (1 - share) * len(objects))) if share < 1 else 0
    want = min(want, len(background))
    g = torch.Generator().manual_seed(int(cfg.seed))
    chosen = set(torch.randperm(len(background), generator=g)[:want].tolist()) if want else set()
    kept_bg = [t for j, t in enumerate(background) if j in chosen]
    order = {t: n for n, t in enumerate(objects + kept_bg)}
    return sorted(objects + kept_bg, key=lambda t: (t.image, t.window[1], t.window[0], order[t]))


def cut(image: torch.Tensor, target: dict, window, min_visible: float) -> tuple[torch.Tensor, dict]:
    """The tile ``window`` of ``image`` [C, H, W] and its target: boxes shifted into tile pixels and clipped,
    kept when mostly inside (labels and per-box extras follow); the rest of the target as it was."""
    x1, y1, x2, y2 = window
    crop = image[..., y1:y2, x1:x2]
    boxes = torch.as_tensor(target.get("boxes", torch.zeros(0, 4)), dtype=torch.float32).reshape(-1, 4)
    shifted, kept, _ = clip_boxes(boxes, window, min_visible)
    out = dict(target)
    n = len(boxes)
    for key, value in target.items():  # labels, iscrowd, difficult...: one entry per box
        if torch.is_tensor(value) and value.ndim >= 1 and len(value) == n and key != "boxes":
            out[key] = value[kept]
    out["boxes"] = shifted
    out["tile"] = (x1, y1, x2, y2)
    out["orig_size"] = (int(crop.shape[-2]), int(crop.shape[-1]))
    return crop, out


def _sizes_and_boxes(dataset):
    """(height, width) and boxes of every image: from the records (nbdetect's datasets: no decoding), else by
    reading every sample once."""
    sizes, boxes = [], []
    cheap = hasattr(dataset, "image_size") and hasattr(dataset, "target")
    for i in range(len(dataset)):
        if cheap:
            sizes.append(tuple(dataset.image_size(i)))
            boxes.append(dataset.target(i)["boxes"])
        else:
            image, target = dataset[i]
            sizes.append(tuple(int(x) for x in image.shape[-2:]))
            boxes.append(torch.as_tensor(target["boxes"], dtype=torch.float32).reshape(-1, 4))
    return sizes, boxes


class TiledDataset(Dataset):
    """The tiles of ``dataset`` (samples ``(image, target)`` of full frames), cut on the fly.

    ``base`` is the full-frame dataset (the per-epoch mAP predicts it by slices); ``plan`` the tiles. Each tile's
    target has ``image_id`` = the tile's index and ``frame`` = the full frame's index."""

    def __init__(self, dataset, cfg: TileConfig):
        self.base, self.cfg = dataset, cfg
        sizes, boxes = _sizes_and_boxes(dataset)
        self.plan = plan_tiles(sizes, boxes, cfg)
        self.frames = len(dataset)
        for attr in ("class_names", "num_classes"):
            if hasattr(dataset, attr):
                setattr(self, attr, getattr(dataset, attr))
        self._last = (None, None)  # the last full frame read (tiles of one frame come in a row when not shuffled)

    def __len__(self) -> int:
        return len(self.plan)

    def frame(self, index: int):
        """Full frame ``index`` as (image, target); nbdetect's datasets give their cached uint8 image (the tile
        is converted to float after the cut, not the whole frame)."""
        if self._last[0] != index:
            if hasattr(self.base, "load_uint8") and hasattr(self.base, "target"):
                target = self.base.target(index)
                self._last = (index, (self.base.load_uint8(index), target))
            else:
                self._last = (index, self.base[index])
        return self._last[1]

    def __getitem__(self, index: int):
        tile = self.plan[index]
        image, target = self.frame(tile.image)
        crop, out = cut(image, target, tile.window, self.cfg.min_visible)
        # a new tensor either way: the frame stays as it was for its next tile (augmentation may work in place)
        crop = crop.float().div_(255.0) if crop.dtype == torch.uint8 else crop.clone()
        out["frame"] = tile.image
        out["image_id"] = index
        return crop, out

    def summary(self) -> dict:
        bg = sum(1 for t in self.plan if t.objects == 0)
        return {**self.cfg.to_dict(), "tiles": len(self.plan), "background_tiles": bg, "frames": self.frames}

    def describe(self) -> str:
        s = self.summary()
        return (f"{s['tiles']} tiles of {self.cfg.size}x{self.cfg.size} px cut at native resolution from "
                f"{s['frames']} frames ({s['background_tiles']} background tiles; overlap {self.cfg.overlap:g}, "
                f"seed {self.cfg.seed})")


def tiled_of(data):
    """The TiledDataset behind ``data`` (a DataLoader, an augmentation wrapper, the dataset itself), or None."""
    seen = 0
    while data is not None and seen < 4:
        if isinstance(data, TiledDataset):
            return data
        data = getattr(data, "dataset", None)
        seen += 1
    return None
