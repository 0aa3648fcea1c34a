"""Dataset formats nbdetect recognises from a path: one record each (how to spot it, how to load it).

Add a format: a loader module in nbdetect/data/ returning a DetectionDataset, and one ``Format`` here (or
``register_format(...)`` from your code). The first format whose ``detect`` accepts the path loads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Format:
    name: str
    detect: Callable[[Path], bool]
    load: Callable  # load(path, split) -> DetectionDataset
    hint: str = ""  # how to load it by hand, for the error message


def _yolo(p, split):
    from .yolo import load_yolo
    return load_yolo(p, split=split)


def _yolo_dir(p, split):
    from .yolo import load_yolo
    return load_yolo(p / "data.yaml", split=split)


def _gtsdb(p, split):
    from .gtsdb import load_gtsdb
    return load_gtsdb(p)


def _voc(p, split):
    from .voc import load_voc
    return load_voc(p)


def _coco(p, split):
    from ..errors import InputError

    raise InputError(f"{p} looks like COCO annotations, which need their image folder", where=str(p),
                     fix=f"use nbdetect.load_coco({str(p)!r}, images_dir=...)")


FORMATS: list[Format] = [
    Format("yolo", lambda p: p.suffix in (".yaml", ".yml") or (p.is_dir() and (p / "labels").exists()), _yolo,
           "nbdetect.load_yolo('data.yaml')"),
    Format("coco", lambda p: p.suffix == ".json", _coco, "nbdetect.load_coco('instances.json', images_dir=...)"),
    Format("gtsdb", lambda p: p.is_dir() and (p / "gt.txt").exists(), _gtsdb, "nbdetect.load_gtsdb(folder)"),
    Format("voc", lambda p: p.is_dir() and (any(p.glob("*.xml")) or (p / "Annotations").exists()), _voc,
           "nbdetect.load_voc(folder)"),
    Format("yolo_folder", lambda p: p.is_dir() and (p / "data.yaml").exists(), _yolo_dir,
           "nbdetect.load_yolo('folder/data.yaml')"),
]


def register_format(fmt: Format, first: bool = True) -> Format:
    """Add a format (checked before the built-in ones unless ``first=False``)."""
    if any(f.name == fmt.name for f in FORMATS):
        raise ValueError(f"a data format named {fmt.name!r} is already registered")
    FORMATS.insert(0, fmt) if first else FORMATS.append(fmt)
    return fmt


def load_path(path, split: str = "train"):
    """Load the dataset at ``path`` with the first format that recognises it."""
    p = Path(path)
    if not p.exists():
        from ..errors import MissingError

        raise MissingError(f"no dataset at {p}", where=str(p),
                           fix="check the path (relative paths start at the notebook's folder)")
    for fmt in FORMATS:
        if fmt.detect(p):
            return fmt.load(p, split)
    hints = "; ".join(f.hint for f in FORMATS if f.hint)
    from ..errors import InputError

    raise InputError(f"cannot tell the format of {p}", where=str(p), fix=f"build the dataset by hand: {hints}")
