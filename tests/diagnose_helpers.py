"""Builders of small broken-on-purpose detection setups for the diagnose tests."""
from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader

SIZE = 96


def scenes(n=8, size=SIZE, num_classes=2, seed=0, per_image=2, obj=(18, 30)):
    """Coloured squares on dark noise: (image float [3,H,W] 0-1, target xyxy pixels, labels 1..K)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        img = torch.rand(3, size, size, generator=g) * 0.2
        boxes, labels = [], []
        for j in range(per_image):
            s = int(torch.randint(obj[0], obj[1] + 1, (1,), generator=g))
            x = int(torch.randint(0, size - s, (1,), generator=g))
            y = int(torch.randint(0, size - s, (1,), generator=g))
            label = 1 + (i + j) % num_classes
            img[(label - 1) % 3, y:y + s, x:x + s] = 1.0
            boxes.append([x, y, x + s, y + s])
            labels.append(label)
        out.append((img, {"boxes": torch.tensor(boxes, dtype=torch.float32),
                          "labels": torch.tensor(labels, dtype=torch.int64), "image_id": i}))
    return out


def mapped(samples, image=None, boxes=None, labels=None):
    """A copy of ``samples`` with images / boxes / labels transformed."""
    out = []
    for img, t in samples:
        t = dict(t)
        if boxes is not None:
            t["boxes"] = boxes(t["boxes"].clone(), img)
        if labels is not None:
            t["labels"] = labels(t["labels"].clone())
        out.append((image(img.clone()) if image is not None else img, t))
    return out


def collate(batch):
    return tuple(zip(*batch))


def loader(samples, batch_size=4, shuffle=False):
    return DataLoader(samples, batch_size=batch_size, shuffle=shuffle, collate_fn=collate)


def tiny(preset="retinanet_tiny", num_classes=2, seed=0):
    from nbdetect.models import build_model

    torch.manual_seed(seed)
    return build_model(preset, num_classes, weights=None, min_size=128, max_size=128)


def train_epochs(model, data_loader, optimizer, epochs, scheduler=None, per_iteration=False, summed=False):
    """A student's plain training loop; returns the per-epoch losses it would print."""
    history = []
    model.train()
    for _ in range(epochs):
        running, batches = 0.0, 0
        for images, targets in data_loader:
            loss = sum(model(list(images), list(targets)).values())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            if scheduler is not None and per_iteration:
                scheduler.step()
            running += float(loss.detach())
            batches += 1
        if scheduler is not None and not per_iteration:
            scheduler.step()
        history.append(running if summed else running / batches)
    return history


def simulated_losses(lrs, start=2600.0, floor=300.0, speed=200.0, seed=0):
    """Per-epoch losses of a run whose progress each epoch is proportional to its LR.

    ``L[e+1] = floor + (L[e] - floor) * |1 - speed * lr|``: progress stalls when the LR
    is cut, and the loss blows up when ``speed * lr > 2`` (the LR is too high).
    """
    g = torch.Generator().manual_seed(seed)
    out, loss = [], start
    for lr in lrs:
        noise = 1.0 + 0.003 * float(torch.randn(1, generator=g))
        out.append(loss * noise)
        factor = abs(1.0 - speed * lr)
        loss = floor + (loss - floor) * factor
        if not math.isfinite(loss) or loss > 1e12:
            loss = float("nan")
    return out


def gtsdb_dataset(root, limit=None):
    """GTSDB as nbdetect samples (labels 1..43), the first ``limit`` images when given."""
    from nbdetect.data import load_gtsdb

    ds = load_gtsdb(root)
    return ds.subset(range(min(limit, len(ds)))) if limit else ds

