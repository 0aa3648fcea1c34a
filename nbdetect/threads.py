"""How many CPU threads torch uses for a run: chosen, not left to chance.

On a CPU, torch's default (one thread per core) oversubscribes a machine that anything else is using: on a
2-core machine shared with another process, 2 threads made a tiny-model step about 13x slower than 1 (11.9 s
vs 0.92 s per batch). nbdetect takes one core fewer than the process may use, at least one (as Ultralytics
does on CPU), unless ``threads=`` says otherwise; on a GPU torch's own choice stays. Pure: the caller applies it.
"""
from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_threads(device_type: str, requested: int | None = None, cpus: int | None = None) -> int | None:
    """The torch thread count for a run on ``device_type``: ``requested`` when given, cpus - 1 (>= 1) on a
    CPU, None (leave torch's) elsewhere."""
    if requested is not None:
        from .errors import positive_int

        return positive_int(requested, "threads", "pass the number of CPU threads, e.g. threads=1")
    if device_type != "cpu":
        return None
    return max(1, (cpus or usable_cpus()) - 1)
