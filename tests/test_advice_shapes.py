"""Each class of wrong advice the outside tester found, in several shapes (not one example each).

Truths come from how each history is made: a run that learns (loss falls, mAP rises) is never stopped or sent
to another recipe; a stop waits for the evidence its noise needs; an epoch logged twice counts once.
"""
import math
import random

import pytest

from nbdetect import recipes
from nbdetect.checks import diagnose
from nbdetect.verdict import STOP_STATUSES, decide


def _run(n, val, train=None, maps=None, lrs=None, noise=0.0, seed=0):
    rng = random.Random(seed)
    out = []
    for e in range(1, n + 1):
        rec = {"epoch": e, "val_loss": val(e) * (1 + rng.gauss(0, noise)),
               "train_loss": (train or val)(e) * (1 + rng.gauss(0, noise / 2))}
        if maps:
            rec["map50"] = maps(e)
        if lrs:
            rec["lr"] = lrs(e)
        out.append(rec)
    return out


def cosine(n, peak=1e-2):
    return lambda e: 1e-4 + 0.5 * (peak - 1e-4) * (1 + math.cos(math.pi * e / n))


HEALTHY_ELSEWHERE = {
    # Ultralytics-like: the loss falls 40% and flattens, mAP rises to the end
    "yolo-map-rising": _run(100, lambda e: 3 + 3 * math.exp(-e / 15), maps=lambda e: 0.85 * (1 - math.exp(-e / 30)),
                            lrs=cosine(100), noise=0.02),
    # detectron2-like: 4 evaluation periods, AP rising
    "detectron2-4-evals": _run(4, lambda e: 1.5 / e ** 0.8, maps=lambda e: [0.24, 0.59, 0.70, 0.76][e - 1]),
    # a power law that ends at half its start, mAP rising slowly
    "power-law-half": _run(60, lambda e: 2 * (1 + e / 20) ** -0.6, maps=lambda e: 0.3 + 0.004 * e, noise=0.01),
    # validation loss rises late (YOLO's val loss) while mAP still improves
    "val-up-map-up": _run(80, lambda e: 4 + 2 * math.exp(-e / 8) + 0.004 * max(0, e - 30),
                          train=lambda e: 5 * math.exp(-e / 40) + 2, maps=lambda e: 0.5 + 0.4 * (1 - math.exp(-e / 40)),
                          noise=0.01),
    # a noisy loss (+-20%) with mAP rising
    "noisy-loss-map-up": _run(40, lambda e: 2.0, maps=lambda e: 0.1 + 0.015 * e, noise=0.2, seed=3),
    # constant LR, a healthy exponential decay
    "constant-lr-exp": _run(40, lambda e: 0.3 + 1.7 * math.exp(-e / 8), lrs=lambda e: 1e-3, noise=0.01),
}


@pytest.mark.parametrize("name", sorted(HEALTHY_ELSEWHERE))
def test_a_run_that_learns_is_never_stopped_nor_sent_to_a_recipe_nor_graded_not_good_enough(name):
    epochs = HEALTHY_ELSEWHERE[name]
    n = len(epochs)
    for k in range(1, n + 1):
        v = decide(epochs[:k], "custom", n)
        assert v.status not in STOP_STATUSES and v.next_action not in recipes.RECIPES, (k, v.headline)
    assert v.status == "success", v.headline
    report = diagnose(history=epochs, epochs=n, plots=False)
    assert report.root_cause is None or report.root_cause.status != "fail", report.to_text()


def _steps(n, cuts, lr=0.02):
    return lambda e: lr * 0.1 ** sum(e > c for c in cuts)


FINISHED_STEP_SCHEDULES = {
    "torchvision-16-22-of-26": _run(26, lambda e: (0.3 + 1.2 * math.exp(-e / 4)) * (0.85 if e > 16 else 1)
                                    * (0.95 if e > 22 else 1), lrs=_steps(26, (16, 22))),
    "converged-then-cut-noisy": _run(60, lambda e: 0.4 + 1.4 * math.exp(-e / 6), lrs=_steps(60, (40, 52), 2e-4),
                                     noise=0.01),
    "three-cuts": _run(90, lambda e: (0.25 + math.exp(-e / 10)) * (0.9 if e > 60 else 1) * (0.97 if e > 75 else 1),
                       lrs=_steps(90, (60, 75, 85)), noise=0.005),
}


@pytest.mark.parametrize("name", sorted(FINISHED_STEP_SCHEDULES))
def test_a_step_schedule_that_converged_is_not_an_lr_cut_before_convergence(name):
    epochs = FINISHED_STEP_SCHEDULES[name]
    for k in range(10, len(epochs) + 1):
        v = decide(epochs[:k], "custom", len(epochs))
        codes = {v.code, *(f.code for f in v.findings)}
        assert "lr_decay_before_convergence" not in codes and not v.is_stop, (k, v.headline)


EARLY = [
    # a 5-epoch run falling 17-20% per epoch, judged at epochs 3 and 4
    ("alternative_2", _run(5, lambda e: 2.0 * 0.82 ** e), 5),
    ("alternative_1", _run(5, lambda e: 2.0 * 0.8 ** e, noise=0.02), 5),
    ("custom", _run(5, lambda e: 2.0 * 0.83 ** e), 5),
    # a 10-epoch run that fell 8% by epoch 3
    ("alternative_3", _run(10, lambda e: 1.0 * 0.973 ** e), 10),
]


@pytest.mark.parametrize("recipe,epochs,total", EARLY, ids=[f"{r}-{t}ep" for r, _, t in EARLY])
def test_no_stop_and_no_not_dropped_before_the_evidence_exists(recipe, epochs, total):
    for k in (2, 3, 4):
        v = decide(epochs[:k], recipe, total)
        assert not v.is_stop, (k, v.headline)
        assert "has not dropped" not in v.headline, (k, v.headline)


REPEATS = {
    "resumed-appended-twice": [1, 2, 3, 4, 3, 4],
    "last-epoch-twice": [1, 2, 3, 4, 5, 5],
    "out-of-order": [1, 3, 2, 4, 5],
}


@pytest.mark.parametrize("name", sorted(REPEATS))
def test_epochs_are_read_by_their_number(name):
    order = REPEATS[name]
    epochs = [{"epoch": e, "val_loss": 2.0 / e, "train_loss": 2.1 / e} for e in order]
    n = max(order)
    v = decide(epochs, "custom", n + 2)
    assert v.epoch == n and v.status not in ("success", "partial", "fail")  # not graded: 2 epochs remain
    assert decide(epochs, "custom", n).rule_id == "final_own_evidence"  # graded once the last number is reached


LOW_LR = {
    "adamw-1e-7-flat": _run(12, lambda e: 1.0, lrs=lambda e: 1e-7, noise=0.005),
    "sgd-5e-8-flat": _run(20, lambda e: 3.0 * (1 - 0.0005 * e), lrs=lambda e: 5e-8, noise=0.003),
    "plateau-scheduler-to-1e-8": _run(30, lambda e: 1.0 + 0.8 * math.exp(-e / 3),
                                      lrs=lambda e: 1e-4 * 0.1 ** min(4, max(0, (e - 8) // 3))),
}


@pytest.mark.parametrize("name", sorted(LOW_LR))
def test_a_flat_curve_at_an_lr_below_any_detectors_range_is_lr_too_low(name):
    epochs = LOW_LR[name]
    v = decide(epochs, "custom", len(epochs) + 10)
    assert v.code == "lr_too_low" and v.next_action == "alternative_3", v.headline
    assert "below the range" in v.headline or "below the range" in v.rule_text


def test_a_head_wider_than_the_classes_is_a_warning_at_most():
    from nbdetect.checks.checks_labels import check_labels
    from nbdetect.checks.data_scan import SampleInfo, Scan

    import numpy as np

    class Info:
        num_classes, family = 5, "retinanet"

    box = np.array([[1.0, 1.0, 9.0, 9.0]])
    scan = Scan(samples=[SampleInfo(i, 32, 32, box, np.array([1 + i % 3])) for i in range(9)], n_total=9)
    found = check_labels(scan, Info(), num_classes=3)
    mismatch = [f for f in found if f.code == "num_classes_mismatch"]
    assert mismatch and mismatch[0].status == "warn"


def test_one_class_too_few_is_not_called_shifted_from_a_partial_scan():
    from nbdetect.checks.checks_labels import check_labels
    from nbdetect.checks.data_scan import SampleInfo, Scan

    import numpy as np

    class Info:
        num_classes, family = 2, "retinanet"

    # labels 1..3 in the data, the model built for 2 classes; the scanned part happens to lack label 1
    box = np.array([[1.0, 1.0, 9.0, 9.0]])
    partial = Scan(samples=[SampleInfo(i, 32, 32, box, np.array([2 + i % 2])) for i in range(6)], n_total=60)
    codes = [f.code for f in check_labels(partial, Info()) if f.status == "fail"]
    assert "num_classes_too_small" in codes and "labels_shifted" not in codes
