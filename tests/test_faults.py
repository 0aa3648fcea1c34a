"""Faults at every stage of a run end in a terminal state with the error kept, the run guard released, no
half-written files, and the last good checkpoint intact; non-finite values never reach the weights."""
import math
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader

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


@pytest.mark.parametrize("delay", [1.5, 2.5, 3.5])
def test_sigkill_at_any_moment_leaves_a_loadable_checkpoint_or_none(tmp_path, delay):
    """SIGKILL a training process while it writes checkpoints every epoch: last.pt is always whole."""
    code = KILLER.format(tests=os.path.dirname(__file__), out=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if (tmp_path / "last.pt").exists():
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


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_iteration_end(self, run, rec):
        if rec["step"] == self.step:
            run.stop()


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
