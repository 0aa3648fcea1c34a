import json

import pytest
import torch
from PIL import Image

from nbdetect_test_paths import GTSDB
from nbdetect.data import load_coco, load_gtsdb, load_voc, load_yolo
from nbdetect.data.base import DetectionDataset


def _img(path, w=100, h=80):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (10, 20, 30)).save(path)


def test_yolo_data_yaml_with_splits_and_missing_label_file(tmp_path):
    _img(tmp_path / "images/train/a.jpg")
    _img(tmp_path / "images/train/b.jpg")
    _img(tmp_path / "images/val/c.jpg")
    (tmp_path / "labels/train").mkdir(parents=True)
    (tmp_path / "labels/train/a.txt").write_text("0 0.5 0.5 0.2 0.25\n2 0.1 0.1 0.1 0.1\n")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: ['stop', 'yield', 'speed']\n")
    train = load_yolo(tmp_path / "data.yaml", "train")
    val = load_yolo(tmp_path / "data.yaml", "val")
    assert train.class_names == ["stop", "yield", "speed"] and len(train) == 2 and len(val) == 1
    image, target = train[0]
    assert image.shape == (3, 80, 100) and image.dtype == torch.float32
    assert torch.allclose(target["boxes"][0], torch.tensor([40.0, 30.0, 60.0, 50.0]))
    assert target["labels"].tolist() == [1, 3]  # 0-based YOLO classes -> 1..K
    assert train[1][1]["boxes"].shape == (0, 4)  # no label file: background image


def test_coco_json_maps_sparse_category_ids_and_skips_crowd(tmp_path):
    _img(tmp_path / "img/x.jpg")
    coco = {
        "images": [{"id": 7, "file_name": "x.jpg", "width": 100, "height": 80}],
        "categories": [{"id": 90, "name": "sign"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 90, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 5, 5], "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [50, 10, 0, 10], "iscrowd": 0},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    ds = load_coco(tmp_path / "ann.json", tmp_path / "img")
    assert ds.class_names == ["car", "sign"]
    _, t = ds[0]
    assert t["boxes"].tolist() == [[10.0, 20.0, 40.0, 60.0]] and t["labels"].tolist() == [2]
    assert ds.dropped_boxes == 1 and t["image_id"] == 7


def test_voc_xml_converts_one_based_inclusive_coordinates(tmp_path):
    _img(tmp_path / "JPEGImages/p.jpg")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations/p.xml").write_text(
        "<annotation><filename>p.jpg</filename><size><width>100</width><height>80</height></size>"
        "<object><name>stop</name><difficult>1</difficult><bndbox><xmin>11</xmin><ymin>21</ymin>"
        "<xmax>40</xmax><ymax>60</ymax></bndbox></object></annotation>")
    ds = load_voc(tmp_path)
    _, t = ds[0]
    assert ds.class_names == ["stop"]
    assert t["boxes"].tolist() == [[10.0, 20.0, 40.0, 60.0]] and t["difficult"].tolist() == [1]


@pytest.mark.skipif(not (GTSDB / "gt.txt").exists(), reason="GTSDB not available next to the repo")
def test_gtsdb_real_data():
    ds = load_gtsdb(GTSDB)
    lines = [line.split(";") for line in (GTSDB / "gt.txt").read_text().splitlines() if line.strip()]
    present = {p.stem for p in (GTSDB / "images").iterdir()}
    expected_boxes = sum(1 for parts in lines if parts[0].split(".")[0] in present)
    assert len(ds) == len(present) and sum(len(r.boxes) for r in ds.records) == expected_boxes
    assert ds.num_classes == 43 and ds.class_names[14] == "stop"
    # 00000.ppm;774;411;815;446;11 -> label 12, inclusive pixel indices -> +1 on the far edges
    image, target = ds[0]
    assert image.shape == (3, 800, 1360) and target["file_name"] == "00000.jpg"
    assert target["boxes"].tolist()[0] == [774.0, 411.0, 816.0, 447.0] and target["labels"].tolist()[0] == 12
    background = [i for i, r in enumerate(ds.records) if len(r.boxes) == 0]
    assert background and ds[background[0]][1]["boxes"].shape == (0, 4)
    supers = load_gtsdb(GTSDB, superclasses=True)
    assert supers.class_names == ["prohibitory", "danger", "mandatory", "other"]
    assert supers[0][1]["labels"].tolist()[0] == 2  # class 11 "priority at next intersection" is a danger sign


def test_decoded_images_are_cached_after_first_epoch(tmp_path, monkeypatch):
    from nbdetect.data import base

    for i in range(3):
        _img(tmp_path / f"images/{i}.jpg")
    calls = []
    real = base.decode
    monkeypatch.setattr(base, "decode", lambda p: calls.append(p) or real(p))
    ds = DetectionDataset([base.make_record(tmp_path / f"images/{i}.jpg", [], [], i) for i in range(3)], ["a"])
    for _ in range(3):
        for i in range(len(ds)):
            ds[i]
    assert len(calls) == 3 and ds.cache_info()["hits"] == 6
    off = DetectionDataset(ds.records, ["a"], cache=False)
    off[0], off[0]
    assert len(calls) == 5
    tiny = DetectionDataset(ds.records, ["a"], cache=True, cache_limit_bytes=100 * 80 * 3)  # room for one image
    for i in range(3):
        tiny[i]
    assert tiny.cache_info()["images"] == 1
