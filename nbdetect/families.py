"""Detector families as records: everything nbdetect knows about RetinaNet, Faster R-CNN and FCOS in one place.

A :class:`Family` holds how to build the family (its torchvision builders, its tiny CPU model, how a pretrained
model's class head is replaced for K classes), how to read a built model (classifier outputs, anchors, the
classification head that carries a prior bias), its conventions (does output 0 train as a background class;
anchor boxes matched by IoU or one point per location), its typical loss range (diagnose's loss-scale check)
and its default verdict rule (the final grading of a recipe of this family that names none of its own).
A :class:`Preset` names one model of a family. Nothing else in nbdetect asks which family a model is: models.py,
the diagnose checks and the verdict read these records.

Pure at import (no torch): the verdict judges a recipe's history by its family's rule without torch. The
builders import torch and torchvision when they are called.

Add a family: one ``Family(...)`` record and its presets here (or :func:`register` from your code), and a test;
``tests/test_extending.py`` registers one at runtime and trains it through the cells, the verdict and diagnose.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

#: The guide's starting losses (its loss convention), the denominators of its ratios (nbdetect.verdict).
RETINA_START = 1750.0  # midpoint of the guide's "1500-2000 (initial)"
FRCNN_START = 4.5  # midpoint of the guide's "epoch 5: ~3-6" for Faster R-CNN


@dataclass(frozen=True)
class FinalRule:
    """A family's final grading as the verdict's ``Rule`` fields (kind "final"): success when the best loss is
    below ``ratio`` x the run's starting loss, partial below ``partial_ratio``, else fail."""

    id: str
    ratio: float
    partial_ratio: float | None
    guide_text: str
    ratio_source: str = ""
    partial_source: str = ""


@dataclass(frozen=True)
class Family:
    """One detector family. Callables take the built model (or build it); they import torch when called.

    ``name``: the id presets and ModelInfo use; ``model_class``: "module:Class" of the torchvision model
    (``family_of(model)`` is an isinstance test); ``tiny``: build the CPU-sized model
    ``tiny(num_outputs, min_size, max_size, anchor_sizes, aspect_ratios, **options)``; ``torchvision``: the
    builder function of a preset name (default: ``torchvision.models.detection.<name>``); ``replace_head``:
    ``replace_head(model, num_outputs)`` gives a pretrained model a fresh class head; ``outputs``: classifier
    outputs of a built model (K + 1 in nbdetect's convention); ``anchors``: its AnchorGenerator (or None);
    ``anchor_argument``: the builder's keyword for one; ``anchor_boxes``: True when anchors are boxes matched by
    IoU (fitted to the data, checked against the box sizes), False when they are one point per location whose
    size sets the level's scale range (FCOS: left as built); ``anchor_matching``: the IoU matcher a recipe's
    ``match_iou`` sets (``model.proposal_matcher``); ``background_output``: output 0 is trained as a background
    class on unmatched proposals (Faster R-CNN: a label 0 teaches "nothing here"), else output 0 is never a target
    (RetinaNet, FCOS: sigmoid per class); ``prior_head``: "module:Class" of the classification head whose
    ``cls_logits`` bias starts at the prior probability 0.01 (None: no prior); ``classification_head``: that head
    of a built model; ``loss_range``: the sum of the loss dict per image over a run (diagnose's loss scale);
    ``final_rule``: the default final grading; ``rebuild_options``: build options a checkpoint's weights imply
    ``(preset, state_dict) -> dict`` (load_model); ``loss_head``: "module:Class" of the head class a recipe's
    ``naming_loss`` or ``iou_scores`` turns the model's head into (a subclass of it with nbdetect's training
    losses and their switches in its ``options``, nbdetect.losses; None: the family's classifier already tells
    classes apart with a softmax, or has no such head); ``box_loss``:
    ``box_loss(model, kind) -> the kind it had`` sets the box regression loss a recipe's ``box_loss`` names
    (torchvision's kinds: "l1", "smooth_l1", "giou", "diou", "ciou"; None: the family's is left as built);
    ``box_loss_keys``: the keys of the model's loss dict that are box regression, which a recipe's
    ``box_weight`` multiplies (models.set_box_weight; empty: not set on this family); ``box_voting``: the model
    keeps its detections by class-wise NMS in ``postprocess_detections`` at ``nms_thresh``, at most
    ``detections_per_img``, so a recipe's ``box_voting`` can place the kept boxes by the candidates they
    suppress (models.set_box_voting; False: left alone). RetinaNet's record sets it; FCOS keeps its boxes the
    same way but voting is not measured there, so its record leaves it off."""

    name: str
    title: str
    model_class: str
    tiny: Callable
    replace_head: Callable
    outputs: Callable
    anchors: Callable
    anchor_argument: str | None
    anchor_boxes: bool
    background_output: bool
    loss_range: tuple[float, float]
    final_rule: FinalRule | None = None
    prior_head: str | None = None
    classification_head: Callable | None = None
    anchor_matching: bool = False
    torchvision: Callable | None = None
    rebuild_options: Callable | None = None
    loss_note: str = ""  # what the loss looks like on torchvision's scale, for diagnose's advice
    loss_head: str | None = None
    box_loss: Callable | None = None
    box_loss_keys: tuple[str, ...] = ()
    box_voting: bool = False

    def builder(self, preset: str) -> Callable:
        """The torchvision-style builder ``f(weights=..., num_classes=..., **kw)`` of a non-tiny preset."""
        if self.torchvision is not None:
            return self.torchvision(preset)
        from torchvision.models import detection

        return getattr(detection, preset)

    def matches(self, model) -> bool:
        return isinstance(model, _resolve(self.model_class))

    def loss_head_class(self):
        """The head class a recipe's ``naming_loss`` or ``iou_scores`` turns the model's head into, or None
        (``loss_head``)."""
        return _resolve(self.loss_head) if self.loss_head else None

    def num_classes(self, model) -> int | None:
        """Real classes K of a built model (its classifier outputs minus nbdetect's slot 0)."""
        outputs = self.outputs(model)
        return None if outputs is None else int(outputs) - 1


@dataclass(frozen=True)
class Preset:
    name: str
    family: str  # a FAMILIES key
    description: str
    cpu_friendly: bool = False
    default_min_size: int = 800
    default_max_size: int = 1333


def _resolve(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# -- tiny CPU models (TinyBackbone: five stride-2 conv blocks and an FPN, nbdetect.backbones) ------------------

TINY_RETINANET_SIZES = tuple((s, int(s * 1.26), int(s * 1.59)) for s in (12, 24, 48, 96, 192))
TINY_FASTERRCNN_SIZES = ((12, 16), (24, 32), (48, 64), (96, 128))
TINY_FCOS_SIZES = ((8,), (16,), (32,), (64,), (128,))  # FCOS: the stride of each level (its scale ranges)
TINY_RATIOS = (0.8, 1.0, 1.25)


def _anchor_generator(sizes, ratios):
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    return AnchorGenerator(sizes, ratios)


#: retinanet_tiny's shape: wider last stages and a residual block at strides 8 and 16, paid for by a head of 2
#: convolutions per branch instead of torchvision's 4 (the same 2.3 GFLOPs at 320 px; README, GTSDB), whose
#: output convolutions are 1x1 as YOLOv8's (since 2026-12-04 evening, 4% less CPU on GTSDB tiles; 3x3 as
#: torchvision's before). The shape before commit 888efe6 (2026-12-04): head_convs 4, widths
#: nbdetect.backbones.WIDTHS, no residual block. A checkpoint's weights say which shape it holds
#: (_retinanet_rebuild). Read when the model is built (the benchmark's ablation sets it).
RETINANET_TINY_SHAPE = {"head_convs": 2, "widths": (16, 32, 64, 128, 192), "residual": (2, 3), "output_kernel": 1}


def _tiny_retinanet(num_outputs: int, min_size: int, max_size: int, anchor_sizes=None, aspect_ratios=None,
                    head_norm: bool = True, **shape):
    from functools import partial

    from torch import nn
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.retinanet import RetinaNetHead

    from .backbones import TinyBackbone

    unknown = set(shape) - set(RETINANET_TINY_SHAPE)
    if unknown:
        raise TypeError(f"retinanet_tiny has no build option {sorted(unknown)[0]!r} (its shape: "
                        f"{', '.join(RETINANET_TINY_SHAPE)}, and head_norm)")
    shape = {**RETINANET_TINY_SHAPE, **shape}
    backbone = TinyBackbone(64, extra="p6p7", widths=shape["widths"], residual=shape["residual"])
    # Five levels (strides 8..128); three scales per level cover signs of 12-64 px and more.
    sizes = anchor_sizes or TINY_RETINANET_SIZES
    anchors = _anchor_generator(sizes, aspect_ratios or (TINY_RATIOS,) * len(sizes))
    # GroupNorm in the head's convolutions (as torchvision's RetinaNet v2): trained from scratch, the plain head
    # learned far slower (mAP@.5 0.29 vs 0.47 on the demo benchmark, 12 epochs). head_norm=False: the head of
    # checkpoints written before it (load_model reads which one a checkpoint holds, and the backbone's shape).
    head = RetinaNetHead(64, anchors.num_anchors_per_location()[0], num_outputs,
                         norm_layer=partial(nn.GroupNorm, 16) if head_norm else None)
    for branch in (head.classification_head, head.regression_head):  # built with 4 convs, the first kept
        branch.conv = branch.conv[:shape["head_convs"]]
    if shape["output_kernel"] != 3:  # torchvision's 3x3 output convolutions as 1x1 (YOLOv8's), same init
        _output_kernel(head, int(shape["output_kernel"]))
    return RetinaNet(backbone, num_outputs, min_size=min_size, max_size=max_size, anchor_generator=anchors,
                     head=head)


def _output_kernel(head, kernel: int) -> None:
    import torch
    from torch import nn

    for branch, name in ((head.classification_head, "cls_logits"), (head.regression_head, "bbox_reg")):
        old = getattr(branch, name)
        new = nn.Conv2d(old.in_channels, old.out_channels, kernel, padding=kernel // 2)
        nn.init.normal_(new.weight, std=0.01)
        with torch.no_grad():
            new.bias.copy_(old.bias)  # the classification prior (torchvision's -log((1 - 0.01) / 0.01)), or zeros
        setattr(branch, name, new)


def _tiny_fasterrcnn(num_outputs: int, min_size: int, max_size: int, anchor_sizes=None, aspect_ratios=None):
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    from .backbones import TinyBackbone

    backbone = TinyBackbone(64, extra="maxpool")
    sizes = anchor_sizes or TINY_FASTERRCNN_SIZES
    return FasterRCNN(
        backbone,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=_anchor_generator(sizes, aspect_ratios or (TINY_RATIOS,) * len(sizes)),
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(64 * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_outputs),
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=150,
        box_batch_size_per_image=128,
    )


def _tiny_fcos(num_outputs: int, min_size: int, max_size: int, anchor_sizes=None, aspect_ratios=None):
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.fcos import FCOSHead

    from .backbones import TinyBackbone

    backbone = TinyBackbone(64, extra="p6p7")  # five levels, strides 8..128: one point per location each
    sizes = anchor_sizes or TINY_FCOS_SIZES
    anchors = _anchor_generator(sizes, aspect_ratios or ((1.0,),) * len(sizes))
    head = FCOSHead(64, 1, num_outputs)  # torchvision's head: GroupNorm, the classification prior bias
    return FCOS(backbone, num_outputs, min_size=min_size, max_size=max_size, anchor_generator=anchors, head=head,
                score_thresh=0.05)


# -- replacing a pretrained (COCO) model's class head for K + 1 outputs ------------------------------------------

def _retinanet_head(model, num_outputs: int) -> None:
    from functools import partial

    from torch import nn
    from torchvision.models.detection.retinanet import RetinaNetClassificationHead

    old = model.head.classification_head
    in_channels = old.conv[0][0].in_channels if isinstance(old.conv[0], nn.Sequential) else old.conv[0].in_channels
    norm = partial(nn.GroupNorm, 32) if any(isinstance(m, nn.GroupNorm) for m in old.conv.modules()) else None
    # re-created, not re-sized: the new head starts at the prior probability (classification loss near 1.1)
    model.head.classification_head = RetinaNetClassificationHead(in_channels, old.num_anchors, num_outputs,
                                                                 norm_layer=norm)


def _fasterrcnn_head(model, num_outputs: int) -> None:
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_outputs)


def _fcos_head(model, num_outputs: int) -> None:
    from torchvision.models.detection.fcos import FCOSClassificationHead

    old = model.head.classification_head
    convs = sum(1 for m in old.conv.modules() if type(m).__name__ == "Conv2d")
    model.head.classification_head = FCOSClassificationHead(old.cls_logits.in_channels, old.num_anchors, num_outputs,
                                                            num_convs=convs)


# -- torchvision builders a preset name does not name directly ---------------------------------------------------

def _retinanet_builder(preset: str) -> Callable:
    if preset == "retinanet_mobilenet_v3":
        return _retinanet_mobilenet
    from torchvision.models import detection

    return getattr(detection, preset)


def _retinanet_mobilenet(weights=None, weights_backbone=None, num_classes=91, **kw):
    """RetinaNet on torchvision's MobileNetV3-Large FPN backbone (ImageNet backbone weights only)."""
    from torchvision.models import MobileNet_V3_Large_Weights, mobilenet_v3_large
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    if weights is not None:
        # No COCO RetinaNet-MobileNet weights exist; "DEFAULT" means the ImageNet backbone.
        weights_backbone = MobileNet_V3_Large_Weights.DEFAULT
    trunk = mobilenet_v3_large(weights=weights_backbone)
    backbone = _mobilenet_extractor(trunk, True, trainable_layers=6, returned_layers=[4, 5],
                                    extra_blocks=LastLevelP6P7(256, 256))
    sizes = tuple((x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))) for x in (32, 64, 128, 256))
    anchors = kw.pop("anchor_generator", None) or _anchor_generator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    return RetinaNet(backbone, num_classes, anchor_generator=anchors, **kw)


#: The box regression losses torchvision's detection heads compute (torchvision.models.detection._utils._box_loss).
BOX_LOSSES = ("giou", "l1", "smooth_l1", "diou", "ciou")


def _retinanet_box_loss(model, kind: str) -> str:
    """RetinaNet's box loss (torchvision keeps it on the regression head: its v2 builder sets "giou" there)."""
    head = model.head.regression_head
    before, head._loss_type = head._loss_type, kind
    return before


def _retinanet_rebuild(preset: str, state: dict) -> dict:
    """The build options a retinanet_tiny checkpoint's weights imply: its head gained GroupNorm, then lost two
    of its 4 convolutions to a wider, residual backbone; a checkpoint from before holds the older shapes."""
    if preset != "retinanet_tiny":
        return {}
    head = [k for k in state if k.startswith("head.classification_head.conv.")]
    return {"head_norm": any(".conv.0.1." in k for k in head),
            "head_convs": 1 + max(int(k.split(".")[3]) for k in head),
            "widths": tuple(int(state[f"backbone.blocks.{i}.0.weight"].shape[0]) for i in range(5)),
            "residual": tuple(sorted({int(k.split(".")[2]) for k in state if k.startswith("backbone.residual.")})),
            "output_kernel": int(state["head.classification_head.cls_logits.weight"].shape[-1])}


RETINANET = Family(
    name="retinanet", title="RetinaNet", model_class="torchvision.models.detection.retinanet:RetinaNet",
    tiny=_tiny_retinanet, replace_head=_retinanet_head, torchvision=_retinanet_builder,
    outputs=lambda m: int(m.head.classification_head.num_classes),
    anchors=lambda m: getattr(m, "anchor_generator", None), anchor_argument="anchor_generator",
    anchor_boxes=True, anchor_matching=True, background_output=False,
    prior_head="torchvision.models.detection.retinanet:RetinaNetClassificationHead",
    classification_head=lambda m: m.head.classification_head,
    loss_range=(0.1, 3.0), loss_note="RetinaNet ~1-2 at the start (plus ln K with nbdetect's naming loss, and "
                                     "the box loss times its weight), ~0.2-0.5 trained",
    final_rule=FinalRule("final_retinanet", 200 / RETINA_START, 500 / RETINA_START,
                         "Step 4: best val loss < 200 success, 200-500 partial success, > 500 try Alternative 2",
                         "the guide's 200/1750", "the guide's 500/1750"),
    rebuild_options=_retinanet_rebuild,
    loss_head="nbdetect.losses:LossRetinaNetHead",
    box_voting=True,
    box_loss=_retinanet_box_loss,
    box_loss_keys=("bbox_regression",),
)

FASTERRCNN = Family(
    name="fasterrcnn", title="Faster R-CNN", model_class="torchvision.models.detection.faster_rcnn:FasterRCNN",
    tiny=_tiny_fasterrcnn, replace_head=_fasterrcnn_head,
    outputs=lambda m: int(m.roi_heads.box_predictor.cls_score.out_features),
    anchors=lambda m: getattr(getattr(m, "rpn", None), "anchor_generator", None),
    anchor_argument="rpn_anchor_generator", anchor_boxes=True, background_output=True,
    loss_range=(0.05, 5.0), loss_note="Faster R-CNN ~1-4 at the start, ~0.3-0.7 trained",
    box_loss_keys=("loss_box_reg", "loss_rpn_box_reg"),
    final_rule=FinalRule("final_fasterrcnn", 0.7 / FRCNN_START, 2 / FRCNN_START,
                         "expected final loss ~0.3-0.7 (of ~3-6 at epoch 5); above the epoch-20 line of 2: run the "
                         "diagnostic", "the guide's 0.7/4.5", "the guide's 2/4.5"),
)

# FCOS's loss is focal classification + GIoU regression + centerness BCE. The centerness term is a cross-entropy
# against soft targets and never reaches 0, so a trained FCOS ends at a larger share of its start than RetinaNet:
# ~2.5-3 at the start, ~0.9-1.2 trained (the tiny model on the demo data). The guide has no FCOS line; these are
# nbdetect's, on that scale.
FCOS = Family(
    name="fcos", title="FCOS", model_class="torchvision.models.detection.fcos:FCOS",
    tiny=_tiny_fcos, replace_head=_fcos_head,
    outputs=lambda m: int(m.head.classification_head.num_classes),
    anchors=lambda m: getattr(m, "anchor_generator", None), anchor_argument="anchor_generator",
    anchor_boxes=False, background_output=False,
    prior_head="torchvision.models.detection.fcos:FCOSClassificationHead",
    classification_head=lambda m: m.head.classification_head,
    box_loss_keys=("bbox_regression",),
    loss_range=(0.3, 4.0), loss_note="FCOS ~2.5-3 at the start, ~0.9-1.2 trained (the centerness loss stays ~0.6)",
    final_rule=FinalRule("final_fcos", 0.45, 0.7,
                         "an FCOS that learns ends below ~45% of its starting loss (centerness keeps it above 0); "
                         "above 70%: run the diagnostic", "nbdetect's FCOS line, 45% of the start",
                         "nbdetect's FCOS line, 70% of the start"),
)

FAMILIES: dict[str, Family] = {f.name: f for f in (RETINANET, FASTERRCNN, FCOS)}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("retinanet_resnet50_fpn", "retinanet", "RetinaNet ResNet-50 FPN (torchvision v1, the AS4 model)"),
        Preset("retinanet_resnet50_fpn_v2", "retinanet", "RetinaNet ResNet-50 FPN v2 (GroupNorm head, stronger)"),
        Preset("retinanet_mobilenet_v3", "retinanet", "RetinaNet on a MobileNetV3-Large FPN backbone", True, 512, 853),
        Preset("fasterrcnn_resnet50_fpn", "fasterrcnn", "Faster R-CNN ResNet-50 FPN (torchvision v1)"),
        Preset("fasterrcnn_resnet50_fpn_v2", "fasterrcnn", "Faster R-CNN ResNet-50 FPN v2"),
        Preset("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn", "Faster R-CNN MobileNetV3-Large FPN", True),
        Preset("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn", "Faster R-CNN MobileNetV3-Large 320 FPN", True,
               320, 640),
        Preset("fcos_resnet50_fpn", "fcos", "FCOS ResNet-50 FPN (anchor-free, torchvision)"),
        Preset("retinanet_tiny", "retinanet", "tiny RetinaNet (5-stage residual backbone, 2-conv head) that trains on a "
               "2-core CPU", True,
               256, 256),
        Preset("fasterrcnn_tiny", "fasterrcnn", "tiny Faster R-CNN (5-conv backbone) that trains on a 2-core CPU",
               True, 256, 256),
        Preset("fcos_tiny", "fcos", "tiny FCOS (5-conv backbone, anchor-free) that trains on a 2-core CPU", True,
               256, 256),
    ]
}


def is_tiny(preset: str) -> bool:
    """A tiny preset is built by its family's ``tiny`` builder (no torchvision builder, no pretrained weights)."""
    return preset.endswith("_tiny")


def register(family: Family, presets=()) -> Family:
    """Add a family (and its presets): build_model, diagnose and the verdict read it like the built-in ones."""
    if family.name in FAMILIES and FAMILIES[family.name] is not family:
        raise ValueError(f"a family named {family.name!r} is already registered")
    for preset in presets:
        if preset.family != family.name:
            raise ValueError(f"preset {preset.name!r} names family {preset.family!r}, not {family.name!r}")
        if preset.name in PRESETS and PRESETS[preset.name] != preset:
            raise ValueError(f"a preset named {preset.name!r} is already registered")
    FAMILIES[family.name] = family
    PRESETS.update({p.name: p for p in presets})
    return family


def unregister(name: str) -> None:
    """Remove a family and its presets (a test's cleanup)."""
    FAMILIES.pop(name, None)
    for preset in [p for p in PRESETS.values() if p.family == name]:
        del PRESETS[preset.name]


def get(name: str | None) -> Family | None:
    return FAMILIES.get(name or "")


def get_preset(name: str) -> Preset:
    from .errors import choose_from

    return choose_from(PRESETS, name, "model preset")


def of_preset(preset: str | None) -> Family | None:
    """The family of a preset name, or None for a name that is no preset (e.g. "your retinanet")."""
    spec = PRESETS.get(preset or "")
    return FAMILIES.get(spec.family) if spec is not None else None


def rebuild_options(preset: str | None, state: dict) -> dict:
    """The build options the weights ``state`` of a ``preset`` model imply (an earlier shape of a tiny preset,
    read by its family's ``rebuild_options``); {} for a preset whose family reads none. load_model and resume
    rebuild a checkpoint's model with them."""
    family = of_preset(preset)
    return family.rebuild_options(preset, state) if family is not None and family.rebuild_options else {}


def of_model(model) -> Family | None:
    """The family of a built model (an isinstance test on each family's torchvision class), or None."""
    for family in FAMILIES.values():
        try:
            if family.matches(model):
                return family
        except ImportError:  # a registered family whose library is not installed
            continue
    return None


def of_recipe(recipe) -> Family | None:
    """The family of a recipe record: its preset's (else its CPU-sized preset's)."""
    return of_preset(getattr(recipe, "preset", None)) or of_preset(getattr(recipe, "tiny_preset", None))

