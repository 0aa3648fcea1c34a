import math

import pytest
import torch

from nbdetect import models


@pytest.mark.parametrize("preset,expected_family", [("retinanet_tiny", "retinanet"), ("fasterrcnn_tiny", "fasterrcnn")])
def test_tiny_presets_have_k_plus_one_outputs(preset, expected_family):
    m = models.build_model(preset, 6, weights=None)
    assert models.family_of(m) == expected_family == models.family_of(preset)
    if expected_family == "retinanet":
        assert m.head.classification_head.num_classes == 7
    else:
        assert m.roi_heads.box_predictor.cls_score.out_features == 7


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
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        models.build_model("retinanet_tiny", 0)


def test_a_tiny_retinanet_checkpoint_from_before_the_groupnorm_head_still_loads(tmp_path):
    import torch

    from nbdetect.checkpoint import save_checkpoint
    from nbdetect.models import build_model
    from nbdetect.submission import load_model

    for head_norm in (False, True):
        model = build_model("retinanet_tiny", 3, weights=None, min_size=96, max_size=96, head_norm=head_norm)
        path = save_checkpoint({"format": "nbdetect-model-1", "model": model.state_dict(),
                                "meta": {"preset": "retinanet_tiny", "num_classes": 3, "min_size": 96,
                                         "max_size": 96}}, tmp_path / f"best_{head_norm}.pt")
        loaded, _ = load_model(path, "cpu")
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
        has_gn = any(isinstance(m, torch.nn.GroupNorm) for m in loaded.head.modules())
        assert has_gn == head_norm


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
            assert n >= positives[(0.5, 0.4), *key[1:]] and n >= 1
    assert sum(n for k, n in positives.items() if k[0] == (0.4, 0.3)) > 1.5 * sum(
        n for k, n in positives.items() if k[0] == (0.5, 0.4))
    assert set_anchor_matching(models.build_model("fasterrcnn_tiny", 2, weights=None), (0.4, 0.3)) is None
    with pytest.raises(InputError) as err:
        set_anchor_matching(model, (0.3, 0.4))
    assert err.value.where == "match_iou"
