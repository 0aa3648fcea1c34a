"""Unit tests of diagnose's parts: history readers, LR replay, curve rules, checks, report rendering."""
import csv

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as L

from diagnose_helpers import mapped, scenes, tiny
from nbdetect.checks import Finding, Report, diagnose, load_history, reconstruct
from nbdetect.checks.checks_boxes import check_boxes
from nbdetect.checks.checks_images import check_images
from nbdetect.checks.checks_labels import check_labels
from nbdetect.checks.data_scan import scan
from nbdetect.checks.model_probe import probe
from nbdetect.history import History
from nbdetect.history_files import HistoryWriter


# -- history readers -----------------------------------------------------------
def test_history_from_list_dict_and_tensors():
    h = load_history([3.0, 2.0, torch.tensor(1.5)])
    assert h.train == [3.0, 2.0, 1.5] and h.primary()[0] == "train_loss"
    h = load_history({"train": [2, 1], "val": [2.5, 1.7], "lr": [1e-3, 1e-4]})
    assert h.primary() == ("val_loss", [2.5, 1.7]) and h.has_lr()


def test_history_from_nbdetect_jsonl_and_folder(tmp_path):
    hist, writer = History(), HistoryWriter(tmp_path)
    for e in range(1, 4):
        writer.iteration(hist.log_iteration(step=e, epoch=e, lr=1e-3, loss=1.0 / e))
        writer.epoch(hist.log_epoch(epoch=e, train_loss=2.0 / e, val_loss=2.5 / e, lr=1e-3 * e), hist.epochs)
    writer.close()
    for source in (tmp_path / "history.jsonl", tmp_path, hist):
        h = load_history(source)
        assert h.train == pytest.approx([2.0, 1.0, 2 / 3])
        assert h.val == pytest.approx([2.5, 1.25, 2.5 / 3])
        assert h.lr == pytest.approx([1e-3, 2e-3, 3e-3])


def test_history_from_ultralytics_results_csv(tmp_path):
    cols = ["                  epoch", "      train/box_loss", "      train/cls_loss", "      train/dfl_loss",
            "   metrics/precision(B)", "    metrics/mAP50(B)", "        val/box_loss", "        val/cls_loss",
            "        val/dfl_loss", "               lr/pg0", "               lr/pg1"]
    rows = [[1, 1.5, 3.0, 1.2, 0.1, 0.05, 1.4, 2.8, 1.1, 0.0033, 0.0033],
            [2, 1.2, 2.0, 1.1, 0.3, 0.20, 1.3, 2.0, 1.05, 0.0030, 0.0030]]
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        w.writerows(rows)
    h = load_history(path)
    assert h.train == pytest.approx([5.7, 4.3])
    assert h.val == pytest.approx([5.3, 4.35])
    assert h.lr == pytest.approx([0.0033, 0.0030])
    assert h.components["metrics/mAP50(B)"] == pytest.approx([0.05, 0.20])
    assert h.source.startswith("Ultralytics")
    assert load_history(tmp_path).train == h.train  # a run folder holding results.csv


# -- LR timeline ---------------------------------------------------------------
SCHEDULERS = {
    "multistep": lambda o: L.MultiStepLR(o, [30, 45], 0.1),
    "step": lambda o: L.StepLR(o, 10, 0.5),
    "cosine": lambda o: L.CosineAnnealingLR(o, 60, 1e-6),
    "lambda_warmup": lambda o: L.LambdaLR(o, lambda e: min(1.0, (e + 1) / 5)),
    "onecycle": lambda o: L.OneCycleLR(o, 1e-3, total_steps=60),
    "sequential": lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.01, 1.0, 5), L.CosineAnnealingLR(o, 55, 1e-6)], [5]),
    "warm_restarts": lambda o: L.CosineAnnealingWarmRestarts(o, 10, 2),
    "chained": lambda o: L.ChainedScheduler([L.LinearLR(o, 0.1, 1.0, 5), L.ExponentialLR(o, 0.95)]),
    "cyclic": lambda o: L.CyclicLR(o, 1e-5, 1e-3, 10),
}


def _live(make, steps, train_steps=None):
    model = nn.Linear(50, 50)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    sched = make(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        model(torch.ones(1, 50)).sum().backward()
        opt.step()
        sched.step()
    return model, opt, sched, lrs


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_lr_timeline_matches_the_live_run_and_leaves_user_objects_alone(name):
    *_, reference = _live(SCHEDULERS[name], 60)
    model, opt, sched, _ = _live(SCHEDULERS[name], 41)
    weights = model.weight.detach().clone()
    lr_now = opt.param_groups[0]["lr"]
    state_now = {k: v.clone() for k, v in opt.state[model.weight].items()}
    sched_state = {k: v for k, v in sched.state_dict().items() if k != "_schedulers"}
    tl = reconstruct(opt, sched, epochs=60)
    assert tl.per_epoch == pytest.approx(reference, rel=1e-9)
    assert tl.exact
    assert torch.equal(model.weight, weights)
    assert opt.param_groups[0]["lr"] == lr_now
    assert all(torch.equal(v, opt.state[model.weight][k]) for k, v in state_now.items())
    assert {k: v for k, v in sched.state_dict().items() if k != "_schedulers"} == sched_state


def test_lr_timeline_per_iteration_scheduler_sampled_per_epoch():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = L.OneCycleLR(opt, 0.05, total_steps=10 * 7)
    for _ in range(3 * 7):
        opt.step()
        sched.step()
    tl = reconstruct(opt, sched, epochs_done=3, steps_per_epoch=7)
    assert tl.interval == "step" and len(tl.per_epoch) == 10
    assert max(tl.per_epoch) <= 0.05 + 1e-12 and tl.per_epoch[0] == pytest.approx(0.05 / 25)


def test_lr_timeline_notices_a_hand_changed_lr():
    _, opt, sched, _ = _live(SCHEDULERS["multistep"], 41)
    for g in opt.param_groups:
        g["lr"] = 1e-4  # the guide's alternative 3
    tl = reconstruct(opt, sched, epochs=60)
    assert not tl.exact and "by hand" in tl.notes[0]


# -- curve rules ---------------------------------------------------------------
def test_double_normalisation_flagged_against_the_models_transform():
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    data = mapped(scenes(), image=lambda im: (im - mean) / std)
    sc = scan(data, num_classes=2)
    with_model = check_images(sc, probe(tiny()))
    assert [f.code for f in with_model] == ["image_double_normalized"] and with_model[0].status == "fail"
    assert check_images(sc, None)[0].status == "warn"


def test_channels_last_images():
    data = mapped(scenes(4), image=lambda im: im.permute(1, 2, 0))
    found = check_images(scan(data, num_classes=2), None)
    assert "image_shape" in [f.code for f in found]


def test_degenerate_boxes_are_not_taken_for_xywh():
    def squash(b, im):
        b[0, 2] = b[0, 0]  # zero width
        return b
    data = mapped(scenes(6), boxes=squash)
    found = {f.code: f for f in check_boxes(scan(data, num_classes=2), None)}
    assert "box_xywh" not in found
    assert found["box_degenerate"].status == "fail" and found["box_degenerate"].indices == list(range(6))


def test_boxes_too_small_for_the_anchors():
    model = tiny()  # smallest anchor 12 px at a 128-px resize
    data = scenes(6, size=400, obj=(3, 5))  # 3-5 px signs, downscaled x0.32
    found = {f.code: f for f in check_boxes(scan(data, num_classes=2), probe(model))}
    f = found["box_too_small_for_anchors"]
    assert f.status == "warn" and f.indices == list(range(6)) and "smallest anchor 12 px" in f.evidence
    assert "tiles=128" in f.fix  # tiles of the model's input size keep the signs' pixels
    ok = {f.code for f in check_boxes(scan(scenes(6), num_classes=2), probe(model))}
    assert "anchors_ok" in ok


def test_diagnose_says_the_data_are_tiles_and_background_tiles_are_no_warning():
    from nbdetect.checks import diagnose
    from nbdetect.data.tiles import TileConfig, TiledDataset

    frames = scenes(4, size=400, obj=(20, 30))
    tiled = TiledDataset(frames, TileConfig(size=128, background=0.6))
    report = diagnose(tiny(), data=tiled, overfit=False, plots=False)
    boxes = [f for f in report.findings if f.check == "boxes"]
    assert boxes and all("tiles" in f.title + f.evidence for f in boxes), report.to_text()
    assert report.get("no_boxes") is None, report.to_text()


def test_class_imbalance_and_missing_classes():
    data = scenes(30, num_classes=1, per_image=1)
    data[0][1]["labels"][:] = 2
    found = {f.code: f for f in check_labels(scan(data, num_classes=3), probe(tiny(num_classes=3)))}
    assert found["class_never_present"].status == "warn" and "[3]" in found["class_never_present"].title
    assert found["class_imbalance"].status == "warn"


# -- report --------------------------------------------------------------------
def test_report_orders_fail_before_warn_and_fundamental_first():
    fs = [Finding("lr", "lr_too_low", "warn", "low"), Finding("lr", "lr_decay_before_convergence", "fail", "decay"),
          Finding("images", "image_range_255", "fail", "255"), Finding("images", "images_ok", "pass", "ok")]
    r = Report(fs)
    assert [f.code for f in r.findings] == ["image_range_255", "lr_decay_before_convergence", "lr_too_low",
                                            "images_ok"]
    assert r.root_cause.code == "image_range_255" and r.next_action == "fix_data"
    assert r.to_dict()["root_cause"] == "image_range_255"
    with pytest.raises(ValueError):
        Finding("x", "y", "bad", "t")


def test_report_html_and_text():
    data = mapped(scenes(6), boxes=lambda b, im: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1))
    hist = [1.6, 1.2, 1.0, 0.9]
    r = diagnose(tiny(), data=data, history=hist, overfit=False)
    html = r._repr_html_()
    assert "<table" in html and "#f8d7da" in html  # fail colour
    assert html.count("data:image/png;base64,") >= 2  # LR/loss plot + a drawn sample
    text = str(r)
    assert text.startswith("nbdetect diagnose report") and "Most likely root cause" in text
    assert "samples: " in text and "Skipped:" in text


def test_diagnose_with_nothing_says_what_it_skipped():
    r = diagnose()
    assert r.root_cause is None and r.next_action == "fix_input" and not r.checked  # never "continue"
    assert "Nothing to check" in r.to_text() and "Nothing to check" in r._repr_html_()
    assert len(r.skipped) >= 3 and "no model" in " ".join(r.skipped)


def test_validate_problems_without_a_diagnose_explanation_are_surfaced():
    from collections import namedtuple

    from nbdetect.checks.checks_validate import uncovered

    Problem = namedtuple("Problem", "index code message severity")
    sc = scan(scenes(4), num_classes=2)
    sc.problems = [Problem(2, "image_not_float", "sample 2: image is uint8", "error"),
                   Problem(3, "box_outside_image", "sample 3: box [0, 0, 200, 10] leaves the 96x96 image", "error")]
    explained = [Finding("boxes", "box_outside_image", "fail", "outside", indices=[3])]
    found = uncovered(sc, explained)
    assert [(f.check, f.code, f.status, f.indices) for f in found] == [("images", "image_not_float", "fail", [2])]
    assert "uint8" in found[0].evidence


def test_cli_diagnose_on_a_results_csv(tmp_path, capsys):
    from nbdetect.cli import main

    path = tmp_path / "results.csv"
    path.write_text("epoch,train/box_loss,train/cls_loss,val/box_loss,val/cls_loss,lr/pg0\n"
                    + "".join(f"{e},{1.0 + 2 ** e},1.0,{1.0 + 2 ** e},1.0,0.01\n" for e in range(1, 7)))
    code = main(["diagnose", "--history", str(path), "--html", str(tmp_path / "r.html")])
    out = capsys.readouterr().out
    assert code == 1 and "lr_too_high" in out  # the loss blows up: fail, exit status 1
    assert (tmp_path / "r.html").read_text().startswith("<div")


def test_observations_are_never_the_root_cause_but_are_listed():
    r = Report([Finding("labels", "class_imbalance", "warn", "imbalance"), Finding("images", "images_ok", "pass", "ok")])
    assert r.root_cause is None and r.next_action == "continue"
    assert [f.code for f in r.problems] == ["class_imbalance"] and "imbalance" in r.to_text()


def test_overfit_judgement():
    from nbdetect.checks.checks_overfit import judge_overfit

    base = {"error": None, "lr": 3e-4, "seconds": 1.0, "steps": 40}
    assert judge_overfit({**base, "losses": [2.0] + [0.6] * 39}).code == "overfit_ok"
    assert judge_overfit({**base, "losses": [2.0] * 40}).code == "overfit_failed"
    assert judge_overfit({**base, "losses": [2.0, 1.9]}).status == "skip"  # time budget: inconclusive
    crash = judge_overfit({**base, "losses": [], "error": "IndexError: index 5 is out of bounds"}, [0, 1])
    assert crash.code == "overfit_failed" and crash.indices == [0, 1]


def test_an_optimizer_that_misses_the_replaced_head_or_a_frozen_head_is_named():
    import torch

    from nbdetect.models import build_model

    model = build_model("retinanet_tiny", 3, weights=None)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    fine = diagnose(model=model, optimizer=opt, overfit=False, plots=False)
    assert fine.get("optimizer_ok").status == "pass"
    from torchvision.models.detection.retinanet import RetinaNetClassificationHead

    old = model.head.classification_head
    model.head.classification_head = RetinaNetClassificationHead(old.conv[0][0].in_channels, old.num_anchors, 5)
    report = diagnose(model=model, optimizer=opt, overfit=False, plots=False)  # the optimizer predates the head
    f = report.get("optimizer_misses_params")
    assert f is not None and f.status == "fail" and "head" in f.title and "classification_head" in f.evidence
    assert report.next_action == "fix_optimizer"
    for p in model.head.parameters():
        p.requires_grad = False
    frozen = diagnose(model=model, optimizer=torch.optim.AdamW([p for p in model.parameters() if p.requires_grad]),
                      overfit=False, plots=False)
    assert "frozen" in frozen.get("optimizer_misses_params").title


def test_an_lr_below_any_detectors_range_is_named_without_a_history():
    import torch

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-7)
    report = diagnose(optimizer=opt, plots=False)
    assert report.get("lr_too_low") is not None and "below the range" in report.get("lr_too_low").title


BAD_OPTIONS = {"epochs": "x", "steps_per_epoch": 0, "scheduler_interval": "batch", "batch_size": 0,
               "expected": 5, "overfit": "yes", "overfit_steps": -1, "overfit_seconds": "x", "loss_batches": 0,
               "max_samples": -1, "max_image_stats": "a", "data_seconds": -1, "plots": "no", "recipe": "alt1",
               "history_kind": "valid", "label_base": 2, "device": "gpu", "num_classes": 0}


@pytest.mark.parametrize("name", sorted(BAD_OPTIONS))
def test_a_wrong_diagnose_option_is_reported_by_name_with_its_fix_and_its_default_used(name):
    """diagnose never raises on a student's input: each of its own options, given wrong, is one warning naming
    it, what was used instead and how to pass it, among the problems at the top of the report (never its root
    cause) (before: some raised a bare ValueError or RuntimeError, most were ignored without a word)."""
    kw = {"overfit": False, name: BAD_OPTIONS[name]}
    report = diagnose(tiny(), data=scenes(2), history=[5.0, 4.0, 3.0], **{"plots": False, **kw})
    found = [f for f in report.findings if f.code == "option_ignored"]
    assert len(found) == 1 and found[0].title.startswith(f"{name}=") and found[0].status == "warn", report.findings
    assert "ignored" in found[0].title and found[0].fix.startswith("pass") and f"e.g. {name}=" in found[0].fix
    assert report.root_cause is not found[0]
    head = report.to_text().split("All checks:")[0]
    assert found[0].title in head  # in the lines above the list of all checks, not only under Skipped


def test_a_right_diagnose_option_is_read_as_given():
    report = diagnose(tiny(), data=scenes(2), history=[5.0, 4.0, 3.0], overfit=False, plots=False, recipe="alternative_1",
                      history_kind="val", expected={1: (1.0, 9.0)}, scheduler_interval="epoch")
    assert not [f for f in report.findings if f.code == "option_ignored"], report.findings
    assert report.to_dict()  # the report is whole


def test_a_diagnose_option_read_in_another_type_is_noted_as_a_recipe_call_notes_it(capsys):
    report = diagnose(history=[5.0, 4.0, 3.0], epochs="12", plots=False)
    assert "nbdetect: note: epochs='12' read as 12" in capsys.readouterr().out
    assert not [f for f in report.findings if f.code == "option_ignored"]
