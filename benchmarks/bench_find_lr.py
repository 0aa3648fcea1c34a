"""Is find_lr's suggestion a good LR? Compared with the best of a small grid, on the demo data.

The sweep runs on Alternative 1's CPU-sized model (tiny RetinaNet, AdamW) on the embedded demo data; then the
recipe trains briefly at each LR of a grid and at the suggestion, and each run's best validation mAP@.5 (the
same pycocotools evaluator as training) says which LR was best. Target: the suggestion within 3x of the best
grid LR, and the sweep under 90 s on a 2-core CPU.

    python benchmarks/bench_find_lr.py [--epochs 6] [--grid 1e-4 3e-4 1e-3 3e-3]
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time

from common import report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--n-train", type=int, default=120)
    ap.add_argument("--grid", type=float, nargs="*", default=[1e-4, 3e-4, 1e-3, 3e-3])
    args = ap.parse_args()

    import torch

    import nbdetect

    torch.set_num_threads(1)
    data = {"n_train": args.n_train, "n_val": 40, "image_size": (256, 256)}
    train, val = nbdetect.synthetic_split(**data)
    t0 = time.perf_counter()
    found = nbdetect.find_lr(None, train, weights=None, image_size=256)
    sweep_s = time.perf_counter() - t0
    print(found.summary())
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lr in sorted(set(args.grid + ([found.lr] if found.lr else []))):
            run = nbdetect.alternative_1(train, val, epochs=args.epochs, lr=lr, weights=None, monitor=False,
                                         out_dir=f"{tmp}/lr_{lr:g}", image_size=256, threads=1)
            best = max((e.get("map50", 0.0) for e in run.history.epochs), default=0.0)
            scores[lr] = best
            print(f"lr {lr:.2g}: best mAP@.5 {best:.3f}")
    grid_best = max(args.grid, key=lambda lr: scores[lr])
    figures = {"sweep_s": sweep_s, "suggested_lr": found.lr or math.nan, "steepest_lr": found.suggestion.steepest or math.nan,
               "grid_best_lr": grid_best, "grid_best_map50": scores[grid_best],
               "suggested_map50": scores.get(found.lr, math.nan),
               "suggestion_over_best": (found.lr / grid_best) if found.lr else math.nan,
               "within_3x": bool(found.lr and 1 / 3 <= found.lr / grid_best <= 3)}
    report("bench_find_lr", figures, {"scores": {f"{k:g}": v for k, v in scores.items()}, "epochs": args.epochs})


if __name__ == "__main__":
    main()
