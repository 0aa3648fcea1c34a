"""Tests that can fail: delete each verdict rule, or scale each threshold by 2x and by 0.5x, one at a time;
every such change must make the judge's battery (the generated histories judged at every epoch, the real public
logs, the guide's own scenarios) find at least one wrong answer."""
import json
from pathlib import Path

import pytest

import nbdetect.curve_facts as cf
import nbdetect.verdict as vd
from judge_cases import generate, violations
from verdict_histories import diverging, flat_bad_data, healthy, seed_multistep_plateau
from nbdetect.history_readers import read_history

pytestmark = pytest.mark.slow

CASES = generate(seed=0, n=60)
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_histories"


def _real_logs():
    index = REAL / "real_histories.json"
    if not index.exists():
        return []
    out = []
    for log in json.loads(index.read_text()):
        path = REAL / "raw" / log["source"]["repo"].replace("/", "+") / log["source"]["path"]
        out.append((read_history(path), log["planned_epochs"], log["name"]))
    return out


REAL_LOGS = _real_logs()


def _guide_scenarios() -> list[str]:
    """The guide's own cases, named for what a correct judge says."""
    bad = []
    v = vd.decide(seed_multistep_plateau()[:41], "seed_multistep", 60)
    if v.rule_id != "lr_too_low" or v.status != "switch":
        bad.append(f"seed at 41: {v.rule_id} {v.status}")
    v = vd.decide(diverging(), "alternative_1", 8)
    if v.rule_id != "nonfinite":
        bad.append(f"nan: {v.rule_id}")
    v = vd.decide(flat_bad_data()[:20], "alternative_1", 50)
    if v.status != "switch":
        bad.append(f"bad data at 20: {v.status}")
    h = healthy(epochs=50)
    for k in (5, 20, 35, 50):
        v = vd.decide(h[:k], "alternative_1", 50)
        if v.is_stop or (k == 50 and v.status != "success"):
            bad.append(f"healthy at {k}: {v.status}")
    exploding = healthy(epochs=3) + [{"epoch": 4, "train_loss": 9.0, "val_loss": 9.0, "lr": 5e-4}]
    if vd.decide(exploding, "alternative_1", 50).rule_id != "divergence":
        bad.append("exploding loss not divergence")
    return bad


def battery() -> list[str]:
    bad = _guide_scenarios()
    for case in CASES:
        bad += [f"{case.name}: {x}" for x in violations(case, vd.decide)[:1]]
    for history, total, name in REAL_LOGS:
        part = type(history)(meta=dict(history.meta))
        for k in range(1, len(history.epochs) + 1):
            part.epochs = history.epochs[:k]
            v = vd.judge_history(part, total_epochs=total)
            if v.is_stop:
                bad.append(f"{name} epoch {k}: {v.status}")
                break
    return bad


def test_the_battery_passes_on_the_judge_as_it_is():
    assert battery() == []


RULES = [rule.__name__ for rule in vd.POLICY] + ["rule_final"]
THRESHOLDS = [(vd, name) for name in ("DIVERGENCE_RATIO", "DIVERGENCE_RISE", "OVERFIT_RISE", "OVERFIT_PATIENCE",
                                      "LEARNED_RATIO", "CUT_HELPED", "LOW_LR_FRACTION", "NOT_LEARNING_EPOCHS",
                                      "PATIENCE_SHARE", "MIN_PATIENCE", "DETECTOR_LR_FLOOR")] + \
             [(cf, name) for name in ("MIN_DELTA", "NOISE_MARGIN", "MAP_COLLAPSE", "MEANINGFUL_GAIN",
                                      "SLOPE_RESOLUTION")]


@pytest.mark.parametrize("rule", RULES)
def test_deleting_a_rule_fails_the_battery(rule, monkeypatch):
    if rule == "rule_final":
        monkeypatch.setattr(vd, "rule_final", lambda ctx: None)
    else:
        monkeypatch.setattr(vd, "POLICY", tuple(r for r in vd.POLICY if r.__name__ != rule))
    assert battery(), f"deleting {rule} changed no answer"


@pytest.mark.parametrize("factor", [2.0, 0.5])
@pytest.mark.parametrize("module,name", THRESHOLDS, ids=[n for _, n in THRESHOLDS])
def test_scaling_a_threshold_fails_the_battery(module, name, factor, monkeypatch):
    value = getattr(module, name)
    new = type(value)(value * factor) if isinstance(value, int) else value * factor
    if new == value:
        new = value + (1 if factor > 1 else -1)
    monkeypatch.setattr(module, name, new)
    assert battery(), f"{name} x{factor} changed no answer"
