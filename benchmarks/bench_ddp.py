"""Scaling of a run over processes: images/s and efficiency for 1 vs N processes (gloo on CPU, NCCL on GPUs).

Every configuration trains the same recipe on the same synthetic data in a fresh process (so the fork of the
extra ranks starts clean), and reports the training images/s of its last epoch (all processes together; the
first epoch includes start-up). The global batch is the same for every row (``--batch``, split between the
processes), so each row does the same steps with the same LR schedule: only the speed differs.

    python benchmarks/bench_ddp.py                       # CPU: 1 process x 1 thread, 1 x all threads, N x 1 thread
    python benchmarks/bench_ddp.py --gpus                # GPUs: 1..N processes, one GPU each
    python benchmarks/bench_ddp.py --preset retinanet_resnet50_fpn --size 512 --batch 16 --gpus

Efficiency is images/s divided by (processes x the 1-process images/s): 1.0 is perfect scaling. On a CPU the
processes share the cores, so the comparison that matters is N processes x 1 thread against 1 process with
all the threads.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import report

HERE = Path(__file__).resolve()


def child(args) -> None:
    import torch

    from nbdetect import run_recipe

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = run_recipe("alternative_1", None, None, preset=args.preset, weights=None, epochs=args.epochs,
                         batch_size=args.batch, image_size=args.size, monitor=False, background=False,
                         out_dir=Path(tmp) / "run", device=args.device, eval_map_every=0, verify_data=False,
                         threads=args.threads, devices=args.processes,
                         synthetic={"n_train": args.images, "n_val": 8, "image_size": (args.size, args.size)})
        wall = time.perf_counter() - t0
        last = run.history.epochs[-1]
    print("RESULT " + json.dumps({"images_per_s": last["images_per_s"], "wall_s": wall, "status": run.status,
                                  "threads_rank0": run.threads, "final_loss": last["train_loss"]}))


def launch(processes: int, threads: int, device: str, args) -> dict | None:
    cmd = [sys.executable, str(HERE), "--one", "--processes", str(processes), "--threads", str(threads),
           "--device", device, "--preset", args.preset, "--size", str(args.size), "--batch", str(args.batch),
           "--epochs", str(args.epochs), "--images", str(args.images)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    found = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not found:
        print(f"{processes} processes x {threads} threads failed:\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}")
        return None
    return found[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="retinanet_tiny")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8, help="global batch (split between the processes)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--images", type=int, default=96, help="synthetic training images")
    ap.add_argument("--processes", type=int, default=2, help="CPU: the N of the N-process row")
    ap.add_argument("--gpus", action="store_true", help="1..N processes on the visible GPUs")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return child(args)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if args.gpus:
        from nbdetect.distributed import visible_gpus

        rows = [(n, 1, "cuda") for n in range(1, visible_gpus() + 1)]
    else:
        rows = [(1, 1, "cpu"), (1, cores, "cpu"), (args.processes, 1, "cpu")]
    results = {}
    for processes, threads, device in rows:
        name = f"{processes}x{device}" + (f"_{threads}threads" if device == "cpu" else "")
        print(f"=== {processes} process(es) x {threads} thread(s) on {device}", flush=True)
        results[name] = launch(processes, threads, device, args)
    base = next((r for r in results.values() if r), None)
    print(f"\n{'configuration':<22} {'images/s':>9} {'efficiency':>10} {'wall s':>7}")
    figures = {}
    for (processes, threads, device), (name, r) in zip(rows, results.items()):
        if r is None:
            print(f"{name:<22} failed")
            continue
        eff = r["images_per_s"] / (processes * base["images_per_s"])
        print(f"{name:<22} {r['images_per_s']:9.2f} {eff:10.2f} {r['wall_s']:7.1f}")
        figures.update({f"{name}_images_per_s": r["images_per_s"], f"{name}_efficiency": eff})
    report("bench_ddp", figures, {"args": vars(args), "rows": results, "cores": cores})


if __name__ == "__main__":
    main()
