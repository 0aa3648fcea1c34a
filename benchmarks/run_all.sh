#!/usr/bin/env bash
# Run every benchmark one after the other (each prints its figures last and writes benchmarks/results/<name>.json).
# Usage: bash benchmarks/run_all.sh     (defaults only; about 35 minutes on 2 CPU cores; GTSDB ones need ../shared/data/gtsdb)
# bench_vs_yolo.py (about 20 minutes, needs `pip install ultralytics` for its YOLOv8n row) runs on its own.
set -uo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
for script in bench_judges.py bench_faults.py bench_loop.py bench_data.py bench_monitor.py bench_diagnose.py bench_guide_claim.py bench_find_lr.py bench_ddp.py; do
  echo "=== $script"
  "$PY" "$script" 2>&1 | grep -v -E "^\[(seed_multistep|alternative_[12])\]" || echo "$script failed"
done
