"""The naming loss: cross-entropy among the real classes on the anchors matched to a box (RetinaNet).

RetinaNet scores every class with its own sigmoid under a focal loss. For each class the negatives are the
background anchors and the other classes' boxes; the background outnumbers the boxes a thousand to one, so
each class's output first learns "a sign is here" and tells one class from another only slowly: the focal
loss scales the push-down of a wrong class scoring 0.3 on a matched anchor by 0.75 x 0.3^2, an eighteenth of
a plain cross-entropy's. On GTSDB tiles the tiny RetinaNet found signs but named 57 of 100 of them wrong after
12 epochs (the training tiles' own signs too: an optimisation problem, not over-fitting), and its four class
outputs stayed within a few hundredths of each other (benchmarks/bench_vs_yolo.py --gtsdb).

:class:`LossRetinaNetHead` adds, beside torchvision's two losses, a ``"naming"`` loss: the cross-entropy
of the real classes' logits (output 0, never a target in nbdetect's convention, left out) against the matched
box's class, on every anchor matched to a box, averaged per image, times ``naming_weight``. Nothing changes
at prediction: the scores are the sigmoids as before. A recipe turns it on with its ``naming_loss`` (the
weight; models.set_naming_loss), on a family whose record names a ``loss_head``.

IoU-aware scores (``iou_scores``; models.set_iou_scores) change torchvision's classification loss: the target
of the matched box's class on a matched anchor is the IoU of the box that anchor predicts with the box (not 1),
under the quality focal loss of Generalized Focal Loss (Li et al., 2020): binary cross-entropy against that
soft target times |target - score|^2, summed over the anchors that are not ignored and divided by the matched
ones, as torchvision's focal loss. A well-placed box then scores above a loose one on the same sign, so the box
NMS keeps is the better-placed one, which is what mAP@.5:.95 counts. Prediction is unchanged. It is an option,
not Alternative 1's default: on GTSDB tiles from scratch at 12 epochs it lowered mAP@.5 by about 0.1 and
mAP@.5:.95 by about 0.06 in two seeds (README, the GTSDB ablation).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import box_iou


def naming_loss(targets, cls_logits: torch.Tensor, matched_idxs) -> torch.Tensor:
    """Cross-entropy of the real classes' logits (``cls_logits`` [N, anchors, K + 1], output 0 left out) against
    the class of the box each anchor is matched to (``matched_idxs``: its index, < 0 for none), averaged over an
    image's matched anchors, then over the images (an image without a matched anchor adds 0)."""
    total = cls_logits.new_zeros(())
    for target, logits, matched in zip(targets, cls_logits, matched_idxs):
        foreground = matched >= 0
        if foreground.any():
            labels = target["labels"][matched[foreground]] - 1
            total = total + F.cross_entropy(logits[foreground][:, 1:], labels)
    return total / max(len(targets), 1)


def iou_score_loss(targets, cls_logits: torch.Tensor, bbox_regression: torch.Tensor, anchors, matched_idxs,
                   box_coder, beta: float = 2.0, ignored: int = -2) -> torch.Tensor:
    """The quality focal loss with IoU targets (``cls_logits`` [N, anchors, C], ``bbox_regression`` [N, anchors,
    4], ``anchors`` per image [anchors, 4], ``matched_idxs``: the matched box's index, < 0 for none, ``ignored``
    for an anchor between the thresholds). The target is the IoU of each matched anchor's decoded box (not
    back-propagated through) with its box for that box's class, 0 elsewhere; summed over the anchors that are
    not ignored, divided by the matched ones (at least 1), averaged over the images."""
    total = cls_logits.new_zeros(())
    for target, logits, deltas, anchors_i, matched in zip(targets, cls_logits, bbox_regression, anchors, matched_idxs):
        foreground = torch.where(matched >= 0)[0]
        soft = torch.zeros_like(logits)
        if foreground.numel():
            boxes = target["boxes"][matched[foreground]]
            with torch.no_grad():
                predicted = box_coder.decode_single(deltas[foreground].detach(), anchors_i[foreground])
                iou = box_iou(predicted, boxes).diagonal().clamp(min=0.0, max=1.0)
            soft[foreground, target["labels"][matched[foreground]]] = iou.to(soft.dtype)
        keep = matched != ignored
        logits, soft = logits[keep], soft[keep]
        weight = (soft - logits.sigmoid()).abs().pow(beta)
        loss = F.binary_cross_entropy_with_logits(logits, soft, reduction="none") * weight
        total = total + loss.sum() / max(1, foreground.numel())
    return total / max(len(targets), 1)


class LossRetinaNetHead(RetinaNetHead):
    """torchvision's RetinaNet head with nbdetect's training losses: the naming loss beside its own two
    (``naming_weight`` x the mean cross-entropy among the real classes on matched anchors; 0: without) and,
    with ``iou_scores``, the classification loss with IoU targets (:func:`iou_score_loss`). A built head becomes
    one in place (models.set_naming_loss, models.set_iou_scores): it holds no other state, so checkpoints and
    predictions are unchanged."""

    naming_weight: float = 0.0
    iou_scores: bool = False
    #: The switches models.set_naming_loss / set_iou_scores set on a head; each class value above is off.
    options = ("naming_weight", "iou_scores")

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs):
        if self.iou_scores:
            losses = {"classification": iou_score_loss(
                          targets, head_outputs["cls_logits"], head_outputs["bbox_regression"], anchors, matched_idxs,
                          self.regression_head.box_coder, ignored=self.classification_head.BETWEEN_THRESHOLDS),
                      "bbox_regression": self.regression_head.compute_loss(targets, head_outputs, anchors,
                                                                           matched_idxs)}
        else:
            losses = super().compute_loss(targets, head_outputs, anchors, matched_idxs)
        if self.naming_weight > 0:
            losses["naming"] = self.naming_weight * naming_loss(targets, head_outputs["cls_logits"], matched_idxs)
        return losses
