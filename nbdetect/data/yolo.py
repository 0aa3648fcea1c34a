"""YOLO-format folders (what Ultralytics trains on): ``class cx cy w h`` normalised, 0-based classes.

Accepts a ``data.yaml`` (``path``, ``train``, ``val``, ``names``) or a folder
with ``images/`` and ``labels/`` (optionally ``images/<split>``). Class ``c``
becomes nbdetect label ``c + 1``. An image without a label file has no objects.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .base import DetectionDataset, image_size, make_record
from ..errors import DataError, MissingError, reading

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _image_files(spec: Path) -> list[Path]:
    if spec.is_file() and spec.suffix == ".txt":  # a list of image paths
        base = spec.parent
        return [(base / line.strip()).resolve() if not Path(line.strip()).is_absolute() else Path(line.strip())
                for line in spec.read_text().splitlines() if line.strip()]
    return sorted(p for p in spec.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _names(raw, fallback_count: int) -> list[str]:
    if isinstance(raw, dict):
        return [str(raw[k]) for k in sorted(raw, key=int)]
    if isinstance(raw, list):
        return [str(n) for n in raw]
    return [f"class {i}" for i in range(fallback_count)]


def load_yolo(path, split: str = "train", cache="auto") -> DetectionDataset:
    from ..arguments import check

    check(dict(path=path, split=split, cache=cache))
    path = Path(path)
    names = None
    if path.suffix in (".yaml", ".yml"):
        with reading(path, what="this data.yaml could not be read"):
            cfg = yaml.safe_load(path.read_text()) or {}
        if not isinstance(cfg, dict):
            raise DataError(f"{path} holds a {type(cfg).__name__}, not a mapping", where=str(path),
                            fix="write it as Ultralytics does: path:, train:, val:, names: (or nc:)")
        if cfg.get("names") is None and cfg.get("nc") is None:
            raise DataError(f"{path} has neither names nor nc", where=str(path),
                            fix="add names: [sign1, sign2, ...] (or nc: K) to the data.yaml")
        root = Path(cfg.get("path") or path.parent)
        if not root.is_absolute():
            root = (path.parent / root).resolve()
        if split not in cfg or cfg[split] is None:
            err = MissingError(f"{path} has no '{split}' entry", where=str(path),
                               fix=f"add {split}: images/{split} (the folder or list of {split} images)")
            err.no_split = True
            raise err
        specs = cfg[split] if isinstance(cfg[split], list) else [cfg[split]]
        for s in specs:
            if not (root / str(s)).exists():
                raise MissingError(f"{path}: {split}: {s} points to {root / str(s)}, which does not exist",
                                   where=str(root / str(s)),
                                   fix=f"fix the {split}: entry (relative to path: {root}), or move the images there")
        files = [f for s in specs for f in _image_files(root / str(s))]
        names = _names(cfg.get("names"), int(cfg.get("nc", 0)))
    else:
        images = path / "images" / split if (path / "images" / split).is_dir() else path / "images"
        if not images.is_dir():
            raise MissingError(f"no images/ folder in {path}", where=str(path),
                               fix="a YOLO folder holds images/ and labels/ (or pass its data.yaml)")
        files = _image_files(images)
        classes = path / "classes.txt"
        if classes.exists():
            names = [n.strip() for n in classes.read_text().splitlines() if n.strip()]
    records, max_class = [], -1
    for i, img in enumerate(files):
        h, w = image_size(img)
        boxes, labels = [], []
        lbl = _label_path(img)
        if lbl.exists():
            for n, line in enumerate(lbl.read_text().splitlines(), 1):
                vals = line.split()
                if not vals:
                    continue
                with reading(lbl, n, what=f"expected 'class cx cy w h' (class a whole number), got {line!r}",
                             fix="each line of a YOLO label file is: class cx cy w h, normalised to 0-1"):
                    if len(vals) < 5 or float(vals[0]) != int(float(vals[0])):
                        raise ValueError("not 5 numbers with a whole class")
                    c, cx, cy, bw, bh = int(float(vals[0])), *map(float, vals[1:5])
                if len(vals) != 5:
                    raise DataError(f"{len(vals)} values where a YOLO box has 5 (class cx cy w h): {line.strip()!r}"
                                    + (" (a 6th column is a confidence: is this a predictions file?)"
                                       if len(vals) == 6 else " (a segmentation polygon?)"),
                                    where=f"{lbl}, line {n}",
                                    fix="write one box per line as class cx cy w h (convert polygons to their "
                                        "bounding boxes; drop confidence columns)")
                if c < 0 or min(cx, cy, bw, bh) < 0 or max(cx, cy, bw, bh) > 1.001:
                    pixels = max(cx, cy, bw, bh) > 1.001
                    raise DataError(f"{'values above 1' if pixels else 'a negative value'} in {line.strip()!r}"
                                    + (": these look like pixels, YOLO labels are normalised 0-1" if pixels else ""),
                                    where=f"{lbl}, line {n}",
                                    fix="divide cx and w by the image width, cy and h by its height (all in 0..1); "
                                        "class is 0..K-1")
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
                labels.append(c + 1)
                max_class = max(max_class, c)
        records.append(make_record(img, boxes, labels, i, img.name, size=(h, w)))
    if names is None:
        names = [f"class {i}" for i in range(max_class + 1)]
    return DetectionDataset(records, names, cache=cache)
