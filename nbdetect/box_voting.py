"""Box voting (pure): class-wise NMS whose kept boxes are placed by the boxes they suppress.

A detector scores many overlapping candidates for one object; NMS keeps the highest-scoring one, whose box is
not the best placed of them when the score and the box come from different anchors' guesses. Voting keeps the
same boxes, the same scores and the same order as NMS, and moves each kept box to the score-weighted mean of
the candidates of its class that overlap it at IoU >= ``vote_iou`` (itself included): the candidates agree on
where the object is more closely than any one of them (Gidaris & Komodakis 2015, "box voting").
"""
from __future__ import annotations

import torch
from torchvision.ops import batched_nms, box_iou


def nms_with_voting(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float = 0.5,
                    vote_iou: float | None = None, max_dets: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(boxes, scores, labels) kept by class-wise NMS at ``iou``, highest score first, at most ``max_dets``;
    each kept box the score-weighted mean of its class's candidates overlapping it at IoU >= ``vote_iou``
    (default: ``iou``)."""
    keep = batched_nms(boxes, scores, labels, iou)
    if max_dets is not None:
        keep = keep[:max_dets]
    kept = boxes[keep]
    if len(keep):
        same = labels[keep][:, None] == labels[None, :]
        votes = same & (box_iou(kept, boxes) >= (iou if vote_iou is None else vote_iou))
        votes[torch.arange(len(keep)), keep] = True  # its own vote, also where its IoU is 0/0 (a box of no area)
        weights = scores[None, :] * votes
        kept = (weights @ boxes.to(weights.dtype)) / weights.sum(dim=1, keepdim=True)
    return kept.to(boxes.dtype), scores[keep], labels[keep]


def voted_postprocess(model, *args):
    """``model.postprocess_detections`` with box voting (models.set_box_voting installs it on the instance):
    the model's own postprocessing with its NMS turned off (IoU 1.0 suppresses nothing) and no cap, so every
    candidate above its score cut comes back; then :func:`nms_with_voting` at the model's ``nms_thresh``, its
    ``detections_per_img`` and its ``nbdetect_vote_iou``. Boxes are in the model's resized input's pixels, as
    the original's (voting is a weighted mean: the resize back maps it the same)."""
    nms, cap = model.nms_thresh, model.detections_per_img
    model.nms_thresh, model.detections_per_img = 1.0, 1 << 30
    try:
        detections = type(model).postprocess_detections(model, *args)
    finally:
        model.nms_thresh, model.detections_per_img = nms, cap
    voted = []
    for det in detections:
        boxes, scores, labels = nms_with_voting(det["boxes"], det["scores"], det["labels"], nms,
                                                model.nbdetect_vote_iou, cap)
        voted.append({"boxes": boxes, "scores": scores, "labels": labels})
    return voted
