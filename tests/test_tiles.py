"""Tiles (nbdetect.data.tiles) and sliced inference (nbdetect.slicing): pure functions, no training."""
import pytest
import torch

from nbdetect.data.tiles import TileConfig, TiledDataset, cut, grid, plan_tiles, tile_config
from nbdetect.slicing import MAX_DETS, cap, merge, merge_slices, predict_sliced, slice_image


def test_grid_covers_the_side_and_ends_on_its_edge():
    assert grid(1360, 320, 240) == [0, 240, 480, 720, 960, 1040]
    assert grid(800, 320, 240) == [0, 240, 480]
    assert grid(200, 320, 240) == [0]


def test_cut_shifts_clips_and_keeps_boxes_mostly_inside():
    image = torch.rand(3, 100, 200)
    boxes = torch.tensor([[10., 10., 30., 30.],  # inside
                          [90., 10., 130., 30.],  # 25% inside the window [0, 100): dropped
                          [80., 40., 105., 60.],  # 80% inside: kept, clipped at x = 100
                          [150., 10., 170., 30.]])  # outside
    target = {"boxes": boxes, "labels": torch.tensor([1, 2, 3, 4]), "iscrowd": torch.zeros(4, dtype=torch.int64)}
    crop, out = cut(image, target, (0, 0, 100, 100), min_visible=0.6)
    assert crop.shape == (3, 100, 100) and torch.equal(crop, image[:, :, :100])
    assert out["boxes"].tolist() == [[10, 10, 30, 30], [80, 40, 100, 60]]
    assert out["labels"].tolist() == [1, 3] and len(out["iscrowd"]) == 2
    _, out = cut(image, target, (100, 0, 200, 100), min_visible=0.6)  # the same boxes in the next window's pixels
    assert out["boxes"].tolist() == [[0, 10, 30, 30], [50, 10, 70, 30]] and out["labels"].tolist() == [2, 4]


def test_plan_keeps_object_tiles_a_share_of_background_and_drops_cut_only_tiles():
    cfg = TileConfig(size=100, overlap=0.0, background=0.5, seed=3)
    sizes = [(100, 400)] * 3  # four windows per frame
    boxes = [torch.tensor([[10., 10., 40., 40.]]),  # window 0 holds it
             torch.tensor([[90., 10., 110., 40.]]),  # cut in half between windows 0 and 1: both dropped
             torch.zeros(0, 4)]
    plan = plan_tiles(sizes, boxes, cfg)
    objects = [t for t in plan if t.objects]
    background = [t for t in plan if not t.objects]
    assert [(t.image, t.window) for t in objects] == [(0, (0, 0, 100, 100))]
    assert len(background) == 1  # half of the plan
    assert not any(t.image == 1 and t.window[0] in (0, 100) for t in plan)
    assert plan == plan_tiles(sizes, boxes, cfg)  # deterministic from (seed, data)
    others = {tuple((t.image, t.window) for t in plan_tiles(sizes, boxes, TileConfig(100, 0.0, 0.5, seed=s)))
              for s in range(8)}
    assert len(others) > 1  # the seed picks the background tiles
    assert not [t for t in plan_tiles(sizes, boxes, TileConfig(100, 0.0, 0.0)) if not t.objects]


def test_tiled_dataset_cuts_tiles_of_any_dataset():
    frames = [(torch.rand(3, 200, 300), {"boxes": torch.tensor([[20., 20., 60., 60.]]), "labels": torch.tensor([1])}),
              (torch.rand(3, 200, 300), {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)})]
    ds = TiledDataset(frames, TileConfig(size=128, background=0.5))
    again = TiledDataset(frames, TileConfig(size=128, background=0.5))
    assert ds.plan == again.plan and len(ds) >= 2
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (3, 128, 128) and target["image_id"] == i
        if len(target["boxes"]):
            assert target["frame"] == 0 and target["boxes"].tolist() == [[20, 20, 60, 60]]
    assert "tiles of 128x128 px" in ds.describe()


@pytest.mark.parametrize("value, fragment", [(True, "tile size"), (16, "size 16"), ("320", "str"),
                                             ({"size": 320, "overlap": 0.95}, "overlap"),
                                             ({"size": 320, "background": 1.0}, "background"),
                                             ({"size": 320, "sede": 1}, "'sede'")])
def test_a_bad_tile_config_says_why(value, fragment):
    with pytest.raises(ValueError, match=fragment):
        tile_config(value)


def test_tile_config_reads_an_int_and_a_dict():
    assert tile_config(320) == TileConfig(320)
    assert tile_config({"size": 256, "seed": 4}) == TileConfig(256, seed=4)
    assert tile_config(None) is None and tile_config(False) is None


def test_the_cut_box_merge_joins_a_box_split_over_two_slices_into_one_box_in_frame_pixels():
    # a 160-px sign at x 150..310 in a 400-px frame sliced in 200-px windows with 50% overlap (starts 0, 100, 200):
    # no slice holds all of it; the model sees its cut parts (in slice pixels) and the whole sign in the middle one
    dets = [{"boxes": torch.tensor([[150., 20., 200., 60.]]), "scores": torch.tensor([0.6]), "labels": torch.tensor([3])},
            {"boxes": torch.tensor([[50., 20., 200., 60.]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([3])},
            {"boxes": torch.tensor([[0., 20., 110., 60.]]), "scores": torch.tensor([0.7]), "labels": torch.tensor([3])}]
    wins = [(0, 0, 200, 100), (100, 0, 300, 100), (200, 0, 400, 100)]
    out = merge_slices(dets, wins, method="nmm")
    assert out["boxes"].tolist() == [[150, 20, 310, 60]] and out["scores"].tolist() == [pytest.approx(0.9)]
    # a 200-px sign at x 100..300 and slices 0..200 and 120..320: no slice sees it whole; its two parts, one box
    halves = [{"boxes": torch.tensor([[100., 20., 200., 60.]]), "scores": torch.tensor([0.6]), "labels": torch.tensor([3])},
              {"boxes": torch.tensor([[0., 20., 180., 60.]]), "scores": torch.tensor([0.7]), "labels": torch.tensor([3])}]
    out = merge_slices(halves, [(0, 0, 200, 100), (120, 0, 320, 100)], method="nmm")
    assert out["boxes"].tolist() == [[100, 20, 300, 60]]
    # another class at the same place is kept
    dets[2]["labels"] = torch.tensor([4])
    assert len(merge_slices(dets, wins, method="nmm")["boxes"]) == 2


def test_the_default_merge_keeps_a_right_box_that_a_low_score_cut_box_contains():
    """Why NMS is the default: a weak model's low-score box touching its slice's inner edge contains the sign
    another slice found well; the cut-box merge grows the right box into the wrong one, NMS keeps it."""
    sign = {"boxes": torch.tensor([[40., 40., 64., 64.]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([2])}
    loose = {"boxes": torch.tensor([[0., 10., 100., 120.]]), "scores": torch.tensor([0.05]), "labels": torch.tensor([2])}
    wins = [(100, 0, 300, 200), (0, 0, 200, 200)]  # the loose box touches its slice's right edge x=200 (inner)
    dets = [sign, {**loose, "boxes": loose["boxes"] + torch.tensor([100., 0., 100., 0.])}]
    kept = merge_slices(dets, wins)
    assert kept["boxes"].tolist()[0] == [140, 40, 164, 64] and kept["scores"].tolist()[0] == pytest.approx(0.9)
    grown = merge_slices(dets, wins, method="nmm")
    assert grown["boxes"].tolist() == [[100, 10, 200, 120]]  # the 0.9 box became the loose one


def test_boxes_not_cut_by_a_slice_edge_are_not_merged_into_a_larger_box():
    # a weak model's small box inside a larger one, both well inside their slices: NMS keeps both, no union grows
    dets = [{"boxes": torch.tensor([[40., 40., 60., 60.]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([1])},
            {"boxes": torch.tensor([[5., 20., 150., 90.]]), "scores": torch.tensor([0.5]), "labels": torch.tensor([1])}]
    out = merge_slices(dets, [(0, 0, 200, 200), (30, 0, 230, 200)], method="nmm")
    assert out["boxes"].tolist() == [[40, 40, 60, 60], [35, 20, 180, 90]]


def test_nms_merge_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [50., 50., 60., 60.]])
    b, s, lab = merge(boxes, torch.tensor([0.5, 0.9, 0.4]), torch.tensor([1, 1, 1]), method="nms")
    assert b.tolist() == [[1, 1, 10, 10], [50, 50, 60, 60]] and s.tolist() == pytest.approx([0.9, 0.4])


def _merge_each_class_whole(boxes, scores, labels, cut, ids, match=0.5):
    """The slice merge written the plain way: each class on its own, every box visited, then sorted."""
    from torchvision.ops import box_iou

    from nbdetect.slicing import _ios

    out = []
    for label in labels.unique().tolist():
        idx = [int(i) for i in torch.argsort(torch.where(labels == label, scores, -1.0), descending=True, stable=True)
               if labels[i] == label]
        alive = set(idx)
        for pos, i in enumerate(idx):
            if i not in alive:
                continue
            box = boxes[i].clone()
            for j in idx[pos + 1:]:
                if j not in alive:
                    continue
                if (cut[i] or cut[j]) and ids[i] != ids[j] and _ios(boxes[i], boxes[j][None])[0] >= match:
                    box[:2] = torch.minimum(box[:2], boxes[j, :2])
                    box[2:] = torch.maximum(box[2:], boxes[j, 2:])
                    alive.discard(j)
                elif box_iou(boxes[i][None], boxes[j][None])[0, 0] >= match:
                    alive.discard(j)
            out.append((float(scores[i]), label, box.tolist()))
    return sorted(out, key=lambda t: -t[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_merge_stops_at_the_cap_with_the_boxes_a_whole_merge_would_keep(seed):
    """A weak model's thousands of overlapping low-score boxes over 3 classes and 6 slices: merging until
    ``max_dets`` boxes are kept gives the best ``max_dets`` boxes of merging them all (each class on its own)."""
    g = torch.Generator().manual_seed(seed)
    n = 400
    xy = torch.rand(n, 2, generator=g) * 200
    wh = 8 + torch.rand(n, 2, generator=g) * 30
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(n, generator=g)
    labels = torch.randint(1, 4, (n,), generator=g)
    cut = torch.rand(n, generator=g) < 0.3
    ids = torch.randint(0, 6, (n,), generator=g)
    whole = _merge_each_class_whole(boxes, scores, labels, cut, ids)
    assert len(whole) > 40  # the cap below binds
    for cap_at in (40, None):
        b, s, lab = merge(boxes, scores, labels, method="nmm", cut=cut, slice_ids=ids, max_dets=cap_at)
        expect = whole[:cap_at]
        assert len(s) == len(expect)
        assert s.tolist() == pytest.approx([t[0] for t in expect])
        assert lab.tolist() == [t[1] for t in expect]
        assert b.flatten().tolist() == pytest.approx([x for t in expect for x in t[2]])


def test_cap_keeps_the_boxes_the_evaluator_can_score():
    n = 300
    det = {"boxes": torch.rand(n, 4), "scores": torch.linspace(0, 1, n), "labels": torch.ones(n, dtype=torch.int64)}
    out = cap(det)
    assert len(out["scores"]) == MAX_DETS and float(out["scores"].min()) >= 0.001
    assert out["scores"].tolist() == sorted(out["scores"].tolist(), reverse=True)


class _Echo(torch.nn.Module):
    """A 'detector' that finds one box at the centre of every slice it is given (in the slice's pixels)."""

    def forward(self, images):
        out = []
        for im in images:
            h, w = im.shape[-2:]
            out.append({"boxes": torch.tensor([[w / 2 - 5, h / 2 - 5, w / 2 + 5, h / 2 + 5]]),
                        "scores": torch.tensor([0.8]), "labels": torch.tensor([1])})
        return out


def test_predict_sliced_returns_boxes_in_frame_pixels():
    cfg = TileConfig(size=100, overlap=0.0)
    image = torch.rand(3, 100, 300)
    slices, offsets = slice_image(image, cfg)
    assert len(slices) == 3 and offsets == [(0, 0, 100, 100), (100, 0, 200, 100), (200, 0, 300, 100)]
    (pred,) = predict_sliced(_Echo(), [([image], [{"image_id": 7}])], "cpu", cfg)
    assert pred["image_id"] == 7
    assert sorted(b[0] for b in pred["boxes"].tolist()) == [45, 145, 245]


def test_any_loader_is_tiled_a_yolo_folder_here(tmp_path):
    from bad_input_cases import yolo
    from nbdetect.data.tiles import tiled_of
    from nbdetect.inputs import prepare_data

    folder = yolo(tmp_path, line="0 0.25 0.5 0.1 0.1", size=(400, 200))  # one 40x20 box at (80..120, 90..110)
    cfg = tile_config({"size": 128, "background": 0.5})
    assert tiled_of(prepare_data(folder, num_classes=1, tiles=cfg, augment=True).train_loader) is not None
    data = prepare_data(folder, num_classes=1, tiles=cfg)
    assert tiled_of(data.train_loader) is not None and data.tiles.size == 128
    images, targets = next(iter(data.train_loader))
    assert all(im.shape == (3, 128, 128) and im.dtype == torch.float32 for im in images)
    assert any(len(t["boxes"]) for t in targets) and any(not len(t["boxes"]) for t in targets)


def test_native_resolution_predicts_a_whole_frame_at_its_own_size_then_restores_the_resize():
    """A model built for 128-px tiles shrinks a 300x420 frame to 128 px; inside native_resolution() it sees the
    frame at its own size (the scale its tiles had), and afterwards it resizes again."""
    import torch
    from nbdetect.engine import native_resolution
    from nbdetect.models import build_model

    model = build_model("retinanet_tiny", 3, weights=None, min_size=128, max_size=128).eval()
    frame = torch.rand(3, 300, 420)
    assert model.transform([frame])[0].image_sizes == [(91, 128)]
    with native_resolution(model):
        assert model.transform([frame])[0].image_sizes == [(300, 420)]
        with torch.no_grad():
            det = model([frame])[0]
        assert det["boxes"].numel() == 0 or float(det["boxes"][:, 2].max()) <= 420.5
    assert model.transform([frame])[0].image_sizes == [(91, 128)]


def test_predict_builds_no_autograd_graph():
    """engine.predict runs under no_grad: its boxes and scores carry no graph (no memory held for backward)."""
    from nbdetect.engine import predict
    from nbdetect.models import build_model

    model = build_model("retinanet_tiny", 3, weights=None, min_size=128, max_size=128)
    model.head.classification_head.cls_logits.bias.data.fill_(5.0)  # every anchor scores high: boxes exist
    preds = predict(model, [([torch.rand(3, 128, 128)], [{}])], torch.device("cpu"))
    assert len(preds[0]["scores"]) > 0
    assert not preds[0]["scores"].requires_grad and not preds[0]["boxes"].requires_grad
