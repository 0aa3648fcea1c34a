"""Data pipeline on the real GTSDB images: epoch time with and without the decoded-image cache,
the data-wait fraction of the training step time from the second epoch on (target < 5%), and the
augmentation's cost per 320-px tile: torchvision's HSV hue shift and RandomIoUCrop loop against
nbdetect's chroma rotation and batched IoUCrop (nbdetect.data.augment), one thread.

    python benchmarks/bench_data.py                 # 150 images, tiny RetinaNet at 400x680, ~3 minutes
    python benchmarks/bench_data.py --images 600 --preset retinanet_resnet50_fpn   # on a GPU
"""
from __future__ import annotations

import argparse
import time

from common import GTSDB, report

import torch


def read_epoch(loader) -> float:
    t0 = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--preset", default="retinanet_tiny")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    if not (GTSDB / "gt.txt").exists():
        raise SystemExit(f"GTSDB not found at {GTSDB} (set NBDETECT_GTSDB)")

    from nbdetect.data import load_gtsdb
    from nbdetect.data.loader import make_loader
    from nbdetect.models import build_model
    from nbdetect.recipes import ALTERNATIVE_1
    from nbdetect.trainer import TrainingRun

    figures = {}
    # 1. decoding alone: one pass without cache, then two passes with it
    for cache in (False, True):
        ds = load_gtsdb(GTSDB, cache=cache).subset(range(args.images))
        loader = make_loader(ds, batch_size=args.batch, shuffle=True, seed=0)
        times = [read_epoch(loader) for _ in range(2)]
        tag = "cache" if cache else "nocache"
        figures[f"read_epoch1_{tag}_s"] = times[0]
        figures[f"read_epoch2_{tag}_s"] = times[1]
    figures["read_speedup_epoch2"] = figures["read_epoch2_nocache_s"] / figures["read_epoch2_cache_s"]

    # 2. training: data wait as a fraction of the epoch, per epoch, cache on and off
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for cache in (True, False):
        ds = load_gtsdb(GTSDB, cache=cache).subset(range(args.images))
        torch.manual_seed(0)
        model = build_model(args.preset, ds.num_classes, weights=None, min_size=400, max_size=680)
        loader = make_loader(ds, batch_size=args.batch, shuffle=True, seed=0)
        recipe = ALTERNATIVE_1.replace(preset=args.preset, epochs=args.epochs)
        run = TrainingRun(model, loader, None, recipe=recipe, device=device, out_dir="/tmp/nbdetect-bench-data",
                          tensorboard=False, checkpoint_every=0)
        run.run()
        tag = "cache" if cache else "nocache"
        for e in run.history.epochs:
            figures[f"train_epoch{e['epoch']}_{tag}_s"] = e["time_s"]
            figures[f"data_wait_frac_epoch{e['epoch']}_{tag}"] = e["data_wait_frac"]
        figures[f"train_images_per_s_{tag}"] = run.history.epochs[-1]["images_per_s"]
    figures.update(augment_costs(args.images))
    report("data", figures, {"args": vars(args)})


def augment_costs(frames: int) -> dict:
    """ms per tile of each augmentation step, applied to every tile (p=1), torchvision's and nbdetect's."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    from nbdetect.data import load_gtsdb
    from nbdetect.data.augment import _iou_crop_class, _photometric
    from nbdetect.data.tiles import TiledDataset, tile_config

    torch.set_num_threads(1)
    tiles = TiledDataset(load_gtsdb(GTSDB, superclasses=True).subset(range(frames)), tile_config(320))
    samples = []
    for i in range(len(tiles)):
        image, target = tiles[i]
        boxes = tv_tensors.BoundingBoxes(target["boxes"].reshape(-1, 4).float(), format="XYXY",
                                         canvas_size=tuple(image.shape[-2:]))
        samples.append((tv_tensors.Image(image), {"boxes": boxes, "labels": target["labels"]}))
    crop = dict(min_scale=0.4, sampler_options=[0.3, 0.5, 0.7, 0.9, 1.0], trials=20)
    steps = {"colour_torchvision_hsv": v2.ColorJitter(0.25, 0.25, 0.25, 0.03), "colour_nbdetect": _photometric(),
             "iou_crop_torchvision": v2.RandomIoUCrop(**crop), "iou_crop_nbdetect": _iou_crop_class()(**crop)}
    figures = {"augment_tiles": len(samples)}
    for name, step in steps.items():
        torch.manual_seed(0)
        t0 = time.process_time()
        for image, target in samples:
            step(image, target)
        figures[f"augment_{name}_ms_per_tile"] = 1000 * (time.process_time() - t0) / len(samples)
    return figures


if __name__ == "__main__":
    main()
