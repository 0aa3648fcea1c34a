"""Box checks: format (xywh, normalised), validity, and sizes against the model's anchors."""
from __future__ import annotations

import numpy as np

from ..anchors import best_anchor_iou
from ..data.box_rules import looks_normalised
from .report import Finding

CHECK = "boxes"


def _validate_indices(scan, code) -> set[int]:
    return {p.index for p in scan.problems if p.code == code and p.index >= 0}


def tiles_fix(model_info, tiled=None) -> str:
    """The suggestion for boxes small against the model's input: tiles at native resolution (when the data is not
    tiled yet), a larger resize, smaller anchors, or Faster R-CNN."""
    size = max(64, int(model_info.min_size or 320)) if model_info is not None else 320  # a tile goes in unresized
    tiles = ("" if tiled is not None else
             f"Train on tiles cut at native resolution, alternative_1(..., tiles={size}) (the signs keep their "
             "pixels; mAP and make_submission predict whole frames by slices), or raise")
    return (f"{tiles or 'Raise'} the model's min_size/max_size (less downscaling), add smaller anchor sizes, "
            "or use Faster R-CNN (alternative_2), which copes better with small objects.")


def check_boxes(scan, model_info=None, *, small_iou: float = 0.4, tiled=None) -> list[Finding]:
    """``tiled``: the TiledDataset the samples come from (nbdetect.data.tiles), said in every summary."""
    samples = [s for s in scan.samples]
    if not samples:
        return []
    out: list[Finding] = []
    all_boxes = [s.boxes for s in samples if len(s.boxes)]
    n_boxes = sum(len(b) for b in all_boxes)
    empty = [s.index for s in samples if len(s.boxes) == 0]
    summary = f"{n_boxes} boxes in {len(samples)} samples ({len(empty)} without boxes)"
    if tiled is not None:
        summary += f"; the data are tiles: {tiled.describe()}"
    if n_boxes == 0:
        out.append(Finding(CHECK, "no_boxes", "fail", "no sample has any box: nothing to learn", summary,
                           "Check the annotation loading: every target['boxes'] is empty.", empty[:50]))
        return out

    # normalised 0-1 coordinates
    norm_idx = [s.index for s in samples if looks_normalised(s.boxes, (s.height, s.width))]
    norm_idx = sorted(set(norm_idx) | _validate_indices(scan, "box_normalized"))
    with_boxes = len(samples) - len(empty)
    if norm_idx and len(norm_idx) >= 0.5 * with_boxes:
        eg = next(s for s in samples if s.index == norm_idx[0])
        out.append(Finding(CHECK, "box_normalized", "fail",
                           f"boxes are normalised 0-1 coordinates in {len(norm_idx)} of {with_boxes} samples; "
                           "torchvision needs absolute pixels",
                           f"{summary}; e.g. sample {eg.index} ({eg.width}x{eg.height} px): {np.round(eg.boxes[0], 4).tolist()}",
                           "Multiply by the image size: boxes * torch.tensor([W, H, W, H]) (and convert YOLO "
                           "cx,cy,w,h to x1,y1,x2,y2 first).", norm_idx))
        return out

    # xywh given where xyxy is expected
    bad_order = []
    fits_as_xywh = 0
    n_bad_boxes = 0
    outside = []
    for s in samples:
        b = s.boxes
        if not len(b):
            continue
        bad = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
        if bad.any():
            bad_order.append(s.index)
            n_bad_boxes += int(bad.sum())
            x, y, w, h = b[bad].T
            if s.width and s.height:
                fits_as_xywh += int(((w > 0) & (h > 0) & (x + w <= s.width + 1) & (y + h <= s.height + 1)).sum())
        if s.width and s.height:
            out_of = (b[:, 0] < -1) | (b[:, 1] < -1) | (b[:, 2] > s.width + 1) | (b[:, 3] > s.height + 1)
            if out_of.any():
                outside.append(s.index)
    bad_order = sorted(set(bad_order) | _validate_indices(scan, "box_not_xyxy") | _validate_indices(scan, "box_degenerate"))
    if n_bad_boxes >= max(1, 0.2 * n_boxes) and fits_as_xywh >= 0.8 * n_bad_boxes:
        eg = next(s for s in samples if s.index == bad_order[0])
        out.append(Finding(CHECK, "box_xywh", "fail",
                           f"boxes look like [x, y, w, h]: {n_bad_boxes} of {n_boxes} have x2<=x1 or y2<=y1, "
                           "and all of those fit the image when read as x, y, width, height",
                           f"{summary}; e.g. sample {eg.index}: {np.round(eg.boxes[0], 1).tolist()}",
                           "Convert to xyxy: torchvision.ops.box_convert(boxes, 'xywh', 'xyxy') "
                           "(COCO annotations are xywh).", bad_order))
    elif bad_order:
        out.append(Finding(CHECK, "box_degenerate", "fail",
                           f"{n_bad_boxes} boxes in {len(bad_order)} samples have zero or negative width/height",
                           summary, "Drop or fix these boxes: torchvision raises or produces NaN losses on them.",
                           bad_order))
    outside = sorted(set(outside) | _validate_indices(scan, "box_outside_image"))
    if outside and not any(f.code == "box_xywh" for f in out):
        status = "fail" if len(outside) > 0.2 * with_boxes else "warn"
        out.append(Finding(CHECK, "box_outside_image", status,
                           f"boxes extend outside the image in {len(outside)} samples",
                           summary + " (boxes vs the image as the dataset returns it: a resize applied to the "
                                     "image but not the boxes shows up here)",
                           "Clip to the image (torchvision.ops.clip_boxes_to_image) and check that any resize in "
                           "the dataset also scales the boxes.", outside))

    # sizes vs anchors
    if model_info is not None and model_info.anchor_sizes and not out:
        ws, hs, owners = [], [], []
        for s in samples:
            b = s.boxes
            if not len(b) or not s.height:
                continue
            scale = model_info.scale_for(s.height, s.width)
            ws.append((b[:, 2] - b[:, 0]) * scale)
            hs.append((b[:, 3] - b[:, 1]) * scale)
            owners.extend([s.index] * len(b))
        if ws:
            w, h = np.concatenate(ws), np.concatenate(hs)
            ok = (w > 0) & (h > 0)
            iou = np.zeros(len(w))
            iou[ok] = best_anchor_iou(w[ok], h[ok], model_info.anchor_sizes, model_info.aspect_ratios)
            small = (iou < small_iou) & (np.sqrt(np.clip(w * h, 0, None)) < min(min(s) for s in model_info.anchor_sizes))
            frac = float(small.mean())
            side = np.sqrt(np.clip(w * h, 0, None))
            evidence = (f"after the model's resize (min_size={model_info.min_size}, max_size={model_info.max_size}) "
                        f"boxes are {np.percentile(side, 5):.0f}-{np.percentile(side, 95):.0f} px (5-95th pct); "
                        f"smallest anchor {min(min(s) for s in model_info.anchor_sizes):.0f} px; "
                        f"{int(small.sum())} of {len(w)} boxes ({frac:.0%}) match no anchor shape with IoU >= {small_iou}")
            idx = sorted({owners[i] for i in np.flatnonzero(small)})
            if frac > 0.25:
                out.append(Finding(CHECK, "box_too_small_for_anchors", "warn",
                                   f"{frac:.0%} of boxes are smaller than the smallest anchor after resizing",
                                   evidence, tiles_fix(model_info, tiled), idx))
            else:
                out.append(Finding(CHECK, "anchors_ok", "pass", "box sizes are covered by the model's anchors" +
                                   (f" (the data are {tiled.cfg.size}-px tiles at native resolution)" if tiled else ""),
                                   evidence))
    if len(empty) > 0.5 * len(samples) and tiled is None:  # a tile plan's background share is chosen
        out.append(Finding(CHECK, "no_boxes", "warn", f"{len(empty)} of {len(samples)} images have no boxes",
                           summary, "Mostly-empty data slows learning; check that annotations were matched to "
                                    "the right image files.", empty))
    hard = ("box_normalized", "box_xywh", "box_degenerate", "box_outside_image", "no_boxes")
    if not any(f.code in hard and f.is_problem for f in out):
        out.append(Finding(CHECK, "boxes_ok", "pass", "boxes are xyxy pixels inside the images", summary))
    return out


def run_boxes(ctx) -> list[Finding]:
    """The "boxes" check of the registry (nbdetect.checks.registry), on diagnose's shared context."""
    from ..data.tiles import tiled_of

    return check_boxes(ctx.scan, ctx.info, tiled=tiled_of(ctx.data))
