"""Pascal VOC XML annotations.

VOC coordinates are 1-based inclusive pixel indices: the continuous box is
``[xmin - 1, ymin - 1, xmax, ymax]``. ``difficult`` flags are kept in the
target (``target["difficult"]``) and scored as crowd regions by the mAP.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import torch

from .base import DetectionDataset, make_record
from ..errors import DataError, MissingError, reading


def load_voc(root, images_dir=None, class_names=None, cache="auto") -> DetectionDataset:
    from ..arguments import check

    check(dict(root=root, images_dir=images_dir, class_names=class_names, cache=cache))
    root = Path(root)
    ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    images_dir = Path(images_dir) if images_dir else (root / "JPEGImages" if (root / "JPEGImages").is_dir() else ann_dir)
    files = sorted(ann_dir.glob("*.xml"))
    if not files:
        raise MissingError(f"no VOC .xml files in {ann_dir}", where=str(ann_dir),
                           fix="point at the VOC folder (holding Annotations/ and JPEGImages/)")
    parsed = []
    for f in files:
        with reading(f, what="this VOC annotation could not be parsed",
                     fix="fix the XML: each <object> needs <name> and <bndbox> with xmin, ymin, xmax, ymax"):
            tree = ET.parse(f).getroot()
            name = tree.findtext("filename") or f.with_suffix(".jpg").name
            w = int(float(tree.findtext("size/width") or 0))
            h = int(float(tree.findtext("size/height") or 0))
            objs = []
            for k, obj in enumerate(tree.iter("object"), 1):
                bb = obj.find("bndbox")
                if bb is None or obj.findtext("name") is None:
                    raise ValueError(f"object {k} has no " + ("<bndbox>" if bb is None else "<name>"))
                box = [float(bb.findtext(key)) for key in ("xmin", "ymin", "xmax", "ymax")]
                objs.append((obj.findtext("name").strip(), [box[0] - 1, box[1] - 1, box[2], box[3]],
                             int(obj.findtext("difficult") or 0)))
        parsed.append((name, (h, w) if h and w else None, objs))
    names = list(class_names) if class_names else sorted({o[0] for _, _, objs in parsed for o in objs})
    if not names:
        raise DataError(f"none of the {len(files)} VOC annotation(s) in {ann_dir} has an <object>: no class to "
                        "train", where=str(ann_dir), fix="point at the annotations that hold the boxes (each "
                                                         "<object> with <name> and <bndbox>)")
    index = {n: i + 1 for i, n in enumerate(names)}
    records = []
    for i, (name, size, objs) in enumerate(parsed):
        unknown = [o[0] for o in objs if o[0] not in index]
        if unknown:
            raise DataError(f"class {unknown[0]!r} is not in class_names {names}", where=name,
                            fix="add it to class_names, or leave class_names out to take every class found")
        records.append(make_record(images_dir / name, [o[1] for o in objs], [index[o[0]] for o in objs], i, name,
                                   size=size, difficult=torch.tensor([o[2] for o in objs], dtype=torch.int64)))
    return DetectionDataset(records, names, cache=cache)
