"""One run, one folder: numbered run folders, the folder lock, and resume that says what it found."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

import nbdetect
from nbdetect import run_dirs
from nbdetect.errors import RunError
from toy_data import toy_samples

TINY = dict(epochs=1, preset="retinanet_tiny", weights=None, monitor=False, device="cpu", image_size=96,
            eval_map_every=0, num_classes=2)


def test_a_second_run_gets_its_own_folder_and_the_first_is_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = nbdetect.alternative_1(toy_samples(4), toy_samples(4), **TINY)
    assert first.out_dir == run_dirs.Path("nbdetect_runs/alternative_1")
    before = {p.name: p.read_bytes() for p in first.out_dir.iterdir() if p.is_file()}
    second = nbdetect.alternative_1(toy_samples(4), toy_samples(4), **TINY)
    assert second.out_dir.name == "alternative_1-2" and second.status == "finished"
    after = {p.name: p.read_bytes() for p in first.out_dir.iterdir() if p.is_file()}
    assert after == before  # nothing of the first run overwritten or appended to
    assert len((second.out_dir / "history.jsonl").read_text().splitlines()) > 0
    # an explicit folder that holds a run is not written into either
    third = nbdetect.alternative_1(toy_samples(4), toy_samples(4), out_dir=first.out_dir, **TINY)
    assert third.out_dir.name == "alternative_1-3"
    # resume=True continues the latest folder; a deleted folder's number is never given again
    import shutil

    shutil.rmtree(third.out_dir)
    assert run_dirs.next_free("nbdetect_runs", "alternative_1").name == "alternative_1-4"


def test_resume_without_last_pt_says_what_it_found_and_overwrites_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first = nbdetect.alternative_1(toy_samples(4), toy_samples(4), **TINY)
    (first.out_dir / "last.pt").unlink()
    best = (first.out_dir / "best.pt").read_bytes()
    (first.out_dir / ".last.pt.abc.tmp").write_bytes(b"half a checkpoint")
    again = nbdetect.alternative_1(toy_samples(4), toy_samples(4), resume=True, **TINY)
    out = capsys.readouterr().out
    assert "no last.pt to continue from" in out and "best.pt (model weights only" in out
    assert "half-written" in out and "starting from scratch" in out
    assert again.out_dir != first.out_dir and (first.out_dir / "best.pt").read_bytes() == best


def _run(out_dir):
    from torch.utils.data import DataLoader

    from toy_data import collate
    from nbdetect.recipes import ALTERNATIVE_1
    from nbdetect.trainer import TrainingRun

    torch.manual_seed(0)
    model = nbdetect.build_model("retinanet_tiny", 2, weights=None, min_size=96, max_size=96)
    loader = DataLoader(toy_samples(4), batch_size=4, collate_fn=collate)
    return TrainingRun(model, loader, loader, recipe=ALTERNATIVE_1.replace(epochs=1, warmup_epochs=0),
                       out_dir=out_dir, eval_map_every=0, tensorboard=False)


def _lock(folder, pid):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "token": "x",
                                              "started": "earlier"}))


def test_a_folder_owned_by_a_live_run_is_refused_and_a_stale_lock_is_recovered(tmp_path, capsys):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(tmp_path / "busy", sleeper.pid)
        run = _run(tmp_path / "busy")
        with pytest.raises(RunError, match="in use by another training run"):
            run.run()
        assert run.status == "failed" and not run.is_active
        assert run_dirs.choose(tmp_path / "busy", "alternative_1").name == "busy-2"  # a cell picks another folder
    finally:
        sleeper.kill()
        sleeper.wait()
    _lock(tmp_path / "stale", sleeper.pid)  # that process is gone now
    run = _run(tmp_path / "stale").run()
    assert run.status == "finished" and "recovered it" in capsys.readouterr().out
    assert not (tmp_path / "stale" / ".lock").exists()  # released at the end


def test_two_runs_of_one_process_never_share_a_folder(tmp_path):
    import threading

    from nbdetect.callbacks import Callback

    go_on = threading.Event()

    class Hold(Callback):  # keeps the first run inside its epoch until the second one has tried
        def on_epoch_start(self, run):
            go_on.wait(30)

    a = _run(tmp_path / "shared")
    a.callbacks.append(Hold())
    a.start()
    import time

    deadline = time.monotonic() + 30
    while not (tmp_path / "shared" / ".lock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    b = _run(tmp_path / "shared")
    with pytest.raises(RunError, match="in use"):
        b.run()
    go_on.set()
    a.wait(60)
    assert a.status == "finished" and b.status == "failed"


def test_best_checkpoint_is_the_latest_runs_and_says_what_to_do_when_there_is_none(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from nbdetect import run_guard
    from nbdetect.errors import MissingError
    from nbdetect.run_dirs import best_checkpoint

    monkeypatch.setattr(run_guard, "_LAST", [])
    root = tmp_path / "nbdetect_runs"
    with pytest.raises(MissingError, match="no best.pt found") as info:
        best_checkpoint(root)
    assert "CHECKPOINT" in info.value.fix
    for i, name in enumerate(("alternative_1", "alternative_2", "alternative_1-2")):
        (root / name).mkdir(parents=True)
        (root / name / "best.pt").write_bytes(b"x")
        os.utime(root / name / "best.pt", (1000 + i, 1000 + i))
    assert best_checkpoint(root) == root / "alternative_1-2" / "best.pt"  # the newest file
    assert best_checkpoint(root, recipe="alternative_2") == root / "alternative_2" / "best.pt"
    # the run this kernel started last wins over a newer file of another folder
    monkeypatch.setattr(run_guard, "_LAST", [SimpleNamespace(out_dir=root / "alternative_2", status="finished",
                                                             is_active=False, recipe=SimpleNamespace(name="alternative_2"))])
    assert best_checkpoint(root) == root / "alternative_2" / "best.pt"


def test_two_processes_that_checked_a_folder_at_once_do_not_both_take_it(tmp_path, monkeypatch):
    """The lock is created exclusively: a run that found no lock (the other process had not written it yet)
    still cannot replace the one written in between, and is refused naming the owner."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = tmp_path / "same-second"
        _lock(folder, sleeper.pid)
        first_look = iter([None])
        real = run_dirs.read_lock
        monkeypatch.setattr(run_dirs, "read_lock", lambda f: next(first_look, None) or real(f))
        run = _run(folder)
        with pytest.raises(RunError, match=f"in use by another training run \\(pid {sleeper.pid}"):
            run.run()
        assert json.loads((folder / ".lock").read_text())["pid"] == sleeper.pid  # the owner's lock is intact
        assert not list(folder.glob(".*.tmp")) and not (folder / "history.jsonl").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_recovering_a_stale_lock_never_removes_the_live_lock_of_a_run_that_recovered_it_first(tmp_path, monkeypatch):
    """Two processes find the same stale lock; the first recovers it and claims the folder before the second
    acts: the second must find the first's live lock and refuse, not remove it and write the folder too."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "contested"
    try:
        _lock(folder, dead.pid)
        real = run_dirs.locked_by_other

        def the_other_process_recovers_it_meanwhile(path, token=None):
            answer = real(path, token)  # False: the stale lock's process is gone
            (folder / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(),
                                                      "token": "first", "started": "just now"}))
            monkeypatch.setattr(run_dirs, "locked_by_other", real)
            return answer

        monkeypatch.setattr(run_dirs, "locked_by_other", the_other_process_recovers_it_meanwhile)
        run = _run(folder)
        with pytest.raises(RunError, match=f"in use by another training run \\(pid {sleeper.pid}"):
            run.run()
        assert json.loads((folder / ".lock").read_text())["token"] == "first"  # the live lock is in place
        assert not list(folder.glob(".*.stale")) and not (folder / "history.jsonl").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
