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
from .data.loader import make_loader
from .data.validate import as_detection_dataset, check_dataset, raise_if_invalid

DEFAULT_SYNTHETIC = {"n_train": 240, "n_val": 60, "image_size": (256, 256), "seed": 0}


@dataclass
class PreparedData:
    train_loader: DataLoader
    val_loader: DataLoader | None
    num_classes: int
    class_names: list = field(default_factory=list)
    synthetic: bool = False
    warnings: list = field(default_factory=list)


def _dataset_of(obj):
    return obj.dataset if isinstance(obj, DataLoader) else obj


def _infer_num_classes(dataset, given):
    own = getattr(dataset, "num_classes", None)
    if given is None and own is None:
        raise ValueError(
            "num_classes is required for this dataset: the number of real classes K "
            "(labels 1..K; pass label_base=0 if your labels are 0..K-1)"
        )
    return int(given if given is not None else own)


def prepare_data(train=None, val=None, *, num_classes=None, class_names=None, label_base=1, batch_size=4,
                 seed=0, num_workers=0, synthetic=None, validate=True, max_validate=None) -> PreparedData:
    """Resolve, validate (raising a ValueError naming bad samples) and wrap the data in loaders."""
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
            except (FileNotFoundError, ValueError, KeyError):
                val = None
    if isinstance(val, (str, Path)):
        val = load_path(val, "val")

    train_ds = as_detection_dataset(_dataset_of(train), label_base=label_base)
    val_ds = as_detection_dataset(_dataset_of(val), label_base=label_base) if val is not None else None
    k = _infer_num_classes(train_ds, num_classes)
    names = list(class_names or getattr(train_ds, "class_names", None) or [])
    warnings = []
    if validate:
        for name, ds in (("training", train_ds), ("validation", val_ds)):
            if ds is None:
                continue
            problems = check_dataset(ds, k, label_base=1, max_samples=max_validate)
            raise_if_invalid(problems)
            warnings += [f"{name} data: {p.message}" for p in problems if p.severity != "error"]

    def loader(obj, ds, shuffle):
        if isinstance(obj, DataLoader) and label_base == 1:
            return obj  # the user's own loader, used as it is
        return make_loader(ds, batch_size=batch_size, shuffle=shuffle, seed=seed, num_workers=num_workers)

    return PreparedData(
        train_loader=loader(train, train_ds, True),
        val_loader=loader(val, val_ds, False) if val_ds is not None else None,
        num_classes=k,
        class_names=names,
        synthetic=is_synthetic,
        warnings=warnings,
    )
