import math

import pytest
import torch

from nbdetect import models


@pytest.mark.parametrize("preset,expected_family", [("retinanet_tiny", "retinanet"), ("fasterrcnn_tiny", "fasterrcnn"),
                                                     ("fcos_tiny", "fcos")])
def test_tiny_presets_have_k_plus_one_outputs(preset, expected_family):
    m = models.build_model(preset, 6, weights=None)
    assert models.family_of(m) == expected_family == models.family_of(preset)
    if expected_family == "fasterrcnn":
        assert m.roi_heads.box_predictor.cls_score.out_features == 7
    else:
        assert m.head.classification_head.num_classes == 7
    assert models.num_classes_of(m) == 6


def test_fcos_is_a_family_record_its_tiny_model_starts_at_its_prior_and_its_anchors_are_points():
    """FCOS (anchor-free): one point per location whose size is the level's stride, never fitted; the class head
    starts at the prior probability like RetinaNet's; output 0 is never a target."""
    from nbdetect import families
    from nbdetect.checks.model_probe import probe

    fcos = families.FAMILIES["fcos"]
    assert not fcos.anchor_boxes and not fcos.background_output and not fcos.anchor_matching
    torch.manual_seed(0)
    m = models.build_model("fcos_tiny", 3, weights=None, min_size=128, max_size=128)
    bias = m.head.classification_head.cls_logits.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(99)))
    info = probe(m)
    assert info.family == "fcos" and info.num_classes == 3 and info.anchor_sizes == [] and info.cls_bias_mean < -4
    assert models.set_anchor_matching(m, (0.4, 0.3)) is None  # a recipe's match_iou leaves FCOS alone
    m.train()
    losses = m([torch.rand(3, 128, 128)], [{"boxes": torch.tensor([[20.0, 20, 60, 60]]), "labels": torch.tensor([3])}])
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    lo, hi = fcos.loss_range
    assert lo < sum(v.item() for v in losses.values()) < hi


def test_pretrained_fcos_gets_a_fresh_head_for_k_classes(monkeypatch):
    from torchvision.models import detection

    real = detection.fcos_resnet50_fpn

    def fake_pretrained(weights=None, **kwargs):  # stands in for the download: a 91-class COCO model
        return real(weights=None, weights_backbone=None, num_classes=91, **kwargs)

    monkeypatch.setattr(detection, "fcos_resnet50_fpn", fake_pretrained)
    m = models.build_model("fcos_resnet50_fpn", 5, weights="DEFAULT", min_size=64, max_size=64)
    head = m.head.classification_head
    assert head.num_classes == 6 and head.cls_logits.out_channels == 6 * head.num_anchors
    assert torch.allclose(head.cls_logits.bias, torch.full_like(head.cls_logits.bias, -math.log(99)))


def test_only_a_download_error_falls_back_to_random_weights(monkeypatch):
    """An offline error is named as such; any other error (a bug, e.g. in a head replacement) is raised, never
    reported as 'offline'."""
    from urllib.error import HTTPError, URLError

    from nbdetect import families

    assert "offline" in models.download_error(URLError("Name or service not known"))
    assert "HTTP 403" in models.download_error(HTTPError("u", 403, "Forbidden", {}, None))
    assert "corrupt" in models.download_error(RuntimeError("invalid hash value (expected abc, got def)"))
    assert models.download_error(AttributeError("'FCOSHead' object has no attribute 'x'")) is None
    assert models.download_error(RuntimeError("size mismatch for head")) is None

    from torchvision.models import detection

    real = detection.fasterrcnn_mobilenet_v3_large_320_fpn

    def unreachable(**kwargs):
        if kwargs.get("weights") is not None:
            raise URLError("no route to host")
        return real(**kwargs)

    monkeypatch.setattr(detection, "fasterrcnn_mobilenet_v3_large_320_fpn", unreachable)
    with pytest.warns(UserWarning, match="offline: the model hub could not be reached"):
        models.build_model("fasterrcnn_mobilenet_v3_large_320_fpn", 3)

    def broken_head(model, outputs):
        raise AttributeError("this head has no cls_logits")

    def pretrained(weights=None, **kwargs):
        return real(weights=None, weights_backbone=None, num_classes=91, **kwargs)

    monkeypatch.setattr(detection, "fasterrcnn_mobilenet_v3_large_320_fpn", pretrained)
    monkeypatch.setitem(families.FAMILIES, "fasterrcnn",
                        families.FAMILIES["fasterrcnn"].__class__(**{**families.FASTERRCNN.__dict__,
                                                                     "replace_head": broken_head}))
    with pytest.raises(AttributeError, match="no cls_logits"):
        models.build_model("fasterrcnn_mobilenet_v3_large_320_fpn", 3)


def test_retinanet_starts_from_its_prior_probability():
    """torchvision's RetinaNet sets the class bias to -log((1-0.01)/0.01): initial cls loss ~1.1."""
    torch.manual_seed(0)
    m = models.build_model("retinanet_tiny", 6, weights=None)
    bias = m.head.classification_head.cls_logits.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log(99)))
    m.train()
    losses = m([torch.rand(3, 256, 256)], [{"boxes": torch.tensor([[20.0, 20, 60, 60]]), "labels": torch.tensor([3])}])
    assert 0.8 < losses["classification"].item() < 1.5


def test_pretrained_fallback_warns_clearly_when_offline(monkeypatch):
    def offline(**kwargs):
        if kwargs.get("weights") is not None:
            raise OSError("no route to the model hub")
        return real(**kwargs)

    from torchvision.models import detection

    real = detection.fasterrcnn_mobilenet_v3_large_320_fpn
    monkeypatch.setattr(detection, "fasterrcnn_mobilenet_v3_large_320_fpn", offline)
    with pytest.warns(UserWarning, match="could not load pretrained weights.*random initialisation"):
        m = models.build_model("fasterrcnn_mobilenet_v3_large_320_fpn", 3)
    assert m.roi_heads.box_predictor.cls_score.out_features == 4


def test_pretrained_head_replacement_keeps_prior_bias(monkeypatch):
    """With weights='DEFAULT' the COCO head (91 outputs) is replaced for K classes, prior bias included."""
    from torchvision.models import detection

    real = detection.retinanet_resnet50_fpn

    def fake_pretrained(weights=None, **kwargs):  # stands in for the download: a 91-class COCO model
        return real(weights=None, weights_backbone=None, num_classes=91, **kwargs)

    monkeypatch.setattr(detection, "retinanet_resnet50_fpn", fake_pretrained)
    m = models.build_model("retinanet_resnet50_fpn", 43, weights="DEFAULT")
    head = m.head.classification_head
    assert head.num_classes == 44 and head.cls_logits.out_channels == 44 * head.num_anchors
    assert torch.allclose(head.cls_logits.bias, torch.full_like(head.cls_logits.bias, -math.log(99)))


def test_weights_from_a_file_and_unknown_preset(tmp_path):
    a = models.build_model("fasterrcnn_tiny", 2, weights=None)
    torch.save({"model": a.state_dict()}, tmp_path / "ckpt.pt")
    b = models.build_model("fasterrcnn_tiny", 2, weights=tmp_path / "ckpt.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="unknown model preset 'yolo'"):
        models.build_model("yolo", 2)
    with pytest.raises(ValueError, match="num_classes=0 must be at least 1"):
        models.build_model("retinanet_tiny", 0)


def test_a_tiny_retinanet_checkpoint_of_each_earlier_shape_still_loads(tmp_path):
    """retinanet_tiny's head gained GroupNorm, then gave two of its 4 convs to a wider, residual backbone; its
    output convolutions may be 1x1: a checkpoint of each shape is rebuilt as it was saved (read from its
    weights, nothing in its meta)."""
    import torch

    from nbdetect.backbones import WIDTHS
    from nbdetect.checkpoint import save_checkpoint
    from nbdetect.models import build_model
    from nbdetect.submission import load_model

    old_backbone = {"head_convs": 4, "widths": WIDTHS, "residual": (), "output_kernel": 3}
    shapes = ({"head_norm": False, **old_backbone}, {"head_norm": True, **old_backbone}, {"output_kernel": 3}, {})
    for i, options in enumerate(shapes):
        model = build_model("retinanet_tiny", 3, weights=None, min_size=96, max_size=96, **options)
        path = save_checkpoint({"format": "nbdetect-model-1", "model": model.state_dict(),
                                "meta": {"preset": "retinanet_tiny", "num_classes": 3, "min_size": 96,
                                         "max_size": 96}}, tmp_path / f"best_{i}.pt")
        loaded, _ = load_model(path, "cpu")
        assert list(loaded.state_dict()) == list(model.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
        has_gn = any(isinstance(m, torch.nn.GroupNorm) for m in loaded.head.modules())
        assert has_gn == options.get("head_norm", True)
        assert len(loaded.head.classification_head.conv) == options.get("head_convs", 2)
        assert bool(len(loaded.backbone.residual)) == ("widths" not in options)
        kernel = options.get("output_kernel", 1)
        assert loaded.head.classification_head.cls_logits.kernel_size == (kernel, kernel)
        assert loaded.head.regression_head.bbox_reg.kernel_size == (kernel, kernel)


def test_looser_anchor_matching_gives_a_small_box_more_positive_anchors_and_refuses_bad_thresholds():
    from torchvision.models.detection.image_list import ImageList
    from torchvision.ops import box_iou

    from nbdetect.errors import InputError
    from nbdetect.models import set_anchor_matching

    model = models.build_model("retinanet_tiny", 2, weights=None, min_size=256, max_size=256).eval()
    images = ImageList(torch.zeros(1, 3, 256, 256), [(256, 256)])
    features = list(model.backbone(images.tensors).values())
    anchors = model.anchor_generator(images, features)[0]
    positives = {}
    for thresholds in [(0.5, 0.4), (0.4, 0.3)]:
        assert set_anchor_matching(model, thresholds) is not None
        for side in (14, 20, 30):  # small signs at arbitrary positions
            for x in (37.0, 101.0, 170.0):
                box = torch.tensor([[x, x + 3, x + side, x + 3 + side]])
                matches = model.proposal_matcher(box_iou(box, anchors))
                positives[thresholds, side, x] = int((matches >= 0).sum())
    for key, n in positives.items():
        if key[0] == (0.4, 0.3):
            assert n >= positives[((0.5, 0.4), *key[1:])] and n >= 1
    assert sum(n for k, n in positives.items() if k[0] == (0.4, 0.3)) > 1.5 * sum(
        n for k, n in positives.items() if k[0] == (0.5, 0.4))
    assert set_anchor_matching(models.build_model("fasterrcnn_tiny", 2, weights=None), (0.4, 0.3)) is None
    with pytest.raises(InputError) as err:
        set_anchor_matching(model, (0.3, 0.4))
    assert err.value.where == "match_iou"


def test_the_naming_loss_is_the_cross_entropy_among_real_classes_on_matched_anchors_only():
    from nbdetect.losses import naming_loss

    logits = torch.zeros(2, 4, 4)  # 2 images, 4 anchors, K + 1 = 4 outputs (output 0 never a target)
    logits[0, 0] = torch.tensor([9.0, 5.0, 0.0, 0.0])  # matched to box 0 (class 1): confident and right
    logits[0, 1] = torch.tensor([9.0, 0.0, 0.0, 0.0])  # matched to box 1 (class 3): undecided among 3 classes
    targets = [{"labels": torch.tensor([1, 3])}, {"labels": torch.zeros(0, dtype=torch.int64)}]
    matched = [torch.tensor([0, 1, -1, -2]), torch.full((4,), -1)]  # -1 background, -2 between thresholds
    right = -torch.log_softmax(torch.tensor([5.0, 0.0, 0.0]), 0)[0]
    expected = (right + math.log(3)) / 2 / 2  # mean over image 0's matched anchors, then over the 2 images
    assert naming_loss(targets, logits, matched).item() == pytest.approx(expected.item(), rel=1e-5)
    assert naming_loss(targets[1:], logits[1:], matched[1:]).item() == 0.0


def _tiny_retinanet_and_one_sign():
    """A seeded 3-output tiny RetinaNet (eval mode), a 96-px image, its one-sign target, its predictions."""
    torch.manual_seed(0)
    m = models.build_model("retinanet_tiny", 3, weights=None, min_size=96, max_size=96)
    image = [torch.rand(3, 96, 96)]
    target = [{"boxes": torch.tensor([[20.0, 20, 50, 50]]), "labels": torch.tensor([2])}]
    m.eval()
    with torch.no_grad():
        before = m(image)[0]
    return m, image, target, before


def test_set_naming_loss_adds_a_loss_key_keeps_weights_and_predictions_and_leaves_other_families_alone():
    import copy

    from nbdetect.models import set_naming_loss

    m, image, target, before = _tiny_retinanet_and_one_sign()
    keys = list(m.state_dict())
    assert set_naming_loss(m, 2.0) == 0.0 and list(m.state_dict()) == keys
    with torch.no_grad():
        after = m(image)[0]
    assert torch.equal(before["scores"], after["scores"])
    m.train()
    torch.manual_seed(1)
    with_naming = m(image, target)
    assert set(with_naming) == {"classification", "bbox_regression", "naming"}
    assert with_naming["naming"].item() > 0 and with_naming["naming"].requires_grad
    twin = copy.deepcopy(m)  # as the weight EMA copies the model
    assert twin.head.naming_weight == 2.0 and "naming" in twin(image, target)
    assert set_naming_loss(m, 1.0) == 2.0
    assert set_naming_loss(m, 0) == 1.0 and set(m(image, target)) == {"classification", "bbox_regression"}
    assert set_naming_loss(models.build_model("fasterrcnn_tiny", 3, weights=None), 1.0) is None
    assert set_naming_loss(models.build_model("fcos_tiny", 3, weights=None), 1.0) is None


def test_iou_score_loss_targets_the_predicted_boxs_iou_on_the_matched_class_and_skips_ignored_anchors():
    from torchvision.models.detection import _utils as det_utils

    from nbdetect.losses import iou_score_loss

    coder = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    anchors = [torch.tensor([[0.0, 0, 20, 20], [0, 0, 10, 10], [50, 50, 60, 60]])]
    box = torch.tensor([[0.0, 0, 20, 10]])  # IoU 0.5 with anchor 0 (zero deltas: the prediction is the anchor)
    targets = [{"boxes": box, "labels": torch.tensor([2])}]
    deltas = torch.zeros(1, 3, 4)
    matched = [torch.tensor([0, -1, -2])]  # matched, background, between the thresholds (left out)
    logits = torch.tensor([[[0.3, -1.0, 0.2], [-2.0, 0.5, -3.0], [9.0, 9.0, 9.0]]])

    def qfl(x, y):
        p = torch.sigmoid(torch.tensor(x))
        return (-(y * torch.log(p) + (1 - y) * torch.log(1 - p)) * (y - p).abs() ** 2).item()

    expected = sum(qfl(x, 0.0) for x in (0.3, -1.0, -2.0, 0.5, -3.0)) + qfl(0.2, 0.5)
    got = iou_score_loss(targets, logits, deltas, anchors, matched, coder).item()
    assert got == pytest.approx(expected, rel=1e-5)
    # the matched class's loss is least where its score equals the IoU, not 1 as in the focal loss
    at = {x: iou_score_loss(targets, logits.clone().index_put_((torch.tensor([0]), torch.tensor([0]),
                                                                 torch.tensor([2])), torch.tensor(x)),
                            deltas, anchors, matched, coder).item() for x in (-0.5, 0.0, 0.5, 3.0)}
    assert at[0.0] < min(at[-0.5], at[0.5]) and at[3.0] > at[0.5]
    # a prediction moved onto the box raises the target: the same score now costs more
    moved = deltas.clone()
    moved[0, 0] = coder.encode_single(box, anchors[0][:1])[0]
    assert iou_score_loss(targets, logits, moved, anchors, matched, coder).item() > got
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    assert iou_score_loss(empty, logits, deltas, anchors, [torch.full((3,), -1)], coder).item() > 0


def test_set_iou_scores_changes_the_classification_loss_only_and_keeps_weights_predictions_and_the_naming_loss():
    import copy

    from nbdetect.models import set_iou_scores, set_naming_loss

    m, image, target, before = _tiny_retinanet_and_one_sign()
    keys = list(m.state_dict())
    m.train()
    focal = m(image, target)
    assert set_iou_scores(m, True) is False and list(m.state_dict()) == keys
    quality = m(image, target)
    assert set(quality) == {"classification", "bbox_regression"}
    assert quality["bbox_regression"].item() == pytest.approx(focal["bbox_regression"].item())
    assert quality["classification"].item() != pytest.approx(focal["classification"].item())
    m.eval()
    with torch.no_grad():
        assert torch.equal(before["scores"], m(image)[0]["scores"])
    m.train()
    assert set_naming_loss(m, 1.0) == 0.0 and set(m(image, target)) == {"classification", "bbox_regression", "naming"}
    assert copy.deepcopy(m).head.iou_scores is True  # the weight EMA's copy trains alike
    assert set_naming_loss(m, 0) == 1.0 and m.head.iou_scores is True  # one option off keeps the other
    assert set_iou_scores(m, False) is True and type(m.head).__name__ == "RetinaNetHead"
    assert m(image, target)["classification"].item() == pytest.approx(focal["classification"].item())
    assert set_iou_scores(models.build_model("fasterrcnn_tiny", 3, weights=None), True) is None
    assert set_iou_scores(models.build_model("fcos_tiny", 3, weights=None), True) is None


@pytest.mark.parametrize("preset", ["retinanet_tiny", "fasterrcnn_tiny", "fcos_tiny"])
def test_set_box_weight_multiplies_only_the_box_losses_in_training_and_a_copy_keeps_it(preset):
    import copy

    from nbdetect.families import of_model
    from nbdetect.models import set_box_weight

    m = models.build_model(preset, 2, weights=None, min_size=96, max_size=96)
    image = [torch.rand(3, 96, 96)]
    target = [{"boxes": torch.tensor([[20.0, 20, 50, 50]]), "labels": torch.tensor([1])}]

    def losses(model):
        torch.manual_seed(0)  # Faster R-CNN samples its proposals
        return {k: v.item() for k, v in model(image, target).items()}

    plain = losses(m)
    box_keys = of_model(m).box_loss_keys
    assert box_keys and set(box_keys) <= set(plain)
    assert set_box_weight(m, 3.0) == 1.0
    weighted = losses(m)
    for k, v in plain.items():
        assert weighted[k] == pytest.approx(v * (3.0 if k in box_keys else 1.0), rel=1e-5, abs=1e-7)
    assert losses(copy.deepcopy(m)) == pytest.approx(weighted)  # as the weight EMA copies the model
    m.eval()
    with torch.no_grad():
        assert isinstance(m(image), list)  # predictions pass through
    m.train()
    assert set_box_weight(m, False) == 3.0 and losses(m) == pytest.approx(plain)
    assert len(m._forward_hooks) == 1  # set again, hooked once


def test_set_box_loss_sets_a_retinanets_regression_loss_and_refuses_an_unknown_kind():
    from nbdetect.errors import InputError
    from nbdetect.models import set_box_loss

    m = models.build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    target = [{"boxes": torch.tensor([[20.0, 20, 50, 50]]), "labels": torch.tensor([1])}]
    image = [torch.rand(3, 96, 96)]
    torch.manual_seed(0)
    l1 = m(image, target)["bbox_regression"].item()
    assert set_box_loss(m, "giou") == "l1" and m.head.regression_head._loss_type == "giou"
    torch.manual_seed(0)
    giou = m(image, target)["bbox_regression"].item()
    assert giou != l1 and 0 < giou <= 2  # 1 - GIoU per matched anchor, averaged
    with pytest.raises(InputError) as err:
        set_box_loss(m, "iou")
    assert err.value.where == "box_loss"
    assert set_box_loss(models.build_model("fasterrcnn_tiny", 2, weights=None), "giou") is None


def test_set_box_voting_keeps_nms_boxes_scores_and_order_and_moves_the_boxes_by_their_candidates():
    import copy

    from nbdetect.box_voting import nms_with_voting
    from nbdetect.models import set_box_voting

    m, image, _, _ = _tiny_retinanet_and_one_sign()
    m.score_thresh = 0.0  # an untrained model's scores sit near its prior
    nms, cap, topk = m.nms_thresh, m.detections_per_img, m.topk_candidates
    with torch.no_grad():
        # voting reads each level's best `cap` candidates (box_voting.voted_postprocess; torchvision: 1000): the
        # model's NMS over that same pool is what it must keep exactly
        own = m(image)[0]
        m.topk_candidates = cap
        plain = m(image)[0]
        m.nms_thresh, m.detections_per_img, m.topk_candidates = 1.0, 1 << 30, cap
        every = m(image)[0]  # the best `cap` candidates of each level, no NMS
        m.nms_thresh, m.detections_per_img, m.topk_candidates = nms, cap, topk
    assert set_box_voting(m, 0.6) == 0.0 and m.nbdetect_vote_iou == 0.6
    assert set_box_voting(m, 0.0) == 0.6 and not hasattr(m, "nbdetect_vote_iou")  # what it returned turns it off
    assert set_box_voting(m, 0.6) == 0.0
    with torch.no_grad():
        voted = m(image)[0]
    expected = nms_with_voting(every["boxes"], every["scores"], every["labels"], nms, 0.6, cap)
    assert torch.equal(voted["scores"], plain["scores"]) and torch.equal(voted["labels"], plain["labels"])
    assert torch.allclose(voted["boxes"], expected[0], atol=1e-4)
    assert not torch.allclose(voted["boxes"], plain["boxes"])  # the untrained model's candidates disagree
    assert (m.nms_thresh, m.detections_per_img, m.topk_candidates) == (nms, cap, topk)  # the model's own are back
    with torch.no_grad():
        assert torch.allclose(copy.deepcopy(m)(image)[0]["boxes"], voted["boxes"])  # the EMA's copy votes too
    assert set_box_voting(m, False) == 0.6 and "postprocess_detections" not in vars(m)
    with torch.no_grad():
        assert torch.equal(m(image)[0]["boxes"], own["boxes"])
    assert set_box_voting(models.build_model("fasterrcnn_tiny", 3, weights=None), 0.6) is None
    assert set_box_voting(models.build_model("fcos_tiny", 3, weights=None), 0.6) is None
