import pytest
import torch

from nbdetect.data import (SyntheticSigns, as_detection_dataset, check_dataset, check_sample, make_loader,
                           raise_if_invalid, synthetic_split)
from nbdetect.data.loader import ResumableSampler


@pytest.mark.slow
def test_synthetic_is_deterministic_and_boxes_cover_the_signs():
    a, b = SyntheticSigns(6, seed=3), SyntheticSigns(6, seed=3)
    for i in range(6):
        (ia, ta), (ib, tb) = a[i], b[i]
        assert torch.equal(ia, ib) and torch.equal(ta["boxes"], tb["boxes"])
    assert not torch.equal(SyntheticSigns(1, seed=4)[0][0], a[0][0])
    train, val = synthetic_split(n_train=20, n_val=5)
    assert train.num_classes == 6 and len(val) == 5
    for i in range(20):
        image, t = train[i]
        boxes = t["boxes"]
        assert len(boxes) >= 1 and int(t["labels"].min()) >= 1 and int(t["labels"].max()) <= 6
        side = boxes[:, 2] - boxes[:, 0]
        assert (side >= 12).all() and (side <= 64).all() and (boxes >= 0).all() and (boxes <= 256).all()
        for x1, y1, x2, y2 in boxes.int().tolist():
            inside = image[:, y1:y2, x1:x2]
            # every sign has strongly saturated red/blue/yellow paint or bright white inside its box
            sat = inside.max(0).values - inside.min(0).values
            assert float(sat.max()) > 0.45
    assert check_dataset(train, 6) == []


def _sample(image=None, boxes=((10.0, 10.0, 40.0, 40.0),), labels=(1,)):
    image = torch.rand(3, 64, 64) if image is None else image
    return image, {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), "labels": torch.tensor(labels)}


@pytest.mark.parametrize("mutate,code", [
    (lambda: _sample(image=torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)), "image_not_float"),
    (lambda: _sample(image=torch.rand(3, 64, 64) * 255), "image_range_255"),
    (lambda: _sample(image=torch.rand(64, 64, 3)), "image_shape"),
    (lambda: _sample(image=(torch.rand(3, 64, 64) - 0.45) / 0.22), "image_normalized"),
    (lambda: _sample(boxes=((40.0, 10.0, 10.0, 40.0),)), "box_not_xyxy"),
    (lambda: _sample(boxes=((0.1, 0.1, 0.5, 0.6),)), "box_normalized"),
    (lambda: _sample(boxes=((10.0, 10.0, 90.0, 40.0),)), "box_outside_image"),
    (lambda: _sample(boxes=((10.0, 10.0, 10.0, 40.0),)), "box_degenerate"),
    (lambda: _sample(labels=(7,)), "label_out_of_range"),
    (lambda: _sample(labels=(0,)), "label_zero"),
])
def test_each_bad_sample_kind_is_named_with_its_index(mutate, code):
    data = [_sample() for _ in range(5)]
    data[3] = mutate()
    problems = [p for p in check_dataset(as_detection_dataset(data), num_classes=3) if p.severity == "error"]
    assert [p.code for p in problems] == [code] and problems[0].index == 3
    with pytest.raises(ValueError, match="sample 3"):
        raise_if_invalid(problems)


def test_dataset_level_problems_and_warnings():
    assert check_dataset([], 3)[0].code == "empty_dataset"
    train, _ = synthetic_split(n_train=4, n_val=1)
    assert any(p.code == "num_classes_mismatch" for p in check_dataset(train, 3))
    empty = _sample(boxes=(), labels=())
    # a background image is normal data (info, never printed as a warning by prepare_data), and never raises
    assert [p.severity for p in check_sample(0, *empty, num_classes=3)] == ["info"]
    raise_if_invalid(check_sample(0, *empty, num_classes=3))


def test_label_base_zero_shifts_labels():
    data = [_sample(labels=(0,))]
    ds = as_detection_dataset(data, label_base=0)
    assert ds[0][1]["labels"].tolist() == [1] and check_dataset(ds, 3) == []


def test_sampler_resumes_mid_epoch_with_the_same_order():
    s = ResumableSampler(10, seed=5)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2)
    s.set_start(4)
    assert list(s) == full[4:]
    assert list(s) == full  # the skip applies once
    s.set_epoch(3)
    assert list(s) != full and sorted(s) == list(range(10))
    loader = make_loader(SyntheticSigns(6), batch_size=4, seed=0)
    assert len(loader) == 2 and make_loader(loader) is loader
