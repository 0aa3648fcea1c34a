"""The naming loss: cross-entropy among the real classes on the anchors matched to a box (RetinaNet).

RetinaNet scores every class with its own sigmoid under a focal loss. For each class the negatives are the
background anchors and the other classes' boxes; the background outnumbers the boxes a thousand to one, so
each class's output first learns "a sign is here" and tells one class from another only slowly: the focal
loss scales the push-down of a wrong class scoring 0.3 on a matched anchor by 0.75 x 0.3^2, an eighteenth of
a plain cross-entropy's. On GTSDB tiles the tiny RetinaNet found signs but named 57 of 100 of them wrong after
12 epochs (the training tiles' own signs too: an optimisation problem, not over-fitting), and its four class
outputs stayed within a few hundredths of each other (benchmarks/bench_vs_yolo.py --gtsdb).

:class:`NamingRetinaNetHead` adds, beside torchvision's two losses, a ``"naming"`` loss: the cross-entropy
of the real classes' logits (output 0, never a target in nbdetect's convention, left out) against the matched
box's class, on every anchor matched to a box, averaged per image, times ``naming_weight``. Nothing changes
at prediction: the scores are the sigmoids as before. A recipe turns it on with its ``naming_loss`` (the
weight; models.set_naming_loss), on a family whose record names a ``naming_head``.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.models.detection.retinanet import RetinaNetHead


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


class NamingRetinaNetHead(RetinaNetHead):
    """torchvision's RetinaNet head with the naming loss beside its own two (``naming_weight`` x the mean
    cross-entropy among the real classes on matched anchors). A built head becomes one in place
    (models.set_naming_loss): it holds no other state, so checkpoints are unchanged."""

    naming_weight: float = 1.0

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs):
        losses = super().compute_loss(targets, head_outputs, anchors, matched_idxs)
        losses["naming"] = self.naming_weight * naming_loss(targets, head_outputs["cls_logits"], matched_idxs)
        return losses
