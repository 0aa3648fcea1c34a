"""The monitor on real (tiny) TrainingRuns in a background thread: Stop, errors, text fallback."""
import io
import time

import pytest
import torch
from torch.utils.data import DataLoader

from toy_data import collate, toy_samples
from nbdetect.checkpoint import load_checkpoint
from nbdetect.models import build_model
from nbdetect import run_guard as registry
from nbdetect.monitor import attach
from nbdetect.monitor.panel import PanelMonitor
from nbdetect.recipes import ALTERNATIVE_1
from nbdetect.trainer import TrainingRun


def make_run(out_dir, epochs=2, n=8):
    torch.manual_seed(0)
    model = build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    loader = DataLoader(toy_samples(n), batch_size=4, shuffle=False, collate_fn=collate)
    recipe = ALTERNATIVE_1.replace(preset="retinanet_tiny", epochs=epochs, warmup_epochs=0.5)
    return TrainingRun(model, loader, loader, recipe=recipe, out_dir=out_dir, eval_map_every=0, tensorboard=False,
                       device="cpu")


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    registry.stop_all(timeout=30)
    with registry._LOCK:
        registry._RUNS.clear()


@pytest.mark.slow
def test_panel_stop_button_stops_a_background_run_with_a_checkpoint(tmp_path):
    run = make_run(tmp_path, epochs=200)
    registry.claim(run)  # what a cell does before showing the panel
    assert attach(run, mode="panel", display=False) == "panel"
    mon = run.monitor
    assert isinstance(mon, PanelMonitor) and mon.image.value  # planned LR drawn before the first iteration
    run.start()
    deadline = time.monotonic() + 120
    while run.step < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.status == "running"
    with pytest.raises(RuntimeError, match="still training"):
        registry.claim(make_run(tmp_path / "second", epochs=1))
    t0 = time.monotonic()
    mon.stop_button.click()
    run.wait(timeout=60)
    assert time.monotonic() - t0 < 30 and run.status == "stopped" and run.step < run.total_steps
    assert "stopped" in mon.status.value and f"checkpoint: {run.last_checkpoint}" in mon.status.value
    state = load_checkpoint(run.last_checkpoint)
    assert state["step"] == run.step
    assert mon.bar.value == run.step
    # the final line says where it stopped, with no ETA left from the running state
    shown = mon.progress_text.value
    where = (run.epoch + 1, run.iteration) if run.iteration else (run.epoch, run.steps_per_epoch)  # mid-epoch or not
    assert f"epoch {where[0]}/200 | iteration {where[1]}/2" in shown, shown
    assert run.where() in mon.status.value
    assert "ETA" not in shown and "stopped after" in shown, shown
    assert registry.active_run() is None  # the stopped run released itself
    registry.claim(make_run(tmp_path / "third", epochs=1))  # no longer blocks


@pytest.mark.slow
def test_training_error_shows_in_panel_and_wait_reraises(tmp_path):
    run = make_run(tmp_path, epochs=1)
    attach(run, mode="panel", display=False)

    def broken(*args, **kwargs):
        raise ValueError("boom in the training thread")

    run.model.forward = broken
    run.start()
    with pytest.raises(ValueError, match="boom"):
        run.wait(timeout=60)
    assert "failed" in run.monitor.status.value and "boom in the training thread" in run.monitor.status.value


def test_text_mode_on_a_real_run(tmp_path):
    out = io.StringIO()
    run = make_run(tmp_path, epochs=2)
    assert attach(run, mode="text", stream=out) == "text"
    run.run()
    text = out.getvalue()
    assert "epoch 1/2: train loss" in text and "epoch 2/2: train loss" in text
    assert "verdict:" in text and "finished" in text.splitlines()[-1]


@pytest.mark.slow
def test_a_finished_run_shows_its_last_epoch_complete_and_no_eta(tmp_path):
    run = make_run(tmp_path, epochs=2)
    attach(run, mode="panel", display=False)
    run.run()
    p = run.progress()
    assert (p["epoch"], p["iteration"], p["step"]) == (2, run.steps_per_epoch, run.total_steps)
    assert p["eta_s"] != p["eta_s"] and p["images_per_s"] > 0  # NaN ETA, the run's mean images/s
    shown = run.monitor.progress_text.value
    assert "epoch 2/2" in shown and f"iteration {run.steps_per_epoch}/{run.steps_per_epoch}" in shown, shown
    assert "finished after" in shown and "ETA" not in shown, shown
