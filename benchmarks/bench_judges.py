"""Accuracy of the two faces of nbdetect's one judge on generated cases with known truth.

Live verdict: every generated history (tests/judge_cases.py families, seeds other than the tests') is judged
at every epoch; a case is right when no epoch says stop (switch/diagnose/fail) on a healthy run and no epoch
from the evidence on says continue/success on a broken one. diagnose(): the same histories given as a
student would (train/val/lr lists), right when a healthy history gets no failing root cause and a broken one
gets a root cause among the expected codes; plus the planted-bug notebook states of
tests/test_diagnose_planted.py (root cause and next action). Agreement: the share of (history, epoch) points
where diagnose()'s curve finding has the verdict's code and stop/go.

Usage: python benchmarks/bench_judges.py [--cases 600]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import REPO, report

sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=600)
    args = ap.parse_args()

    from judge_cases import generate, violations
    from nbdetect.checks import diagnose
    from nbdetect.verdict import STOP_STATUSES, decide

    t0 = time.perf_counter()
    cases = []
    for seed in range(10, 10 + max(1, args.cases // 120)):
        cases += generate(seed=seed, n=120)
    right, total, by_family = 0, 0, Counter()
    family_n = Counter()
    points = 0
    for c in cases:
        family_n[c.family] += 1
        points += len(c.epochs)
        if not violations(c, decide):
            right += 1
            by_family[c.family] += 1
        total += 1
    live_s = time.perf_counter() - t0

    def as_history(epochs):
        return {"train": [e["train_loss"] for e in epochs],
                "val": [e["val_loss"] if e["val_loss"] is not None else float("nan") for e in epochs],
                "lr": [e["lr"] for e in epochs]}

    d_right, agree, agree_n = 0, 0, 0
    for c in cases:
        rep = diagnose(history=as_history(c.epochs), epochs=c.total, plots=False)
        root = rep.root_cause
        if c.truth == "healthy":
            ok = root is None or root.status != "fail"
        else:
            ok = root is not None and root.code in c.expect_code
        d_right += ok
        for k in (max(3, c.total // 2), c.total):
            v = decide(c.epochs[:k], "custom", c.total)
            r = diagnose(history=as_history(c.epochs[:k]), epochs=c.total, plots=False)
            probs = [f for f in r.findings if f.is_problem and f.check in ("curve", "lr")]
            same = (probs[0].code == v.code and (probs[0].status == "fail") == (v.status in STOP_STATUSES)) \
                if v.is_problem else not probs
            agree += same
            agree_n += 1

    import test_diagnose_planted as planted

    p_right = 0
    with tempfile.TemporaryDirectory() as tmp:
        for state, code, action in planted.PLANTED:
            r = diagnose(**state(Path(tmp)), **planted.QUICK)
            p_right += bool(r.root_cause is not None and r.root_cause.code == code and r.next_action == action)
        h_right = 0
        for state in planted.HEALTHY:
            r = diagnose(**{**planted.QUICK, **state(Path(tmp))})
            h_right += r.root_cause is None and r.next_action == "continue"

    figures = {
        "live_verdict_histories": total,
        "live_verdict_epochs_judged": points,
        "live_verdict_right_at_every_epoch": right / total,
        "diagnose_histories_right": d_right / total,
        "judges_agree": agree / agree_n,
        "diagnose_planted_bugs_right": f"{p_right}/{len(planted.PLANTED)}",
        "diagnose_healthy_states_right": f"{h_right}/{len(planted.HEALTHY)}",
        "live_verdict_ms_per_epoch": 1e3 * live_s / points,
    }
    for fam in sorted(family_n):
        figures[f"live_{fam}"] = f"{by_family[fam]}/{family_n[fam]}"
    report("bench_judges", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
