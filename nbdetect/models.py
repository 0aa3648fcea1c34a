"""Model presets: torchvision detectors for GPU users and tiny CPU models for tests and demos.

``num_classes`` is the number of real classes K; every model gets K + 1
classifier outputs (see :mod:`nbdetect.conventions`). With
``weights="DEFAULT"`` the COCO-pretrained detector is loaded and its class head
replaced for K classes (the RetinaNet head is re-created with its prior-probability
bias, so the classification loss starts near its expected value). When the
weights cannot be downloaded (offline), the model is built from random
initialisation and a warning says so and how to fix it; any other error is raised.
What differs between families (builders, head replacement, anchors) is read from
their records in :mod:`nbdetect.families`; this module asks no family by name.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import families
from .backbones import TinyBackbone  # noqa: F401 - the tiny presets' backbone, importable from here as before
from .conventions import model_outputs
from .families import (BOX_LOSSES, PRESETS, TINY_FASTERRCNN_SIZES, TINY_RATIOS, TINY_RETINANET_SIZES,  # noqa: F401
                       Preset, get_preset)


def family_of(model_or_preset) -> str:
    """The family name (``"retinanet"``, ``"fasterrcnn"``, ``"fcos"``...) of a preset name or a built model;
    ``"unknown"`` for a model of no registered family."""
    if isinstance(model_or_preset, str):
        return get_preset(model_or_preset).family
    family = families.of_model(model_or_preset)
    return family.name if family is not None else "unknown"


def family_title(model) -> str:
    """How a user calls the model's family ("RetinaNet", "Faster R-CNN", "FCOS"), or "detector"."""
    family = families.of_model(model)
    return family.title if family is not None else "detector"


def num_classes_of(model) -> int | None:
    """Real classes K of a torchvision detector (its classifier outputs minus the background slot)."""
    family = families.of_model(model)
    return family.num_classes(model) if family is not None else None


def download_error(exc: BaseException) -> str | None:
    """What went wrong fetching pretrained weights, when ``exc`` is a download or offline error (no network, the
    hub unreachable or refusing, a cache that cannot be written, a corrupt or truncated file); None for any
    other error, which is a bug to raise, not a reason to train from random weights."""
    from urllib.error import HTTPError, URLError

    if isinstance(exc, HTTPError):
        return f"the download was refused (HTTP {exc.code})"
    if isinstance(exc, URLError):
        return f"offline: the model hub could not be reached ({exc.reason})"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return "offline: the connection failed"
    if isinstance(exc, OSError):
        return "the weights file could not be fetched or written (OSError)"
    text = str(exc)
    if isinstance(exc, RuntimeError) and any(s in text for s in ("invalid hash value", "PytorchStreamReader",
                                                                 "central directory", "unexpected EOF")):
        return "the cached weights file is corrupt (a partial download)"
    return None


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

    ``weights``: ``"DEFAULT"`` (COCO-pretrained detector, falling back to random init with a warning when the
    weights cannot be downloaded; any other error is raised), ``None`` (random init), or a path to a
    state_dict / nbdetect checkpoint for this preset and class count.
    ``min_size``/``max_size`` set the model's internal resize (torchvision's
    default resizes every image to 800 px on the short side). ``anchor_sizes``/``aspect_ratios`` (per level,
    the preset's layout; :mod:`nbdetect.anchors` fits them to the data) replace the preset's anchors.
    Everything family-specific (builders, head replacement, anchor keyword) is read from the preset's
    :class:`~nbdetect.families.Family` record.
    """
    from .arguments import check

    v = check(dict(num_classes=num_classes, weights=weights, min_size=min_size, max_size=max_size,
                   anchor_sizes=anchor_sizes, aspect_ratios=aspect_ratios))
    num_classes, weights, min_size, max_size, anchor_sizes, aspect_ratios = (
        v[k] for k in ("num_classes", "weights", "min_size", "max_size", "anchor_sizes", "aspect_ratios"))
    if num_classes is None:
        from .errors import InputError

        raise InputError("build_model() needs num_classes", where="num_classes",
                         fix="pass the number of real classes K, e.g. build_model('retinanet_tiny', 43)")
    spec = get_preset(preset)
    family = families.get(spec.family)
    outputs = model_outputs(num_classes)
    min_size = min_size or spec.default_min_size
    max_size = max(max_size or spec.default_max_size, min_size)
    if anchor_sizes is not None and aspect_ratios is None and not families.is_tiny(preset):
        from .errors import InputError

        raise InputError(f"anchor_sizes for {preset} needs aspect_ratios too (a tiny preset has its own; a torchvision "
                         "preset's head is sized by sizes x ratios per level)", where="aspect_ratios",
                         fix=f"pass one list of ratios per level, e.g. aspect_ratios=[[0.5, 1.0, 2.0]] * "
                             f"{len(anchor_sizes)} (torchvision's)")
    if families.is_tiny(preset):
        model = family.tiny(outputs, min_size, max_size, anchor_sizes, aspect_ratios, **kwargs)
    else:
        if anchor_sizes is not None:
            from torchvision.models.detection.anchor_utils import AnchorGenerator

            kwargs[family.anchor_argument] = AnchorGenerator(anchor_sizes, aspect_ratios)
        builder = family.builder(preset)
        model = None
        if weights == "DEFAULT":
            try:
                model = builder(weights="DEFAULT", min_size=min_size, max_size=max_size, **kwargs)
            except Exception as exc:  # only a download / offline error falls back; anything else is raised
                why = download_error(exc)
                if why is None:
                    raise
                warnings.warn(
                    f"nbdetect: could not load pretrained weights for {preset}: {why} ({type(exc).__name__}: {exc}). "
                    "Training starts from random initialisation, which needs many more epochs. "
                    "To fix: run once with internet access (torchvision caches the file under "
                    "$TORCH_HOME/hub/checkpoints), or pass weights='path/to/file.pth'.",
                    stacklevel=2,
                )
            if model is not None:
                family.replace_head(model, outputs)
        if model is None:
            model = builder(weights=None, weights_backbone=None, num_classes=outputs,
                            min_size=min_size, max_size=max_size, **kwargs)
    if weights not in (None, "DEFAULT"):
        load_weights(model, weights)
    return model


def _checked(name: str, value):
    """``value`` read by the Arg record of ``name`` (one rule for a recipe's option and a setter's direct caller)."""
    from .arguments import check

    return check({name: value})[name]


def set_anchor_matching(model: nn.Module, match_iou) -> tuple[float, float] | None:
    """Train a RetinaNet with anchors of IoU >= ``match_iou[0]`` with a box as its positives and those below
    ``match_iou[1]`` as background (in between: ignored; each box keeps its best anchor). Returns the thresholds
    the model had, or None for a model whose family matches no anchors by IoU this way (its record's ``anchor_matching``:
    Faster R-CNN's and FCOS's matching is left alone).

    torchvision's 0.5/0.4 leaves a small box few positive anchors: a 16 px sign reaches IoU 0.5 only with an
    anchor of almost its size at almost its centre. At 0.3/0.2, Alternative 1's default, GTSDB tiles scored
    mAP@.5:.95 0.278 (three seeds' mean) against 0.263 at 0.4/0.3 and 0.112 at 0.5/0.4 (one seed; README). At
    0.4/0.3 the tiny RetinaNet went from 0.49 to 0.83 mAP@.5
    on the demo benchmark (README, the ablation); only training changes, predictions are made alike."""
    matcher = getattr(model, "proposal_matcher", None)
    family = families.of_model(model)
    if family is None or not family.anchor_matching or matcher is None:
        return None
    before = (float(matcher.high_threshold), float(matcher.low_threshold))
    pair = _checked("match_iou", match_iou)  # the Arg's rule (nbdetect.arguments), for direct callers too
    if not pair:  # False / None: the model's own thresholds stay
        return before
    high, low = pair
    from torchvision.models.detection import _utils as det_utils

    model.proposal_matcher = det_utils.Matcher(high, low, allow_low_quality_matches=True)
    return before


def _loss_head(model: nn.Module):
    """(head, the family's loss head class, its base) of a model whose family names a ``loss_head`` and whose head
    is that base or already the loss head; None otherwise (a head of a class of its own is left alone)."""
    family = families.of_model(model)
    loss_head = family.loss_head_class() if family is not None else None
    head = getattr(model, "head", None)
    if loss_head is None or head is None:
        return None
    base = loss_head.__mro__[1]
    if type(head) not in (base, loss_head):
        return None
    return head, loss_head, base


def _set_head_option(model: nn.Module, name: str, value):
    """Set the loss head's ``name`` to ``value`` in place: the head becomes the family's loss head, or its base
    again when every option is off (same weights, same predictions). Returns what it had, or None (_loss_head)."""
    found = _loss_head(model)
    if found is None:
        return None
    head, loss_head, base = found
    before = getattr(head if type(head) is loss_head else loss_head, name)  # the class's own value: off
    head.__class__ = loss_head
    setattr(head, name, value)
    if all(getattr(head, option) == getattr(loss_head, option) for option in loss_head.options):
        head.__class__ = base
        for option in loss_head.options:
            head.__dict__.pop(option, None)
    return before


def set_naming_loss(model: nn.Module, weight) -> float | None:
    """Train ``model`` with the naming loss at ``weight`` (nbdetect.losses: cross-entropy among the real classes
    on the anchors matched to a box; 0 or False: without it). The head becomes its family record's
    ``loss_head`` in place (same weights, same predictions). Returns the weight it had (0.0 without), or None
    for a model whose family has no loss head or whose head is a class of its own (left alone)."""
    before = _set_head_option(model, "naming_weight", float(weight or 0.0))
    return None if before is None else float(before)


def set_iou_scores(model: nn.Module, on) -> bool | None:
    """Train ``model``'s class scores against the IoU of the box each matched anchor predicts (nbdetect.losses:
    the quality focal loss; False: torchvision's focal loss against 1). The head becomes its family record's
    ``loss_head`` in place (same weights, same predictions). Returns what it had, or None for a model whose
    family has no loss head or whose head is a class of its own (left alone)."""
    before = _set_head_option(model, "iou_scores", bool(on))
    return None if before is None else bool(before)


def set_box_loss(model: nn.Module, kind: str) -> str | None:
    """Train ``model``'s box regression with ``kind`` (one of BOX_LOSSES; "giou": 1 - generalised IoU of the
    decoded boxes, the loss of torchvision's RetinaNet v2, instead of L1 on the box deltas). Returns the kind it
    had, or None for a model whose family record sets no box loss (left alone)."""
    if kind not in BOX_LOSSES:
        from .errors import InputError

        raise InputError(f"box_loss={kind!r}: not a box loss torchvision computes", where="box_loss",
                         fix=f"pass one of {', '.join(BOX_LOSSES)}, or box_loss=False to keep the model's")
    family = families.of_model(model)
    if family is None or family.box_loss is None:
        return None
    return family.box_loss(model, kind)


def set_box_weight(model: nn.Module, weight) -> float | None:
    """Multiply ``model``'s box regression losses (its family record's ``box_loss_keys``) by ``weight`` wherever
    it computes its losses (training, validation, the LR finder, a loop of yours): a forward hook on the model,
    kept by a copy of it (the EMA's); 1, 0 or False: as built. Predictions and checkpoints are unchanged. Returns
    the weight it had (1.0 as built), or None for a model whose family names no box loss (left alone)."""
    family = families.of_model(model)
    if family is None or not family.box_loss_keys:
        return None
    before = float(getattr(model, "nbdetect_box_weight", 1.0))
    weight = float(weight or 1.0)
    model.nbdetect_box_weight = weight
    model.nbdetect_box_loss_keys = tuple(family.box_loss_keys)  # read by the hook on every forward
    if not getattr(model, "nbdetect_box_weight_hooked", False):
        model.register_forward_hook(_weigh_box_losses)
        model.nbdetect_box_weight_hooked = True
    return before


def _weigh_box_losses(model, args, output):
    """The forward hook of set_box_weight: a loss dict (training mode) with its box losses times the weight."""
    weight = getattr(model, "nbdetect_box_weight", 1.0)
    if not isinstance(output, dict) or weight == 1.0:
        return None
    keys = model.nbdetect_box_loss_keys
    return {k: v * weight if k in keys else v for k, v in output.items()}


def set_box_voting(model: nn.Module, vote_iou) -> float | None:
    """Predict with box voting (nbdetect.box_voting): the model keeps the same boxes, scores and order as its
    NMS, each kept box moved to the score-weighted mean of its class's candidates overlapping it at IoU >=
    ``vote_iou``; 0 or False: the model's own NMS again. Only predictions change (mAP, make_submission), not
    training or the weights; a copy of the model (the EMA's) keeps it. Returns the IoU it had (0.0 without), or
    None for a model whose family record does not keep its boxes that way (``box_voting``: left alone).

    On GTSDB tiles (README) voting at 0.6 took Alternative 1's validation mAP@.5:.95 from 0.466 to 0.489 (12
    epochs) and from 0.239 to 0.259 (6 epochs), the same checkpoints; 0.6 was the best of 0.5-0.8 on the
    validation tiles over both. On the synthetic demo data it cost 0.006 (0.730 -> 0.724, one checkpoint)."""
    family = families.of_model(model)
    if family is None or not family.box_voting:
        return None
    before = float(getattr(model, "nbdetect_vote_iou", 0.0))
    # 0, None or False: plain NMS again (what this returns for a model without voting); else the Arg's rule
    value = float(_checked("box_voting", vote_iou)) if vote_iou else 0.0
    if value:
        from types import MethodType

        from .box_voting import voted_postprocess

        model.nbdetect_vote_iou = value
        model.postprocess_detections = MethodType(voted_postprocess, model)
    else:
        model.__dict__.pop("nbdetect_vote_iou", None)
        model.__dict__.pop("postprocess_detections", None)
    return before


@dataclass(frozen=True)
class ModelSetting:
    """A setting a recipe applies to the model it trains (its field of the same name, which is also the ``meta``
    key): ``apply(model, value)`` returns what the model had, or None for a model it does not apply to (left
    alone); ``value(recipe_value)`` is what the model gets and ``meta`` records (compared with what it had);
    ``told(title, family, value, before)``: the line a user whose own model changed reads; ``predicts``: it
    changes predictions, so a model rebuilt from a checkpoint (submission.load_model) gets it again from its
    ``meta`` (the others change training only). Each field is also an option a call may pass
    (alternatives.known_options reads them here), so a new setting is this record, its ``set_<name>`` above, the
    Recipe field and its Arg (nbdetect.arguments)."""

    field: str
    apply: Callable
    value: Callable
    told: Callable
    predicts: bool = False


MODEL_SETTINGS = (
    ModelSetting("match_iou", set_anchor_matching, lambda v: tuple(float(x) for x in v),
                 lambda title, family, v, before: f"{title} trains your {family} with anchors matched at IoU >= "
                 f"{v[0]:g} (background < {v[1]:g}); it had {before[0]:g}/{before[1]:g}. Pass match_iou=False to "
                 "keep yours."),
    ModelSetting("naming_loss", set_naming_loss, float,
                 lambda title, family, v, before: f"{title} trains your {family} with a naming loss (cross-entropy "
                 f"among the classes where an anchor matches a box, weight {v:g}) beside its own; it changes no "
                 "weight or prediction. Pass naming_loss=False to train without it."),
    ModelSetting("box_loss", set_box_loss, str,
                 lambda title, family, v, before: f"{title} trains your {family}'s boxes with the {v} loss; it had "
                 f"{before}. Pass box_loss=False to keep yours."),
    ModelSetting("box_weight", set_box_weight, float,
                 lambda title, family, v, before: f"{title} trains your {family} with its box regression loss "
                 f"weighted {v:g} (it had {before:g}). Pass box_weight=False to keep yours."),
    ModelSetting("iou_scores", set_iou_scores, bool,
                 lambda title, family, v, before: f"{title} trains your {family}'s class scores against the IoU of "
                 "the box each matched anchor predicts (quality focal loss); predictions are made as before. Pass "
                 "iou_scores=False to keep yours."),
    ModelSetting("box_voting", set_box_voting, float,
                 lambda title, family, v, before: f"{title} predicts with your {family}'s boxes placed by voting "
                 f"(each kept box the score-weighted mean of its class's candidates overlapping it at IoU >= {v:g}); "
                 "the same boxes are kept, training is unchanged. Pass box_voting=False to keep its NMS.",
                 predicts=True),
)


def apply_prediction_settings(model, meta: dict) -> None:
    """The MODEL_SETTINGS that change predictions, as a checkpoint's ``meta`` recorded them, on the model rebuilt
    from it (submission.load_model): it predicts as the run that saved it did."""
    for setting in MODEL_SETTINGS:
        if setting.predicts and meta.get(setting.field):
            setting.apply(model, setting.value(meta[setting.field]))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state_dict or an nbdetect checkpoint (``{"model": state_dict, ...}``) into ``model``."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    model.load_state_dict(state)
    return model


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
