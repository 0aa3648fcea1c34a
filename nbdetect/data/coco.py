"""COCO detection JSON: boxes ``[x, y, w, h]`` -> xyxy; category ids -> contiguous labels 1..K.

Crowd annotations are skipped (as torchvision's reference does for training);
boxes are clipped to the image and zero-area ones dropped, counted in
``dataset.dropped_boxes``.
"""
from __future__ import annotations

import json
from pathlib import Path

from .base import DetectionDataset, make_record
from ..errors import DataError, reading


def load_coco(annotation_json, images_dir=None, cache="auto") -> DetectionDataset:
    from ..arguments import check

    check(dict(annotation_json=annotation_json, images_dir=images_dir, cache=cache))
    annotation_json = Path(annotation_json)
    with reading(annotation_json, what="this COCO JSON could not be read"):
        data = json.loads(annotation_json.read_text())
    missing = [k for k in ("images", "annotations") if not isinstance(data, dict) or k not in data]
    if missing:
        raise DataError(f"{annotation_json} has no {' and no '.join(missing)} list", where=str(annotation_json),
                        fix="pass a COCO detection file: images, annotations and categories")
    images_dir = Path(images_dir) if images_dir else annotation_json.parent
    cats = sorted(data.get("categories", []), key=lambda c: c["id"])
    label_of = {c["id"]: i + 1 for i, c in enumerate(cats)}
    per_image: dict[int, list] = {}
    dropped = 0
    sizes = {im["id"]: (im.get("height"), im.get("width")) for im in data["images"]}
    orphans = [a for a in data.get("annotations", []) if a.get("image_id") not in sizes]
    if orphans:
        ids = ", ".join(f"annotation {a.get('id')} (image_id {a.get('image_id')})" for a in orphans[:3])
        more = f" and {len(orphans) - 3} more" if len(orphans) > 3 else ""
        raise DataError(f"{len(orphans)} annotation(s) refer to an image_id not in images: {ids}{more}",
                        where=str(annotation_json), fix="add those images to images, or remove the annotations "
                                                        "(nbdetect does not drop boxes silently)")
    for ann in data.get("annotations", []):
        if ann.get("iscrowd", 0):
            continue
        if ann["category_id"] not in label_of:
            raise DataError(f"annotation {ann.get('id')} has category_id {ann['category_id']} not in categories",
                            where=str(annotation_json), fix="add the category, or remove the annotation")
        x, y, w, h = ann["bbox"]
        ih, iw = sizes.get(ann["image_id"], (None, None))
        x1, y1, x2, y2 = x, y, x + w, y + h
        if ih and iw:
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(iw, x2), min(ih, y2)
        if x2 - x1 < 1 or y2 - y1 < 1:
            dropped += 1
            continue
        per_image.setdefault(ann["image_id"], []).append(([x1, y1, x2, y2], label_of[ann["category_id"]]))
    records = []
    for i, im in enumerate(sorted(data["images"], key=lambda im: im["id"])):
        objs = per_image.get(im["id"], [])
        size = (im["height"], im["width"]) if im.get("height") and im.get("width") else None
        records.append(make_record(images_dir / im["file_name"], [b for b, _ in objs], [c for _, c in objs],
                                   im["id"], im["file_name"], size=size))
    ds = DetectionDataset(records, [c.get("name", str(c["id"])) for c in cats], cache=cache)
    ds.dropped_boxes = dropped
    return ds
