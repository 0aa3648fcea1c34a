"""Box voting: NMS's boxes, scores and order, each kept box moved to its class's score-weighted mean."""
import torch
from torchvision.ops import batched_nms

from nbdetect.box_voting import nms_with_voting


def test_kept_box_is_the_score_weighted_mean_of_its_class_overlapping_it():
    boxes = torch.tensor([[10., 10., 30., 30.], [12., 10., 32., 30.], [10., 10., 30., 30.], [100., 100., 120., 120.]])
    scores = torch.tensor([0.9, 0.3, 0.8, 0.5])
    labels = torch.tensor([1, 1, 2, 1])  # box 2 overlaps box 0 but names another class
    kept, kept_scores, kept_labels = nms_with_voting(boxes, scores, labels, iou=0.5)
    assert torch.equal(kept_scores, scores[[0, 2, 3]])
    assert kept_labels.tolist() == [1, 2, 1]
    expected = (0.9 * boxes[0] + 0.3 * boxes[1]) / 1.2  # the class-2 box takes no part in class 1's vote
    assert torch.allclose(kept[0], expected)
    assert torch.allclose(kept[1], boxes[2]) and torch.allclose(kept[2], boxes[3])  # alone: unchanged


def test_vote_iou_sets_who_votes_and_nms_decides_who_is_kept():
    boxes = torch.tensor([[0., 0., 20., 20.], [4., 0., 24., 20.]])  # IoU 16/24 = 0.667
    scores = torch.tensor([0.6, 0.4])
    labels = torch.tensor([1, 1])
    kept, _, _ = nms_with_voting(boxes, scores, labels, iou=0.5, vote_iou=0.7)
    assert torch.allclose(kept, boxes[:1])  # suppressed by NMS, but below the vote's IoU: no say
    kept, _, _ = nms_with_voting(boxes, scores, labels, iou=0.5, vote_iou=0.6)
    assert torch.allclose(kept, torch.tensor([[1.6, 0., 21.6, 20.]]))


def test_same_boxes_kept_as_nms_and_capped():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=g) * 200
    wh = 10 + torch.rand(300, 2, generator=g) * 30
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(300, generator=g)
    labels = torch.randint(1, 4, (300,), generator=g)
    keep = batched_nms(boxes, scores, labels, 0.5)[:40]
    kept, kept_scores, kept_labels = nms_with_voting(boxes, scores, labels, iou=0.5, max_dets=40)
    assert torch.equal(kept_scores, scores[keep]) and torch.equal(kept_labels, labels[keep])
    assert kept.shape == (40, 4) and not torch.allclose(kept, boxes[keep])  # moved by their neighbours
    empty = nms_with_voting(boxes[:0], scores[:0], labels[:0])
    assert [len(t) for t in empty] == [0, 0, 0]


def test_a_box_of_no_area_keeps_its_own_place_instead_of_becoming_nan():
    boxes = torch.tensor([[96., 10., 96., 30.], [96., 10., 96., 30.], [10., 10., 30., 30.]])  # clipped at an edge
    scores = torch.tensor([0.2, 0.1, 0.9])
    labels = torch.tensor([1, 1, 1])
    kept, _, _ = nms_with_voting(boxes, scores, labels)
    assert torch.isfinite(kept).all()
    assert torch.equal(kept[0], boxes[2]) and torch.equal(kept[1], boxes[0])
