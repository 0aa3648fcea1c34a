"""Run a trained model on test images and write predictions as CSV and COCO results JSON."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .conventions import class_name
from .engine import predict
from .models import build_model, default_device
from .errors import CheckpointError, InputError, MissingError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


class ImageFolder(Dataset):
    """Images of a folder (or a list of paths) as float tensors, without targets."""

    def __init__(self, paths):
        if isinstance(paths, (str, Path)):
            folder = Path(paths)
            if not folder.is_dir():
                raise MissingError(f"no image folder at {folder}", where="images",
                                   fix="pass the folder holding your test images (or a list of image paths)")
            paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputError("no test images found", where="images",
                             fix="put the images in the folder; nbdetect reads " + ", ".join(sorted(IMAGE_SUFFIXES)))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        with Image.open(self.paths[i]) as im:
            image = pil_to_tensor(im.convert("RGB")).float().div_(255)
        return image, {"image_id": i, "file_name": self.paths[i].name}


def load_model(checkpoint: str | Path, device=None):
    """Rebuild the model an nbdetect run saved (``best.pt`` or ``last.pt``); returns (model, meta)."""
    from .run_state import read_checkpoint

    state = read_checkpoint(checkpoint)
    if "model" not in state:
        raise CheckpointError(f"{checkpoint} holds no model weights", where=str(checkpoint),
                              fix="pass best.pt or last.pt of an nbdetect run, or the model object itself")
    meta = state.get("meta") or {}
    preset = meta.get("preset")
    if not preset or preset.startswith("your "):
        raise CheckpointError(f"{checkpoint} holds a model nbdetect did not build ({preset!r})",
                              where=str(checkpoint),
                              fix="build your model, model.load_state_dict(torch.load(path)['model']) and pass "
                                  "the model object itself")
    model = build_model(preset, meta["num_classes"], weights=None,
                        min_size=meta.get("min_size"), max_size=meta.get("max_size"))
    model.load_state_dict(state["model"])
    return model.to(device or default_device()).eval(), meta


def make_submission(model, images, out_dir="submission", *, score_threshold=0.3, class_names=None, device=None,
                    batch_size=4) -> dict:
    """Predict on ``images`` (a folder, a list of paths or a Dataset) and write the files.

    ``model`` is a torchvision detector or a checkpoint path written by nbdetect.
    Writes ``predictions.csv`` (one row per box: file_name, image_id, x1, y1, x2, y2, score, label,
    class_name; boxes in original image pixels) and ``predictions_coco.json`` (COCO results format,
    bbox as [x, y, w, h]). Returns the paths and the number of boxes written.
    """
    if isinstance(model, (str, Path)):
        model, meta = load_model(model, device)
        class_names = class_names or meta.get("class_names")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dataset = images if isinstance(images, Dataset) else ImageFolder(images)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=lambda b: tuple(zip(*b)))
    paths = getattr(dataset, "paths", None)
    names = [Path(p).name for p in paths] if paths is not None else [str(i) for i in range(len(dataset))]
    preds = predict(model, loader, device, score_threshold=score_threshold)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "predictions.csv", out / "predictions_coco.json"
    results, rows = [], 0
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file_name", "image_id", "x1", "y1", "x2", "y2", "score", "label", "class_name"])
        for index, p in enumerate(preds):
            image_id = p["image_id"] if isinstance(p["image_id"], int) else index
            for box, score, label in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()):
                if int(label) == 0:  # the background slot of a K + 1-output head is never a class
                    continue
                x1, y1, x2, y2 = (round(v, 2) for v in box)
                w.writerow([names[index], image_id, x1, y1, x2, y2, round(score, 4), label,
                            class_name(class_names, label)])
                results.append({"image_id": image_id, "category_id": int(label),
                                "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)], "score": round(score, 4)})
                rows += 1
    json_path.write_text(json.dumps(results), encoding="utf-8")
    return {"csv": csv_path, "coco_json": json_path, "boxes": rows, "images": len(preds)}
