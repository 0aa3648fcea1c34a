"""More than one process on one run: torch.distributed (gloo on CPU, NCCL on GPUs) from a notebook or torchrun.

From a notebook, ``devices=N`` keeps the kernel as rank 0 (its TrainingRun drives the panel, the Stop button
and the checkpoints as for one process) and forks ranks 1..N-1 from it right before training, so everything
built in the notebook (datasets, the model, its initial weights) is already in every rank. Fork is impossible
once CUDA is initialised in the kernel: that is refused with the fix (restart, call it first). Under
``torchrun`` every process reads its rank from the environment and runs the same code.

Every rank trains on its slice of each global batch (the recipe's ``batch_size`` split N ways), so the LR
schedule, the steps per epoch and the checkpoints are those of one process: a run started on N processes
resumes on 1 and vice versa. Each iteration the ranks agree on the loss (its mean over the global batch, which
the history logs) and on whether to stop, so a Stop click, a NaN on one rank or a failing rank ends all of them
at the same iteration. Checkpoints and files are written by rank 0 only.
"""
from __future__ import annotations

import datetime
import gc
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from .errors import DistributedError, InputError


@dataclass
class Group:
    """This process's place in a distributed run."""

    rank: int
    world: int
    backend: str
    workers: list = field(default_factory=list)  # rank 0 in a notebook: the forked processes (ranks 1..N-1)
    errors: object = None  # a multiprocessing queue the forked ranks report their failure on

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def agree(self, local: bool) -> bool:
        """True on every rank when it is true on any rank (Stop, a failure)."""
        flag = torch.tensor([1.0 if local else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over the ranks of a small CPU tensor (losses of equal sub-batches: the global batch's)."""
        values = values.detach().float().cpu().clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world

    def gather(self, obj) -> list:
        """``obj`` of every rank, in rank order (small picklable things: a validation part's sums)."""
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def failure(self) -> str:
        """What a forked rank reported before it ended, or how it ended ('' if nothing is known)."""
        said = []
        while self.errors is not None:
            try:
                said.append(self.errors.get(timeout=0.2))
            except Exception:
                break
        if said:
            return "; ".join(f"rank {rank}: {text}" for rank, text in said)
        ended = [(rank, p.exitcode) for rank, p in enumerate(self.workers, start=1) if p.exitcode not in (None, 0)]
        return "; ".join(f"rank {rank} ended with {_exit_text(code)}" for rank, code in ended)

    def close(self, grace: float = 10.0) -> None:
        """Leave the process group; rank 0 waits for its forked ranks, then ends any still there."""
        if dist.is_available() and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:
                pass
        deadline = time.monotonic() + grace
        for p in self.workers:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in self.workers:
            if p.is_alive():
                p.kill()
                p.join(5)


def _exit_text(code: int) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def visible_gpus() -> int:
    """GPUs this process may use, counted without initialising CUDA (which would make fork impossible)."""
    try:
        found = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = min(found, len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"]))
    return found


def sync_batchnorm(model):
    """The model with its training BatchNorm layers synchronised across the processes (the same Parameter
    objects, so the optimizer keeps them; frozen BatchNorm, as in torchvision's ResNet detectors, stays frozen)."""
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def check_devices(devices, device_type: str, batch_size: int, sync_bn: bool = False) -> int:
    """``devices`` as a process count, or an error naming the argument and the fix."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise InputError(f"devices={devices!r}: the number of training processes, an int >= 1", where="devices",
                         fix="pass devices=2 (two GPUs, or two CPU processes), or leave it out for one")
    if devices > 1 and batch_size % devices:
        raise InputError(f"batch_size={batch_size} cannot be split over devices={devices}: every process trains "
                         f"on an equal share of each batch", where="batch_size",
                         fix=f"pass a batch_size divisible by {devices}, e.g. batch_size={devices * max(1, batch_size // devices)}")
    if sync_bn and device_type != "cuda":
        raise InputError("sync_bn=True needs GPUs: torch's SyncBatchNorm has no CPU kernel", where="sync_bn",
                         fix="leave sync_bn off on a CPU (each process normalises its share of the batch)")
    if device_type == "cuda" and devices > 1:
        gpus = visible_gpus()
        if gpus and devices > gpus:
            raise InputError(f"devices={devices} but {gpus} GPU(s) are visible", where="devices",
                             fix=f"pass devices={gpus} or fewer (CUDA_VISIBLE_DEVICES limits what is visible)")
    return devices


def from_env() -> Group | None:
    """The group of a process started by torchrun (RANK / WORLD_SIZE set), joined; None otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    group = Group(rank=dist.get_rank(), world=dist.get_world_size(), backend=backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", group.rank)))
    return group


def device_of(group: Group, device: torch.device) -> torch.device:
    """Rank r trains on GPU r (local) when the run is on CUDA; on the CPU every rank uses the CPU."""
    if device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", group.rank)))
    return device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fork_workers(devices: int, device: torch.device, train_rank, timeout_s: float = 1800.0) -> Group:
    """Fork ranks 1..devices-1 from this process (rank 0), each calling ``train_rank(group)``, and join the
    process group as rank 0. ``train_rank`` runs in the child with everything this process had built."""
    import multiprocessing as mp

    if device.type == "cuda" and torch.cuda.is_initialized():
        raise DistributedError(
            "devices > 1 from a notebook needs to start its processes before anything uses the GPU in this kernel, "
            "and CUDA is already initialised here", where="devices",
            fix="restart the kernel and run the devices=N cell before any cell that touches the GPU (as with "
                "accelerate's notebook_launcher and Lightning's ddp_notebook), or run a script with torchrun")
    if "fork" not in mp.get_all_start_methods():
        raise DistributedError("this platform cannot fork processes, which devices > 1 from a notebook needs",
                               where="devices", fix="run a script with torchrun --nproc_per_node N -m nbdetect train")
    backend = "nccl" if device.type == "cuda" else "gloo"
    port = _free_port()
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    workers = []
    # What the forked processes inherit is never garbage-collected there: an earlier run's process group or
    # DDP reducer, collected in a child, waits forever for threads that only exist here.
    gc.collect()
    gc.freeze()
    try:
        for rank in range(1, devices):
            p = ctx.Process(target=_worker, args=(rank, devices, backend, port, timeout_s, train_rank, errors),
                            name=f"nbdetect-rank{rank}")  # not daemonic: its DataLoader may start workers
            p.start()
            workers.append(p)
    finally:
        gc.unfreeze()
    group = Group(rank=0, world=devices, backend=backend, workers=workers, errors=errors)
    try:
        _join(0, devices, backend, port, timeout_s)
    except Exception as exc:
        group.close(grace=2.0)
        raise DistributedError(f"the {devices} training processes could not connect ({type(exc).__name__}: {exc})",
                               where="devices", fix="check that nothing blocks local TCP ports, or use devices=1"
                               ) from exc
    return group


def _join(rank: int, world: int, backend: str, port: int, timeout_s: float) -> None:
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))


def _die_with_parent() -> None:
    """A forked rank ends when the kernel that started it ends (no orphans after a kernel crash)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _worker(rank, world, backend, port, timeout_s, train_rank, errors) -> None:
    code = 0
    try:
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel's interrupt is for rank 0; Stop reaches us
        torch.set_num_threads(1)  # a forked OpenMP runtime is only safe single-threaded (as DataLoader workers)
        _join(rank, world, backend, port, timeout_s)
        group = Group(rank=rank, world=world, backend=backend)
        train_rank(group)
    except BaseException as exc:  # report, then end: rank 0 names the rank and the error
        code = 1
        try:
            errors.put((rank, f"{type(exc).__name__}: {exc}"))
            errors.close()
            errors.join_thread()
        except Exception:
            pass
        # one line here (rank 0 names this rank and its error); the whole traceback with NBDETECT_DEBUG=1
        if os.environ.get("NBDETECT_DEBUG"):
            traceback.print_exc(file=sys.stderr)
        else:
            print(f"nbdetect: rank {rank} stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        try:
            if dist.is_initialized():
                dist.destroy_process_group()
        except Exception:
            pass
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no atexit handlers of the kernel in a forked rank
