"""Tiles vs whole frames on GTSDB: full-frame mAP of a model trained on tiles, predicted by slices or not.

A short CPU training of alternative_1 (retinanet_tiny, from scratch, weights=None) on 256-px tiles cut from
GTSDB frames 0..N-1 (``--train``, at most 480; ``--classes 4``: the four super-classes, default, since 43 classes
learn nothing from scratch in minutes on a CPU; ``--classes 1``: "sign" vs background; ``--classes 43``), then its
last weights scored on frames from 480 on that it never saw (``--val``, up to 120), by one evaluator
(nbdetect.metrics.coco_map, the frames' own pixels):

* ``sliced``: each frame predicted by 256-px slices with the training overlap, merged (nbdetect.slicing);
* ``full_native``: the whole frame at once at native resolution (the model's resize set to 800/1360);
* ``full_resized``: the whole frame resized to the model's 256-px input (the tile-trained model as it is).

Boxes per image are counted after the cap (at most 100, score >= 0.001).

    python benchmarks/bench_tiles.py                    # ~12 min on 2 idle CPU cores (3x on a shared one)
    python benchmarks/bench_tiles.py --train 480 --val 120 --epochs 4 --classes 4
"""
from __future__ import annotations

import argparse
import sys
import time

from common import GTSDB, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train", type=int, default=160, help="frames 0..N-1 train (tiled; at most 480)")
    ap.add_argument("--val", type=int, default=30, help="frames 480..480+N-1 are scored (up to 120)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--classes", type=int, default=4, choices=(1, 4, 43))
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", default="/tmp/nbdetect_bench_tiles")
    ap.add_argument("--checkpoint", help="score this checkpoint of an earlier run (no training)")
    args = ap.parse_args(argv)
    if not (GTSDB / "gt.txt").exists():
        print(f"no GTSDB at {GTSDB}: skipped")
        return 0
    import torch

    import nbdetect
    from nbdetect.data import load_gtsdb
    from nbdetect.data.tiles import tile_config

    torch.set_num_threads(max(1, torch.get_num_threads()))
    frames = load_gtsdb(GTSDB, superclasses=args.classes == 4)
    if args.classes == 1:  # one class: where the signs are (what slicing changes), not which sign
        from nbdetect.data.base import DetectionDataset

        for r in frames.records:
            r.labels = torch.ones_like(r.labels)
        frames = DetectionDataset(frames.records, ["sign"])
    train = frames.subset(range(0, min(args.train, 480)))
    held = frames.subset(range(480, 480 + min(args.val, 120)))
    cfg = tile_config({"size": args.size, "background": 0.1, "seed": 0})
    t0 = time.perf_counter()
    if args.checkpoint:
        return score(args, args.checkpoint, held, None)
    run = nbdetect.alternative_1(train, None, epochs=args.epochs, preset="retinanet_tiny", weights=None,
                                 device="cpu", monitor="text", threads=2, tiles=cfg.to_dict(), lr=args.lr, out_dir=args.out,
                                 exist_ok=True, eval_map_every=0, verify_data=False)
    train_s = time.perf_counter() - t0
    run.save("best.pt")  # no validation split: the last weights are the ones scored
    return score(args, run.out_dir / "best.pt", held, train_s)


def score(args, checkpoint, held, train_s) -> int:
    """The checkpoint's full-frame mAP on ``held``, predicted by slices, whole at native size, whole resized."""
    import statistics

    from nbdetect.data.loader import make_loader
    from nbdetect.data.tiles import TileConfig
    from nbdetect.engine import predict
    from nbdetect.metrics import coco_map
    from nbdetect.slicing import cap, predict_sliced
    from nbdetect.submission import load_model

    model, meta = load_model(checkpoint, "cpu")
    saved = meta["tiles"]
    cfg = TileConfig.from_summary(saved)
    targets = [held.target(i) for i in range(len(held))]
    sizes = [held.image_size(i) for i in range(len(held))]
    loader = make_loader(held, batch_size=2, shuffle=False)
    figures = {"epochs": args.epochs if train_s else None, "train_frames": saved["frames"], "tiles": saved["tiles"], "background_tiles": saved["background_tiles"],
               "train_seconds": round(train_s, 1) if train_s else None, "val_frames": len(held),
               "classes": meta["num_classes"]}
    modes = {}
    t = time.perf_counter()
    modes["sliced"] = predict_sliced(model, loader, "cpu", cfg)
    modes["sliced_s"] = time.perf_counter() - t
    model.transform.min_size, model.transform.max_size = (800,), 1360
    t = time.perf_counter()
    modes["full_native"] = [cap(p) for p in predict(model, loader, "cpu")]
    modes["full_native_s"] = time.perf_counter() - t
    model.transform.min_size, model.transform.max_size = (cfg.size,), cfg.size
    t = time.perf_counter()
    modes["full_resized"] = [cap(p) for p in predict(model, loader, "cpu")]
    modes["full_resized_s"] = time.perf_counter() - t
    for name in ("sliced", "full_native", "full_resized"):
        m = coco_map(modes[name], targets, sizes)
        per = [len(p["boxes"]) for p in modes[name]]
        figures.update({f"{name}_map": round(m["map"], 4), f"{name}_map50": round(m["map50"], 4),
                        f"{name}_boxes_per_image_median": statistics.median(per),
                        f"{name}_boxes_per_image_max": max(per),
                        f"{name}_seconds_per_image": round(modes[f"{name}_s"] / len(held), 3)})
    report("bench_tiles", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
