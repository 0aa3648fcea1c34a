"""Fault injection, the long version of tests/test_faults.py and tests/test_errors.py: counts for the README.

* kills survived: a training process is SIGKILLed at a random moment while it checkpoints every epoch; the
  kill is survived when last.pt (if any was written) loads and a run resumes from it.
* stops clean: a run is stopped at a random iteration; clean when it ends "stopped" with a checkpoint at that
  exact step, the guard released, and the resumed run finishes with the losses of an uninterrupted one.
* inputs clear: every documented bad input (docs/ERRORS.md) gets an NbdetectError naming what and the fix.
* bad inputs by class: every case of tests/bad_input_cases.py (the table tests/test_bad_inputs.py checks) judged
  clear / cryptic (another exception, or a message not naming the argument or too long) / silently wrong
  (nothing refused, or an acceptance that does not say what it read) / late (refused after a folder was created
  or announced). ``--code /path/to/checkout`` judges another checkout's nbdetect with the same table (before/after).

Usage: python benchmarks/bench_faults.py [--kills 20] [--stops 12] [--inputs-only] [--code PATH]
"""
from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, report

sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--stops", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inputs-only", action="store_true", help="only the bad-input table (seconds, not minutes)")
    ap.add_argument("--code", help="judge the nbdetect of this checkout instead (e.g. /work/main: the 'before')")
    ap.add_argument("--show", action="store_true", help="print every case that is not clear")
    args = ap.parse_args()
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
    if args.inputs_only:
        counts = bad_input_counts(args.show)
        report("bench_faults_inputs" + ("_other" if args.code else ""), counts)
        return 0
    rng = random.Random(args.seed)

    import pytest  # noqa: F401  (the test modules import it)
    import test_errors
    import test_faults
    from nbdetect import run_guard
    from nbdetect.checkpoint import load_checkpoint
    from nbdetect.errors import NbdetectError

    survived, with_ckpt = 0, 0
    for i in range(args.kills):
        with tempfile.TemporaryDirectory() as tmp:
            code = test_faults.KILLER.format(tests=str(REPO / "tests"), out=tmp)
            proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(REPO),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(1.0, 6.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            last = Path(tmp) / "last.pt"
            try:
                if last.exists():
                    with_ckpt += 1
                    state = load_checkpoint(last)
                    run = test_faults.make_run(tmp, epochs=200).resume_from(last)
                    assert run.step == state["step"]
                survived += 1
            except Exception as exc:  # a corrupt checkpoint would land here
                print(f"kill {i}: {type(exc).__name__}: {exc}")

    clean = 0
    for i in range(args.stops):
        with tempfile.TemporaryDirectory() as tmp:
            full = test_faults.make_run(Path(tmp) / "full", epochs=3).run()
            at = rng.randint(1, full.total_steps - 1)  # any iteration but the last
            part = test_faults.make_run(Path(tmp) / "part", epochs=3, callbacks=[test_faults.StopAt(at)])
            run_guard.claim(part)
            part.run()
            ok = (part.status == "stopped" and part.step == at and run_guard.active_run() is None
                  and load_checkpoint(part.last_checkpoint)["step"] == at)
            resumed = test_faults.make_run(Path(tmp) / "part", epochs=3).resume_from(part.last_checkpoint).run()
            same = all(abs(a["loss"] - b["loss"]) <= 1e-5 * abs(b["loss"])
                       for a, b in zip(resumed.history.iterations, full.history.iterations))
            clean += bool(ok and same and resumed.status == "finished")
            if not (ok and same):
                print(f"stop {i} at step {at}: status {part.status}, step {part.step}, same losses {same}")

    clear, paths = 0, {**test_errors.PATHS}
    files = test_errors.BAD_FILES
    with tempfile.TemporaryDirectory() as tmp:
        for name, (call, words) in paths.items():
            d = Path(tmp) / name
            d.mkdir()
            try:
                call(d)
            except NbdetectError as exc:
                clear += all(w in str(exc) for w in words)
            except Exception as exc:
                print(f"{name}: not an NbdetectError: {type(exc).__name__}: {exc}")
        for name, (make, words) in files.items():
            d = Path(tmp) / name
            d.mkdir()
            try:
                path = make(d)
                if name.startswith("coco"):
                    import nbdetect

                    nbdetect.load_coco(path)
                else:
                    test_errors.nbdetect.alternative_1(str(path), num_classes=1, **test_errors.FAST)
            except NbdetectError as exc:
                clear += all(w in str(exc) for w in words)
            except Exception as exc:
                print(f"{name}: not an NbdetectError: {type(exc).__name__}: {exc}")

    report("bench_faults", {
        "kills": args.kills, "kills_survived": survived, "kills_with_a_checkpoint_written": with_ckpt,
        "stops": args.stops, "stops_clean_and_resumed_exactly": clean,
        "bad_inputs": len(paths) + len(files), "bad_inputs_with_a_clear_message": clear,
        **bad_input_counts(args.show),
    })
    return 0


def bad_input_counts(show: bool = False) -> dict:
    """Every case of the bad-input table, run in its own temporary folder: counts per outcome."""
    import contextlib
    import io

    import bad_input_cases

    counts = {"clear": 0, "cryptic": 0, "silently wrong": 0, "late": 0}
    t0 = time.perf_counter()
    for c in bad_input_cases.CASES:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    outcome, detail = bad_input_cases.run_case(c, Path(tmp))
            except BaseException as exc:  # a case that breaks the harness itself counts as cryptic
                outcome, detail = "cryptic", f"harness: {type(exc).__name__}: {exc}"
        counts[outcome] += 1
        if show and outcome != "clear":
            print(f"{outcome:14s} {c.id}: {detail[:160]}")
    return {"bad_input_cases": len(bad_input_cases.CASES),
            **{f"bad_inputs_{k.replace(' ', '_')}": v for k, v in counts.items()},
            "bad_input_table_seconds": round(time.perf_counter() - t0, 1)}


if __name__ == "__main__":
    raise SystemExit(main())
