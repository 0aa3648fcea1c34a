"""Tests that can fail: delete each verdict rule, or scale each threshold by 2x and by 0.5x, one at a time;
every such change must make the judge's battery (the generated histories judged at every epoch, the real public
logs, the guide's own scenarios, boundary cases on either side of a threshold) find at least one wrong answer.
Deleting any rule (each id of nbdetect.verdict_data.REGISTRY alone) and scaling any threshold are caught."""
import json
import math
import random
from pathlib import Path

import pytest

import nbdetect.curve_facts as cf
import nbdetect.verdict as vd
import nbdetect.verdict_data as vdata
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
    v = vd.decide(flat_bad_data()[:15], "alternative_1", 50)  # "if the loss doesn't drop by epoch 15 ..."
    if (v.rule_id, v.code) != ("early_epoch15", "loss_plateau"):
        bad.append(f"bad data at the guide's epoch 15: {v.rule_id} {v.code}")
    h = healthy(epochs=50)
    for k in (5, 20, 35, 50):
        v = vd.decide(h[:k], "alternative_1", 50)
        if v.is_stop or (k == 50 and v.status != "success"):
            bad.append(f"healthy at {k}: {v.status}")
    exploding = healthy(epochs=3) + [{"epoch": 4, "train_loss": 9.0, "val_loss": 9.0, "lr": 5e-4}]
    if vd.decide(exploding, "alternative_1", 50).rule_id != "divergence":
        bad.append("exploding loss not divergence")
    return bad


def _boundaries() -> list[str]:
    """Cases made on either side of a threshold, their truth from how they were made."""
    bad = []
    h = healthy(epochs=30)
    # a warm-up spike of 2x the start for two epochs is no blow-up; 4x for two epochs with training 4x is one
    spike = [dict(r) for r in h]
    for r in spike[1:3]:
        r["val_loss"] = r["val_loss"] * 0 + 2.0 * h[0]["val_loss"]
    if any(vd.decide(spike[:k], "custom", 30).is_stop for k in range(2, 12)):
        bad.append("a 2x warm-up spike was stopped")
    blown = h[:4] + [dict(h[4], val_loss=4.2 * h[0]["val_loss"], train_loss=4.2 * h[0]["train_loss"]),
                     dict(h[5], val_loss=4.5 * h[0]["val_loss"], train_loss=4.5 * h[0]["train_loss"])]
    if vd.decide(blown, "custom", 30).rule_id != "divergence":
        bad.append("4x the start for 2 epochs is not divergence")
    # mAP: a collapse to 30% of its best is named; dips to 80% of it are noise
    maps = [min(0.6, 0.1 * e) for e in range(1, 31)]
    collapsed = [dict(r, map50=m) for r, m in zip(h, maps[:27] + [0.18, 0.17, 0.18])]
    v = vd.decide(collapsed, "custom", 40)
    if "map_collapse" not in {v.rule_id, *(f.rule_id for f in v.findings)}:
        bad.append("an mAP collapse to 30% of its best was not named")
    dipping = [dict(r, map50=m * (0.8 if e % 5 in (0, 1) else 1.0)) for e, (r, m) in enumerate(zip(h, maps), 1)]
    if any(vd.decide(dipping[:k], "custom", 40).rule_id == "map_collapse" for k in range(5, 30)):
        bad.append("mAP dips to 80% of the best were called a collapse")
    # an LR below any detector's range: 7e-7 flat is too low; a converged run ending at 1.5e-6 is not
    flat = [{"epoch": e, "train_loss": 1.0 * (1 + 0.002 * (e % 3)), "val_loss": 1.0, "lr": 7e-7} for e in range(1, 16)]
    if vd.decide(flat, "custom", 30).code != "lr_too_low":
        bad.append("flat at lr 7e-7 is not lr_too_low")
    ends_low = [dict(r, lr=max(1.5e-6, r["lr"])) for r in healthy(epochs=60, rate=0.3)]
    if any(vd.decide(ends_low[:k], "custom", 60).code == "lr_too_low" for k in range(30, 61, 5)):
        bad.append("a converged run at the end of its schedule was called lr_too_low")
    # overfitting: the validation loss 15% above its best for 3 epochs while training falls is named; one
    # epoch above it, or 3 epochs 7% above it (within what a smooth curve's noise-free wobble reaches), is not
    base = healthy(epochs=30, rate=0.3)
    best = min(r["val_loss"] for r in base[:15])
    rising = [dict(r, val_loss=best * (1.15 if e > 15 else 1.0) if e > 12 else r["val_loss"],
                   train_loss=r["train_loss"] * 0.97 ** max(0, e - 12)) for e, r in enumerate(base, 1)]
    if vd.decide(rising[:18], "custom", 30).rule_id != "overfitting":
        bad.append("3 validated epochs 15% above the best while training falls is not overfitting")
    if vd.decide(rising[:16], "custom", 30).rule_id == "overfitting":
        bad.append("one epoch above the best was called overfitting")
    mild = [dict(r, val_loss=best * 1.07) if e > 15 else r for e, r in enumerate(rising, 1)]
    if vd.decide(mild[:18], "custom", 30).rule_id == "overfitting":
        bad.append("7% above the best was called overfitting")
    # divergence from the best: both losses 70% above their best for 2 epochs is a blow-up; 35% is a bump
    for up, diverges in ((1.7, True), (1.35, False)):
        hist = [dict(r) for r in base[:20]] + [dict(base[19], epoch=21 + i, val_loss=up * best,
                                                   train_loss=up * base[19]["train_loss"] * (1.2 + 0.1 * i))
                                              for i in range(2)]
        if (vd.decide(hist, "custom", 30).rule_id == "divergence") != diverges:
            bad.append(f"both losses {up}x their best for 2 epochs: divergence should be {diverges}")
    return bad + _pace_boundaries()


def _noisy(values, noise, seed):
    rng = random.Random(seed)
    return [v * (1 + rng.gauss(0, noise)) for v in values]


def _pace_boundaries() -> list[str]:
    """Cases about evidence and pace: made from a cause that begins at a known epoch, or from none."""
    bad = []
    # a stall above the guide's goal with the LR decayed smoothly to 7% of its peak (more than a decade, the
    # guide's gamma=0.1 cut): the LR is named; decayed to 14% (less than a decade) it is a plateau, not the LR
    for frac, low in ((0.07, True), (0.14, False)):
        hist = [{"epoch": e, "lr": 5e-4 * frac ** (min(e, 20) / 20),
                 "val_loss": 1.8 * (0.62 + 0.38 * math.exp(-0.3 * e)) * (1 + 0.003 * ((e * 7) % 3 - 1))}
                for e in range(1, 33)]
        for r in hist:
            r["train_loss"] = 1.05 * r["val_loss"]
        v = vd.decide(hist, "alternative_1", 50)
        if ("lr_too_low" in {v.code, *(f.code for f in v.findings)}) != low:
            bad.append(f"a stall with the LR at {frac:.0%} of its peak: lr_too_low should be {low}")
    # a 5-epoch warm-up, 3 flat epochs at the full LR, then a fall of 14%/epoch: three epochs at the full LR are
    # no evidence of anything, and a loss that has started to fall is no plateau
    warm = [{"epoch": e, "lr": 5e-4 * min(1, e / 5), "val_loss": 1.7 * math.exp(-0.15 * max(0, e - 8))}
            for e in range(1, 13)]
    for r in warm:
        r["train_loss"] = 1.02 * r["val_loss"]
    for k in range(7, 13):
        v = vd.decide(warm[:k], "custom", 30)
        if v.rule_id in ("not_learning", "plateau"):
            bad.append(f"warm-up then a fall, epoch {k}: {v.rule_id}")
    # a slow fall in 2% noise (0.4%/epoch after a fast start: 40% lower again by epoch 200) is never a plateau
    level = [math.exp(-0.25 * e) + 0.6 * math.exp(-0.004 * e) for e in range(1, 201)]
    slow = [{"epoch": e, "train_loss": 1.05 * b, "val_loss": v, "lr": 1e-3}
            for e, (b, v) in enumerate(zip(level, _noisy(level, 0.02, 3)), 1)]
    for k in range(8, 200):
        v = vd.decide(slow[:k], "custom", 200)
        if v.status != "continue":
            bad.append(f"a slow noisy fall at epoch {k}: {v.status} ({v.rule_id})")
            break
    # flat from the start in 5% or 10% noise (labels unrelated to the images): named by the guide's epoch 15
    for noise in (0.05, 0.1):
        for seed in (1, 2):
            flat = [{"epoch": e, "train_loss": t, "val_loss": v, "lr": 1e-3} for e, (t, v) in
                    enumerate(zip(_noisy([1.7] * 15, noise, 100 + seed), _noisy([1.7] * 15, noise, seed)), 1)]
            if not any(vd.decide(flat[:k], "custom", 50).rule_id == "not_learning" for k in range(5, 16)):
                bad.append(f"flat in {noise:.0%} noise (seed {seed}) not named by epoch 15")
    # a fall that ends at about epoch 45 (1% noise), flat after: a plateau named within 35 epochs of its end
    fall = [0.5 + 1.2 * math.exp(-0.08 * min(e, 65)) for e in range(1, 81)]
    plateau = [{"epoch": e, "train_loss": 1.05 * b, "val_loss": v, "lr": 1e-3}
               for e, (b, v) in enumerate(zip(fall, _noisy(fall, 0.01, 4)), 1)]
    if not any(vd.decide(plateau[:k], "custom", 300).rule_id == "plateau" for k in range(60, 81)):
        bad.append("a plateau since about epoch 45 not named by epoch 80")
    # flat from the start with no noise at all at the full LR: eight unchanged epochs are evidence enough
    still = [{"epoch": e, "train_loss": 1.734, "val_loss": 1.7, "lr": 5e-4} for e in range(1, 10)]
    if vd.decide(still, "custom", 30).rule_id != "not_learning":
        bad.append("nine noise-free flat epochs at the full LR not named not_learning")
    # a 40-epoch run whose fall ends at about epoch 13 (1% noise): its plateau is named by epoch 25
    short = [0.5 + 1.2 * math.exp(-0.25 * min(e, 15)) for e in range(1, 41)]
    short = [{"epoch": e, "train_loss": 1.05 * b, "val_loss": v, "lr": 1e-3}
             for e, (b, v) in enumerate(zip(short, _noisy(short, 0.01, 4)), 1)]
    if not any(vd.decide(short[:k], "custom", 40).rule_id == "plateau" for k in range(15, 26)):
        bad.append("a plateau since about epoch 13 of 40 not named by epoch 25")
    # Alternative 1 for 10 epochs in 10% validation noise, falling about 15%/epoch to the guide's line by its
    # end (0.31 of the start): never stopped (five noisy epochs cannot show that it will miss the line)
    rng = random.Random(3)
    fast = []
    for e in range(1, 11):
        b = 1.8 * (0.2 + 0.8 * math.exp(-0.2 * e))
        fast.append({"epoch": e, "train_loss": b * 1.05 * (1 + rng.gauss(0, 0.1 / 3)),
                     "val_loss": b * (1 + rng.gauss(0, 0.1)), "lr": 5e-4})
    stops = [k for k in range(3, 11) if vd.decide(fast[:k], "alternative_1", 10).is_stop]
    if stops:
        bad.append(f"a 10-epoch Alternative 1 reaching its line in 10% noise was stopped at epoch {stops[0]}")
    # the loss flat from epoch 40 while mAP@.5 makes a new best every 12 epochs (+0.01 each: another 0.1 by
    # the end of the 200 planned): still improving, never a plateau
    rng = random.Random(7)
    stairs = []
    for e in range(1, 161):
        b = 0.5 + 1.2 * math.exp(-0.1 * min(e, 40))
        m = 0.3 + 0.01 * (e // 12) if e >= 40 else 0.3 * e / 40
        stairs.append({"epoch": e, "train_loss": b * 1.05, "val_loss": b * (1 + rng.gauss(0, 0.01)), "lr": 1e-3,
                       "map50": m + rng.gauss(0, 0.002)})
    called = [k for k in range(40, 161) if vd.decide(stairs[:k], "custom", 200).rule_id == "plateau"]
    if called:
        bad.append(f"mAP making a new best every 12 epochs was called a plateau at epoch {called[0]}")
    # a noise-free fall of 1.5%/epoch that ends above the guide's goal is too slow, never "a plateau"
    crawl = [1.8 * (0.7 + 0.3 * math.exp(-0.5 * e)) * 0.985 ** e for e in range(1, 16)]
    crawl = [{"epoch": e, "train_loss": 1.05 * v, "val_loss": v, "lr": 5e-4} for e, v in enumerate(crawl, 1)]
    if vd.decide(crawl, "alternative_1", 50).headline.startswith("Plateau"):
        bad.append("a noise-free fall of 1.5%/epoch was called a plateau")
    return bad


def _named(case) -> list[str]:
    """Past the evidence, a broken or suspect run is named for what broke (one of the rules it was made for)."""
    if case.truth == "healthy" or not case.expect_code:
        return []
    v = vd.decide(case.epochs, case.recipe, case.total)
    named = {v.code, *(f.code for f in v.findings)}
    return [] if named & set(case.expect_code) else [f"{case.name}: named {sorted(n for n in named if n)}"]


def _wrong_answers():
    """Every wrong answer of the battery, lazily (a mutation is caught at the first)."""
    yield from _guide_scenarios() + _boundaries()
    for case in CASES:
        yield from [f"{case.name}: {x}" for x in violations(case, vd.decide)[:1]] + _named(case)
    for history, total, name in REAL_LOGS:
        part = type(history)(meta=dict(history.meta))
        for k in range(1, len(history.epochs) + 1):
            part.epochs = history.epochs[:k]
            v = vd.judge_history(part, total_epochs=total)
            if v.is_stop:
                yield f"{name} epoch {k}: {v.status}"
                break


def battery(first_only: bool = False) -> list[str]:
    found = []
    for wrong in _wrong_answers():
        found.append(wrong)
        if first_only:
            break
    return found


def test_the_battery_passes_on_the_judge_as_it_is():
    assert battery() == []


# every rule under its one identifier (nbdetect.verdict_data.REGISTRY), but the failed run (no rule of the policy)
RULES = [e.id for e in vdata.REGISTRY if e.id != "run_failed"]
# the thresholds are patched where the rules read them (verdict_rules reads verdict_data.NAME at each call)
THRESHOLDS = [(vdata, name) for name in ("DIVERGENCE_RATIO", "DIVERGENCE_RISE", "OVERFIT_RISE", "OVERFIT_PATIENCE",
                                      "LEARNED_RATIO", "CUT_HELPED", "LOW_LR_FRACTION", "NOT_LEARNING_EPOCHS",
                                      "PATIENCE_SHARE", "MIN_PATIENCE", "DETECTOR_LR_FLOOR")] + \
             [(cf, name) for name in ("MIN_DELTA", "NOISE_MARGIN", "MAP_COLLAPSE", "MEANINGFUL_GAIN",
                                      "SLOPE_RESOLUTION")]


def _without(function, rule_id):
    """``function`` that no longer reports ``rule_id`` (its other findings kept)."""
    def rule(ctx):
        found = function(ctx)
        return None if found is not None and vdata.entry(found.rule_id).id == rule_id else found
    rule.__name__ = function.__name__
    return rule


@pytest.mark.parametrize("rule", RULES)
def test_deleting_a_rule_fails_the_battery(rule, monkeypatch):
    """Each rule id deleted alone (a function that reports two ids, such as the decision's alt1/alt2, loses one)."""
    functions = vdata.entry(rule).functions
    if "rule_final" in functions:
        monkeypatch.setattr(vd, "rule_final", _without(vd.rule_final, rule))
    else:
        monkeypatch.setattr(vd, "POLICY", tuple(_without(r, rule) if r.__name__ in functions else r for r in vd.POLICY))
    assert battery(first_only=True), f"deleting {rule} changed no answer"


SCALINGS = [(m, n, f) for m, n in THRESHOLDS for f in (2.0, 0.5)]


def _scaled(module, name, factor, monkeypatch):
    value = getattr(module, name)
    new = type(value)(value * factor) if isinstance(value, int) else value * factor
    if new == value:
        new = value + (1 if factor > 1 else -1)
    monkeypatch.setattr(module, name, new)


@pytest.mark.parametrize("module,name,factor", SCALINGS,
                         ids=lambda x: x if isinstance(x, (str, float)) else "")
def test_scaling_a_threshold_fails_the_battery(module, name, factor, monkeypatch):
    _scaled(module, name, factor, monkeypatch)
    assert battery(first_only=True), f"{name} x{factor} changed no answer"
