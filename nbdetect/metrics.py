"""COCO-style mAP@[.5:.95] and mAP@.5 with pycocotools (not re-implemented here)."""
from __future__ import annotations

import contextlib
import io
import math

import torch


def _xywh(boxes: torch.Tensor) -> list[list[float]]:
    b = boxes.detach().cpu().float()
    return torch.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], dim=1).tolist() if len(b) else []


def coco_map(predictions: list[dict], targets: list[dict], image_sizes: list[tuple[int, int]] | None = None,
             per_class: bool = False) -> dict:
    """mAP of ``predictions`` against ``targets`` (same order, one dict per image).

    predictions: ``{"boxes" xyxy, "scores", "labels"}``; targets: ``{"boxes" xyxy, "labels"}``
    (``iscrowd``/``difficult`` entries are treated as crowd regions, as COCO does).
    Returns ``{"map", "map50", "map75"}``; NaN when there is no ground truth at all. ``per_class``: also
    ``"map50_per_class"``, {label: AP@.5} for every label with ground truth.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    images, annotations, results, labels = [], [], [], set()
    for i, (pred, tgt) in enumerate(zip(predictions, targets)):
        h, w = image_sizes[i] if image_sizes else (0, 0)
        images.append({"id": i, "height": int(h), "width": int(w)})
        crowd = tgt.get("iscrowd", tgt.get("difficult"))
        for j, (box, label) in enumerate(zip(_xywh(tgt["boxes"]), tgt["labels"].tolist())):
            labels.add(int(label))
            is_crowd = int(crowd[j]) if crowd is not None and len(crowd) > j else 0
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(label),
                                "bbox": box, "area": box[2] * box[3], "iscrowd": is_crowd})
        for box, score, label in zip(_xywh(pred["boxes"]), pred["scores"].tolist(), pred["labels"].tolist()):
            results.append({"image_id": i, "category_id": int(label), "bbox": box, "score": float(score)})
    if not annotations:
        return {"map": math.nan, "map50": math.nan, "map75": math.nan}
    if not results:
        zero = {"map": 0.0, "map50": 0.0, "map75": 0.0}
        return {**zero, "map50_per_class": {c: 0.0 for c in sorted(labels)}} if per_class else zero
    categories = [{"id": c} for c in sorted(labels | {r["category_id"] for r in results})]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = ev.stats
    out = {"map": float(max(stats[0], 0.0)), "map50": float(max(stats[1], 0.0)), "map75": float(max(stats[2], 0.0))}
    if per_class:  # precision[iou 0.5, recall, class, area all, maxDets 100]; -1 where a class has no truth
        with_truth = {a["category_id"] for a in annotations}
        out["map50_per_class"] = {}
        for k, cat in enumerate(ev.params.catIds):
            if cat in with_truth:
                p = ev.eval["precision"][0, :, k, 0, -1]
                out["map50_per_class"][int(cat)] = float(p[p > -1].mean()) if (p > -1).any() else 0.0
    return out


def evaluate_map(model, batches, device, amp: bool = False, slices=None) -> dict:
    """Run the model over ``batches`` and score it with :func:`coco_map`. ``slices`` (a
    :class:`~nbdetect.data.tiles.TileConfig`): predict each image by overlapping slices (nbdetect.slicing)."""
    from .engine import predict
    from .slicing import cap, predict_sliced

    batches = list(batches) if not hasattr(batches, "__len__") else batches
    targets, sizes = [], []

    def tee():
        for images, tgts in batches:
            targets.extend(tgts)
            sizes.extend(tuple(img.shape[-2:]) for img in images)
            yield images, tgts

    if slices is not None:
        preds = predict_sliced(model, tee(), device, slices, amp=amp)
    else:  # the boxes COCO's evaluator can score (it keeps the best 100 per image anyway)
        preds = [cap(p) for p in predict(model, tee(), device, amp=amp)]
    return coco_map(preds, targets, sizes)
