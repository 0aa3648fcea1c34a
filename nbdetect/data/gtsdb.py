"""German Traffic Sign Detection Benchmark: ``gt.txt`` lines ``file;x1;y1;x2;y2;class`` (classes 0..42).

GTSDB gives inclusive pixel indices (``rightCol``/``bottomRow`` are the last
pixel *in* the sign), so the continuous xyxy box nbdetect uses is
``[x1, y1, x2 + 1, y2 + 1]``. gt.txt names ``.ppm`` files; a folder holding the
same stems as ``.jpg``/``.png`` is resolved by stem. Images with no gt line are
kept as background images; lines naming absent images are skipped.
"""
from __future__ import annotations

from pathlib import Path

from .base import DetectionDataset, make_record
from ..errors import DataError, MissingError, reading

# The ReadMe's 43 classes and the super-class each belongs to.
GTSDB_CLASSES = [
    ("speed limit 20", "prohibitory"), ("speed limit 30", "prohibitory"), ("speed limit 50", "prohibitory"),
    ("speed limit 60", "prohibitory"), ("speed limit 70", "prohibitory"), ("speed limit 80", "prohibitory"),
    ("restriction ends 80", "other"), ("speed limit 100", "prohibitory"), ("speed limit 120", "prohibitory"),
    ("no overtaking", "prohibitory"), ("no overtaking (trucks)", "prohibitory"),
    ("priority at next intersection", "danger"), ("priority road", "other"), ("give way", "other"),
    ("stop", "other"), ("no traffic both ways", "prohibitory"), ("no trucks", "prohibitory"),
    ("no entry", "other"), ("danger", "danger"), ("bend left", "danger"), ("bend right", "danger"),
    ("bend", "danger"), ("uneven road", "danger"), ("slippery road", "danger"), ("road narrows", "danger"),
    ("construction", "danger"), ("traffic signal", "danger"), ("pedestrian crossing", "danger"),
    ("school crossing", "danger"), ("cycles crossing", "danger"), ("snow", "danger"), ("animals", "danger"),
    ("restriction ends", "other"), ("go right", "mandatory"), ("go left", "mandatory"),
    ("go straight", "mandatory"), ("go right or straight", "mandatory"), ("go left or straight", "mandatory"),
    ("keep right", "mandatory"), ("keep left", "mandatory"), ("roundabout", "mandatory"),
    ("restriction ends (overtaking)", "other"), ("restriction ends (overtaking (trucks))", "other"),
]
SUPERCLASSES = ["prohibitory", "danger", "mandatory", "other"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm")


def _find_images(root: Path) -> dict[str, Path]:
    folder = root / "images" if (root / "images").is_dir() else root
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def load_gtsdb(root, superclasses: bool = False, cache="auto") -> DetectionDataset:
    """GTSDB from ``root`` (holding gt.txt and the images, directly or in ``images/``).

    ``superclasses=True`` maps the 43 classes to prohibitory/danger/mandatory/other.
    """
    from ..arguments import check

    v = check(dict(root=root, superclasses=superclasses, cache=cache))
    root, superclasses, cache = Path(v["root"]), v["superclasses"], v["cache"]
    gt = root / "gt.txt"
    if not gt.exists():
        raise MissingError(f"no gt.txt in {root}", where=str(root),
                           fix="point at the GTSDB folder holding gt.txt and the images")
    images = _find_images(root)
    boxes: dict[str, list] = {stem: [] for stem in images}
    for n, line in enumerate(gt.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(";")
        with reading(gt, n, what=f"expected 'file;x1;y1;x2;y2;class' with whole numbers, got {line!r}"):
            if len(parts) != 6:
                raise ValueError("not 6 fields")
            x1, y1, x2, y2, cls = (int(v) for v in parts[1:])
        stem = Path(parts[0]).stem
        if stem not in boxes:
            continue  # annotated image not in this copy of the dataset
        if not 0 <= cls < len(GTSDB_CLASSES):
            raise DataError(f"class {cls} is not a GTSDB class (0..42)", where=f"{gt}, line {n}",
                            fix="GTSDB classes are 0..42 (the ReadMe's list)")
        label = SUPERCLASSES.index(GTSDB_CLASSES[cls][1]) + 1 if superclasses else cls + 1
        boxes[stem].append(([x1, y1, x2 + 1, y2 + 1], label))
    records = []
    for i, (stem, path) in enumerate(images.items()):
        objs = boxes[stem]
        records.append(make_record(path, [b for b, _ in objs], [lab for _, lab in objs], i, path.name,
                                   size=(800, 1360) if path.suffix.lower() == ".ppm" else None))
    names = SUPERCLASSES if superclasses else [name for name, _ in GTSDB_CLASSES]
    return DetectionDataset(records, names, cache=cache)
