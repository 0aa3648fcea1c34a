"""Model presets: torchvision detectors for GPU users and tiny CPU models for tests and demos.

``num_classes`` is the number of real classes K; every model gets K + 1
classifier outputs (see :mod:`nbdetect.conventions`). With
``weights="DEFAULT"`` the COCO-pretrained detector is loaded and its class head
replaced for K classes (the RetinaNet head is re-created with its prior-probability
bias, so the classification loss starts near its expected value). When the
weights cannot be downloaded (offline), the model is built from random
initialisation and a warning says so and how to fix it.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .conventions import model_outputs


@dataclass(frozen=True)
class Preset:
    name: str
    family: str  # "retinanet" | "fasterrcnn"
    description: str
    cpu_friendly: bool = False
    default_min_size: int = 800
    default_max_size: int = 1333


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("retinanet_resnet50_fpn", "retinanet", "RetinaNet ResNet-50 FPN (torchvision v1, the AS4 model)"),
        Preset("retinanet_resnet50_fpn_v2", "retinanet", "RetinaNet ResNet-50 FPN v2 (GroupNorm head, stronger)"),
        Preset("retinanet_mobilenet_v3", "retinanet", "RetinaNet on a MobileNetV3-Large FPN backbone", True, 512, 853),
        Preset("fasterrcnn_resnet50_fpn", "fasterrcnn", "Faster R-CNN ResNet-50 FPN (torchvision v1)"),
        Preset("fasterrcnn_resnet50_fpn_v2", "fasterrcnn", "Faster R-CNN ResNet-50 FPN v2"),
        Preset("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn", "Faster R-CNN MobileNetV3-Large FPN", True),
        Preset("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn", "Faster R-CNN MobileNetV3-Large 320 FPN", True, 320, 640),
        Preset("retinanet_tiny", "retinanet", "tiny RetinaNet (5-conv backbone) that trains on a 2-core CPU", True, 256, 256),
        Preset("fasterrcnn_tiny", "fasterrcnn", "tiny Faster R-CNN (5-conv backbone) that trains on a 2-core CPU", True, 256, 256),
    ]
}


def family_of(model_or_preset) -> str:
    """``"retinanet"`` or ``"fasterrcnn"`` for a preset name or a built torchvision model."""
    if isinstance(model_or_preset, str):
        return get_preset(model_or_preset).family
    from torchvision.models.detection import FasterRCNN, RetinaNet

    if isinstance(model_or_preset, RetinaNet):
        return "retinanet"
    if isinstance(model_or_preset, FasterRCNN):
        return "fasterrcnn"
    return "unknown"


def num_classes_of(model) -> int | None:
    """Real classes K of a torchvision detector (its classifier outputs minus the background slot)."""
    family = family_of(model)
    if family == "retinanet":
        return int(model.head.classification_head.num_classes) - 1
    if family == "fasterrcnn":
        return int(model.roi_heads.box_predictor.cls_score.out_features) - 1
    return None


def get_preset(name: str) -> Preset:
    from .errors import choose_from

    return choose_from(PRESETS, name, "model preset")


class TinyBackbone(nn.Module):
    """Five stride-2 conv blocks (strides 2..32) and an FPN over the last three."""

    def __init__(self, out_channels: int = 64, extra: str = "p6p7"):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

        widths = [16, 32, 64, 96, 128]
        blocks, cin = [], 3
        for w in widths:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, w, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(w, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                )
            )
            cin = w
        self.blocks = nn.ModuleList(blocks)
        extra_block = LastLevelP6P7(out_channels, out_channels) if extra == "p6p7" else LastLevelMaxPool()
        self.fpn = FeaturePyramidNetwork(widths[2:], out_channels, extra_blocks=extra_block)
        self.out_channels = out_channels

    def forward(self, x):
        feats = OrderedDict()
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= 2:
                feats[str(i - 2)] = x
        return self.fpn(feats)


TINY_RETINANET_SIZES = tuple((s, int(s * 1.26), int(s * 1.59)) for s in (12, 24, 48, 96, 192))
TINY_FASTERRCNN_SIZES = ((12, 16), (24, 32), (48, 64), (96, 128))
TINY_RATIOS = (0.8, 1.0, 1.25)


def _tiny_retinanet(num_outputs: int, min_size: int, max_size: int, anchor_sizes=None, aspect_ratios=None,
                    head_norm: bool = True) -> nn.Module:
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.retinanet import RetinaNetHead

    backbone = TinyBackbone(64, extra="p6p7")
    # Five levels (strides 8..128); three scales per level cover signs of 12-64 px and more.
    sizes = anchor_sizes or TINY_RETINANET_SIZES
    anchors = AnchorGenerator(sizes, aspect_ratios or (TINY_RATIOS,) * len(sizes))
    # GroupNorm in the head's convolutions (as torchvision's RetinaNet v2): trained from scratch, the plain head
    # learned far slower (mAP@.5 0.29 vs 0.47 on the demo benchmark, 12 epochs). head_norm=False: the head of
    # checkpoints written before it (load_model reads which one a checkpoint holds).
    head = RetinaNetHead(64, anchors.num_anchors_per_location()[0], num_outputs,
                         norm_layer=partial(nn.GroupNorm, 16)) if head_norm else None
    return RetinaNet(backbone, num_outputs, min_size=min_size, max_size=max_size, anchor_generator=anchors,
                     head=head)


def _tiny_fasterrcnn(num_outputs: int, min_size: int, max_size: int, anchor_sizes=None,
                     aspect_ratios=None) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    backbone = TinyBackbone(64, extra="maxpool")
    sizes = anchor_sizes or TINY_FASTERRCNN_SIZES
    anchors = AnchorGenerator(sizes, aspect_ratios or (TINY_RATIOS,) * len(sizes))
    return FasterRCNN(
        backbone,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(64 * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_outputs),
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=150,
        box_batch_size_per_image=128,
    )


def _torchvision_builder(name: str) -> Callable:
    from torchvision.models import detection as det

    if name == "retinanet_mobilenet_v3":
        return _retinanet_mobilenet
    return getattr(det, name)


def _retinanet_mobilenet(weights=None, weights_backbone=None, num_classes=91, **kw):
    """RetinaNet on torchvision's MobileNetV3-Large FPN backbone (ImageNet backbone weights only)."""
    from torchvision.models import MobileNet_V3_Large_Weights, mobilenet_v3_large
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    if weights is not None:
        # No COCO RetinaNet-MobileNet weights exist; "DEFAULT" means the ImageNet backbone.
        weights_backbone = MobileNet_V3_Large_Weights.DEFAULT
    trunk = mobilenet_v3_large(weights=weights_backbone)
    backbone = _mobilenet_extractor(trunk, True, trainable_layers=6, returned_layers=[4, 5],
                                    extra_blocks=LastLevelP6P7(256, 256))
    sizes = tuple((x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))) for x in (32, 64, 128, 256))
    anchors = kw.pop("anchor_generator", None) or AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    return RetinaNet(backbone, num_classes, anchor_generator=anchors, **kw)


def _replace_class_head(model: nn.Module, family: str, num_outputs: int) -> None:
    if family == "retinanet":
        from torchvision.models.detection.retinanet import RetinaNetClassificationHead

        old = model.head.classification_head
        in_channels = old.conv[0][0].in_channels if isinstance(old.conv[0], nn.Sequential) else old.conv[0].in_channels
        norm = None
        if any(isinstance(m, nn.GroupNorm) for m in old.conv.modules()):
            norm = partial(nn.GroupNorm, 32)
        model.head.classification_head = RetinaNetClassificationHead(
            in_channels, old.num_anchors, num_outputs, norm_layer=norm
        )
    else:
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

        in_features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_outputs)


def build_model(
    preset: str,
    num_classes: int,
    weights: str | Path | None = "DEFAULT",
    min_size: int | None = None,
    max_size: int | None = None,
    anchor_sizes=None,
    aspect_ratios=None,
    **kwargs,
) -> nn.Module:
    """Build a detector for ``num_classes`` real classes.

    ``weights``: ``"DEFAULT"`` (COCO-pretrained detector, falling back to random
    init with a warning when offline), ``None`` (random init), or a path to a
    state_dict / nbdetect checkpoint for this preset and class count.
    ``min_size``/``max_size`` set the model's internal resize (torchvision's
    default resizes every image to 800 px on the short side). ``anchor_sizes``/``aspect_ratios`` (per level,
    the preset's layout; :mod:`nbdetect.anchors` fits them to the data) replace the preset's anchors.
    """
    spec = get_preset(preset)
    outputs = model_outputs(num_classes)
    min_size = min_size or spec.default_min_size
    max_size = max(max_size or spec.default_max_size, min_size)
    if anchor_sizes is not None:  # the same layout as the preset's (pretrained heads keep their shapes)
        anchor_sizes = tuple(tuple(float(s) for s in level) for level in anchor_sizes)
        aspect_ratios = tuple(tuple(float(r) for r in level) for level in aspect_ratios)
    if preset == "retinanet_tiny":
        model = _tiny_retinanet(outputs, min_size, max_size, anchor_sizes, aspect_ratios,
                                kwargs.pop("head_norm", True))
    elif preset == "fasterrcnn_tiny":
        model = _tiny_fasterrcnn(outputs, min_size, max_size, anchor_sizes, aspect_ratios)
    else:
        if anchor_sizes is not None:
            from torchvision.models.detection.anchor_utils import AnchorGenerator

            key = "anchor_generator" if spec.family == "retinanet" else "rpn_anchor_generator"
            kwargs[key] = AnchorGenerator(anchor_sizes, aspect_ratios)
        builder = _torchvision_builder(preset)
        model = None
        if weights == "DEFAULT":
            try:
                model = builder(weights="DEFAULT", min_size=min_size, max_size=max_size, **kwargs)
                _replace_class_head(model, spec.family, outputs)
            except Exception as exc:  # offline, hub blocked, corrupt cache...
                warnings.warn(
                    f"nbdetect: could not load pretrained weights for {preset} ({type(exc).__name__}: {exc}). "
                    "Training starts from random initialisation, which needs many more epochs. "
                    "To fix: run once with internet access (torchvision caches the file under "
                    "$TORCH_HOME/hub/checkpoints), or pass weights='path/to/file.pth'.",
                    stacklevel=2,
                )
                model = None
        if model is None:
            model = builder(weights=None, weights_backbone=None, num_classes=outputs,
                            min_size=min_size, max_size=max_size, **kwargs)
    if weights not in (None, "DEFAULT"):
        load_weights(model, weights)
    return model


def set_anchor_matching(model: nn.Module, match_iou) -> tuple[float, float] | None:
    """Train a RetinaNet with anchors of IoU >= ``match_iou[0]`` with a box as its positives and those below
    ``match_iou[1]`` as background (in between: ignored; each box keeps its best anchor). Returns the thresholds
    the model had, or None for a model that is not a RetinaNet (Faster R-CNN's matching is left alone).

    torchvision's 0.5/0.4 leaves a small box few positive anchors: a 16 px sign reaches IoU 0.5 only with an
    anchor of almost its size at almost its centre. At 0.4/0.3 the tiny RetinaNet went from 0.49 to 0.83 mAP@.5
    on the demo benchmark (README, the ablation); only training changes, predictions are made alike."""
    matcher = getattr(model, "proposal_matcher", None)
    if family_of(model) != "retinanet" or matcher is None:
        return None
    before = (float(matcher.high_threshold), float(matcher.low_threshold))
    high, low = (float(x) for x in match_iou)
    if not 0.0 < low <= high < 1.0:
        from .errors import InputError

        raise InputError(f"match_iou={tuple(match_iou)}: needs 0 < background <= foreground < 1",
                         where="match_iou", fix="pass (foreground, background) IoU thresholds, e.g. (0.4, 0.3)")
    from torchvision.models.detection import _utils as det_utils

    model.proposal_matcher = det_utils.Matcher(high, low, allow_low_quality_matches=True)
    return before


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict or an nbdetect checkpoint (``{"model": state_dict, ...}``) into ``model``."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    model.load_state_dict(state)
    return model


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
