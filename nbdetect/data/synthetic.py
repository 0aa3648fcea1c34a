"""Deterministic synthetic traffic-sign scenes: nbdetect's embedded default data.

Six sign classes with the shapes and colours of real European signs, 12-64 px,
on textured backgrounds (sky/road gradients, noise, stripes, lane marks and
clutter shapes that are not signs). Sample ``i`` depends only on ``(seed, i)``:
its layout (boxes) is drawn at construction, its pixels on first access.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import DetectionDataset, Record

SIGN_CLASSES = ["prohibitory", "danger", "mandatory", "stop", "priority road", "give way"]
RED, WHITE, BLUE, YELLOW, BLACK = (200, 20, 30), (245, 245, 240), (20, 70, 180), (250, 200, 20), (25, 25, 25)


def _polygon(cx, cy, r, n, rotation):
    return [(cx + r * math.cos(rotation + 2 * math.pi * k / n), cy + r * math.sin(rotation + 2 * math.pi * k / n))
            for k in range(n)]


def _draw_sign(draw, label: int, x1, y1, s):
    """Draw class ``label`` (1..6) filling the square box (x1, y1, x1+s, y1+s)."""
    cx, cy, r = x1 + s / 2, y1 + s / 2, s / 2
    inner = max(1.0, r * 0.72)
    if label == 1:  # prohibitory: white disc, red ring, black bar
        draw.ellipse([x1, y1, x1 + s - 1, y1 + s - 1], fill=RED)
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=WHITE)
        draw.rectangle([cx - inner * 0.55, cy - r * 0.12, cx + inner * 0.55, cy + r * 0.12], fill=BLACK)
    elif label == 2:  # danger: red triangle, point up, white inside
        outer = [(x1, y1 + s - 1), (x1 + s - 1, y1 + s - 1), (cx, y1)]
        draw.polygon(outer, fill=RED)
        k = 0.55
        draw.polygon([(cx + (px - cx) * k, cy + r * 0.18 + (py - cy) * k) for px, py in outer], fill=WHITE)
    elif label == 3:  # mandatory: blue disc, white arrow
        draw.ellipse([x1, y1, x1 + s - 1, y1 + s - 1], fill=BLUE)
        w = max(1, int(r * 0.22))
        draw.line([(cx, cy + r * 0.55), (cx, cy - r * 0.45)], fill=WHITE, width=w)
        draw.polygon([(cx - r * 0.35, cy - r * 0.15), (cx + r * 0.35, cy - r * 0.15), (cx, cy - r * 0.65)], fill=WHITE)
    elif label == 4:  # stop: red octagon, white border
        draw.polygon(_polygon(cx, cy, r / math.cos(math.pi / 8), 8, math.pi / 8), fill=WHITE)
        draw.polygon(_polygon(cx, cy, r * 0.86 / math.cos(math.pi / 8), 8, math.pi / 8), fill=RED)
    elif label == 5:  # priority road: yellow diamond, white border
        draw.polygon(_polygon(cx, cy, r, 4, 0.0), fill=WHITE)
        draw.polygon(_polygon(cx, cy, r * 0.68, 4, 0.0), fill=YELLOW)
    else:  # give way: inverted triangle, red border, white inside
        outer = [(x1, y1), (x1 + s - 1, y1), (cx, y1 + s - 1)]
        draw.polygon(outer, fill=RED)
        k = 0.55
        draw.polygon([(cx + (px - cx) * k, cy - r * 0.18 + (py - cy) * k) for px, py in outer], fill=WHITE)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    sky = rng.uniform(90, 200, 3)
    ground = rng.uniform(40, 120, 3) * np.array([1.0, 1.0, 0.9])
    horizon = rng.uniform(0.3, 0.6)
    t = np.linspace(0, 1, h)[:, None, None]
    img = np.where(t < horizon, sky * (0.75 + 0.35 * t), ground * (0.8 + 0.3 * t)) * np.ones((1, w, 1))
    kind = rng.integers(3)
    if kind == 0:  # stripes (buildings, fences)
        period = rng.integers(8, 40)
        stripes = ((np.arange(w) // period) % 2)[None, :, None] * rng.uniform(10, 40)
        img = img + stripes * (t < horizon)
    elif kind == 1:  # lane marks
        y0 = int(h * (horizon + 0.2))
        for x in range(int(rng.integers(0, 30)), w, 60):
            img[y0:y0 + 3, x:x + 25] = 220
    img = img + rng.normal(0, rng.uniform(4, 14), img.shape)
    return img


def _clutter(draw, rng: np.random.Generator, h: int, w: int, n: int) -> None:
    """Shapes that are not signs: grey/brown/green blobs and poles."""
    for _ in range(n):
        colour = tuple(int(v) for v in rng.choice([(110, 110, 110), (120, 85, 50), (50, 110, 50), (160, 160, 150)]))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        s = rng.uniform(6, 50)
        if rng.random() < 0.5:
            draw.rectangle([x, y, x + s, y + s * rng.uniform(0.3, 2.0)], fill=colour)
        else:
            draw.ellipse([x, y, x + s, y + s * rng.uniform(0.5, 1.5)], fill=colour)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _layout(seed: int, index: int, h: int, w: int, min_size: int, max_size: int, max_objects: int):
    rng = np.random.default_rng([seed, index, 0])
    boxes, labels = [], []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            s = int(rng.integers(min_size, max_size + 1))
            x1, y1 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            box = (x1, y1, x1 + s, y1 + s)
            if all(_iou(box, b) < 0.05 for b in boxes):
                boxes.append(box)
                labels.append(int(rng.integers(1, len(SIGN_CLASSES) + 1)))
                break
    return boxes, labels


class _Render:
    """Picklable image source for one synthetic sample (DataLoader workers can call it)."""

    def __init__(self, seed, index, h, w, boxes, labels):
        self.args = (seed, index, h, w, boxes, labels)

    def __call__(self) -> torch.Tensor:
        from PIL import Image, ImageDraw

        seed, index, h, w, boxes, labels = self.args
        rng = np.random.default_rng([seed, index, 1])
        img = Image.fromarray(np.clip(_background(rng, h, w), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        _clutter(draw, rng, h, w, int(rng.integers(2, 7)))
        for (x1, y1, x2, _), label in zip(boxes, labels):
            _draw_sign(draw, label, x1, y1, x2 - x1)
        arr = np.asarray(img, dtype=np.float32) * rng.uniform(0.75, 1.15)  # lighting
        arr = np.clip(arr + rng.normal(0, 3, arr.shape), 0, 255).astype(np.uint8)
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class SyntheticSigns(DetectionDataset):
    """``num_images`` deterministic scenes of ``image_size`` (H, W) with 1..``max_objects`` signs each."""

    def __init__(self, num_images: int, image_size=(256, 256), seed: int = 0, min_size: int = 12,
                 max_size: int = 64, max_objects: int = 4, cache=True):
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if not 1 <= min_size <= max_size <= min(h, w):
            raise ValueError(f"sign sizes {min_size}-{max_size} do not fit a {w}x{h} image")
        records = []
        for i in range(int(num_images)):
            boxes, labels = _layout(seed, i, h, w, min_size, max_size, max_objects)
            records.append(Record(_Render(seed, i, h, w, boxes, labels),
                                  torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                  torch.tensor(labels, dtype=torch.int64), i, f"synthetic_{seed}_{i:05d}.png", (h, w)))
        super().__init__(records, SIGN_CLASSES, cache=cache)
        self.seed = seed


def synthetic_split(n_train: int = 240, n_val: int = 60, image_size=(256, 256), seed: int = 0, **kwargs):
    """(train, val) synthetic datasets drawn from disjoint seeds."""
    from ..arguments import check

    v = check(dict(n_train=n_train, n_val=n_val, seed=seed))  # '120' is read as 120, and said so
    n_train, n_val, seed = v["n_train"], v["n_val"], v["seed"]
    return (SyntheticSigns(n_train, image_size, seed=2 * seed, **kwargs),
            SyntheticSigns(n_val, image_size, seed=2 * seed + 1, **kwargs))
