"""diagnose() wall time on the 600 GTSDB images (all checks; overfit-one-batch on the small preset).

    python benchmarks/bench_diagnose.py                       # tiny RetinaNet (overfit test included)
    python benchmarks/bench_diagnose.py --preset retinanet_resnet50_fpn --no-overfit
"""
from __future__ import annotations

import argparse
import time

from common import GTSDB, report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="retinanet_tiny")
    ap.add_argument("--no-overfit", action="store_true")
    args = ap.parse_args()
    if not (GTSDB / "gt.txt").exists():
        raise SystemExit(f"GTSDB not found at {GTSDB} (set NBDETECT_GTSDB)")
    import torch

    from nbdetect import diagnose
    from nbdetect.data import load_gtsdb
    from nbdetect.models import build_model

    data = load_gtsdb(GTSDB)
    torch.manual_seed(0)
    model = build_model(args.preset, data.num_classes, weights=None, min_size=800, max_size=1360)
    t0 = time.perf_counter()
    rep = diagnose(model=model, data=data, num_classes=data.num_classes, overfit=not args.no_overfit)
    wall = time.perf_counter() - t0
    print(rep.to_text())
    statuses = [f.status for f in rep.findings]
    report("diagnose", {"images": len(data), "wall_s": wall, "findings": len(rep.findings),
                        "fails": statuses.count("fail"), "warns": statuses.count("warn"),
                        "root_cause": rep.root_cause.title if rep.root_cause else "none"},
           {"args": vars(args)})


if __name__ == "__main__":
    main()
