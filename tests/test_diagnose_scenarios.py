"""Broken-on-purpose setups: diagnose() must name the right root cause first.

Each scenario builds a small in-memory dataset and a tiny CPU detector, breaks
one thing the way students do, and checks report.root_cause / next_action.
"""
import math

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import MultiStepLR

from nbdetect import schedules
from nbdetect.checks import diagnose
from diagnose_helpers import loader, mapped, scenes, simulated_losses, tiny, train_epochs

FAST = dict(overfit_steps=10)


def assert_root(report, code, action):
    assert report.root_cause is not None, report.to_text()
    assert report.root_cause.code == code, report.to_text()
    assert report.root_cause.status == "fail", report.to_text()
    assert report.next_action == action, report.to_text()


@pytest.mark.slow
def test_images_in_0_255():
    data = mapped(scenes(), image=lambda im: im * 255.0)
    report = diagnose(tiny(), data=loader(data), **FAST)
    assert_root(report, "image_range_255", "fix_data")
    assert "255" in report.root_cause.title


def test_boxes_given_as_xywh():
    data = mapped(scenes(), boxes=lambda b, im: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1))
    report = diagnose(tiny(), data=loader(data), **FAST)
    assert_root(report, "box_xywh", "fix_data")
    assert report.root_cause.indices  # the offending samples are named
    assert report.samples and report.samples[0].code == "box_xywh"  # and drawn


@pytest.mark.slow
def test_boxes_normalised_0_1():
    data = mapped(scenes(), boxes=lambda b, im: b / im.shape[-1])
    report = diagnose(tiny(), data=loader(data), overfit=False)
    assert_root(report, "box_normalized", "fix_data")
    assert report.root_cause.indices == list(range(len(data)))


def test_labels_shifted_by_one_zero_based():
    data = mapped(scenes(num_classes=3), labels=lambda lab: lab - 1)  # YOLO-style 0..K-1
    report = diagnose(tiny(num_classes=3), data=loader(data), overfit=False)
    assert_root(report, "labels_shifted", "fix_data")
    assert "label_base=0" in report.root_cause.fix


def test_labels_zero_based_are_fine_with_label_base_0():
    data = mapped(scenes(num_classes=3), labels=lambda lab: lab - 1)
    report = diagnose(tiny(num_classes=3), data=loader(data), label_base=0, overfit=False)
    assert not any(f.check == "labels" and f.status == "fail" for f in report.findings), report.to_text()


def test_label_zero_as_a_class_with_faster_rcnn():
    data = mapped(scenes(num_classes=3), labels=lambda lab: lab - 1)
    report = diagnose(tiny("fasterrcnn_tiny", num_classes=3), data=loader(data), overfit=False)
    assert_root(report, "label_zero_background", "fix_data")
    assert "background" in report.root_cause.title


def test_num_classes_too_small():
    data = scenes(num_classes=4)
    report = diagnose(tiny(num_classes=2), data=loader(data), **FAST)
    assert_root(report, "num_classes_too_small", "fix_data")
    assert "num_classes=4" in report.root_cause.fix


def test_retinanet_head_recreated_without_prior_bias():
    model = tiny()
    head = model.head.classification_head
    old = head.cls_logits
    head.cls_logits = nn.Conv2d(old.in_channels, old.out_channels, 3, padding=1)  # default init: bias ~0
    report = diagnose(model, data=loader(scenes()), overfit=False)
    assert_root(report, "prior_bias_lost", "alternative_1")
    assert "classification loss now" in report.root_cause.evidence


@pytest.mark.slow
def test_loss_summed_over_batches():
    data = scenes(16)
    dl = loader(data, batch_size=2)
    model = tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    summed = train_epochs(model, dl, opt, epochs=2, summed=True)
    report = diagnose(model, opt, data=dl, history=summed, overfit=False)
    assert_root(report, "loss_summed_over_batches", "fix_loss_reporting")
    assert "8 batches" in report.root_cause.title


def _multistep_run(epochs_done=41):
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=2e-4)
    sched = MultiStepLR(opt, milestones=[30, 45], gamma=0.1)
    lrs = []
    for _ in range(epochs_done):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return opt, sched, simulated_losses(lrs)


def test_multistep_lr_dropping_before_convergence():
    opt, sched, val = _multistep_run()
    report = diagnose(optimizer=opt, scheduler=sched, history={"val": val}, epochs=60)
    assert_root(report, "lr_decay_before_convergence", "alternative_1")
    # the same judgement, words and numbers as the live verdict: the cut, its epoch and the goal it missed
    assert "LR too low before convergence" in report.root_cause.title
    # your own loop has no guide line: the evidence is the fall before the cut and the stall after it
    assert "(10x) at epoch 31" in report.root_cause.evidence and "validated epochs before it" in report.root_cause.evidence
    assert report.lr_timeline.per_epoch[29] == pytest.approx(2e-4)
    assert report.lr_timeline.per_epoch[30] == pytest.approx(2e-5)
    assert report.lr_timeline.per_epoch[45] == pytest.approx(2e-6)


@pytest.mark.slow
def test_lr_far_too_high_diverges():
    model = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=0.5)
    losses = simulated_losses([0.5] * 8, start=1.6, floor=0.3, speed=5.0)
    report = diagnose(model, opt, data=loader(scenes()), history=losses, overfit_steps=30, overfit_seconds=600)
    assert_root(report, "lr_too_high", "lower_lr")
    # the pipeline itself is fine: the overfit test (with a safe LR) passes
    assert report.get("overfit_ok") is not None, report.to_text()


@pytest.mark.slow
def test_healthy_setup_has_no_false_failure():
    data = scenes(8)
    dl = loader(data, batch_size=4)
    model = tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    epochs = 6
    sched = schedules.to_torch(opt, schedules.warmup_cosine(5e-4, 1e-6, epochs, len(dl), warmup_epochs=1))
    hist = train_epochs(model, dl, opt, epochs, scheduler=sched, per_iteration=True)
    report = diagnose(model, opt, sched, data=dl, history=hist, overfit_seconds=600)
    assert report.codes("fail") == [], report.to_text()
    assert not [f for f in report.problems if f.check in ("images", "boxes", "labels", "model", "loss_scale")], \
        report.to_text()
    assert report.get("overfit_ok") is not None
    assert report.lr_timeline.interval == "step"
    assert report.next_action == "continue"
    assert all(math.isfinite(x) for x in report.lr_timeline.per_epoch)
