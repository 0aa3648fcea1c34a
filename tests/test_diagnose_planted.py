"""Planted bugs in student notebook states, and healthy states: diagnose() names the root cause and next step.

Each state is what a student's notebook holds after a bad (or good) run: a Dataset, a model, an optimizer and
scheduler, and the per-epoch losses it printed (as a list, a dict, or a history file in several formats).
"""
import csv
import json
import math

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, MultiStepLR, OneCycleLR, ReduceLROnPlateau

from diagnose_helpers import loader, mapped, scenes, simulated_losses, tiny
from nbdetect import actions
from nbdetect.checks import diagnose

QUICK = dict(overfit=False, plots=False)


def _opt(lr=2e-4, kind=torch.optim.AdamW):
    return kind([nn.Parameter(torch.zeros(1))], lr=lr)


def _stepped(sched, opt, n, metric=None):
    lrs = []
    for i in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(metric[i]) if metric is not None else sched.step()
    return lrs


def _healthy_losses(n=30, start=1.7, end=0.3):
    return [end + (start - end) * math.exp(-0.15 * e) for e in range(1, n + 1)]


def _write_jsonl(path, records):
    with open(path, "w") as fh:
        for r in records:
            fh.write(json.dumps({"type": "epoch", **r}) + "\n")
    return path


def _write_results_csv(path, train, val):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "train/box_loss", "train/cls_loss", "val/box_loss", "val/cls_loss", "lr/pg0"])
        for i, (t, v) in enumerate(zip(train, val)):
            w.writerow([i + 1, t / 2, t / 2, v / 2, v / 2, 0.01])
    return path


def s_images_255(tmp):
    return dict(model=tiny(), data=loader(mapped(scenes(), image=lambda im: im * 255.0)))


def s_channels_last(tmp):
    return dict(model=tiny(), data=mapped(scenes(), image=lambda im: im.permute(1, 2, 0).contiguous()))


def s_normalized_twice(tmp):
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return dict(model=tiny(), data=mapped(scenes(), image=lambda im: (im - mean) / std))


def s_uint8(tmp):
    return dict(model=tiny(), data=mapped(scenes(), image=lambda im: (im * 255).to(torch.uint8)))


def s_xywh(tmp):
    return dict(model=tiny(), data=mapped(scenes(), boxes=lambda b, im: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1)))


def s_normalized_boxes(tmp):
    return dict(model=tiny(), data=mapped(scenes(), boxes=lambda b, im: b / 96.0))


def s_boxes_not_resized(tmp):
    import torch.nn.functional as F

    return dict(model=tiny(), data=mapped(scenes(), image=lambda im: F.interpolate(im[None], size=(48, 48))[0]))


def s_degenerate(tmp):
    def squash(b, im):
        b[:, 2] = b[:, 0]
        return b
    return dict(model=tiny(), data=mapped(scenes(), boxes=squash))


def s_labels_zero_based_retina(tmp):
    return dict(model=tiny(), data=mapped(scenes(), labels=lambda l: l - 1))


def s_label_zero_fasterrcnn(tmp):
    return dict(model=tiny("fasterrcnn_tiny"), data=mapped(scenes(), labels=lambda l: l - 1))


def s_one_class_too_few(tmp):
    return dict(model=tiny(num_classes=1), data=scenes(num_classes=2))


def s_negative_labels(tmp):
    return dict(model=tiny(), data=mapped(scenes(), labels=lambda l: -l))


def s_prior_bias_zeroed(tmp):
    m = tiny()
    nn.init.zeros_(m.head.classification_head.cls_logits.bias)
    return dict(model=m, data=scenes())


def s_head_without_bias(tmp):
    m = tiny()
    old = m.head.classification_head.cls_logits
    m.head.classification_head.cls_logits = nn.Conv2d(old.in_channels, old.out_channels, 3, padding=1, bias=False)
    return dict(model=m, data=scenes())


def s_loss_summed(tmp):
    m, data = tiny(), loader(scenes(16), batch_size=2)  # 8 batches per epoch
    with torch.no_grad():
        m.train()
        per_batch = sum(float(sum(m(list(i), list(t)).values())) for i, t in data) / len(data)
    return dict(model=m, data=data, history=[per_batch * 8 * f for f in (1.0, 0.97, 0.95, 0.94)])


def s_val_loss_summed(tmp):
    """The AS4 notebook: val_losses summed over the validation loader's batches (not the training loader's)."""
    m, train, val = tiny(), loader(scenes(16), batch_size=2), loader(scenes(8, seed=1), batch_size=2)
    with torch.no_grad():
        m.train()
        per_batch = sum(float(sum(m(list(i), list(t)).values())) for i, t in val) / len(val)
    return dict(model=m, data=train, val_data=val, history_kind="val",
                history=[per_batch * len(val) * f for f in (1.0, 0.97, 0.95, 0.94)])


def s_multistep_early(tmp):
    opt = _opt()
    sched = MultiStepLR(opt, milestones=[30, 45], gamma=0.1)
    lrs = _stepped(sched, opt, 41)
    return dict(optimizer=opt, scheduler=sched, history={"val": simulated_losses(lrs)}, epochs=60)


def s_plateau_scheduler_stuck(tmp):
    opt = _opt(1e-4)
    sched = ReduceLROnPlateau(opt, factor=0.1, patience=2)
    val = [1.7 * max(0.5, 0.9 ** e) for e in range(40)]  # stuck at half the start, far above any goal
    lrs = _stepped(sched, opt, 40, metric=val)
    return dict(optimizer=opt, scheduler=sched, history={"val": val, "lr": lrs}, epochs=60)


def s_onecycle_diverges(tmp):
    opt = _opt(0.05)
    sched = OneCycleLR(opt, max_lr=0.5, total_steps=30)
    lrs = _stepped(sched, opt, 12)
    return dict(optimizer=opt, scheduler=sched, history=simulated_losses(lrs, start=1.6, floor=0.3, speed=8.0))


def s_lambda_not_learning(tmp):
    opt = _opt(1e-4)
    sched = LambdaLR(opt, lambda e: 1.0)
    _stepped(sched, opt, 20)
    return dict(optimizer=opt, scheduler=sched, history=[1.7 * (1 - 0.002 * e) for e in range(20)], epochs=50)


def s_jsonl_nan(tmp):
    recs = [{"epoch": e, "train_loss": v, "val_loss": v, "lr": 5e-4} for e, v in enumerate(_healthy_losses(6), 1)]
    recs.append({"epoch": 7, "train_loss": float("nan"), "val_loss": float("nan"), "lr": 5e-4})
    return dict(history=str(_write_jsonl(tmp / "history.jsonl", recs)))


def s_ultralytics_overfitting(tmp):
    train = [2.0 * 0.93 ** e for e in range(30)]
    val = [max(0.9, 2.0 * 0.9 ** e) * (1 + 0.05 * max(0, e - 12)) for e in range(30)]
    return dict(history=str(_write_results_csv(tmp / "results.csv", train, val)), epochs=60)


def s_history_file_missing(tmp):
    return dict(model=tiny(), data=scenes(), history=str(tmp / "no_such_history.jsonl"))


def s_crawl_after_cut(tmp):
    opt = _opt()
    sched = MultiStepLR(opt, milestones=[20], gamma=0.1)
    _stepped(sched, opt, 35)
    val = [1.0 - 0.025 * e if e <= 20 else 0.5 * 0.99 ** (e - 20) for e in range(1, 36)]
    return dict(optimizer=opt, scheduler=sched, history={"val": val}, epochs=50)


PLANTED = [  # (state, root cause code, next action)
    (s_images_255, "image_range_255", "fix_data"),
    (s_channels_last, "image_shape", "fix_data"),
    (s_normalized_twice, "image_double_normalized", "fix_data"),
    (s_uint8, "image_dtype", "fix_data"),
    (s_xywh, "box_xywh", "fix_data"),
    (s_normalized_boxes, "box_normalized", "fix_data"),
    (s_boxes_not_resized, "box_outside_image", "fix_data"),
    (s_degenerate, "box_degenerate", "fix_data"),
    (s_labels_zero_based_retina, "labels_shifted", "fix_data"),
    (s_label_zero_fasterrcnn, "label_zero_background", "fix_data"),
    (s_one_class_too_few, "num_classes_too_small", "fix_data"),
    (s_negative_labels, "label_out_of_range", "fix_data"),
    (s_prior_bias_zeroed, "prior_bias_lost", "alternative_1"),
    (s_head_without_bias, "prior_bias_lost", "alternative_1"),
    (s_loss_summed, "loss_summed_over_batches", "fix_loss_reporting"),
    (s_val_loss_summed, "loss_summed_over_batches", "fix_loss_reporting"),
    (s_multistep_early, "lr_decay_before_convergence", "alternative_1"),
    (s_plateau_scheduler_stuck, "lr_too_low", "alternative_3"),
    (s_onecycle_diverges, "lr_too_high", "lower_lr"),
    (s_lambda_not_learning, "loss_plateau", "fix_data"),  # inside diagnose(): check the data, never "diagnose"
    (s_jsonl_nan, "lr_too_high", "fix_data"),
    (s_ultralytics_overfitting, "overfitting", "use_best"),
    (s_crawl_after_cut, "lr_decay_before_convergence", "alternative_1"),
]


@pytest.mark.slow
@pytest.mark.parametrize("state,code,action", PLANTED, ids=[s.__name__[2:] for s, _, _ in PLANTED])
def test_a_planted_bug_is_the_root_cause_with_the_right_next_step(state, code, action, tmp_path):
    report = diagnose(**state(tmp_path), **QUICK)
    assert report.root_cause is not None, report.to_text()
    assert report.root_cause.code == code, report.to_text()
    assert report.next_action == action, report.to_text()
    assert action in actions.ACTIONS and report.next_action_text
    assert report.root_cause.evidence  # the numbers behind it


def test_a_missing_history_file_is_reported_not_raised(tmp_path):
    report = diagnose(**s_history_file_missing(tmp_path), **QUICK)
    assert any("history could not be read" in s and "no_such_history" in s for s in report.skipped)
    assert report.checked and report.to_text()


def test_a_live_reduce_on_plateau_gives_no_nan_lr(tmp_path):
    report = diagnose(**s_plateau_scheduler_stuck(tmp_path), **QUICK)
    text = report.to_text()
    assert "nan" not in report.root_cause.evidence.lower(), text
    assert "of its peak" in report.root_cause.evidence


def test_bad_arguments_are_reported_not_raised(tmp_path):
    report = diagnose(model=tiny(), data=scenes(), num_classes="x", **QUICK)
    assert any(f.code == "option_ignored" and "num_classes='x'" in f.title for f in report.findings)
    empty = diagnose(data=[], **QUICK)
    assert any("data is empty" in s for s in empty.skipped) and empty.next_action != "continue"


def h_clean_retina(tmp):
    opt = _opt(5e-4)
    return dict(model=tiny(), data=loader(scenes()), optimizer=opt, history={"val": _healthy_losses(12)}, epochs=30)


def h_clean_fasterrcnn(tmp):
    return dict(model=tiny("fasterrcnn_tiny"), data=scenes(), history=_healthy_losses(10), epochs=40)


def h_finished_step_schedule(tmp):
    opt = _opt(0.02, torch.optim.SGD)  # torchvision's reference recipe: SGD 0.02, cuts at 16 and 22 of 26
    sched = MultiStepLR(opt, milestones=[16, 22], gamma=0.1)
    _stepped(sched, opt, 26)
    val = []
    for e in range(1, 27):
        v = 0.12 + 0.88 * math.exp(-0.25 * e)
        val.append(v * (0.8 if e > 16 else 1) * (0.92 if e > 22 else 1))
    return dict(optimizer=opt, scheduler=sched, history={"val": val}, epochs=26)


def h_validated_every_other_epoch(tmp):
    vals = _healthy_losses(20)
    recs = [{"epoch": e, "train_loss": v * 1.05, "val_loss": v if e % 2 == 0 else float("nan"), "lr": 5e-4}
            for e, v in enumerate(vals, 1)]
    return dict(history=str(_write_jsonl(tmp / "history.jsonl", recs)), epochs=40)


def h_plateau_scheduler_healthy(tmp):
    opt = _opt(1e-3)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=3)
    val = _healthy_losses(25, end=0.1)
    lrs = _stepped(sched, opt, 25, metric=val)
    return dict(optimizer=opt, scheduler=sched, history={"val": val, "lr": lrs}, epochs=40)


def h_ultralytics_healthy(tmp):
    train = _healthy_losses(30, start=4.0, end=0.8)
    val = _healthy_losses(30, start=4.2, end=0.9)
    return dict(history=str(_write_results_csv(tmp / "results.csv", train, val)), epochs=60)


def h_quick_overfit_check(tmp):
    return dict(model=tiny(), data=loader(scenes()), overfit=True, overfit_steps=6, plots=False)


HEALTHY = [h_clean_retina, h_clean_fasterrcnn, h_finished_step_schedule, h_validated_every_other_epoch,
           h_plateau_scheduler_healthy, h_ultralytics_healthy, h_quick_overfit_check]


@pytest.mark.slow
@pytest.mark.parametrize("state", HEALTHY, ids=[s.__name__[2:] for s in HEALTHY])
def test_a_healthy_state_gets_no_false_alarm(state, tmp_path):
    kwargs = {**QUICK, **state(tmp_path)}
    report = diagnose(**kwargs)
    assert report.codes("fail") == [], report.to_text()
    assert report.root_cause is None, report.to_text()
    assert report.next_action == "continue", report.to_text()


@pytest.mark.slow
def test_a_validation_loss_is_named_and_scaled_by_its_own_loader(tmp_path):
    report = diagnose(**s_val_loss_summed(tmp_path), **QUICK)
    assert "val loss is summed over the 4 batches of the validation loader" in report.root_cause.title
    assert report.history.val and not report.history.train  # the list was named what it is
