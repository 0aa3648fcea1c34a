"""Widget messages routed to the kernel's main shell, so a button click is never dropped.

Every message the panel's widgets send is published as if from the main shell (:func:`as_main_shell`):
ipykernel 7.4 routes a frontend's later messages for a widget to the subshell of whatever request it last
answered, and a subshell can be gone (the
page that made it closed its notebook, or the kernel was restarted from another tab
and the page still names the old kernel's subshell). Without this a click from such a
page (the log-LR checkbox, "Start ...") poisoned every widget updated after it, and
the next click on them was dropped with "Unknown subshell_id" in the kernel log.

The Stop button's clicks go the other way (:func:`route_to_subshell`): to nbdetect's own kernel subshell, so they
are handled while the main shell is busy with a cell.
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


# -- Stop while a cell is busy -----------------------------------------------------------------------------
# A busy cell (a waiting cell under Run All, a long diagnose(), the user's own loop) holds the main shell, and a
# click queued behind it is handled only when the cell ends. ipykernel >= 7.4 lets a comm choose the subshell
# its incoming messages go to (``Comm._reply_subshell_for``, asked by the kernel's shell-channel thread for each
# comm_msg): the Stop button's comm names nbdetect's own subshell, a thread of the kernel created once per
# process, so a click is handled there at once whatever the main shell is doing. The frontend needs nothing.

_SUBSHELL: dict = {}
_SUBSHELL_LOCK = threading.Lock()


def _subshell_manager():
    kernel = _kernel()
    thread = getattr(kernel, "shell_channel_thread", None)
    manager = getattr(thread, "_manager", None)
    if manager is None and thread is not None and threading.current_thread() is getattr(thread, "parent_thread", None):
        try:
            manager = thread.manager
        except Exception:
            manager = None
    if manager is None or not all(hasattr(manager, a) for a in ("_create_subshell", "list_subshell")):
        return None, None
    return thread, manager


def control_subshell(timeout: float = 10.0) -> str | None:
    """The id of nbdetect's kernel subshell (created on first use), or None where the kernel has no subshells."""
    thread, manager = _subshell_manager()
    if manager is None:
        return None
    with _SUBSHELL_LOCK:
        sid = _SUBSHELL.get(id(manager))
        try:
            if sid is not None and sid in manager.list_subshell():
                return sid
        except Exception:
            return None
        box: dict = {}
        done = threading.Event()

        def create():  # subshells are created in the shell-channel thread (what a create_subshell_request does)
            try:
                box["id"] = manager._create_subshell()
            except BaseException as exc:  # noqa: BLE001 - reported as "no subshell"
                box["error"] = exc
            finally:
                done.set()

        if threading.current_thread() is thread:
            create()
        else:
            thread.io_loop.add_callback(create)
            done.wait(timeout)
        sid = box.get("id")
        if sid is not None:
            _SUBSHELL[id(manager)] = sid
        return sid


def route_to_subshell(widget) -> bool:
    """Have the frontend's messages for ``widget`` (its clicks) handled in nbdetect's own kernel subshell, so
    they are handled while the main shell runs a cell. True when routed; False leaves the main shell in charge
    (a kernel without comm routing to subshells: ipykernel < 7.4, or no kernel)."""
    comm = getattr(widget, "comm", None)
    if comm is None or not hasattr(comm, "_reply_subshell_for"):
        return False
    if getattr(comm._reply_subshell_for, "_nbdetect_subshell", False):
        return True
    sid = control_subshell()
    if sid is None:
        return False
    default_route = comm._reply_subshell_for

    def reply_subshell_for(data, default):
        _, manager = _subshell_manager()
        try:
            alive = manager is not None and sid in manager.list_subshell()
        except Exception:
            alive = False
        return sid if alive else default_route(data, default)

    reply_subshell_for._nbdetect_subshell = True
    comm._reply_subshell_for = reply_subshell_for
    return True


def keep_busy_shown() -> None:
    """Call from a click handler. In nbdetect's subshell, the kernel reports that request busy, then idle; a front-end
    shows the kernel's last reported state, so while the main shell still runs a cell it would read "Idle". Once the
    subshell has said idle (a callback on its own loop runs after the request is done), say busy again, with no
    parent request, if the main shell is still running one; the main shell's own "idle" ends it as usual."""
    kernel = _kernel()
    sid = next(iter(_SUBSHELL.values()), None)
    if kernel is None or sid is None or threading.current_thread().name != f"subshell-{sid}":
        return
    try:
        from tornado.ioloop import IOLoop
        loop = IOLoop.current()
    except Exception:
        return

    lock = getattr(kernel, "_main_asyncio_lock", None)

    def say(state):
        if kernel.session is not None:
            kernel.session.send(kernel.iopub_socket, "status", {"execution_state": state}, parent={},
                                ident=kernel._topic("status"))

    def busy_again():
        if lock is not None and lock.locked():
            say("busy")
            loop.call_later(1.0, idle_when_done)

    def idle_when_done():  # the main shell may have said idle just before our busy: say idle once it is done
        if lock.locked():
            loop.call_later(1.0, idle_when_done)
        else:
            say("idle")

    loop.add_callback(busy_again)
