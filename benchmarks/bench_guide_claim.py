"""The guide's claim, measured: the seed's MultiStepLR configuration, Alternative 1 and Alternative 2
trained for the same budget on the synthetic data with small presets.

Each recipe is compressed to ``--epochs`` keeping its milestones and decision point at the same
fraction of the run (seed: LR cut at 50% and 75%; decision at 40%). Reports per-epoch validation loss
and mAP@.5, the first epoch each reaches each ``--target-map50``, and what the verdict said at its decision
point; saves docs/guide_claim.png.

    python benchmarks/bench_guide_claim.py               # ~8 minutes on 2 CPU cores
    python benchmarks/bench_guide_claim.py --epochs 20 --train 400 --preset-scale full   # on a GPU
"""
from __future__ import annotations

import argparse
import math

from common import REPO, report

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--train", type=int, default=128)
    ap.add_argument("--val", type=int, default=48)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--target-map50", type=float, nargs="+", default=[0.1, 0.25])
    ap.add_argument("--preset-scale", choices=["tiny", "full"], default="tiny")
    args = ap.parse_args()

    from nbdetect.alternatives import run_recipe
    from nbdetect.data import synthetic_split
    from nbdetect.monitor.plots import comparison_png
    from nbdetect.recipes import ALTERNATIVE_1, ALTERNATIVE_2, SEED_MULTISTEP
    from nbdetect.verdict import decide

    train, val = synthetic_split(n_train=args.train, n_val=args.val, image_size=(args.size, args.size), seed=0)
    figures, curves = {}, {}
    for recipe in (SEED_MULTISTEP, ALTERNATIVE_1, ALTERNATIVE_2):
        preset = recipe.preset
        if args.preset_scale == "tiny":
            preset = "retinanet_tiny" if recipe.preset.startswith("retinanet") else "fasterrcnn_tiny"
        run = run_recipe(recipe, train, val, preset=preset, weights=None, epochs=args.epochs, monitor="text",
                         background=False, image_size=args.size, out_dir=f"/tmp/nbdetect-bench-claim/{recipe.name}")
        epochs = run.history.epochs
        curves[recipe.name] = epochs
        name = recipe.name
        figures[f"{name}_final_val_loss"] = epochs[-1]["val_loss"]
        figures[f"{name}_final_map50"] = epochs[-1]["map50"]
        figures[f"{name}_best_map50"] = max(e["map50"] for e in epochs)
        for target in args.target_map50:
            reached = next((e["epoch"] for e in epochs if e["map50"] >= target), math.nan)
            figures[f"{name}_epoch_reaching_map50_{target:g}"] = reached
        scaled = recipe.scaled(args.epochs)
        point = scaled.decision_epoch or args.epochs
        verdict = decide(epochs[:point], recipe.name, args.epochs)
        figures[f"{name}_verdict_at_epoch_{point}"] = verdict.headline
        figures[f"{name}_wall_s"] = sum(e["time_s"] for e in epochs)
        print(f"{name}: val_loss per epoch {[round(e['val_loss'], 3) for e in epochs]}")
        print(f"{name}: map50 per epoch {[round(e['map50'], 3) for e in epochs]}")
    out = REPO / "docs" / "guide_claim.png"
    out.write_bytes(comparison_png(curves))
    report("guide_claim", figures, {"args": vars(args), "curves": curves, "plot": str(out)})


if __name__ == "__main__":
    main()
