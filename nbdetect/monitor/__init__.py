"""Live training monitor: an ipywidgets panel in notebooks, text lines elsewhere, the same verdicts.

``attach(run)`` adds the right :class:`Monitor` to a TrainingRun's callbacks (and shows
the panel). The monitor displays a run's events and sends Stop; it neither judges (``run.verdict``)
nor guards (``nbdetect.run_guard``) nor starts runs (``start_next`` is handed in).
"""
from __future__ import annotations

from .core import Monitor, format_duration, progress_line, status_line
from ..run_guard import active_run, active_runs, stop_all
from .text import TextMonitor


def in_notebook() -> bool:
    """True inside an IPython kernel (JupyterLab, Notebook 7, VS Code) with ipywidgets installed."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
        if ip is None or getattr(ip, "kernel", None) is None:
            return False
        import ipywidgets  # noqa: F401
    except Exception:
        return False
    return True


def choose_mode(mode="auto") -> str:
    if mode is True or mode == "auto":
        return "panel" if in_notebook() else "text"
    if mode in (False, None, "none"):
        return "none"
    if mode not in ("panel", "text"):
        raise ValueError(f"monitor must be 'auto', 'panel', 'text' or False, got {mode!r}")
    return mode


def attach(run, mode="auto", *, replace: bool = False, thresholds=None, display: bool = True, stream=None,
           text_interval: float = 30.0, start_next=None) -> str:
    """Attach a monitor to ``run`` and return the mode used: ``"panel"``, ``"text"`` or ``"none"``.

    ``thresholds``: :class:`nbdetect.verdict.UserThresholds` for the verdict.
    """
    mode = choose_mode(mode)
    if mode == "none":
        return mode
    if mode == "panel":
        from .panel import PanelMonitor

        monitor = PanelMonitor(thresholds=thresholds, start_next=start_next).bind(run)
        run.monitor = monitor
        monitor.render(run)  # the planned LR schedule, before the first iteration
        if display:
            from IPython.display import display as show

            show(monitor.widget)
    else:
        monitor = TextMonitor(stream=stream, interval=text_interval, thresholds=thresholds).bind(run)
        run.monitor = monitor
    run.callbacks.append(monitor)
    return mode


def headless_monitor(**kwargs):
    """The panel monitor with its widgets built and drawn but not displayed (for benchmarks)."""
    from .panel import PanelMonitor

    return PanelMonitor(**kwargs)


__all__ = ["attach", "headless_monitor", "in_notebook", "choose_mode", "Monitor", "TextMonitor", "active_run",
           "active_runs", "stop_all", "format_duration", "progress_line", "status_line"]
