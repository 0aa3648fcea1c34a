"""Accuracy of the two faces of nbdetect's one judge on generated cases with known truth.

Live verdict: every generated history (tests/judge_cases.py families, seeds other than the tests') is judged
at every epoch; a case is right when no epoch says stop (switch/diagnose/fail) on a healthy run and no epoch
from the evidence on says continue/success on a broken one. diagnose(): the same histories given as a
student would (train/val/lr lists), right when a healthy history gets no failing root cause and a broken one
gets a root cause among the expected codes; plus the planted-bug notebook states of
tests/test_diagnose_planted.py (root cause and next action). Agreement: the share of (history, epoch) points
where diagnose()'s curve finding has the verdict's code and stop/go.

Per source: generated (above), planted (diagnose on planted-bug states), real logs (the public training logs
in ../shared/data/real_histories, judged at every epoch: a run that learned must never be stopped nor sent to
a recipe). Epochs saved: on the broken generated runs, how many epochs before the guide's own decision point
(epoch 20 of 50 for its recipes, scaled to the run; epoch 41 of 60 for the seed, scaled) the live verdict first
says stop; beside it, the stops on healthy runs (the target is none).

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
        # the recipe the history comes from, as a student of that recipe would say it (own loop: none)
        rep = diagnose(history=as_history(c.epochs), epochs=c.total, plots=False,
                       recipe=None if c.recipe == "custom" else c.recipe)
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

    # -- epochs saved on the broken runs, false stops on the healthy ones --------------------------------------
    saved, late, false_stops, healthy_n = [], 0, 0, 0
    for c in cases:
        first_stop = next((k for k in range(1, len(c.epochs) + 1)
                           if decide(c.epochs[:k], c.recipe, c.total).is_stop), None)
        if c.truth == "healthy":
            healthy_n += 1
            false_stops += first_stop is not None
        elif c.truth == "broken":
            guide_at = round(41 * c.total / 60) if c.family == "seed_cut" else round(20 * c.total / 50)
            if first_stop is None:
                late += 1
            else:
                saved.append(guide_at - first_stop)

    # -- real public logs -------------------------------------------------------------------------------------
    import json

    from nbdetect import recipes as _recipes
    from nbdetect.history_readers import read_history
    from nbdetect.verdict import judge_history

    real_root = REPO.parent / "shared" / "data" / "real_histories"
    real_ok, real_n, real_epochs = 0, 0, 0
    if (real_root / "real_histories.json").exists():
        for log in json.loads((real_root / "real_histories.json").read_text()):
            h = read_history(real_root / "raw" / log["source"]["repo"].replace("/", "+") / log["source"]["path"])
            part, ok = type(h)(meta=dict(h.meta)), True
            for k in range(1, len(h.epochs) + 1):
                part.epochs = h.epochs[:k]
                v = judge_history(part, total_epochs=log["planned_epochs"])
                real_epochs += 1
                ok &= not v.is_stop and v.next_action not in _recipes.RECIPES and v.status != "partial"
            real_ok += ok
            real_n += 1

    long = [{"epoch": e, "train_loss": 2.0 * e ** -0.3, "val_loss": 2.1 * e ** -0.3, "map50": 0.5}
            for e in range(1, 10_001)]
    t1 = time.perf_counter()
    decide(long, "custom", 10_000)
    long_s = time.perf_counter() - t1

    saved.sort()
    figures = {
        "generated_live_verdict_right_at_every_epoch": right / total,
        "planted_diagnose_right": f"{p_right}/{len(planted.PLANTED)}",
        "real_logs_never_stopped_nor_sent_to_a_recipe": f"{real_ok}/{real_n} ({real_epochs} epochs judged)",
        "broken_runs_stopped": f"{len(saved)}/{len(saved) + late}",
        "epochs_saved_before_the_guides_decision_median": saved[len(saved) // 2] if saved else float("nan"),
        "epochs_saved_before_the_guides_decision_mean": sum(saved) / len(saved) if saved else float("nan"),
        "broken_runs_stopped_before_the_guides_decision": f"{sum(x > 0 for x in saved)}/{len(saved) + late}",
        "false_stops_on_healthy_runs": f"{false_stops}/{healthy_n}",
        "judge_10000_epochs_s": long_s,
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
