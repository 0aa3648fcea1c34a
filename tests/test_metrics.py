import math

import pytest
import torch

from nbdetect.metrics import coco_map


def _t(boxes, labels):
    return {"boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.as_tensor(labels, dtype=torch.int64)}


def test_perfect_predictions_score_one_and_shifted_boxes_score_less():
    targets = [_t([[10, 10, 50, 50], [60, 60, 90, 90]], [1, 2]), _t([[5, 5, 40, 45]], [1])]
    perfect = [dict(t, scores=torch.ones(len(t["labels"]))) for t in targets]
    assert coco_map(perfect, targets)["map"] == pytest.approx(1.0)
    shifted = [dict(boxes=t["boxes"] + 6, labels=t["labels"], scores=torch.ones(len(t["labels"]))) for t in targets]
    r = coco_map(shifted, targets)
    assert r["map"] < 0.9 and r["map50"] > r["map"]
    wrong_class = [dict(p, labels=3 - p["labels"]) for p in perfect]
    assert coco_map(wrong_class, targets)["map50"] < 0.5


def test_edge_cases():
    targets = [_t([[10, 10, 50, 50]], [1])]
    empty = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}]
    assert coco_map(empty, targets)["map"] == 0.0
    assert math.isnan(coco_map(empty, [_t(torch.zeros(0, 4), [])])["map"])
    with pytest.raises(ValueError):
        coco_map(empty, targets * 2)


def test_per_class_ap50_names_the_class_that_is_missed():
    targets = [_t([[10, 10, 50, 50], [60, 60, 90, 90]], [1, 2]), _t([[5, 5, 40, 45]], [1])]
    found_1_only = [{"boxes": t["boxes"][t["labels"] == 1], "labels": t["labels"][t["labels"] == 1],
                     "scores": torch.ones(int((t["labels"] == 1).sum()))} for t in targets]
    r = coco_map(found_1_only, targets, per_class=True)
    assert r["map50_per_class"] == {1: pytest.approx(1.0), 2: 0.0}
    assert r["map50"] == pytest.approx(0.5)
    assert "map50_per_class" not in coco_map(found_1_only, targets)
    empty = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    assert coco_map(empty, targets, per_class=True)["map50_per_class"] == {1: 0.0, 2: 0.0}
