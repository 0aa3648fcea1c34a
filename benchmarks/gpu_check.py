"""The distributed GPU paths, checked on a machine with GPUs (none were lent while they were written, so until
this script has run they are untested): NCCL, one device per process (device_ids), SyncBatchNorm, AMP, the
per-process peak-memory gather, and a run started on N GPUs resumed on one.

    python benchmarks/gpu_check.py              # every GPU of the machine (2 or more for the DDP part)
    python benchmarks/gpu_check.py --devices 2

Prints one line per check (ok / FAILED: why) and writes benchmarks/results/gpu_check.json; exits 1 on a failure.
It trains the tiny RetinaNet on nbdetect's synthetic data for a few epochs: a minute or two on any GPU.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_check.json"


def _synthetic():
    return {"n_train": 32, "n_val": 8, "image_size": (256, 256)}


def check_single_gpu_amp(out: Path) -> str:
    import nbdetect

    run = nbdetect.alternative_1(epochs=2, preset="retinanet_tiny", weights=None, device="cuda", amp=True,
                                 monitor=False, out_dir=out / "one_gpu", synthetic=_synthetic()).wait()
    assert run.status == "finished", run.message
    p = run.progress()
    assert p.get("gpu_memory_gb") is not None, f"no GPU memory in progress: {p}"
    return f"finished on {p.get('device')}, peak {p['gpu_memory_gb']:.2f} GB"


def check_ddp(out: Path, devices: int) -> str:
    import nbdetect

    run = nbdetect.alternative_1(epochs=2, preset="retinanet_tiny", weights=None, device="cuda", devices=devices,
                                 sync_bn=True, amp=True, batch_size=2 * devices, monitor=False,
                                 out_dir=out / "ddp", synthetic=_synthetic()).wait()
    assert run.status == "finished", run.message
    per = run.progress().get("gpu_memory_gb_per_process") or []
    assert len(per) == devices and all(m is not None for m in per), f"per-process memory: {per}"
    return f"{devices} processes over NCCL, SyncBN on, peak GB per process {per}"


def check_resume_on_one(out: Path) -> str:
    import nbdetect

    run = nbdetect.alternative_1(epochs=3, preset="retinanet_tiny", weights=None, device="cuda", devices=1,
                                 monitor=False, out_dir=out / "ddp", resume=True, synthetic=_synthetic()).wait()
    assert run.status == "finished" and run.epoch == 3, (run.status, run.epoch, run.message)
    return "the 2-epoch DDP run resumed on one GPU and finished epoch 3"


def main() -> int:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing to check")
        return 0
    devices = args.devices or torch.cuda.device_count()
    checks = [("single GPU, AMP", check_single_gpu_amp)]
    if devices >= 2:
        checks += [("DDP over NCCL with SyncBN", lambda out: check_ddp(out, devices)),
                   ("resume the DDP run on one GPU", check_resume_on_one)]
    else:
        print(f"only {devices} GPU: the DDP checks need 2 or more")
    results, failed = {"gpus": torch.cuda.device_count(), "name": torch.cuda.get_device_name(0)}, False
    with tempfile.TemporaryDirectory() as tmp:
        for name, check in checks:
            t0 = time.time()
            try:
                said = check(Path(tmp))
                results[name] = {"ok": True, "said": said, "seconds": round(time.time() - t0, 1)}
                print(f"ok      {name}: {said}")
            except Exception as exc:
                failed = True
                results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                 "traceback": traceback.format_exc()}
                print(f"FAILED  {name}: {type(exc).__name__}: {exc}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
