"""Widget messages routed to the kernel's main shell, so a button click is never dropped.

Every message the panel's widgets send is published as if from the main shell (:func:`as_main_shell`):
ipykernel 7.4 routes a frontend's later messages for a widget to the subshell of whatever request it last
answered, and a subshell can be gone (the
page that made it closed its notebook, or the kernel was restarted from another tab
and the page still names the old kernel's subshell). Without this a click from such a
page (the log-LR checkbox, "Start ...") poisoned every widget updated after it, and
the next click on them was dropped with "Unknown subshell_id" in the kernel log.
"""
from __future__ import annotations

import contextlib
import threading


def _kernel():
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:
        return None
    return Kernel.instance() if Kernel.initialized() else None


@contextlib.contextmanager
def as_main_shell():
    """Inside, comm messages are published with the current request as parent but with its ``subshell_id`` cleared,
    so ipykernel routes the frontend's next messages for those widgets to the main shell, which always exists.

    Only the kernel's shell parent of the current thread (a context variable) changes: display and print keep
    their parents, so output captured by an Output widget still lands where it did.
    """
    kernel = _kernel()
    var = getattr(kernel, "_shell_parent", None)  # ipykernel 7: a ContextVar (each thread its own value)
    if not hasattr(var, "reset") or threading.current_thread().name == "Control":  # control: no comm traffic
        yield
        return
    try:
        parent = kernel.get_parent("shell") or {}
    except Exception:
        parent = {}
    header = parent.get("header") or {}
    if header.get("subshell_id") is None:
        yield
        return
    token = var.set({**parent, "header": {**header, "subshell_id": None}})
    try:
        yield
    finally:
        var.reset(token)


def route_to_main_shell(widget) -> None:
    """Publish all of ``widget``'s later comm messages under :func:`as_main_shell` (its kernel supports subshells
    and routes replies to them, ipykernel >= 7.4; elsewhere nothing changes)."""
    comm = getattr(widget, "comm", None)
    publish = getattr(comm, "publish_msg", None)
    if publish is None or not hasattr(comm, "_reply_subshell_for") or getattr(publish, "_nbdetect_main", False):
        return

    def publish_msg(*args, **kwargs):
        with as_main_shell():
            return publish(*args, **kwargs)

    publish_msg._nbdetect_main = True
    comm.publish_msg = publish_msg
