"""One run, one folder: numbered run folders and the lock that says who owns one.

``nbdetect_runs/alternative_1``, then ``alternative_1-2``, ``alternative_1-3``...: a new run never writes
into a folder that holds another run's checkpoints or history (as Ultralytics' ``train``, ``train2``). The
number is one more than the highest ever given for that name (kept in ``nbdetect_runs/.run_numbers.json``,
as Lightning's ``version_N``), so a deleted folder's number is not reused. ``resume=True`` continues the
latest folder of that name; ``exist_ok=True`` reuses the named folder.

A running run holds ``<folder>/.lock`` (its pid, host and start time). A second live run never shares the
folder; a lock left by a process that no longer exists is recovered with a message.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from .atomic import atomic_write, make_folder
from .callbacks import Callback
from .errors import RunError

RUN_FILES = ("last.pt", "best.pt", "history.jsonl", "epochs.csv")
LOCK = ".lock"
NUMBERS = ".run_numbers.json"


def holds_a_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / f).exists() for f in RUN_FILES)


def _numbered(root: Path, name: str) -> list[tuple[int, Path]]:
    pattern = re.compile(rf"^{re.escape(name)}(?:-(\d+))?$")
    out = []
    if root.is_dir():
        for p in root.iterdir():
            m = pattern.match(p.name)
            if m and p.is_dir():
                out.append((int(m.group(1) or 1), p))
    return sorted(out)


def _read_numbers(root: Path) -> dict:
    try:
        return json.loads((root / NUMBERS).read_text())
    except (OSError, ValueError):
        return {}


def latest(root: Path | str, name: str) -> Path | None:
    """The highest-numbered existing folder of ``name`` (the one ``resume=True`` continues)."""
    found = _numbered(Path(root), name)
    return found[-1][1] if found else None


def next_free(root: Path | str, name: str, dry: bool = False) -> Path:
    """A new folder for a run called ``name``: ``name`` if unused, else ``name-N`` with N never given before
    (recorded in ``.run_numbers.json``; ``dry``: only say which, writing nothing)."""
    root = Path(root)
    found = _numbered(root, name)
    if not found and not _read_numbers(root).get(name):
        number = 1
    else:
        number = max([n for n, _ in found] + [int(_read_numbers(root).get(name, 0))]) + 1
    folder = root / (name if number == 1 else f"{name}-{number}")
    if dry:
        return folder
    make_folder(root)
    numbers = {**_read_numbers(root), name: number}
    atomic_write(root / NUMBERS, lambda fh: fh.write(json.dumps(numbers, indent=1).encode()))
    return folder


def choose(out_dir, name: str, *, resume=False, exist_ok: bool = False, root: str | Path = "nbdetect_runs",
           dry: bool = False) -> Path:
    """The folder a run writes to; never one holding another run unless resuming it or ``exist_ok``.

    ``dry``: the folder it would be, without reserving a number or saying anything (a call checks everything
    before it announces or burns a folder number)."""
    if out_dir is None and isinstance(resume, (str, Path)):
        return Path(resume).parent  # resuming a checkpoint: its run goes on in its own folder
    if out_dir is None:
        if resume is True or exist_ok:
            return latest(root, name) or Path(root) / name
        folder = latest(root, name) or Path(root) / name
    else:
        folder = Path(out_dir)
    if resume or exist_ok or not holds_a_run(folder) and not locked_by_other(folder):
        return folder
    new = next_free(folder.parent, re.sub(r"-\d+$", "", folder.name) if out_dir is None else folder.name, dry=dry)
    if dry:
        return new
    print(f"nbdetect: {folder} holds an earlier run; this run writes to {new} (resume=True continues the "
          "latest run, exist_ok=True writes into the folder given)")
    return new


# -- the lock ----------------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / LOCK).read_text())
    except (OSError, ValueError):
        return None


def locked_by_other(folder: Path, token: str | None = None) -> bool:
    """A live run other than the one holding ``token`` owns ``folder`` (a run of this process always releases
    its lock when it ends, so a lock of this process with another token is a live run too)."""
    info = read_lock(folder)
    if not info or (token is not None and info.get("token") == token):
        return False
    return info.get("host") == socket.gethostname() and _alive(int(info.get("pid", -1)))


def _claim(lock: Path, payload: dict) -> bool:
    """Create ``lock`` holding ``payload`` only if no lock is there (True: this run holds it now).

    The payload is written whole to a temp file first, then hard-linked to ``lock``: the link fails when the
    lock exists, so of two processes that checked the folder at the same moment one claims it and the other
    reads the winner's lock (a read-then-write would let both believe they hold it)."""
    tmp = atomic_write(lock.with_name(f".{lock.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"),
                       lambda fh: fh.write(json.dumps(payload).encode()))
    try:
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: the exclusive create, then the payload
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(json.dumps(payload).encode())
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(lock: Path, stale: dict) -> None:
    """Remove ``lock`` only if it still holds the ``stale`` lock read before. The lock is moved aside first (one
    atomic rename, so of two processes recovering it only one gets it) and read there: when another process had
    already recovered it and claimed the folder, the moved file is that process's live lock, and it is put back
    (a plain unlink would have removed it and let both runs write the folder)."""
    aside = lock.with_name(f".{lock.name}.{os.getpid()}.{time.monotonic_ns()}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return  # another process removed it first
    try:
        moved = json.loads(aside.read_text())
    except (OSError, ValueError):
        moved = None
    if moved is not None and moved.get("token") != (stale or {}).get("token"):
        _claim(lock, moved)  # a live lock: back in place (unless a third run claimed the folder meanwhile)
    aside.unlink(missing_ok=True)


class FolderLock(Callback):
    """Holds ``<out_dir>/.lock`` while the run runs; refuses a folder a live run owns; recovers stale locks."""

    critical = True

    def __init__(self):
        self.path: Path | None = None
        self.token: str | None = None

    def on_run_start(self, run) -> None:
        folder = Path(run.out_dir)
        make_folder(folder)
        self.token = f"{os.getpid()}-{id(run)}-{time.time()}"
        payload = {"pid": os.getpid(), "host": socket.gethostname(), "token": self.token,
                   "started": time.strftime("%Y-%m-%d %H:%M:%S"), "recipe": getattr(run.recipe, "name", "")}
        for _ in range(3):
            if _claim(folder / LOCK, payload):
                break
            info = read_lock(folder) or {}
            if locked_by_other(folder, getattr(run, "_lock_token", None)):
                raise RunError(f"{folder} is in use by another training run (pid {info.get('pid')}, started "
                               f"{info.get('started')})", where=str(folder),
                               fix="let that run finish or stop it, or give this run another out_dir (leave out_dir "
                                   "out and nbdetect picks a new numbered folder)")
            if info:
                print(f"nbdetect: {folder} had a lock from pid {info.get('pid')} (started {info.get('started')}), "
                      "a process that no longer runs; recovered it")
            _remove_stale(folder / LOCK, info)
        else:
            raise RunError(f"could not take the lock of {folder}: another run keeps taking it", where=str(folder),
                           fix="give this run another out_dir")
        leftovers = list(folder.glob(".*.tmp"))  # half-written files of a killed save: the folder is ours now
        for tmp in leftovers:
            try:
                tmp.unlink()
            except OSError:
                pass
        if leftovers:
            print(f"nbdetect: removed {len(leftovers)} half-written file(s) of an interrupted save in {folder}")
        run._lock_token = self.token
        self.path = folder / LOCK

    def on_run_end(self, run) -> None:
        if self.path is not None and (read_lock(self.path.parent) or {}).get("token") == self.token:
            try:
                self.path.unlink()
            except OSError:
                pass
        self.path = None


def describe_resume_miss(folder: Path) -> str:
    """What a folder without last.pt holds, for the message of ``resume=True``."""
    folder = Path(folder)
    if not folder.exists():
        return f"{folder} does not exist"
    found = []
    if (folder / "best.pt").exists():
        found.append("best.pt (model weights only: it cannot restore the optimizer, the schedule or the data order)")
    temps = list(folder.glob(".*.tmp"))
    if temps:
        found.append(f"{len(temps)} half-written file(s) of an interrupted save (removed when the run starts)")
    if (folder / "history.jsonl").exists():
        found.append("history.jsonl")
    return f"{folder} holds " + ("; ".join(found) if found else "no checkpoint")


def best_checkpoint(root: Path | str = "nbdetect_runs", recipe: str | None = None) -> Path:
    """``best.pt`` of the latest run under ``root``: the one this kernel started last (waited for while it
    trains), else the newest ``best.pt`` there (of ``recipe``'s folders when given). The submission cell's
    default."""
    from . import run_guard
    from .arguments import check
    from .errors import MissingError

    check(dict(root=root, recipe=recipe))
    run_guard.wait_for_active("choosing the checkpoint")
    last = run_guard.last_run()
    if last is not None and (recipe is None or run_guard.name_of(last) == recipe):
        path = Path(last.out_dir) / "best.pt"
        if path.exists() and Path(root).resolve() in path.resolve().parents:
            return path
    pattern = f"{recipe}*/best.pt" if recipe else "*/best.pt"
    found = sorted(Path(root).glob(pattern), key=lambda p: p.stat().st_mtime) if Path(root).is_dir() else []
    if recipe:
        found = [p for p in found if re.fullmatch(rf"{re.escape(recipe)}(-\d+)?", p.parent.name)]
    if not found:
        where = f"{root}/{recipe or '<recipe>'}*/best.pt"
        raise MissingError(f"no best.pt found ({where}): no run has finished an epoch with validation yet",
                           where=where, fix="train first (a training cell), or set CHECKPOINT to the path of a "
                                            "best.pt or to your model object")
    return found[-1]
