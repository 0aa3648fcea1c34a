"""nbdetect's recipes side by side with Ultralytics YOLOv8n on the same data, scored by one evaluator.

The data is exported to YOLO format once, and every framework trains on those same images from scratch for
the same epochs at the same image size, each in its own process (wall time, the training's CPU time and peak
RSS measured per process); its best checkpoint is scored by the same pycocotools COCOeval (at most 100 boxes
per image, score >= 0.001, labels 1..K, AP@.5 per class too). Ultralytics is optional: without it the YOLOv8n
row is skipped.

* demo (default): nbdetect's embedded synthetic set, 240 train / 60 val images, 256 px, 6 classes; scored on val.
* ``--gtsdb``: ../shared/data/gtsdb frames split by number into train / val / test (disjoint; default 0-359,
  360-479, 480-599), each split cut into tiles at native resolution by nbdetect's own tile plan (``--tile``
  px, ``--overlap``, ``--background`` share, seed 0), GTSDB's 4 super-classes (``--classes 43``: all).
  Checkpoints are chosen on the val tiles; every row is scored on the test tiles, and on the test frames
  whole, predicted by slices of the tile size and merged into frame pixels (nbdetect.slicing), the
  same slicing for every row.

    python benchmarks/bench_vs_yolo.py                 # demo data, 12 epochs
    python benchmarks/bench_vs_yolo.py --gtsdb --only alternative_1 yolov8n --epochs 6 12
    python benchmarks/bench_vs_yolo.py --only alternative_1 --ablation   # Alternative 1 with each change off
    python benchmarks/bench_vs_yolo.py --only alternative_1 --ablation "lr auto"
    python benchmarks/bench_vs_yolo.py --only --ablation      # the ablation rows alone (bench_vs_yolo_ablation.json)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import GTSDB, REPO, report

HERE = Path(__file__).resolve()


# -- data ---------------------------------------------------------------------------------------------------
def _write_split(root: Path, split: str, items, names) -> None:
    """items: (PIL image, [(x1, y1, x2, y2, label 1..K)]) -> images/<split>, labels/<split> in YOLO format."""
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for i, (image, boxes) in enumerate(items):
        w, h = image.size
        image.save(root / "images" / split / f"{i:05d}.png")
        lines = [f"{label - 1} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
                 for x1, y1, x2, y2, label in boxes]
        (root / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))


def _yaml(root: Path, names, test: bool = False) -> Path:
    text = (f"path: {root}\ntrain: images/train\nval: images/val\n" + ("test: images/test\n" if test else "")
            + "names:\n") + "".join(
        f"  {i}: {json.dumps(str(n))}\n" for i, n in enumerate(names))
    (root / "data.yaml").write_text(text)
    return root / "data.yaml"


def export_demo(root: Path, n_train=240, n_val=60, size=256) -> Path:
    from torchvision.transforms.functional import to_pil_image

    import nbdetect

    train, val = nbdetect.synthetic_split(n_train=n_train, n_val=n_val, image_size=(size, size), seed=0)

    def items(ds):
        for i in range(len(ds)):
            img, t = ds[i]
            yield to_pil_image(img), [(*b, int(c)) for b, c in zip(t["boxes"].tolist(), t["labels"].tolist())]

    _write_split(root, "train", items(train), train.class_names)
    _write_split(root, "val", items(val), train.class_names)
    return _yaml(root, train.class_names)


def parse_frames(text: str) -> range:
    """``"0:360"`` -> range(0, 360): GTSDB frames by number (00000.ppm is frame 0)."""
    a, b = text.split(":")
    return range(int(a), int(b))


def export_gtsdb(root: Path, folder: Path, tile: dict, classes: int, splits: dict) -> Path:
    """GTSDB frames cut into tiles at native resolution by nbdetect's own plan (nbdetect.data.tiles: seeded, a
    box kept when mostly inside, a share of background tiles), one YOLO split per frame range: both frameworks
    train on the same tile images. ``splits``: {"train": range, "val": range, "test": range}, disjoint.
    ``classes`` 4: GTSDB's super-classes; 43: its classes. frames.json records the split and the tiles."""
    from torchvision.transforms.functional import to_pil_image

    from nbdetect.data import load_gtsdb
    from nbdetect.data.tiles import TiledDataset, tile_config

    frames = load_gtsdb(folder, superclasses=classes == 4)
    ranges = list(splits.values())
    if any(set(a) & set(b) for i, a in enumerate(ranges) for b in ranges[i + 1:]):
        sys.exit(f"the frame ranges overlap: {splits}")
    cfg = tile_config(tile)
    summary = {"tile": cfg.to_dict(), "classes": frames.class_names}
    for split, frame_range in splits.items():
        tiles = TiledDataset(frames.subset(frame_range), cfg)

        def items(tiles=tiles):
            for i in range(len(tiles)):
                img, t = tiles[i]
                yield to_pil_image(img), [(*b, int(c)) for b, c in zip(t["boxes"].tolist(), t["labels"].tolist())]

        _write_split(root, split, items(), frames.class_names)
        summary[split] = {**tiles.summary(), "frame_range": [frame_range.start, frame_range.stop]}
    (root / "frames.json").write_text(json.dumps(summary, indent=1))
    return _yaml(root, frames.class_names, test="test" in splits)


# -- the common evaluator -----------------------------------------------------------------------------------
def scored_split(yaml: Path) -> str:
    """The split every row is scored on: ``test`` when the export has one (GTSDB: frames no row trained or
    chose its checkpoint on), else ``val``."""
    return "test" if (yaml.parent / "images" / "test").is_dir() else "val"


def split_truth(yaml: Path, split: str):
    """(image paths, targets with xyxy pixel boxes and labels 1..K, (h, w) sizes) of one exported split."""
    import torch
    from PIL import Image

    root = yaml.parent
    paths = sorted((root / "images" / split).glob("*.png"))
    targets, sizes = [], []
    for p in paths:
        w, h = Image.open(p).size
        boxes, labels = [], []
        for line in (root / "labels" / split / f"{p.stem}.txt").read_text().split("\n"):
            if line.strip():
                c, cx, cy, bw, bh = map(float, line.split())
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
                labels.append(int(c) + 1)
        targets.append({"boxes": torch.tensor(boxes).reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.int64)})
        sizes.append((h, w))
    return paths, targets, sizes


def read_image(path: Path):
    """An exported image as every row is shown it: [3, H, W] float RGB in 0..1."""
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    return pil_to_tensor(Image.open(path).convert("RGB")).float() / 255


def slug(label: str) -> str:
    """A row's label ("alternative_1 (no EMA) @12") as a folder and figure name."""
    return label.replace(" ", "_").replace("(", "").replace(")", "").replace("@", "e")


def named(preds, targets, score: float = 0.3, iou: float = 0.5) -> dict:
    """Of the true boxes a prediction scoring >= ``score`` overlaps at IoU >= ``iou`` (found), how many that
    best-overlapping prediction names with another class (``found_named_wrong``)."""
    from torchvision.ops import box_iou

    found = wrong = 0
    for pred, target in zip(preds, targets):
        keep = pred["scores"] >= score
        boxes, labels = pred["boxes"][keep].float(), pred["labels"][keep]
        if not len(boxes) or not len(target["boxes"]):
            continue
        overlap = box_iou(target["boxes"].float(), boxes)
        best, which = overlap.max(dim=1)
        hit = best >= iou
        found += int(hit.sum())
        wrong += int((labels[which[hit]] != target["labels"][hit]).sum())
    return {"found": found, "found_named_wrong": wrong}


def evaluate(predict_images, yaml: Path, frames: bool = True) -> dict:
    """One evaluator for every row. ``predict_images(list of [3, H, W] float images in 0..1)`` -> detections in
    those images' pixels (labels 1..K). Scores the exported split (pycocotools COCOeval, at most 100 boxes per
    image at score >= 0.001) and, for a GTSDB export, its full frames predicted by slices with the tiles'
    size and overlap and merged (nbdetect.slicing), boxes in the frames' own pixels (``frames=False``: not)."""
    import torch

    from nbdetect.metrics import coco_map
    from nbdetect.slicing import cap, merge_slices, slice_image

    split = scored_split(yaml)
    paths, targets, sizes = split_truth(yaml, split)
    preds = []
    for k in range(0, len(paths), 8):
        preds += [cap(d) for d in predict_images([read_image(p) for p in paths[k:k + 8]])]
    result = {"scored_on": f"{split} ({len(paths)} images)", **coco_map(preds, targets, sizes, per_class=True)}
    # finding the signs vs naming them: mAP@.5 with every label the same, and how often a found sign is named wrong
    one = [{**d, "labels": torch.ones_like(d["labels"])} for d in preds]
    result["map50_class_agnostic"] = coco_map(one, [{**t, "labels": torch.ones_like(t["labels"])} for t in targets],
                                              sizes)["map50"]
    result.update(named(preds, targets))
    info = yaml.parent / "frames.json"
    if frames and split == "test" and info.exists():
        from nbdetect.data import load_gtsdb
        from nbdetect.data.tiles import TileConfig

        meta = json.loads(info.read_text())
        cfg = TileConfig(**meta["tile"])
        frames = load_gtsdb(GTSDB, superclasses=len(meta["classes"]) == 4).subset(range(*meta["test"]["frame_range"]))
        merged, truth, frame_sizes = [], [], []
        for i in range(len(frames)):
            image, target = frames[i]
            slices, wins = slice_image(image, cfg)
            merged.append(merge_slices(predict_images(slices), wins))
            truth.append(target)
            frame_sizes.append(tuple(image.shape[-2:]))
        full = coco_map(merged, truth, frame_sizes, per_class=True)
        result.update({f"full_frame_sliced_{k}": v for k, v in full.items()})
    return result


# -- one framework per process ------------------------------------------------------------------------------
def train_nbdetect(recipe: str, yaml: Path, epochs: int, imgsz: int, out: Path, options: dict):
    """(result, predict_images) of ``recipe`` trained from scratch on the export."""
    import torch

    from nbdetect import families, run_recipe
    from nbdetect.engine import predict
    from nbdetect.submission import load_model

    families.RETINANET_TINY_SHAPE.update(options.pop("tiny_shape", {}))  # an ablation row's retinanet_tiny
    run = run_recipe(recipe, str(yaml), None, preset=options.pop("preset", None), weights=None, epochs=epochs,
                     image_size=imgsz, monitor=False, background=False, out_dir=out, device="cpu",
                     eval_map_every=0, verify_data=False, **options)
    model, _ = load_model(run.out_dir / "best.pt", "cpu")

    def predict_images(images):
        return predict(model, [(images, [{}] * len(images))], torch.device("cpu"), score_threshold=0.001)

    return {"epochs": run.epoch, "preset": run.recipe.preset, "lr": run.recipe.lr}, predict_images


def train_yolo(yaml: Path, epochs: int, imgsz: int, out: Path, seed: int = 0):
    """(result, predict_images) of Ultralytics YOLOv8n trained from scratch on the export (its own defaults:
    SGD/auto optimizer, mosaic, best.pt chosen by its validation fitness)."""
    import torch
    from torchvision.transforms.functional import to_pil_image
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")  # from scratch, as the nbdetect rows (no pretrained weights offline)
    model.train(data=str(yaml), epochs=epochs, imgsz=imgsz, batch=16, device="cpu", workers=0, project=str(out),
                name="yolo", exist_ok=True, plots=False, verbose=False, amp=False, seed=seed)
    best = YOLO(str(out / "yolo" / "weights" / "best.pt"))

    def predict_images(images):
        results = best.predict([to_pil_image(im) for im in images], imgsz=imgsz, conf=0.001, device="cpu",
                               verbose=False, max_det=300)
        return [{"boxes": r.boxes.xyxy.cpu(), "scores": r.boxes.conf.cpu(),
                 "labels": r.boxes.cls.cpu().to(torch.int64) + 1} for r in results]

    return {"epochs": epochs}, predict_images


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    options = json.loads(args.options or "{}")
    yaml = Path(args.data)
    t0, c0 = time.perf_counter(), time.process_time()
    if args.one == "yolov8n":
        result, predict_images = train_yolo(yaml, args.epochs, args.imgsz, out, seed=args.seed)
    else:
        result, predict_images = train_nbdetect(args.one, yaml, args.epochs, args.imgsz, out,
                                                {"seed": args.seed, **options})
    result.update(train_s=time.perf_counter() - t0, train_cpu_s=time.process_time() - c0)
    print("TRAINED " + json.dumps(result, default=float), flush=True)  # kept in the log if the scoring fails
    t1 = time.perf_counter()
    result.update(evaluate(predict_images, yaml, frames=not args.tiles_only), eval_s=time.perf_counter() - t1)
    print("RESULT " + json.dumps(result, default=float))


def launch(name: str, data: Path, epochs: int, args, out: Path, options: dict | None = None) -> dict | None:
    cmd = [sys.executable, str(HERE), "--one", name, "--data", str(data), "--epochs", str(epochs),
           "--imgsz", str(args.imgsz), "--out", str(out), "--threads", str(args.threads), "--seed", str(args.seed),
           "--options", json.dumps(options or {})] + (["--tiles-only"] if args.tiles_only else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    found = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
    if status != 0 or not found:
        trained = [line for line in lines if line.startswith("TRAINED ")]
        print(f"{name} failed:\n" + "".join(lines[-30:]) + "".join(trained))  # its training figures, if it got there
        return None
    n_train = len(list((data.parent / "images" / "train").glob("*.png")))
    result = found[-1]
    result.update(wall_s=wall, cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_mb=usage.ru_maxrss / 1024,
                  images_per_s=n_train * epochs / result["train_s"])
    print(f"{name} @{epochs}: " + json.dumps(result, default=float), flush=True)  # each row as it ends
    return result


ABLATIONS = {  # each change of the recipe turned off on its own (what it bought), and the LR finder's choice
    "no augmentation": {"augment": False},
    "no EMA": {"ema": False},
    "no data anchors": {"data_anchors": False},
    "IoU 0.5-0.4 matching": {"match_iou": False},  # torchvision's thresholds
    "IoU 0.4-0.3 matching": {"match_iou": (0.4, 0.3)},  # the recipe's before: fewer positive anchors
    "no augmentation, no EMA": {"augment": False, "ema": False},
    "lr auto": {"lr": "auto"},
    "lr 2.5e-4": {"lr": 2.5e-4},  # half the recipe's: tried on GTSDB tiles, where some seeds start slowly at 5e-4
    "no naming loss": {"naming_loss": False},
    "GIoU box loss": {"box_loss": "giou"},  # a change tried on, not the recipe's
    "box loss x2": {"box_weight": 2.0},  # tried on, not the recipe's
    "box loss x4": {"box_weight": 4.0},
    "horizontal flip": {"augment": {"flip": True}},  # tried, not kept (label-safe for the 4 super-classes only)
    "IoU-aware scores": {"iou_scores": True},  # tried on, not kept: the quality focal loss
    "no box voting": {"box_voting": False},  # predictions by the model's plain NMS
    "warmup 3 epochs": {"warmup_epochs": 3.0},  # YOLOv8's warmup length, tried on GTSDB's slow-starting seeds
    "warmup 1.5 epochs": {"warmup_epochs": 1.5},  # a quarter of a 6-epoch run
    "lr 1e-3, warmup 3 epochs": {"lr": 1e-3, "warmup_epochs": 3.0},  # the longer warm-up's calm start, a higher peak
    "lr 1e-3, warmup 1.5 epochs": {"lr": 1e-3, "warmup_epochs": 1.5},  # the same at 6 epochs (a quarter of the run)
    "weight decay 0.05": {"weight_decay": 0.05},  # AdamW's usual decay, against the late over-fitting on GTSDB tiles
    "4-conv head, first backbone": {"tiny_shape": {"head_convs": 4, "widths": [16, 32, 64, 96, 128], "residual": []}},
    "3x3 output convolutions": {"tiny_shape": {"output_kernel": 3}},  # torchvision's, the recipe's before 12-04 evening
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, nargs="+", default=[12], help="one run per row for each budget")
    ap.add_argument("--imgsz", type=int, default=None, help="input size (demo: 256; GTSDB: the tile size)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--seed", type=int, default=0, help="every row's seed (model init, data order, draws): "
                                                        "run seeds apart to see the spread of one recipe")
    ap.add_argument("--gtsdb", action="store_true", help="GTSDB tiles (../shared/data/gtsdb) instead of the demo data")
    ap.add_argument("--tile", type=int, default=320, help="GTSDB: tile side in px, cut at native resolution")
    ap.add_argument("--overlap", type=float, default=0.25, help="GTSDB: tile overlap (training grid and slices)")
    ap.add_argument("--background", type=float, default=0.2, help="GTSDB: share of background tiles")
    ap.add_argument("--classes", type=int, default=4, choices=(4, 43), help="GTSDB: super-classes or all 43")
    ap.add_argument("--train-frames", default="0:360", help="GTSDB frames a:b to train on")
    ap.add_argument("--val-frames", default="360:480", help="GTSDB frames a:b for the checkpoint choice")
    ap.add_argument("--test-frames", default="480:600", help="GTSDB frames a:b scored (tiles and full frames)")
    ap.add_argument("--only", nargs="*", help="rows to run: alternative_1 alternative_2 yolov8n (default: all "
                                              "three; --only with no name: only the --ablation rows)")
    ap.add_argument("--ablation", nargs="*", help="also Alternative 1 with each change off (names of ABLATIONS; "
                                                  "none given: all)")
    ap.add_argument("--tiles-only", action="store_true", help="GTSDB: score the test tiles only, not the "
                                                               "frames by slices (quicker, for an ablation)")
    ap.add_argument("--work", default="/tmp/nbdetect_vs_yolo", help="where data and runs go")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--options", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.imgsz is None:
        args.imgsz = args.tile if args.gtsdb else 256
    if args.one:
        args.epochs = args.epochs[0]
        return child(args)

    if args.gtsdb:
        splits = {"train": parse_frames(args.train_frames), "val": parse_frames(args.val_frames),
                  "test": parse_frames(args.test_frames)}
        tile = {"size": args.tile, "overlap": args.overlap, "background": args.background, "seed": 0}
        key = (f"tiles{args.tile}_o{args.overlap:g}_b{args.background:g}_c{args.classes}_"
               + "_".join(f"{r.start}-{r.stop}" for r in splits.values()))
        data_root = Path(args.work) / "gtsdb" / key
    else:
        data_root = Path(args.work) / "demo" / f"data_{args.imgsz}"
    yaml = data_root / "data.yaml"
    if not yaml.exists():
        if args.gtsdb:
            if not (GTSDB / "gt.txt").exists():
                sys.exit(f"no GTSDB at {GTSDB}")
            export_gtsdb(data_root, GTSDB, tile, args.classes, splits)
        else:
            export_demo(data_root, size=args.imgsz)
    rows = args.only if args.only is not None else ["alternative_1", "alternative_2", "yolov8n"]
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        if "yolov8n" in rows:
            print("ultralytics is not installed: the YOLOv8n row is skipped (pip install ultralytics)")
            rows = [r for r in rows if r != "yolov8n"]
    runs = [(r, {}) for r in rows]
    if args.ablation is not None:
        runs += [(f"alternative_1 ({name})", opts) for name, opts in ABLATIONS.items()
                 if not args.ablation or name in args.ablation]
    if not runs:
        return print(f"exported to {data_root}; no row to run")
    results = {}
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"  # two benches started in one second stay apart
    for epochs in args.epochs:
        for name, options in runs:
            recipe = name.split(" (")[0]
            label = f"{name} @{epochs}"
            out = data_root.parent.parent / "runs" / stamp / slug(label)
            print(f"=== {label}", flush=True)
            results[label] = launch(recipe, yaml, epochs, args, out, dict(options))
    if args.gtsdb:
        print(json.dumps(json.loads((data_root / "frames.json").read_text()), indent=None))
    full = args.gtsdb and not args.tiles_only
    print(f"\n{'recipe @ epochs':<40} {'wall s':>7} {'CPU s':>7} {'img/s':>6} {'mAP@.5':>7} {'mAP@.5:.95':>10}"
          + (f" {'frames .5':>9} {'frames .5:.95':>13}" if full else "") + f" {'peak RSS MB':>11}  AP50 per class "
          "(mAP@.5 with one class for all; found signs named wrong)")
    figures = {}
    for name, r in results.items():
        if r is None:
            print(f"{name:<40} failed")
            continue
        per_class = " ".join(f"{v:.2f}" for _, v in sorted(r["map50_per_class"].items(), key=lambda kv: int(kv[0])))
        print(f"{name:<40} {r['wall_s']:7.0f} {r['train_cpu_s']:7.0f} {r['images_per_s']:6.1f} {r['map50']:7.3f} "
              f"{r['map']:10.3f}" + (f" {r['full_frame_sliced_map50']:9.3f} {r['full_frame_sliced_map']:13.3f}"
                                      if full else "") + f" {r['peak_rss_mb']:11.0f}  {per_class}  (any class: {r['map50_class_agnostic']:.3f}; "
              f"named wrong {r['found_named_wrong']} of {r['found']} found)")
        key = slug(name)
        figures.update({f"{key}_map50": r["map50"], f"{key}_map": r["map"], f"{key}_wall_s": r["wall_s"],
                        f"{key}_train_cpu_s": r["train_cpu_s"]})
        if full:
            figures.update({f"{key}_frames_map50": r["full_frame_sliced_map50"],
                            f"{key}_frames_map": r["full_frame_sliced_map"]})
    print(f"(CPU s: the training's process time, all threads; mAP on the {scored_split(yaml)} "
          + ("tiles; frames: the unseen full frames predicted by slices and merged)" if full else "images)"))
    name = ("bench_vs_yolo" + ("_gtsdb" if args.gtsdb else "") + ("" if rows else "_ablation")
            + ("_" + "_".join(rows) if args.only else "") + (f"_seed{args.seed}" if args.seed else ""))
    # rows run apart (in parallel) keep their own file
    report(name, figures,
           {"epochs": args.epochs, "imgsz": args.imgsz, "threads": args.threads, "seed": args.seed, "rows": results,
            "data": str(data_root), "repo": str(REPO)})


if __name__ == "__main__":
    main()
