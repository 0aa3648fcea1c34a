"""Command line: ``python -m nbdetect demo|train|submit|...``."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from .errors import NbdetectError
from .recipes import FIRST, RECIPES


def _weights(value: str):
    return None if value.lower() == "none" else ("DEFAULT" if value.lower() == "default" else value)


def _add_train_args(p: argparse.ArgumentParser, recipe_default: str) -> None:
    p.add_argument("--recipe", default=recipe_default,
                   choices=[name for name, r in RECIPES.items() if r.optimizer != "keep"], help="training recipe")
    p.add_argument("--data", help="training data: YOLO data.yaml/folder, VOC folder, GTSDB folder (default: synthetic)")
    p.add_argument("--val", help="validation data (default: the data.yaml's val split, or synthetic)")
    p.add_argument("--num-classes", type=int, help="number of real classes K (labels 1..K)")
    p.add_argument("--label-base", type=int, default=1, choices=[0, 1], help="first class label in your data")
    p.add_argument("--preset", help="model preset (default: the recipe's; tiny model for synthetic data on CPU)")
    p.add_argument("--weights", default="default", help="'default' (pretrained, offline fallback), 'none', or a file")
    p.add_argument("--epochs", type=int, help="epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    p.add_argument("--out", help="output folder (default: nbdetect_runs/<recipe>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--threads", type=int, help="torch CPU threads (default on CPU: usable cores - 1, at least 1)")
    p.add_argument("--devices", type=int, default=1,
                   help="training processes from this one command: one per GPU, or N CPU processes (under torchrun: "
                        "its --nproc_per_node)")
    p.add_argument("--sync-bn", action="store_true", help="BatchNorm statistics over the whole batch (GPUs)")
    p.add_argument("--train-images", type=int, help="synthetic data: number of training images")
    p.add_argument("--val-images", type=int, help="synthetic data: number of validation images")


def _train(args) -> int:
    from .alternatives import run_recipe

    synthetic = {}
    if args.train_images:
        synthetic["n_train"] = args.train_images
    if args.val_images:
        synthetic["n_val"] = args.val_images
    t0 = time.perf_counter()
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports and writes
    run = run_recipe(args.recipe, args.data, args.val, num_classes=args.num_classes, label_base=args.label_base,
                     preset=args.preset, weights=_weights(args.weights), epochs=args.epochs,
                     batch_size=args.batch_size, lr=args.lr, device=args.device,
                     out_dir=args.out or f"nbdetect_runs/{args.recipe}", resume=args.resume,
                     monitor="text" if main else False, threads=getattr(args, "threads", None),
                     devices=getattr(args, "devices", 1), sync_bn=getattr(args, "sync_bn", False),
                     background=False, synthetic=synthetic or None)
    wall = time.perf_counter() - t0
    if not run.is_main:
        return 0 if run.status in ("finished", "stopped") else 1
    summary = _summarise(run, wall)
    print(json.dumps(summary, indent=2, default=str))
    return 0 if run.status in ("finished", "stopped") else 1


def _summarise(run, wall_s: float) -> dict:
    """Write curves, verdict and metrics next to the checkpoints; return the metrics."""
    import torch

    from .monitor.plots import render_png
    from .verdict_callback import verdict_of

    last = run.history.last_epoch() or {}
    verdict = verdict_of(run)
    curves = run.out_dir / "curves.png"
    details = verdict.details or {}
    shown = run.history.last_epoch() or {}
    caption = f"curves through epoch {shown.get('epoch', run.epoch)}/{run.epochs}; {verdict.headline}"
    # the same drawing the panel shows: the verdict's line and decision epoch, the epoch in the title
    curves.write_bytes(render_png(run, decision_epoch=details.get("decision_epoch"), threshold=details.get("line"),
                                  caption=caption[:160]))
    summary = {
        "recipe": run.recipe.describe(),
        "status": run.status,
        "epochs_done": run.epoch,
        "wall_time_s": round(wall_s, 1),
        "train_images_per_s": round(_mean([e.get("images_per_s") for e in run.history.epochs]), 2),
        "device": run.device.type,
        "torch_threads": run.threads or torch.get_num_threads(),
        "processes": run.devices,
        "first_val_loss": (run.history.epochs[0].get("val_loss") if run.history.epochs else None),
        "last_val_loss": last.get("val_loss"),
        "map": last.get("map"),
        "map50": last.get("map50"),
        "verdict": verdict.headline,
        "verdict_status": verdict.status,
        "rule": verdict.rule_text,
        "next_action": verdict.next_action,
        "curves": str(curves),
        "best_checkpoint": str(run.best_checkpoint) if run.best_checkpoint else None,
        "last_checkpoint": str(run.last_checkpoint) if run.last_checkpoint else None,
    }
    (run.out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def _mean(values) -> float:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _submit(args) -> int:
    from .submission import make_submission

    out = make_submission(args.checkpoint, args.images, args.out, score_threshold=args.score, device=args.device)
    print(json.dumps({k: str(v) for k, v in out.items()}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbdetect", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the main job: Alternative 1 on the embedded synthetic data, "
                                       "with curves, verdict and metrics written to nbdetect_runs/demo")
    _add_train_args(demo, FIRST.name)
    demo.set_defaults(func=_train, epochs_default=12, out_default="nbdetect_runs/demo")

    train = sub.add_parser("train", help="train a recipe on your data (or the synthetic data)")
    _add_train_args(train, FIRST.name)
    train.set_defaults(func=_train)

    submit = sub.add_parser("submit", help="predict on a folder of images and write CSV + COCO JSON")
    submit.add_argument("checkpoint", help="best.pt or last.pt written by an nbdetect run")
    submit.add_argument("images", help="folder of test images")
    submit.add_argument("--out", default="submission")
    submit.add_argument("--score", type=float, default=0.3, help="score threshold")
    submit.add_argument("--device")
    submit.set_defaults(func=_submit)

    for module, fn in (("notebook_tools", "register_cli"), ("checks.cli", "register_cli")):
        try:
            register = getattr(__import__(f"nbdetect.{module}", fromlist=[fn]), fn)
        except (ImportError, AttributeError):
            continue
        register(sub)
    return parser


def main(argv=None) -> int:
    """Run a command. A refusal (NbdetectError) prints one line and exits 2; any other error (a run that failed
    while training, a bug) prints one line and exits 1. ``--debug`` (anywhere on the line) shows the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    if args.command == "demo":
        args.epochs = args.epochs or args.epochs_default
        args.out = args.out or args.out_default
        args.weights = args.weights if args.preset else "none"
    try:
        return int(args.func(args) or 0)
    except NbdetectError as exc:  # a refusal: one line saying what and how to fix it
        if debug:
            raise
        print(f"nbdetect: error: {_one_line(exc.message)} (--debug for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nbdetect: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # not a refusal: still one line, the trace on request
        if debug:
            raise
        print(f"nbdetect: error: {type(exc).__name__}: {_one_line(str(exc))} (--debug for the traceback)",
              file=sys.stderr)
        return 1


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return text if len(text) <= limit else text[:limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
