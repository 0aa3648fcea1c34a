"""Monitor: plots, text fallback, panel widget state, Stop, concurrent-run refusal (no kernel needed)."""
import io
import math
import struct
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from nbdetect.history import History
from nbdetect import run_guard as registry
from nbdetect.monitor import attach, choose_mode, headless_monitor
from nbdetect.monitor.core import format_duration, progress_line
from nbdetect.monitor.panel import PanelMonitor
from nbdetect.monitor.plots import comparison_png, render_png, smooth
from nbdetect.monitor.text import TextMonitor
from verdict_histories import flat_bad_data, healthy


class FakeRun:
    """What the monitor reads from a TrainingRun: history, counters, status, stop_event, planned_lr."""

    def __init__(self, name="alternative_1", epochs=10, steps_per_epoch=20, out_dir="/tmp/nbdetect-fake"):
        self.recipe = SimpleNamespace(name=name, title=f"{name} (fake)", describe=lambda: f"{name} fake recipe")
        self.history = History(max_points=64)
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.total_steps = epochs * steps_per_epoch
        self.planned_lr = [5e-4 * 0.5 * (1 + math.cos(math.pi * i / self.total_steps)) + 1e-6
                           for i in range(self.total_steps)]
        self.epoch = self.iteration = self.step = 0
        self.status, self.message, self.error = "pending", "", None
        self.out_dir = Path(out_dir)
        self.last_checkpoint = self.best_checkpoint = None
        self.stop_event = threading.Event()
        self.callbacks = []
        self.meta = {}

    @property
    def is_active(self):
        return self.status in ("running", "stopping")

    def stop(self):
        if self.status == "running":
            self.status = "stopping"
        self.stop_event.set()

    def wait(self, timeout=None):
        return self

    def progress(self):
        return {"epoch": self.epoch + 1, "epochs": self.epochs, "iteration": self.iteration,
                "steps_per_epoch": self.steps_per_epoch, "step": self.step, "total_steps": self.total_steps,
                "images_per_s": 12.5, "eta_s": 95.0, "status": self.status}

    def play(self, monitor, epoch_records, stop_at_step=None):
        """Drive ``monitor`` like the trainer would through ``epoch_records``."""
        self.status = "running"
        monitor.on_run_start(self)
        for rec in epoch_records:
            for i in range(self.steps_per_epoch):
                if self.stop_event.is_set():
                    self.status, self.last_checkpoint = "stopped", self.out_dir / "last.pt"
                    self.message = f"stopped at step {self.step}"
                    monitor.on_run_end(self)
                    return
                self.step += 1
                self.iteration = i + 1
                it = self.history.log_iteration(step=self.step, epoch=rec["epoch"], lr=self.planned_lr[self.step - 1],
                                                loss=rec["train_loss"] * (1.1 - 0.1 * i / self.steps_per_epoch))
                monitor.on_iteration_end(self, it)
                if stop_at_step == self.step:
                    self.stop()
            self.epoch, self.iteration = rec["epoch"], 0
            monitor.on_epoch_end(self, self.history.log_epoch(**rec))
        self.status, self.message = "finished", "finished all epochs; best checkpoint: best.pt"
        monitor.on_run_end(self)


def png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    with registry._LOCK:
        registry._RUNS.clear()


# -- plots -------------------------------------------------------------------------------------------------
def test_render_png_of_a_run_has_plausible_size():
    run = FakeRun(epochs=5)
    run.play(TextMonitor(stream=io.StringIO()), healthy(epochs=5))
    data = render_png(run)
    w, h = png_size(data)
    assert 600 <= w <= 1200 and 200 <= h <= 400 and len(data) > 10_000
    # the planned schedule alone (before training) draws too, linear LR too
    assert png_size(render_png(FakeRun(), log_lr=False))[0] == w


def test_render_png_from_history_and_comparison():
    h = History()
    for rec in healthy(epochs=4):
        h.log_iteration(step=rec["epoch"], epoch=rec["epoch"], lr=rec["lr"], loss=rec["train_loss"])
        h.log_epoch(**{**rec, "map": 0.1 * rec["epoch"], "map50": 0.2 * rec["epoch"]})
    assert png_size(render_png(h))[0] > 0
    assert png_size(comparison_png({"a": healthy(epochs=5), "b": flat_bad_data(epochs=5)}))[0] > 0


def test_smooth_is_an_average_that_skips_nan():
    s = smooth([1.0, math.nan, 1.0, 3.0], span=3)
    assert s[0] == 1.0 and s[1] == 1.0 and 1.0 < s[3] < 3.0


# -- text fallback -------------------------------------------------------------------------------------------
def test_text_monitor_prints_epochs_and_the_same_verdict():
    out = io.StringIO()
    run = FakeRun(epochs=10)
    mon = TextMonitor(stream=out, interval=0.0)
    run.play(mon, flat_bad_data(epochs=10))
    text = out.getvalue()
    assert "epoch 4/10" in text and "images/s" in text and "ETA 1m35s" in text
    assert "verdict: Stop alternative_1 and run Alternative 2" in text.replace("Alternative 1", "alternative_1") \
        or "verdict: Stop Alternative 1 and run Alternative 2" in text
    assert "scaled to epoch 4 of this 10-epoch run" in text  # rule text printed when the verdict changes
    assert mon.verdict.next_action == "alternative_2"
    assert text.strip().splitlines()[-1].endswith("finished all epochs; best checkpoint: best.pt")


def test_progress_helpers():
    assert format_duration(3725) == "1h02m" and format_duration(65) == "1m05s" and format_duration(math.nan) == "--"
    line = progress_line({"epoch": 2, "epochs": 5, "iteration": 3, "steps_per_epoch": 9, "images_per_s": 4.0,
                          "eta_s": 10}, loss=0.5, lr=1e-4)
    assert line == "epoch 2/5 | iteration 3/9 | loss 0.5 | lr 0.0001 | 4.0 images/s | ETA 10s"


# -- panel -----------------------------------------------------------------------------------------------------
def test_panel_widgets_follow_the_run():
    run = FakeRun(epochs=10)
    mon = PanelMonitor(min_render_interval=0.0, start_next=lambda r, action: None).bind(run)
    assert "alternative_1 (fake)" in mon.header.value and mon.bar.max == 200
    assert mon.next_button.layout.display == "none"
    run.play(mon, flat_bad_data(epochs=10))
    assert mon.bar.value == 200 and mon.bar.bar_style == "success"
    assert png_size(mon.image.value)[0] > 0 and mon.renders >= 2
    # finished: the guide's Step 4 grade (> 500/1750 of the start: try Alternative 2)
    assert "data-status='fail'" in mon.verdict_box.value and "Alternative 2" in mon.verdict_box.value
    # the page says which epoch the curves show and which the verdict judged (the browser test compares them)
    assert "data-epoch='10'" in mon.verdict_box.value
    assert "data-epoch='10'" in mon.curves_caption.value and "curves through epoch 10/10" in mon.curves_caption.value
    assert mon.next_button.layout.display != "none" and "Alternative 2" in mon.next_button.description
    assert "finished" in mon.status.value and mon.stop_button.disabled
    # the monitor imports no recipe code: without a starter handed in, there is no button to start one
    bare = PanelMonitor(min_render_interval=0.0).bind(FakeRun(epochs=10))
    bare.show_verdict(mon.verdict)
    assert bare.next_button.layout.display == "none"


def test_panel_healthy_run_has_no_switch_button():
    run = FakeRun(epochs=10)
    mon = PanelMonitor().bind(run)
    run.play(mon, healthy(epochs=10, rate=0.6))  # a 10-epoch run that learns at 10-epoch speed
    assert mon.verdict.status in ("success", "partial") and not mon.verdict.suggests_switch
    assert mon.next_button.layout.display == "none"


@pytest.mark.slow
def test_stop_button_sets_the_event_and_panel_says_stopped():
    run = FakeRun(epochs=10)
    mon = PanelMonitor().bind(run)
    run.status = "running"
    mon.stop_button.click()
    assert run.stop_event.is_set() and mon.stop_button.disabled and "stopping" in mon.status.value
    assert mon.stop_button.description == "stopping..."  # the click is answered at once, on the button
    run2 = FakeRun(epochs=10)
    run2.where = lambda: f"at epoch {run2.epoch + 1}, iteration {run2.iteration}"
    mon2 = PanelMonitor().bind(run2)
    run2.play(mon2, healthy(epochs=10), stop_at_step=25)
    assert run2.step == 25 and "stopped; checkpoint: /tmp/nbdetect-fake/last.pt" in mon2.status.value
    assert "data-status='stopped'" in mon2.status.value
    assert mon2.stop_button.description == "stopped at epoch 2, iteration 5, checkpoint saved"


def test_a_stop_click_as_the_run_finishes_leaves_the_finished_state_shown():
    run = FakeRun(epochs=1, steps_per_epoch=2)
    mon = PanelMonitor().bind(run)
    run.play(mon, healthy(epochs=1))
    mon._on_stop()  # the click arrived just after the run ended (it is handled in another thread)
    assert "data-status='finished'" in mon.status.value and mon.stop_button.description != "stopping..."


def test_log_lr_toggle_redraws():
    run = FakeRun(epochs=3)
    mon = PanelMonitor().bind(run)
    mon.render(run)
    before = mon.renders
    mon.log_lr_toggle.value = False
    assert mon.log_lr is False and mon.renders == before + 1 and mon.image.value != b""


def test_failed_run_shows_error_and_divergence_verdict():
    run = FakeRun(epochs=10)
    mon = PanelMonitor().bind(run)
    run.status = "running"
    mon.on_run_start(run)
    for rec in healthy(epochs=2):
        mon.on_epoch_end(run, run.history.log_epoch(**rec))

    class NonFiniteLossError(RuntimeError):
        pass

    run.status, run.error = "failed", NonFiniteLossError("the loss became nan at epoch 3")
    run.message = f"Training stopped: {run.error}"
    mon.on_run_end(run)
    assert "failed" in mon.status.value and "nan at epoch 3" in mon.status.value
    assert mon.verdict.rule_id == "nonfinite" and "Diverged" in mon.verdict_box.value


class Clock:
    """A fake monotonic clock, moved on by the test."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Recorder(PanelMonitor):
    """The panel, recording what it shows in order: ("curves", drawn epoch, title) and ("verdict", verdict)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.shown = []
        self.where = "run"  # which hook is running: "iteration", "epoch end", "run end"
        self.drawn_in = []  # the hook each drawing was made in
        self.budget_at_iteration_drawings = []  # (seconds spent drawing, seconds since the run started) before each

    def render(self, run=None, force=True):
        if self.where == "iteration":
            self.budget_at_iteration_drawings.append((self._spent, self.clock() - self._started))
        return super().render(run, force)

    def show_curves(self, png):
        super().show_curves(png)
        self.shown.append(("curves", self.drawn_epoch, self.plot.title.get_text()))
        self.drawn_in.append(self.where)

    def show_verdict(self, verdict):
        super().show_verdict(verdict)
        self.shown.append(("verdict", verdict))

    def on_iteration_end(self, run, rec):
        self.where = "iteration"
        super().on_iteration_end(run, rec)

    def on_epoch_end(self, run, rec):
        self.where = "epoch end"
        super().on_epoch_end(run, rec)
        assert self.drawn_epoch == rec["epoch"] == len(run.history.epochs)  # drawn by the epoch end itself
        assert f"curves through epoch {rec['epoch']}/{run.epochs}" in self.plot.title.get_text()
        assert self.shown[-1][0] == "verdict" and self.shown[-2][0] == "curves"  # curves first, then the text

    def on_run_end(self, run):
        self.where = "run end"
        super().on_run_end(run)


def cited_epochs(verdict) -> list[int]:
    """The epochs of this run a verdict's text says its numbers come from (not the checks it plans ahead)."""
    import re

    text = f"{verdict.headline} {verdict.rule_text}"
    return ([int(n) for n in re.findall(r"now epoch (\d+)", text)]
            + [int(n) for n in re.findall(r"epoch (\d+) itself", text)]
            + [int(n) for n in re.findall(r"over the last (\d+) validated epochs", text)]
            + [int(n) for n in re.findall(r"val loss \((\d+) validated epochs\)", text)])


def costly_drawings(monkeypatch, clock, seconds):
    """Every drawing advances the fake clock by ``seconds``."""
    from nbdetect.monitor import plots

    real = plots.CurvePlot.update

    def update(self, *args, **kwargs):
        clock.t += seconds
        return real(self, *args, **kwargs)

    monkeypatch.setattr(plots.CurvePlot, "update", update)


@pytest.mark.parametrize("seconds_per_epoch", [0.5, 3.0, 30.0, 300.0])
def test_every_epoch_end_is_drawn_before_its_verdict_and_iterations_stay_on_the_budget(seconds_per_epoch,
                                                                                        monkeypatch):
    """Whatever an epoch lasts, its end is drawn at the epoch end, before the verdict that cites it; redraws
    inside epochs take what the 1% budget leaves (none when epoch ends alone use it up)."""
    draw_s = 0.2  # every drawing costs 0.2 s on the fake clock
    run = FakeRun(epochs=8, steps_per_epoch=10)
    clock = Clock()
    costly_drawings(monkeypatch, clock, draw_s)
    mon = Recorder(clock=clock, min_render_interval=0.0)
    on_iteration_end = mon.on_iteration_end

    def iteration(run_, rec):  # each of the 10 iterations of an epoch takes a tenth of it
        clock.t += seconds_per_epoch / 10
        on_iteration_end(run_, rec)

    mon.on_iteration_end = iteration
    mon.render(run)  # the planned LR, drawn as attach() draws it before the run starts
    mon.drawn_in.clear()
    start = clock.t
    run.play(mon, healthy(epochs=8))  # Recorder.on_epoch_end asserts the drawing at each epoch end
    assert mon.drawn_in.count("epoch end") == 8
    drawn = -1
    for item in mon.shown:  # every verdict cites only epochs the curves then on show include
        if item[0] == "curves":
            drawn = item[1]
        else:
            verdict = item[1]
            assert verdict.epoch <= drawn and all(e <= drawn for e in cited_epochs(verdict)), (drawn, verdict)
    assert any(cited_epochs(item[1]) for item in mon.shown if item[0] == "verdict")  # the check saw citations
    elapsed = clock.t - start
    inside = mon.drawn_in.count("iteration")
    # a drawing inside an epoch only while all drawing so far (epoch ends included) is within 1% of the time
    assert len(mon.budget_at_iteration_drawings) == inside
    assert all(spent <= 0.01 * since + 1e-9 for spent, since in mon.budget_at_iteration_drawings)
    assert inside * draw_s <= 0.01 * elapsed + draw_s, (inside, elapsed)
    if seconds_per_epoch >= 300:  # long epochs: their per-iteration curves are redrawn inside them too
        assert inside >= 8, inside
    if seconds_per_epoch <= 3:  # epoch ends alone use up the budget: nothing more inside the epochs
        assert inside == 0, inside
    assert mon.drawn_in.count("run end") == 0  # the last epoch end already drew what the run end would
    assert "curves through epoch 8/8" in mon.image_title


def test_per_iteration_redraws_are_throttled(monkeypatch):
    run = FakeRun(epochs=3, steps_per_epoch=200)
    mon = Recorder(min_render_interval=3600.0)
    run.play(mon, healthy(epochs=3))
    assert mon.drawn_in.count("iteration") == 1  # not 600 iterations: the first only, as nothing was on show
    assert mon.drawn_in.count("epoch end") == 3  # epoch ends are drawn whatever the interval
    clock = Clock()
    costly_drawings(monkeypatch, clock, 1.0)  # 1 s per drawing: one per 100 s inside an epoch, within 1%
    mon = Recorder(clock=clock, min_render_interval=0.0)
    run = FakeRun(epochs=1, steps_per_epoch=1000)
    on_iteration_end = mon.on_iteration_end

    def iteration(run_, rec):  # 1000 iterations of 1 s
        clock.t += 1.0
        on_iteration_end(run_, rec)

    mon.on_iteration_end = iteration
    run.play(mon, healthy(epochs=1))
    assert 8 <= mon.drawn_in.count("iteration") <= 11, mon.drawn_in  # ~every 100 s of 1000 s: 1% of the time
    assert mon.drawn_in.count("epoch end") == 1


def test_an_epoch_end_is_drawn_even_when_the_budget_is_spent():
    run = FakeRun(epochs=3, steps_per_epoch=5)
    mon = PanelMonitor(min_render_interval=3600.0)
    mon.render(run)
    mon.render_seconds = 1000.0  # interval 1000 s / 1%: no drawing inside an epoch would be allowed
    mon._spent = 1e6
    run.history.log_epoch(epoch=1, val_loss=1.0)
    mon.on_epoch_end(run, run.history.epochs[-1])
    assert mon.renders == 2 and mon.drawn_epoch == 1 and "curves through epoch 1/3" in mon.image_title


def test_the_curves_are_updated_in_place_and_drawn_as_a_new_figure_would_draw_them():
    from nbdetect.monitor.plots import CurvePlot

    records = [dict(r, map=0.05 * r["epoch"], map50=0.1 * r["epoch"]) for r in healthy(epochs=8)]

    def run_through(epochs_done):
        run = FakeRun(epochs=8, steps_per_epoch=5)
        run.play(TextMonitor(stream=io.StringIO()), records[:epochs_done])
        return run

    plot = CurvePlot()
    objects = (plot.fig, plot.ax_loss, plot.val, plot.lr)
    assert png_size(plot.update(run_through(0), caption="curves through epoch 0/8")) == (800, 256)
    # the planned LR alone: its legend names the actual LR already, so the LR panel's background stays put
    assert [t.get_text() for t in plot.ax_lr.get_legend().get_texts()] == ["planned", "actual"]
    second = plot.update(run_through(3), caption="curves through epoch 3/8", threshold=1.0, decision_epoch=2)
    assert plot.update(run_through(3), caption="curves through epoch 3/8", threshold=1.0, decision_epoch=2) == second
    backgrounds = (plot.background_drawings, plot.axes_redraws)
    run4 = run_through(4)
    third = plot.update(run4, caption="curves through epoch 4/8", threshold=1.0, decision_epoch=2)
    assert third != second and (plot.fig, plot.ax_loss, plot.val, plot.lr) == objects  # same objects, new data
    assert (plot.background_drawings, plot.axes_redraws) == backgrounds  # same axes: only the data drawn again
    assert list(plot.val.get_xdata()) == [1, 2, 3, 4]
    assert list(plot.val.get_ydata()) == [r["val_loss"] for r in records[:4]]
    assert len(plot.lr.get_xdata()) == len(run4.history.iterations)
    assert plot.title.get_text().endswith("curves through epoch 4/8")
    # nothing of the earlier drawings is left: the pixels are those of a new figure drawn from the same data
    assert third == render_png(run4, caption="curves through epoch 4/8", threshold=1.0, decision_epoch=2)
    run8 = run_through(8)  # a higher mAP axis, no verdict line in the loss legend: those axes' parts are redrawn
    last = plot.update(run8, caption="curves through epoch 8/8")
    assert plot.background_drawings == backgrounds[0] and plot.axes_redraws == backgrounds[1] + 2
    assert plot.threshold.axes is None
    assert plot.ax_loss.get_xlim()[1] >= 8 and last == render_png(run8, caption="curves through epoch 8/8")


def test_axis_ends_move_in_steps():
    from nbdetect.monitor.plots import epoch_axis_end, nice_ceil

    assert [nice_ceil(x) for x in (0.93, 1.0, 1.3, 2.2, 7.1, 0.0123)] == [1.0, 1.0, 1.5, 2.5, 8.0, 0.015]
    assert [epoch_axis_end(x, 8) for x in (0.5, 1, 1.5, 3, 4, 5, 8, 9)] == [8, 8, 8, 8, 8, 8, 8, 9]
    assert [epoch_axis_end(x, 100) for x in (1, 7, 13, 30, 60)] == [12.5, 12.5, 25, 50, 100]
    assert [epoch_axis_end(x, 50) for x in (1, 9, 20)] == [8, 16, 32] and epoch_axis_end(1, 2) == 2
    assert [epoch_axis_end(x, None) for x in (0.3, 3, 17)] == [1, 4, 32]


def test_next_button_starts_the_suggested_alternative():
    run = FakeRun(epochs=10)
    started = []
    mon = PanelMonitor(start_next=lambda r, action: started.append((r, action)) or "new-run").bind(run)
    run.play(mon, flat_bad_data(epochs=10))
    mon.next_button.click()
    assert started == [(run, "alternative_2")] and mon.next_run == "new-run"
    assert mon.next_button.layout.display == "none"


def test_headless_monitor_binds_on_run_start():
    run = FakeRun(epochs=2)
    mon = headless_monitor()
    run.play(mon, healthy(epochs=2))
    assert "alternative_1 (fake)" in mon.header.value and mon.bar.value == run.total_steps


# -- attach / registry --------------------------------------------------------------------------------------------
def test_attach_text_outside_a_kernel_and_refuses_a_second_active_run():
    assert choose_mode("auto") == "text" and choose_mode(False) == "none"
    with pytest.raises(ValueError):
        choose_mode("fancy")
    first = FakeRun(name="alternative_1")
    registry.claim(first)
    assert attach(first, stream=io.StringIO()) == "text"
    assert isinstance(first.callbacks[-1], TextMonitor)
    first.status = "running"
    second = FakeRun(name="alternative_2")
    with pytest.raises(RuntimeError, match=r"alternative_1 \(running.*Stop.*replace=True"):
        registry.claim(second)
    # replace=True stops the first (at its next iteration) and takes over
    first.wait = lambda timeout=None: setattr(first, "status", "stopped") or first
    registry.claim(second, replace=True)
    assert attach(second, mode="text", stream=io.StringIO()) == "text"
    assert first.stop_event.is_set() and first.status == "stopped"
    assert registry.active_run() is None  # second is still pending
    second.status = "running"
    assert registry.active_run() is second
    registry.stop_all(timeout=0)
    assert second.stop_event.is_set()


def test_finished_run_does_not_block_the_next():
    first = FakeRun()
    registry.claim(first)
    first.status = "finished"
    registry.claim(FakeRun())  # no error: the first is over


def test_progress_line_names_the_device_threads_and_gpu_memory():
    base = {"epoch": 1, "epochs": 2, "iteration": 1, "steps_per_epoch": 3, "images_per_s": 5.0, "eta_s": 9}
    assert "5.0 images/s (cpu, 1 thread)" in progress_line({**base, "device": "cpu", "threads": 1})
    line = progress_line({**base, "device": "cuda", "threads": None, "gpu_memory_gb": 3.25})
    assert "5.0 images/s (cuda)" in line and "GPU memory 3.2 GB peak" in line
    two = progress_line({**base, "device": "cuda", "threads": None, "processes": 2, "gpu_memory_gb": 3.25,
                         "gpu_memory_gb_per_process": [3.25, 3.04]})
    assert "5.0 images/s (cuda x 2 processes)" in two and "GPU memory 3.2 / 3.0 GB peak per process" in two
    cpu_two = progress_line({**base, "device": "cpu", "threads": 1, "processes": 2, "gpu_memory_gb_per_process": None})
    assert "(cpu x 2 processes, 1 thread each)" in cpu_two and "GPU memory" not in cpu_two
