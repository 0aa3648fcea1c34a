"""Faults at every stage of a run end in a terminal state with the error kept, the run guard released, no
half-written files, and the last good checkpoint intact; non-finite values never reach the weights."""
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from torch.utils.data import DataLoader

from test_trainer import StopAt
from toy_data import collate, toy_samples
from nbdetect import engine, run_guard
from nbdetect.callbacks import Callback
from nbdetect.checkpoint import load_checkpoint
from nbdetect.models import build_model
from nbdetect.recipes import ALTERNATIVE_1
from nbdetect.trainer import TrainingRun


def make_run(out_dir, epochs=2, callbacks=()):
    torch.manual_seed(0)
    model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    loader = DataLoader(toy_samples(8), batch_size=4, shuffle=False, collate_fn=collate)
    return TrainingRun(model, loader, loader, recipe=ALTERNATIVE_1.replace(epochs=epochs, warmup_epochs=0),
                       out_dir=out_dir, eval_map_every=0, tensorboard=False, callbacks=callbacks)


class FailAt(Callback):
    critical = True

    def __init__(self, event, when=1):
        self.event, self.when, self.seen = event, when, 0

    def __getattribute__(self, name):
        if name.startswith("on_") and name == object.__getattribute__(self, "event"):
            def fail(*args):
                self.seen += 1
                if self.seen >= self.when:
                    raise OSError(f"injected failure at {name}")
            return fail
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("event,when", [("on_run_start", 1), ("on_epoch_start", 2), ("on_iteration_end", 3),
                                        ("on_validation_end", 1), ("on_epoch_end", 2)])
def test_a_failure_at_any_stage_ends_failed_and_releases_everything(tmp_path, event, when):
    run = make_run(tmp_path, callbacks=[FailAt(event, when)])
    run_guard.claim(run)
    with pytest.raises(OSError, match="injected failure"):
        run.run()
    assert run.status == "failed" and not run.is_active and "injected failure" in run.message
    assert run_guard.active_run() is None  # the next cell can start a run
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / ".lock").exists()
    assert run.verdict.status == "fail" and "injected failure" in run.verdict.headline
    if run.last_checkpoint is not None:  # what it saved on failure loads
        assert load_checkpoint(run.last_checkpoint)["step"] == run.step


def test_a_nan_validation_loss_fails_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    run = make_run(tmp_path, epochs=3)
    real = engine.evaluate_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        loss, parts = real(*args, **kwargs)
        return (math.nan, parts) if calls["n"] == 2 else (loss, parts)

    monkeypatch.setattr(engine, "evaluate_loss", flaky)
    with pytest.raises(engine.NonFiniteLossError, match="validation loss became nan after epoch 2"):
        run.run()
    assert run.status == "failed" and run.verdict.rule_id == "nonfinite"
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # the epoch-1 checkpoint, intact


def test_non_finite_gradients_with_a_finite_loss_never_reach_the_weights(tmp_path):
    run = make_run(tmp_path, epochs=1)
    param = next(p for p in run.model.parameters() if p.requires_grad)
    before = {k: v.detach().clone() for k, v in run.model.named_parameters()}
    param.register_hook(lambda g: g * float("nan"))
    with pytest.raises(engine.NonFiniteLossError, match="gradients became nan"):
        run.run()
    after = dict(run.model.named_parameters())
    assert all(torch.equal(before[k], after[k].detach()) for k in before)  # the poisoned step was not taken
    assert run.step == 0


KILLER = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_faults import make_run
    run = make_run({out!r}, epochs=200)
    run.run()
""")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.4, 1.1])
def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path, delay):
    """SIGKILL a training process while it writes checkpoints every epoch, ``delay`` seconds after its first
    last.pt appeared (so the kill lands during later epochs and their writes): last.pt is whole every time."""
    code = KILLER.format(tests=os.path.dirname(__file__), out=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "last.pt").exists():
            assert proc.poll() is None, f"the training process ended ({proc.returncode}) before its first checkpoint"
            assert time.monotonic() < deadline, "no last.pt within 180 s"
            time.sleep(0.05)
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["format"] == "nbdetect-checkpoint-1" and state["step"] >= 1
    resumed = make_run(tmp_path, epochs=200)
    resumed.resume_from(tmp_path / "last.pt")
    assert resumed.step == state["step"]
    # the half-written temp files of the kill are removed when a run takes the folder again
    resumed.epochs = resumed.epoch  # nothing left to train: start and end at once
    resumed.total_steps = resumed.step
    resumed.run()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("recipe,preset,workers", [("alternative_1", "retinanet_tiny", 0),
                                                    ("alternative_2", "fasterrcnn_tiny", 0),
                                                    ("seed_multistep", "retinanet_tiny", 1)])
def test_a_users_shuffled_dataloader_resumes_mid_epoch_exactly(tmp_path, recipe, preset, workers, capsys):
    import nbdetect

    def loader():
        return DataLoader(toy_samples(8), batch_size=2, shuffle=True, collate_fn=collate, num_workers=workers)

    kw = dict(num_classes=2, epochs=2, preset=preset, weights=None, monitor=False, device="cpu", image_size=96,
              eval_map_every=0)
    fn = getattr(nbdetect, recipe)
    torch.manual_seed(0)
    full = fn(loader(), None, out_dir=tmp_path / "full", **kw)
    assert "rebuilt around a resumable sampler" in capsys.readouterr().out
    part = fn(loader(), None, out_dir=tmp_path / "part", callbacks=[StopAt(3)], **kw)  # mid epoch 1 of 4 steps
    assert part.status == "stopped" and part.iteration == 3
    torch.manual_seed(123)  # a different global RNG state: everything must come from the checkpoint
    resumed = fn(loader(), None, out_dir=tmp_path / "part", resume=True, **kw)
    assert resumed.status == "finished"
    assert [r["loss"] for r in resumed.history.iterations] == pytest.approx(
        [r["loss"] for r in full.history.iterations], rel=1e-5)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


class FixedBoxes(torch.nn.Module):
    """A stand-in detector: for an image W x H it finds one box at [W/4, H/4, W/2, H/2] (label 1) and one
    background-slot box (label 0), as a torchvision model returns them: in the input image's pixels."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        out = []
        for im in images:
            h, w = im.shape[-2:]
            out.append({"boxes": torch.tensor([[w / 4, h / 4, w / 2, h / 2], [0.0, 0.0, 5.0, 5.0]]),
                        "scores": torch.tensor([0.9, 0.95]), "labels": torch.tensor([1, 0])})
        return out


def test_submission_boxes_are_in_original_pixels_csv_and_coco_agree_and_no_background(tmp_path):
    import csv
    import json

    from PIL import Image

    import nbdetect

    sizes = {"wide.png": (640, 200), "tall.png": (120, 480), "small.png": (33, 17)}
    folder = tmp_path / "test_images"
    folder.mkdir()
    for name, (w, h) in sizes.items():
        Image.new("RGB", (w, h)).save(folder / name)
    out = nbdetect.make_submission(FixedBoxes(), folder, tmp_path / "sub", score_threshold=0.5)
    rows = list(csv.DictReader(open(out["csv"])))
    coco = json.loads(out["coco_json"].read_text())
    assert out["boxes"] == len(rows) == len(coco) == 3  # one per image; the background-slot boxes dropped
    for row, res in zip(rows, coco):
        w, h = sizes[row["file_name"]]
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        assert abs(x1 - w / 4) <= 1 and abs(y1 - h / 4) <= 1 and abs(x2 - w / 2) <= 1 and abs(y2 - h / 2) <= 1
        bx, by, bw, bh = res["bbox"]
        assert abs(bx - x1) <= 0.01 and abs(by - y1) <= 0.01 and abs(bx + bw - x2) <= 0.01 and abs(by + bh - y2) <= 0.01
        assert row["label"] == "1" and res["category_id"] == 1


@pytest.mark.slow
def test_alternative_3_resumes_mid_epoch_exactly_with_a_shuffled_user_loader(tmp_path):
    import nbdetect

    def pair():
        torch.manual_seed(0)
        model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
        return model, torch.optim.AdamW(model.parameters(), lr=2e-5)

    def loader():
        return DataLoader(toy_samples(8), batch_size=2, shuffle=True, collate_fn=collate)

    kw = dict(lr=1e-4, epochs=2, monitor=False, eval_map_every=0, previous_loss=2.0)
    model, opt = pair()
    full = nbdetect.alternative_3(opt, model, loader(), None, out_dir=tmp_path / "full", **kw)
    model, opt = pair()
    part = nbdetect.alternative_3(opt, model, loader(), None, out_dir=tmp_path / "part", callbacks=[StopAt(3)], **kw)
    assert part.status == "stopped" and part.step == 3
    model, opt = pair()  # a fresh kernel's objects: everything else comes from the checkpoint
    resumed = nbdetect.alternative_3(opt, model, loader(), None, out_dir=tmp_path / "part", resume=True, **kw)
    assert resumed.status == "finished"
    assert [r["loss"] for r in resumed.history.iterations] == pytest.approx(
        [r["loss"] for r in full.history.iterations], rel=1e-5)


def test_submission_summarises_hints_when_empty_and_honours_label_base(tmp_path):
    import csv
    import json

    from PIL import Image

    import nbdetect

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (64, 48)).save(folder / f"im{i}.png")
    sub = nbdetect.make_submission(FixedBoxes(), folder, tmp_path / "a", score_threshold=0.5, label_base=0)
    assert sub["boxes"] == 3 and sub["boxes_per_image"] == [1, 1, 1]
    assert {r["label"] for r in csv.DictReader(open(sub["csv"]))} == {"0"}  # 1..K written as 0..K-1
    assert {r["category_id"] for r in json.loads(sub["coco_json"].read_text())} == {0}
    ids = list(csv.DictReader(open(sub["image_ids"])))
    assert [r["file_name"] for r in ids] == ["im0.png", "im1.png", "im2.png"]  # image ids map back to files
    assert "3 boxes on 3 images" in str(sub) and "<table" in sub._repr_html_()
    assert repr(sub).startswith("<Submission 3 boxes on 3 images") and len(repr(sub)) < 1000  # not every score
    none = nbdetect.make_submission(FixedBoxes(), folder, tmp_path / "b", score_threshold=0.99)
    assert none["boxes"] == 0 and "highest score was 0.900" in none["hint"] and "0.001" in str(none)
