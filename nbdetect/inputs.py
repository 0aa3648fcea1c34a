"""Turn whatever a notebook already has into validated datasets and loaders.

``train``/``val`` may be a torchvision-style Dataset, a DataLoader, a path
(YOLO ``data.yaml`` or folder, COCO JSON, VOC folder, GTSDB folder) or None
(nbdetect's embedded synthetic traffic-sign data).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import DataLoader

from .data import synthetic_split
from .data.formats import load_path
from .data.loader import make_loader, resumable
from .data.validate import as_detection_dataset, check_dataset, raise_if_invalid, verify_images
from .errors import InputError, positive_int

DEFAULT_SYNTHETIC = {"n_train": 240, "n_val": 60, "image_size": (256, 256), "seed": 0}


@dataclass
class PreparedData:
    train_loader: DataLoader
    val_loader: DataLoader | None
    num_classes: int
    class_names: list = field(default_factory=list)
    synthetic: bool = False
    warnings: list = field(default_factory=list)
    tiles: object = None  # the TileConfig both splits were cut with (nbdetect.data.tiles), or None


def _dataset_of(obj):
    return obj.dataset if isinstance(obj, DataLoader) else obj


def check_num_classes(value, argument: str = "num_classes") -> int | None:
    """``value`` as a positive int (None stays None); anything else is refused with the fix."""
    if value is None:
        return None
    return positive_int(value, argument, f"pass the number of real classes K as an int (background not counted), "
                                         f"e.g. {argument}=43 for GTSDB, or None to read it from the data")


def _labels_max(dataset, limit: int = 2000) -> int | None:
    """The largest label in the first ``limit`` samples (targets only where the dataset allows)."""
    from .data.validate import target_format_problem
    from .errors import DataError

    top = None
    for i in range(min(len(dataset), limit)):
        target = dataset[i][1]
        wrong = target_format_problem(i, target)
        if wrong:  # not "pass num_classes": the target itself is wrong
            raise DataError(wrong.message, where=f"sample {i}",
                            fix="return targets as dicts: {'boxes': FloatTensor[N, 4] (x1, y1, x2, y2 pixels), "
                                "'labels': Int64Tensor[N] (1..K)}")
        labels = target.get("labels") if isinstance(target, dict) else None
        if labels is not None and len(labels):
            m = int(max(labels.tolist() if hasattr(labels, "tolist") else labels))
            top = m if top is None else max(top, m)
    return top


def _infer_num_classes(dataset, given):
    given = check_num_classes(given)
    own = getattr(dataset, "num_classes", None)
    if given is not None:
        return given
    if own is not None:
        return int(own)
    names = getattr(dataset, "class_names", None)
    if names:
        return len(names)
    top = _labels_max(dataset)
    if top is None or top < 1:
        raise InputError("num_classes cannot be read from the data: no sample has a positive label",
                         where="num_classes", fix="pass num_classes=K, the number of real classes (labels 1..K)")
    print(f"nbdetect: num_classes read from the data: {top} (the largest label; pass num_classes= if some "
          "classes never appear)")
    return top


def _check_not_empty(dataset, name: str) -> None:
    from .errors import DataError

    if dataset is None:
        return
    try:
        n = len(dataset)
    except TypeError:
        raise InputError(f"the {name} data has no length", where=name,
                         fix="pass a Dataset, a DataLoader or a list of samples, not a generator") from None
    if n == 0:
        raise DataError(f"the {name} data is empty (0 samples)", where=name,
                        fix="check that the dataset found its images and annotations (len(...) > 0)"
                            + (", or pass val=None to train without validation" if name == "val" else ""))


def prepare_data(train=None, val=None, *, num_classes=None, class_names=None, label_base=1, batch_size=4,
                 seed=0, num_workers=0, synthetic=None, validate=True, max_validate=None,
                 augment=False, tiles=None) -> PreparedData:
    """Resolve, validate (raising a ValueError naming bad samples) and wrap the data in loaders.

    ``augment`` (True or an :class:`~nbdetect.data.augment.AugmentConfig`): augment the training split when
    nbdetect builds its loader; a DataLoader of yours is used as it is (your own transforms stay yours).
    ``tiles`` (a :class:`~nbdetect.data.tiles.TileConfig`): both splits are cut into tiles after the full frames
    were validated (a DataLoader's dataset is tiled and nbdetect builds the loader, with its batch size)."""
    is_synthetic = train is None
    if is_synthetic:
        train, val_default = synthetic_split(**{**DEFAULT_SYNTHETIC, **(synthetic or {})})
        val = val if val is not None else val_default
    elif isinstance(train, (str, Path)):
        train_path = train
        train = load_path(train_path, "train")
        if val is None and Path(train_path).suffix in (".yaml", ".yml"):
            try:
                val = load_path(train_path, "val")
            except FileNotFoundError as exc:
                if not getattr(exc, "no_split", False):  # a val: entry pointing nowhere is named, not ignored
                    raise
                val = None
    if isinstance(val, (str, Path)):
        val = load_path(val, "val")

    train_ds = as_detection_dataset(_dataset_of(train), label_base=label_base)
    val_ds = as_detection_dataset(_dataset_of(val), label_base=label_base) if val is not None else None
    _check_not_empty(train_ds, "train")
    _check_not_empty(val_ds, "val")
    k = _infer_num_classes(train_ds, num_classes)
    names = list(class_names or getattr(train_ds, "class_names", None) or [])
    warnings = []
    if validate:
        for name, ds in (("training", train_ds), ("validation", val_ds)):
            if ds is None:
                continue
            problems = check_dataset(ds, k, label_base=1, max_samples=max_validate) + verify_images(ds)
            raise_if_invalid(problems)
            warnings += [f"{name} data: {p.message}" for p in problems if p.severity == "warning"]
    if tiles is not None:
        from .data.tiles import TiledDataset

        train_ds = TiledDataset(train_ds, tiles)
        val_ds = TiledDataset(val_ds, tiles) if val_ds is not None else None
        train = _dataset_of(train)  # the tiles get nbdetect's loader
        val = _dataset_of(val)
        for split, ds in (("train", train_ds), ("val", val_ds)):
            if ds is not None and len(ds) == 0:
                from .errors import DataError

                raise DataError(f"tiles={tiles.size}: no {tiles.size}x{tiles.size} px tile of the {split} frames holds "
                                f"a box mostly inside (at least {tiles.min_visible:g} of its area) and none is "
                                "background", where="tiles", fix="pass a larger tile size (boxes larger than a tile "
                                                                  "are never inside one), or a lower min_visible")

    def loader(obj, ds, shuffle):
        if isinstance(obj, DataLoader) and label_base == 1:  # the user's own loader, made resumable
            made, note = resumable(obj, seed=seed)
            if note:
                print(f"nbdetect: {note}")
            return made
        if shuffle and augment:  # the training split only
            from .data.augment import AugmentConfig, Augmented

            ds = Augmented(ds, augment if isinstance(augment, AugmentConfig) else None)
        return make_loader(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, num_workers=num_workers)

    return PreparedData(
        train_loader=loader(train, train_ds, True),
        val_loader=loader(val, val_ds, False) if val_ds is not None else None,
        num_classes=k,
        class_names=names,
        synthetic=is_synthetic,
        warnings=warnings,
        tiles=tiles,
    )
