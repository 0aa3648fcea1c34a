"""nbdetect's recipes side by side with Ultralytics YOLOv8n on the same data, scored by one evaluator.

The data is exported to YOLO format once (nbdetect's embedded demo set by default: 240 train / 60 val images,
256 px, 6 classes; ``--gtsdb`` for ../shared/data/gtsdb split 480/120 and resized); every framework trains
from scratch for the same epochs at the same image size, each in its own process (wall time and peak RSS
measured per process), and its best checkpoint is scored on the validation images by the same pycocotools
COCOeval (score >= 0.001, labels 1..K). Ultralytics is optional: without it the YOLOv8n row is skipped.

    python benchmarks/bench_vs_yolo.py                 # demo data, 12 epochs
    python benchmarks/bench_vs_yolo.py --gtsdb --imgsz 640 --epochs 12
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


def _yaml(root: Path, names) -> Path:
    text = f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n" + "".join(
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


def export_gtsdb(root: Path, folder: Path, n_train=480, size=None) -> Path:
    """GTSDB's 600 images: the first ``n_train`` for training, the rest for validation (resized so the long
    side is ``size`` px when given, boxes scaled alike)."""
    from PIL import Image

    rows = {}
    for line in (folder / "gt.txt").read_text().splitlines():
        if line.strip():
            name, x1, y1, x2, y2, cls = line.split(";")
            rows.setdefault(Path(name).stem, []).append((float(x1), float(y1), float(x2), float(y2), int(cls) + 1))
    images = folder / "images" if (folder / "images").is_dir() else folder
    files = sorted(p.name for p in images.iterdir() if p.suffix.lower() in (".ppm", ".png", ".jpg"))

    def items(names):
        for name in names:
            image = Image.open(images / name).convert("RGB")
            f = (size / max(image.size)) if size else 1.0
            if f != 1.0:
                image = image.resize((round(image.width * f), round(image.height * f)))
            yield image, [(x1 * f, y1 * f, x2 * f, y2 * f, c) for x1, y1, x2, y2, c in rows.get(Path(name).stem, [])]

    names = [str(i) for i in range(43)]
    _write_split(root, "train", items(files[:n_train]), names)
    _write_split(root, "val", items(files[n_train:]), names)
    return _yaml(root, names)


# -- the common evaluator -----------------------------------------------------------------------------------
def val_truth(yaml: Path):
    """(image paths, targets with xyxy pixel boxes and labels 1..K) of the validation split."""
    import torch
    from PIL import Image

    root = yaml.parent
    paths = sorted((root / "images" / "val").glob("*.png"))
    targets, sizes = [], []
    for p in paths:
        w, h = Image.open(p).size
        boxes, labels = [], []
        for line in (root / "labels" / "val" / f"{p.stem}.txt").read_text().split("\n"):
            if line.strip():
                c, cx, cy, bw, bh = map(float, line.split())
                boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
                labels.append(int(c) + 1)
        targets.append({"boxes": torch.tensor(boxes).reshape(-1, 4), "labels": torch.tensor(labels, dtype=torch.int64)})
        sizes.append((h, w))
    return paths, targets, sizes


def score(predictions, yaml: Path) -> dict:
    from nbdetect.metrics import coco_map

    _, targets, sizes = val_truth(yaml)
    return coco_map(predictions, targets, sizes)


# -- one framework per process ------------------------------------------------------------------------------
def run_nbdetect(recipe: str, yaml: Path, epochs: int, imgsz: int, out: Path, options: dict) -> dict:
    import torch

    from nbdetect import make_submission, run_recipe
    from nbdetect.engine import predict
    from nbdetect.submission import ImageFolder, load_model

    from torch.utils.data import DataLoader

    run = run_recipe(recipe, str(yaml), None, preset=options.pop("preset", None), weights=None, epochs=epochs,
                     image_size=imgsz, monitor=False, background=False, out_dir=out, device="cpu",
                     eval_map_every=0, verify_data=False, **options)
    model, _ = load_model(run.out_dir / "best.pt", "cpu")
    paths, _, _ = val_truth(yaml)
    loader = DataLoader(ImageFolder(paths), batch_size=4, collate_fn=lambda b: tuple(zip(*b)))
    preds = predict(model, loader, torch.device("cpu"), score_threshold=0.001)
    del make_submission
    return {"epochs": run.epoch, "preset": run.recipe.preset, "lr": run.recipe.lr, **score(preds, yaml)}


def run_yolo(yaml: Path, epochs: int, imgsz: int, out: Path) -> dict:
    import torch
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")  # from scratch, as the nbdetect rows (no pretrained weights offline)
    model.train(data=str(yaml), epochs=epochs, imgsz=imgsz, batch=16, device="cpu", workers=0, project=str(out),
                name="yolo", exist_ok=True, plots=False, verbose=False, amp=False, seed=0)
    best = YOLO(str(out / "yolo" / "weights" / "best.pt"))
    paths, _, _ = val_truth(yaml)
    preds = []
    for p in paths:
        r = best.predict(str(p), imgsz=imgsz, conf=0.001, device="cpu", verbose=False, max_det=300)[0]
        preds.append({"boxes": r.boxes.xyxy.cpu(), "scores": r.boxes.conf.cpu(),
                      "labels": r.boxes.cls.cpu().to(torch.int64) + 1})
    return {"epochs": epochs, **score(preds, yaml)}


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    options = json.loads(args.options or "{}")
    t0 = time.perf_counter()
    if args.one == "yolov8n":
        result = run_yolo(Path(args.data), args.epochs, args.imgsz, out)
    else:
        result = run_nbdetect(args.one, Path(args.data), args.epochs, args.imgsz, out, options)
    result["train_and_eval_s"] = time.perf_counter() - t0
    print("RESULT " + json.dumps(result, default=float))


def launch(name: str, data: Path, args, out: Path, options: dict | None = None) -> dict | None:
    cmd = [sys.executable, str(HERE), "--one", name, "--data", str(data), "--epochs", str(args.epochs),
           "--imgsz", str(args.imgsz), "--out", str(out), "--threads", str(args.threads),
           "--options", json.dumps(options or {})]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    found = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
    if status != 0 or not found:
        print(f"{name} failed:\n" + "".join(lines[-30:]))
        return None
    n_train = len(list((data.parent / "images" / "train").glob("*.png")))
    result = found[-1]
    result.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, images_per_s=n_train * args.epochs / wall)
    return result


ABLATIONS = {  # each change of the recipe turned off on its own (what it bought), and the LR finder's choice
    "no augmentation": {"augment": False},
    "no EMA": {"ema": False},
    "no data anchors": {"data_anchors": False},
    "IoU 0.5-0.4 matching": {"match_iou": False},  # torchvision's thresholds
    "no augmentation, no EMA": {"augment": False, "ema": False},
    "lr auto": {"lr": "auto"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--gtsdb", action="store_true", help="GTSDB (../shared/data/gtsdb) instead of the demo data")
    ap.add_argument("--only", nargs="*", help="rows to run: alternative_1 alternative_2 yolov8n (none given: only "
                                              "the --ablation rows)")
    ap.add_argument("--ablation", nargs="*", help="also Alternative 1 with each change off (names of ABLATIONS; "
                                                  "none given: all)")
    ap.add_argument("--work", default="/tmp/nbdetect_vs_yolo", help="where data and runs go")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--options", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return child(args)

    work = Path(args.work) / ("gtsdb" if args.gtsdb else "demo")
    data_root = work / f"data_{args.imgsz}"
    yaml = data_root / "data.yaml"
    if not yaml.exists():
        if args.gtsdb:
            if not (GTSDB / "gt.txt").exists():
                sys.exit(f"no GTSDB at {GTSDB}")
            export_gtsdb(data_root, GTSDB, size=args.imgsz)
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
    results = {}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name, options in runs:
        recipe = name.split(" (")[0]
        out = work / "runs" / stamp / name.replace(" ", "_").replace("(", "").replace(")", "")
        print(f"=== {name}", flush=True)
        results[name] = launch(recipe, yaml, args, out, options)
    print(f"\n{'recipe':<36} {'wall s':>7} {'img/s':>6} {'mAP@.5':>7} {'mAP@.5:.95':>10} {'peak RSS MB':>11}")
    figures = {}
    for name, r in results.items():
        if r is None:
            print(f"{name:<36} failed")
            continue
        print(f"{name:<36} {r['wall_s']:7.0f} {r['images_per_s']:6.1f} {r['map50']:7.3f} {r['map']:10.3f} "
              f"{r['peak_rss_mb']:11.0f}")
        key = name.replace(" ", "_").replace("(", "").replace(")", "")
        figures.update({f"{key}_map50": r["map50"], f"{key}_map": r["map"], f"{key}_wall_s": r["wall_s"]})
    name = "bench_vs_yolo" + ("_gtsdb" if args.gtsdb else "") + ("" if rows else "_ablation")
    report(name, figures,
           {"epochs": args.epochs, "imgsz": args.imgsz, "threads": args.threads, "rows": results,
            "repo": str(REPO)})


if __name__ == "__main__":
    main()
