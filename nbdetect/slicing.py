"""Sliced inference: predict a full frame by overlapping slices and merge the boxes in frame pixels.

A model trained on tiles (nbdetect.data.tiles) sees objects at native resolution; on a full frame it would
see them shrunk by its resize. :func:`predict_sliced` cuts each frame into the same windows as the training
grid (tile size, overlap), runs the model on the slices in batches, shifts every box by its slice's offset and
merges the boxes of neighbouring slices (:func:`merge`), then keeps at most :data:`MAX_DETS` boxes per frame
above :data:`SCORE_FLOOR` (:func:`cap`: what COCO's evaluator can score; more is only file size).

The merge (``method="nms"``, the default) is class-wise ``torchvision.ops.batched_nms`` at IoU ``match``: a
lower box of the same class overlapping a kept one is a duplicate. ``method="nmm"`` also grows boxes: a box
cut by an inner slice edge (it touches an edge of its slice that is not the frame's) from another slice,
whose intersection covers at least ``match`` of the smaller box (IoS), is merged into the kept box, which
grows to the union. NMS is the default because growing is measured to lose: on 120 unseen GTSDB frames
(benchmarks/bench_vs_yolo.py --gtsdb, the 12-epoch checkpoints) mAP@.5 was 0.372 with NMS and 0.086 with the
cut-box merge for Alternative 1, 0.447 and 0.348 for YOLOv8n. A weak model's low-score boxes touching a slice
edge contain its good boxes, and the union turns a right box into a large wrong one; with an overlap of a
quarter of the slice a 16-128 px sign lies whole in some slice, so nothing needs growing. Merging every
overlapping box (SAHI's GREEDYNMM) loses more (bench_tiles: mAP@.5 0.000 vs 0.034 for NMS on the same slices).
docs/ARCHITECTURE.md says why this is not SAHI itself.
"""
from __future__ import annotations

from typing import Iterable

import torch

from .data.tiles import TileConfig, windows

#: COCO's evaluator scores at most 100 detections per image (maxDets) and nothing below 0.001 changes its AP
#: in practice (the floor mAP tools use).
MAX_DETS = 100
SCORE_FLOOR = 0.001


def cap(det: dict, max_dets: int = MAX_DETS, score_floor: float = SCORE_FLOOR) -> dict:
    """``det`` ({"boxes", "scores", "labels", ...}) with its ``max_dets`` highest-scoring boxes at or above
    ``score_floor``, highest first."""
    scores = det["scores"]
    keep = torch.nonzero(scores >= score_floor).flatten()
    keep = keep[torch.argsort(scores[keep], descending=True)][:max_dets]
    return {**det, "boxes": det["boxes"][keep], "scores": scores[keep], "labels": det["labels"][keep]}


def _ios(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """Intersection over the smaller area of ``box`` [4] with each of ``others`` [N, 4]."""
    lt = torch.maximum(box[:2], others[:, :2])
    rb = torch.minimum(box[2:], others[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area = (box[2:] - box[:2]).clamp(min=0).prod()
    areas = (others[:, 2:] - others[:, :2]).clamp(min=0).prod(dim=1)
    return inter / torch.minimum(area, areas).clamp(min=1e-6)


def merge(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, match: float = 0.5,
          method: str = "nms", cut: torch.Tensor | None = None,
          slice_ids: torch.Tensor | None = None, max_dets: int | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One box per object from the boxes of overlapping slices (all in frame pixels): duplicates (IoU >=
    ``match``) dropped and boxes ``cut`` by their slice's inner edge merged with the overlapping boxes of other
    slices (``"nmm"``), or class-wise NMS by IoU (``"nms"``); returns (boxes, scores, labels), highest first,
    the first ``max_dets`` of them when given.

    The greedy merge visits the boxes once, highest score first, and compares each with the later boxes of its
    class only, so each class is merged on its own; the boxes kept come out in score order, and the merge stops
    at the ``max_dets``-th: the same boxes as merging all and keeping the best ``max_dets`` (a weak model's
    thousands of low-score boxes per frame are never visited)."""
    from torchvision.ops import batched_nms, box_iou

    boxes, scores, labels = boxes.reshape(-1, 4).float(), scores.reshape(-1).float(), labels.reshape(-1)
    n = len(boxes)
    cut = torch.zeros(n, dtype=torch.bool) if cut is None else cut.reshape(-1).bool()
    slice_ids = torch.zeros(n, dtype=torch.int64) if slice_ids is None else slice_ids.reshape(-1)
    limit = n if max_dets is None else max(int(max_dets), 0)
    if method == "nms":
        keep = batched_nms(boxes, scores, labels, match)[:limit]
        return boxes[keep], scores[keep], labels[keep]
    if method != "nmm":
        raise ValueError(f"method must be 'nmm' or 'nms', not {method!r}")
    order = torch.argsort(scores, descending=True, stable=True)
    b, s, lab, c, sid = boxes[order], scores[order], labels[order], cut[order], slice_ids[order]
    alive = torch.ones(n, dtype=torch.bool)
    out_b, kept = [], []
    for i in range(n):
        if len(kept) >= limit:
            break
        if not alive[i]:
            continue
        merged = b[i].clone()
        rest = torch.nonzero(alive[i + 1:] & (lab[i + 1:] == lab[i])).flatten() + i + 1
        if len(rest):
            ios = _ios(b[i], b[rest])
            parts = rest[(c[rest] | c[i]) & (sid[rest] != sid[i]) & (ios >= match)]  # one object cut by slices
            if len(parts):
                merged[:2] = torch.minimum(merged[:2], b[parts, :2].min(dim=0).values)
                merged[2:] = torch.maximum(merged[2:], b[parts, 2:].max(dim=0).values)
            dupes = rest[box_iou(b[i][None], b[rest])[0] >= match]
            alive[parts] = False
            alive[dupes] = False
        out_b.append(merged)
        kept.append(i)
    if not out_b:
        return boxes.new_zeros((0, 4)), scores.new_zeros(0), labels.new_zeros(0)
    kept = torch.tensor(kept, dtype=torch.int64)
    return torch.stack(out_b), s[kept], lab[kept]


def slice_image(image: torch.Tensor, cfg: TileConfig) -> tuple[list[torch.Tensor], list[tuple[int, int, int, int]]]:
    """The slices of ``image`` [C, H, W] (the training grid's windows) and each one's window (x1, y1, x2, y2)."""
    h, w = int(image.shape[-2]), int(image.shape[-1])
    wins = windows(h, w, cfg.size, cfg.stride)
    return [image[..., y1:y2, x1:x2] for x1, y1, x2, y2 in wins], wins


def cut_by_edge(boxes: torch.Tensor, window, frame_w: int, frame_h: int, tol: float = 2.0) -> torch.Tensor:
    """Which ``boxes`` (frame pixels) touch an edge of ``window`` that is inside the frame: cut by the slice."""
    x1, y1, x2, y2 = window
    return (((boxes[:, 0] <= x1 + tol) & (x1 > 0)) | ((boxes[:, 1] <= y1 + tol) & (y1 > 0))
            | ((boxes[:, 2] >= x2 - tol) & (x2 < frame_w)) | ((boxes[:, 3] >= y2 - tol) & (y2 < frame_h)))


def merge_slices(dets: list[dict], windows_: list[tuple[int, int, int, int]], match: float = 0.5,
                 method: str = "nms", max_dets: int = MAX_DETS, score_floor: float = SCORE_FLOOR) -> dict:
    """The detections of one frame's slices (each in its slice's pixels; ``windows_`` the slices' (x1, y1, x2,
    y2) in the frame, which they cover) as one capped set in frame pixels."""
    frame_w = max(w[2] for w in windows_) if windows_ else 0
    frame_h = max(w[3] for w in windows_) if windows_ else 0
    boxes, scores, labels, cut, ids = [], [], [], [], []
    for k, (det, win) in enumerate(zip(dets, windows_)):
        keep = det["scores"] >= score_floor
        x, y = win[0], win[1]
        b = det["boxes"][keep].float().cpu() + torch.tensor([x, y, x, y], dtype=torch.float32)
        boxes.append(b)
        scores.append(det["scores"][keep].float().cpu())
        labels.append(det["labels"][keep].cpu())
        cut.append(cut_by_edge(b, win, frame_w, frame_h))
        ids.append(torch.full((len(b),), k, dtype=torch.int64))
    if not boxes:
        return {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    b, s, lab = merge(torch.cat(boxes), torch.cat(scores), torch.cat(labels), match, method, torch.cat(cut),
                      torch.cat(ids), max_dets=max_dets)
    return cap({"boxes": b, "scores": s, "labels": lab}, max_dets, score_floor)


@torch.no_grad()
def predict_sliced(model, batches: Iterable, device, cfg: TileConfig, *, score_threshold: float | None = None,
                   batch_slices: int = 8, match: float = 0.5, method: str = "nms", amp: bool = False,
                   max_dets: int = MAX_DETS) -> list[dict]:
    """Detections of every full frame of ``batches`` ((images, targets) pairs) predicted by slices, as
    nbdetect.engine.predict returns them: ``{"image_id", "boxes", "scores", "labels"}`` in frame pixels."""
    from .engine import _autocast, _image_id

    floor = max(SCORE_FLOOR, float(score_threshold or 0.0))
    was_training = model.training
    model.eval()
    holder = model.roi_heads if hasattr(model, "roi_heads") else model
    internal = getattr(holder, "score_thresh", None)
    if score_threshold is not None and internal is not None and floor < internal:
        holder.score_thresh = floor  # as engine.predict: None keeps the model's own cut (torchvision: 0.05)
    out = []
    try:
        for images, targets in batches:
            for image, target in zip(images, targets):
                slices, wins = slice_image(image, cfg)
                dets = []
                for k in range(0, len(slices), batch_slices):
                    chunk = [s.to(device, non_blocking=True) for s in slices[k:k + batch_slices]]
                    with _autocast(torch.device(device), amp):
                        dets += model(chunk)
                merged = merge_slices(dets, wins, match, method, max_dets, floor)
                image_id = _image_id(target)
                out.append({"image_id": len(out) if image_id is None else image_id, **merged})
    finally:
        model.train(was_training)
        if internal is not None:
            holder.score_thresh = internal
    return out
