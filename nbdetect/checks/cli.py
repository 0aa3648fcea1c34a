"""``python -m nbdetect diagnose``: the report from the command line (text, optional HTML file)."""
from __future__ import annotations

from pathlib import Path


def register_cli(sub) -> None:
    p = sub.add_parser("diagnose", help="check data, model, loss scale and LR/loss history; root cause first")
    p.add_argument("--data", help="dataset folder/file (YOLO, VOC, GTSDB) to check")
    p.add_argument("--history", help="history.jsonl, run folder, epochs.csv or Ultralytics results.csv")
    p.add_argument("--preset", help="model preset to check the data against (e.g. retinanet_resnet50_fpn)")
    p.add_argument("--checkpoint", help="weights for --preset (state_dict or nbdetect checkpoint)")
    p.add_argument("--num-classes", type=int, help="real classes K (labels 1..K)")
    p.add_argument("--label-base", type=int, default=1, choices=[0, 1])
    p.add_argument("--max-samples", type=int, help="scan at most this many samples")
    p.add_argument("--no-overfit", action="store_true", help="skip the overfit-one-batch test")
    p.add_argument("--html", help="also write the HTML report to this file")
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from .core import diagnose

    data = None
    if args.data:
        from ..inputs import load_path

        data = load_path(args.data)
    model = None
    if args.preset:
        from ..models import build_model

        k = args.num_classes or getattr(data, "num_classes", None)
        if not k:
            raise SystemExit("--num-classes is needed to build --preset")
        model = build_model(args.preset, k, weights=args.checkpoint)
    report = diagnose(model, data=data, history=args.history, num_classes=args.num_classes,
                      label_base=args.label_base, max_samples=args.max_samples, overfit=not args.no_overfit)
    print(report.to_text())
    if args.html:
        Path(args.html).write_text(report._repr_html_(), encoding="utf-8")
    root = report.root_cause
    return 1 if root is not None and root.status == "fail" else 0
