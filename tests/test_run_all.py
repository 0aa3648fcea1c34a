"""Run All: a cell that needs the active run to be over waits for it with a note; a re-run of the active
recipe's cell is refused; the interrupt stops the wait, not the run. Plus the CPU-sized defaults."""
import threading
import time
from types import SimpleNamespace

import pytest
import torch

import nbdetect
from nbdetect import run_guard
from nbdetect.alternatives import CPU_IMAGE_SIZE, _pick_preset
from nbdetect.errors import RunError
from nbdetect.recipes import ALTERNATIVE_1, ALTERNATIVE_2


class Run:
    """What the guard reads of a run: a recipe name, a status, wait(); ends after ``seconds`` when started."""

    def __init__(self, name, seconds=0.3, status="running"):
        self.recipe = SimpleNamespace(name=name)
        self.status, self.epoch, self.epochs, self.out_dir = status, 0, 3, f"nbdetect_runs/{name}"
        self.stop_event = threading.Event()
        self._done = threading.Event()
        self._timer = threading.Timer(seconds, self.finish)
        self._timer.daemon = True

    def start(self):
        self._timer.start()
        return self

    def finish(self):
        self.status = "finished"
        self._done.set()

    @property
    def is_active(self):
        return self.status in ("running", "stopping")

    def stop(self):
        self.stop_event.set()
        self.finish()

    def wait(self, timeout=None):
        self._done.wait(timeout)
        return self


@pytest.fixture(autouse=True)
def _clean_guard():
    yield
    with run_guard._LOCK:
        run_guard._RUNS.clear()


def test_a_run_of_another_recipe_waits_for_the_active_one_and_says_so():
    first = Run("alternative_3", seconds=0.4)
    run_guard.claim(first)
    first.start()
    lines = []
    t0 = time.monotonic()
    second = Run("alternative_1", status="pending")
    run_guard.wait_for_active("starting alternative_1", out=lambda text, **_: lines.append(text))
    run_guard.claim(second, wait=True)
    assert first.status == "finished" and time.monotonic() - t0 >= 0.3
    assert "waiting for alternative_3 (running" in lines[0] and "Interrupt the kernel" in lines[0]
    assert "alternative_3 finished; starting alternative_1 now" in lines[1]
    assert run_guard.last_run() is second


def test_claim_with_wait_prints_the_note(capsys):
    first = Run("alternative_3", seconds=0.2)
    run_guard.claim(first)
    first.start()
    run_guard.claim(Run("alternative_1", status="pending"), wait=True)
    out = capsys.readouterr().out
    assert "waiting for alternative_3" in out and "starting alternative_1 now" in out


def test_re_running_the_active_recipe_is_refused_not_queued():
    first = Run("alternative_1", seconds=60)
    run_guard.claim(first)
    with pytest.raises(RunError, match="alternative_1 is still training") as info:
        run_guard.claim(Run("alternative_1", status="pending"), wait=True)
    assert "run.wait()" in info.value.fix and "replace=True" in info.value.fix
    assert first.status == "running"  # untouched


def test_the_interrupt_stops_the_wait_not_the_run():
    first = Run("alternative_3", seconds=60)
    run_guard.claim(first)

    def interrupted(timeout=None):
        raise KeyboardInterrupt

    first.wait = interrupted
    with pytest.raises(RunError, match="stopped waiting; still training: alternative_3") as info:
        run_guard.wait_for_active("making the submission", out=lambda *a, **k: None)
    assert "Stop" in info.value.fix and first.status == "running" and not first.stop_event.is_set()


def test_a_run_that_fails_meanwhile_ends_the_wait():
    first = Run("alternative_3", seconds=60)
    run_guard.claim(first)

    def failed(timeout=None):
        first.status = "failed"
        raise ValueError("boom in the run")

    first.wait = failed
    assert run_guard.wait_for_active("comparing the runs", out=lambda *a, **k: None) == [first]


def test_submission_and_comparison_wait_for_the_active_run(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(run_guard, "wait_for_active", lambda before, **kw: calls.append(before) or [])
    with pytest.raises(Exception):
        nbdetect.make_submission(tmp_path / "missing.pt", tmp_path)
    with pytest.raises(Exception):
        nbdetect.compare_with_yolo(tmp_path / "no.csv", [tmp_path / "none"])
    assert calls == ["making the submission", "comparing the runs"]


def test_no_wait_and_no_note_when_nothing_is_active():
    lines = []
    assert run_guard.wait_for_active("starting alternative_1", out=lambda *a, **k: lines.append(a)) == []
    assert lines == []


@pytest.mark.parametrize("recipe", [ALTERNATIVE_1, ALTERNATIVE_2])
def test_cpu_defaults_are_the_cpu_sized_model_said_in_one_line(recipe, capsys):
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert _pick_preset(recipe, None, False, cpu) == (recipe.tiny_preset, CPU_IMAGE_SIZE)
    out = capsys.readouterr().out
    assert f"'{recipe.tiny_preset}' model at 480x800 px on your data" in out and f"PRESET = '{recipe.preset}'" in out
    assert _pick_preset(recipe, None, True, cpu) == (recipe.tiny_preset, None)  # the demo keeps its own size
    assert _pick_preset(recipe, None, False, cpu, (320, 512)) == (recipe.tiny_preset, (320, 512))
    assert _pick_preset(recipe, None, False, cpu, 256) == (recipe.tiny_preset, 256)  # one int: both sides
    assert _pick_preset(recipe, None, False, gpu) == (recipe.preset, None)  # a GPU gets the guide's model
    assert _pick_preset(recipe, recipe.preset, False, cpu) == (recipe.preset, None)  # asked for: no override
    out = capsys.readouterr().out
    assert out.count("no GPU") == 3 and "at 256x256 px" in out


@pytest.mark.parametrize("routed, said", [(True, "Stop is on its panel and works while this cell waits"),
                                          (False, "handles the click only once this cell ends: interrupt the kernel"),
                                          (None, "Stop is on its panel)")])
def test_the_note_says_whether_stop_works_while_the_cell_waits(routed, said):
    """Stop's click is handled in nbdetect's kernel subshell while a cell waits (monitor/comm_routing.py); a kernel
    that cannot route it there (ipykernel < 7.4) is named as such, with what to do instead."""
    first = Run("alternative_3", seconds=0.2)
    if routed is not None:
        first.monitor = SimpleNamespace(stop_in_subshell=routed)
    run_guard.claim(first)
    first.start()
    lines = []
    run_guard.wait_for_active("making the submission", out=lambda text, **_: lines.append(text))
    assert said in lines[0], lines[0]


def test_without_a_kernel_the_stop_button_stays_on_the_main_shell():
    from nbdetect.monitor.comm_routing import control_subshell, route_to_subshell
    from nbdetect.monitor.panel import PanelMonitor

    assert control_subshell() is None
    assert PanelMonitor().stop_in_subshell is False and route_to_subshell(object()) is False
