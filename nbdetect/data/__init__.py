"""Data adapters: nbdetect's dataset, format loaders, the synthetic default, checks and loaders."""
from .base import DetectionDataset, Record, make_record
from .coco import load_coco
from .gtsdb import load_gtsdb
from .loader import ResumableSampler, collate_fn, make_loader
from .synthetic import SyntheticSigns, synthetic_split
from .validate import Problem, as_detection_dataset, check_dataset, check_sample, raise_if_invalid
from .voc import load_voc
from .yolo import load_yolo

__all__ = [
    "DetectionDataset", "Record", "make_record", "load_coco", "load_gtsdb", "load_voc", "load_yolo",
    "SyntheticSigns", "synthetic_split", "ResumableSampler", "collate_fn", "make_loader",
    "Problem", "check_sample", "check_dataset", "raise_if_invalid", "as_detection_dataset",
]
