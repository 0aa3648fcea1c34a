"""Run a trained model on test images and write predictions as CSV and COCO results JSON."""
from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from .arguments import public
from .atomic import make_folder
from .conventions import class_name
from .engine import native_resolution, predict
from .slicing import MAX_DETS, SCORE_FLOOR, cap, predict_sliced
from .models import apply_prediction_settings, build_model, default_device
from .errors import CheckpointError, DataError, InputError, MissingError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp"}


class ImageFolder(Dataset):
    """Images of a folder (or a list of paths) as float tensors, without targets."""

    def __init__(self, paths):
        if isinstance(paths, (str, Path)):
            folder = Path(paths)
            if not folder.is_dir():
                raise MissingError(f"no image folder at {folder}", where="images",
                                   fix="pass the folder holding your test images (or a list of image paths)")
            files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
            paths = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            skipped = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
            if skipped and paths:
                more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
                print(f"nbdetect: note: skipped {len(skipped)} file(s) in {folder} that are not images: "
                      f"{', '.join(skipped[:3])}{more}")
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputError("no test images found", where="images",
                             fix="put the images in the folder; nbdetect reads " + ", ".join(sorted(IMAGE_SUFFIXES)))
        bad = []
        from PIL import Image

        for p in self.paths:  # a header check (no decoding): a broken file is named before any prediction
            try:
                with Image.open(p) as im:
                    im.size
            except Exception as exc:
                bad.append((p, type(exc).__name__))
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise DataError(f"{len(bad)} file(s) among the test images cannot be opened as images: "
                            f"{', '.join(f'{p.name} ({why})' for p, why in bad[:3])}{more}", where=str(bad[0][0]),
                            fix="remove them from the test folder (or re-copy them if they are truncated)")

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        with Image.open(self.paths[i]) as im:
            image = pil_to_tensor(im.convert("RGB")).float().div_(255)
        return image, {"image_id": i, "file_name": self.paths[i].name}


@public
def load_model(checkpoint: str | Path, device=None):
    """Rebuild the model an nbdetect run saved (``best.pt`` or ``last.pt``); returns (model, meta)."""
    from . import arguments
    from .run_state import read_checkpoint

    if isinstance(checkpoint, bytes) or not isinstance(checkpoint, (str, Path)):
        raise InputError(f"checkpoint is a {type(checkpoint).__name__}, not a path", where="checkpoint",
                         fix="pass the path of best.pt (or last.pt) of an nbdetect run")
    device = arguments.check_one("device", device)
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
    from .families import rebuild_options

    extra = rebuild_options(preset, state["model"])  # build options the weights imply (e.g. an older head)
    model = build_model(preset, meta["num_classes"], weights=None, min_size=meta.get("min_size"),
                        max_size=meta.get("max_size"), anchor_sizes=meta.get("anchor_sizes"),
                        aspect_ratios=meta.get("aspect_ratios"), **extra)
    model.load_state_dict(state["model"])
    apply_prediction_settings(model, meta)  # it predicts as the run that saved it (box voting)
    return model.to(device or default_device()).eval(), meta


class Submission(dict):
    """What make_submission wrote (``csv``, ``coco_json``, ``boxes``, ``images``...) with a summary: boxes per
    image, scores, classes, and a hint when nothing passed the threshold. Shown as a table in a notebook."""

    def summary_lines(self) -> list[str]:
        per = self["boxes_per_image"]
        sliced = f"; each image predicted by {self['slices']}-px slices, merged" if self.get("slices") else ""
        lines = [f"{self['boxes']} boxes on {self['images']} images (score >= {self['score_threshold']:g}{sliced}); "
                 f"per image: min {min(per, default=0)}, median {_median(per):g}, max {max(per, default=0)}"]
        if self["scores"]:
            q = sorted(self["scores"])
            lines.append("scores: " + ", ".join(f"{name} {q[int(f * (len(q) - 1))]:.3f}"
                                                for name, f in (("min", 0), ("median", 0.5), ("max", 1))))
            top = sorted(self["classes"].items(), key=lambda kv: -kv[1])[:8]
            lines.append("classes: " + ", ".join(f"{name} x{n}" for name, n in top))
        if self["hint"]:
            lines.append(self["hint"])
        lines.append(f"written: {self['csv']} and {self['coco_json']} (labels {self['label_base']}.."
                     f"{self['label_base'] + max(self['num_classes'] - 1, 0)}; boxes in original image pixels)")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary_lines())

    def __repr__(self) -> str:  # the cell's plain-text output: the summary, not every score
        return "<Submission " + "\n ".join(self.summary_lines()) + ">"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td style='text-align:left'>{html.escape(line)}</td></tr>" for line in self.summary_lines())
        return f"<table class='nbdetect-submission'><tr><th>nbdetect submission</th></tr>{rows}</table>"


def _check_model_argument(model) -> None:
    """make_submission's ``model``: a detector, a run, a checkpoint path or a run folder."""
    from .arguments import detector_family

    if hasattr(model, "out_dir") and hasattr(model, "history"):
        return
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.exists():
            raise MissingError(f"no checkpoint or run folder at {path}", where="model",
                               fix="pass best.pt of a run (nbdetect.best_checkpoint() finds the latest), its run "
                                   "folder, or the model object")
        if path.is_dir() and not (path / "best.pt").is_file():
            raise MissingError(f"{path} is a folder without best.pt", where="model",
                               fix="pass a run folder that finished an epoch with validation, or a checkpoint path")
        return
    import torch

    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model is a {type(model).__name__}, not a torchvision detector, a run or a checkpoint path",
                         where="model", fix="pass the trained detector, the TrainingRun, or the path of its best.pt")
    if detector_family(model) is None:  # a detector of your own: it must answer a list of images with boxes
        was = model.training
        try:
            model.eval()
            with torch.no_grad():
                device = next(iter(model.parameters()), torch.zeros(())).device
                out = model([torch.zeros(3, 32, 32, device=device)])
            ok = isinstance(out, (list, tuple)) and len(out) == 1 and isinstance(out[0], dict) and "boxes" in out[0]
            reason = f"it returned a {type(out).__name__}" if not ok else ""
        except Exception as exc:  # noqa: BLE001  (any failure means it is not a detector)
            ok, reason = False, f"given a list of images it raised {type(exc).__name__}"
        finally:
            model.train(was)
        if not ok:
            raise InputError(f"model is a {type(model).__name__}, not a detector ({reason}; a detector returns one "
                             "dict of boxes, scores and labels per image)", where="model",
                             fix="pass the trained detector, the TrainingRun, or the path of its best.pt")


def _median(values) -> float:
    v = sorted(values)
    if not v:
        return 0.0
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


@public
def make_submission(model, images, out_dir="submission", *, score_threshold=0.3, class_names=None, device=None,
                    batch_size=4, label_base: int = 1, slices=None) -> Submission:
    """Predict on ``images`` (a folder, a list of paths or a Dataset) and write the files.

    ``model`` is a torchvision detector, a checkpoint path written by nbdetect, a run folder or a run (its
    ``best.pt``; :func:`nbdetect.best_checkpoint` finds the latest). A run still training is waited for first.
    Writes ``predictions.csv`` (one row per box: file_name, image_id, x1, y1, x2, y2, score, label,
    class_name; boxes in original image pixels) and ``predictions_coco.json`` (COCO results format,
    bbox as [x, y, w, h]; ``image_id`` is the row's image_id, mapped to file names in ``image_ids.csv``).
    ``label_base``: 1 writes labels 1..K (nbdetect's), 0 writes 0..K-1 (YOLO-style). The background slot of
    the model's head is never written. Returns a :class:`Submission` (a dict with a summary).
    ``slices``: None predicts as the model was trained (a run trained on tiles predicts each full frame by
    overlapping slices of its tile size, merged in frame pixels: nbdetect.slicing); False whole frames (a run
    trained on tiles sees them at their own resolution, the tiles' scale, not shrunk to the tile size); a tile
    size or dict (as ``tiles=``) slices of that size. At most 100 boxes per image are written (all COCO's
    evaluator scores), the highest first.
    """
    from . import arguments
    from .run_guard import wait_for_active

    v = arguments.check(dict(images=images, out_dir=out_dir, score_threshold=score_threshold, class_names=class_names,
                             device=device, batch_size=batch_size, label_base=label_base, slices=slices))
    score_threshold, class_names, device, batch_size, label_base, slicing = (
        v[k] for k in ("score_threshold", "class_names", "device", "batch_size", "label_base", "slices"))
    if batch_size is None:
        raise InputError("batch_size=None", where="batch_size", fix="pass a whole number >= 1, e.g. batch_size=4")
    if out_dir is None:
        raise InputError("out_dir=None", where="out_dir", fix="pass the folder to write the files to, e.g. "
                                                             "out_dir='submission'")
    if not isinstance(model, (str, Path)):
        _check_model_argument(model)
    wait_for_active("making the submission")  # Run All: the training cell above may still be running
    _check_model_argument(model)  # (a checkpoint path is checked once the run that writes it has ended)
    num_classes, native = None, False
    if hasattr(model, "out_dir") and hasattr(model, "history"):  # a TrainingRun: its best weights
        model = Path(model.out_dir) / "best.pt"
    if isinstance(model, (str, Path)) and Path(model).is_dir():  # a run folder
        model = Path(model) / "best.pt"
    if isinstance(model, (str, Path)):
        model, meta = load_model(model, device)
        class_names = class_names or meta.get("class_names")
        num_classes = meta.get("num_classes")
        native = slices is False and bool(meta.get("tiles"))  # whole frames at the tiles' scale: not resized
        if slices is None and meta.get("tiles"):  # a run trained on tiles predicts by slices of its tiles
            from .data.tiles import TileConfig

            slicing = TileConfig.from_summary(meta["tiles"])
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dataset = images if isinstance(images, Dataset) else ImageFolder(images)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=lambda b: tuple(zip(*b)))
    paths = getattr(dataset, "paths", None)
    names = [Path(p).name for p in paths] if paths is not None else [str(i) for i in range(len(dataset))]
    if slicing is not None:
        preds = predict_sliced(model, loader, device, slicing, score_threshold=score_threshold)
    else:
        with native_resolution(model) if native else contextlib.nullcontext():
            preds = [cap(p, MAX_DETS, max(score_threshold, SCORE_FLOOR)) for p in
                     predict(model, loader, device, score_threshold=score_threshold)]
    out = make_folder(out_dir)
    csv_path, json_path, ids_path = out / "predictions.csv", out / "predictions_coco.json", out / "image_ids.csv"
    results, per_image, scores, classes, top_label = [], [], [], {}, 0
    with open(csv_path, "w", newline="", encoding="utf-8") as fh, open(ids_path, "w", newline="", encoding="utf-8") as ids:
        w, id_writer = csv.writer(fh), csv.writer(ids)
        w.writerow(["file_name", "image_id", "x1", "y1", "x2", "y2", "score", "label", "class_name"])
        id_writer.writerow(["image_id", "file_name"])
        for index, p in enumerate(preds):
            image_id = p["image_id"] if isinstance(p["image_id"], int) else index
            id_writer.writerow([image_id, names[index]])
            n = 0
            for box, score, label in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()):
                if int(label) == 0:  # the background slot of a K + 1-output head is never a class
                    continue
                x1, y1, x2, y2 = (round(v, 2) for v in box)
                written = int(label) - 1 + label_base
                name = class_name(class_names, label)
                w.writerow([names[index], image_id, x1, y1, x2, y2, round(score, 4), written, name])
                results.append({"image_id": image_id, "category_id": written,
                                "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)], "score": round(score, 4)})
                n += 1
                top_label = max(top_label, int(label))
                scores.append(score)
                classes[name] = classes.get(name, 0) + 1
            per_image.append(n)
    json_path.write_text(json.dumps(results), encoding="utf-8")
    hint = ""
    if not results:
        best = _best_score(model, loader, device)
        hint = (f"No box scored at least {score_threshold:g} (the highest score was {best:.3f}): lower "
                "score_threshold (mAP tools use 0.001), or train longer; an untrained model scores everything low.")
    return Submission(csv=csv_path, coco_json=json_path, image_ids=ids_path, boxes=len(results), images=len(preds),
                      boxes_per_image=per_image, scores=scores, classes=classes, score_threshold=score_threshold,
                      label_base=label_base, num_classes=num_classes or len(class_names or []) or top_label,
                      hint=hint, slices=slicing.size if slicing is not None else None)


def _best_score(model, loader, device) -> float:
    """The highest non-background score on the images (for the hint when nothing passed the threshold)."""
    best = 0.0
    for p in predict(model, loader, device, score_threshold=0.0):
        keep = [s for s, lab in zip(p["scores"].tolist(), p["labels"].tolist()) if int(lab) != 0]
        best = max([best, *keep])
    return best
