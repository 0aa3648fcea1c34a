"""Shared helpers for the benchmark scripts: figures printed as ``name: value`` and saved as JSON."""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
GTSDB = Path(os.environ.get("NBDETECT_GTSDB", REPO.parent / "shared" / "data" / "gtsdb"))


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU x{os.cpu_count()} threads={torch.get_num_threads()}, torch {torch.__version__}"


def report(name: str, figures: dict, extra: dict | None = None) -> Path:
    """Print the figures as the last lines (``name: value``) and write them to benchmarks/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "figures": figures, **(extra or {})}, indent=2, default=float))
    print(f"machine: {machine()}")
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    return path
