"""The live ipywidgets panel (JupyterLab 4 / Notebook 7, standard widgets only).

Built from plain widgets, so it can be created and inspected without a kernel.
From the training thread only widget values are set; button clicks run in the
kernel's main thread, except Stop's (see below), which only sets the run's stop flag and widget values.

Its widgets' messages are routed to the kernel's main shell (:mod:`.comm_routing`), except the Stop button's
clicks: they are handled in nbdetect's own kernel subshell, so Stop works while a cell is busy (a cell waiting
for the run under Run All, a long ``diagnose()``, your own loop).
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from .. import actions
from ..recipes import short_title
from .comm_routing import as_main_shell, keep_busy_shown, route_to_main_shell, route_to_subshell
from .core import Monitor, progress_line, status_line

VERDICT_COLOURS = {"pending": "#666", "continue": "#1b7f3b", "success": "#1b7f3b", "partial": "#a86b00",
                   "warn": "#a86b00", "switch": "#b3261e", "diagnose": "#b3261e", "fail": "#b3261e"}
STATUS_COLOURS = {"running": "#1565c0", "stopping": "#a86b00", "stopped": "#a86b00", "finished": "#1b7f3b",
                  "failed": "#b3261e", "warning": "#a86b00"}


class PanelMonitor(Monitor):
    """The panel: header, progress, curves, verdict, Stop / log-LR / start-next controls, status line."""

    def __init__(self, start_next=None, **kwargs):
        super().__init__(**kwargs)
        self.start_next = start_next  # callable(run, action) -> new run, passed in by whoever started the run
        self.next_run = None
        with as_main_shell():  # a panel made by a click ("Start ...") opens its comms as the main shell too
            self._build()
        for w in self._all_widgets():
            route_to_main_shell(w)
        self.stop_in_subshell = route_to_subshell(self.stop_button)  # clicks handled while a cell is busy

    def _all_widgets(self) -> list:
        out = []
        for w in (self.header, self.bar, self.progress_text, self.image, self.verdict_box, self.stop_button,
                  self.log_lr_toggle, self.next_button, self.status, self.output, *self.widget.children,
                  self.widget):
            out += [w, getattr(w, "layout", None), getattr(w, "style", None)]
        return [w for w in dict.fromkeys(out) if w is not None]

    def _build(self) -> None:
        self.header = widgets.HTML(value="<b>nbdetect</b>")
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="", bar_style="info",
                                       layout=widgets.Layout(width="60%"))
        self.progress_text = widgets.HTML(value="waiting to start")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.verdict_box = widgets.HTML(value=self._verdict_html(self.verdict))
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop",
                                          tooltip="stop at the next iteration and save a checkpoint")
        self.log_lr_toggle = widgets.Checkbox(value=self.log_lr, description="log-scale LR", indent=False,
                                              layout=widgets.Layout(width="auto"))
        self.next_button = widgets.Button(description="", button_style="warning",
                                          layout=widgets.Layout(display="none", width="auto"))
        self.status = widgets.HTML(value="pending")
        self.output = widgets.Output()
        self.stop_button.on_click(self._on_stop)
        self.next_button.on_click(self._on_next)
        self.log_lr_toggle.observe(self._on_log_lr, names="value")
        controls = widgets.HBox([self.stop_button, self.log_lr_toggle, self.next_button])
        self.curves_caption = widgets.HTML(value="")  # what the image shows, for readers and tests
        self.widget = widgets.VBox(
            [self.header, widgets.HBox([self.bar, self.progress_text]), self.image, self.curves_caption,
             self.verdict_box, controls,
             self.status, self.output],
            layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.widget.add_class("nbdetect-monitor")

    # -- binding --------------------------------------------------------------------------------------------
    def bind(self, run) -> "PanelMonitor":
        super().bind(run)
        recipe = getattr(run, "recipe", None)
        title = getattr(recipe, "title", None) or getattr(recipe, "name", "run")
        tiles = (getattr(run, "meta", None) or {}).get("tiles")
        tiled = (f" &middot; <span class='nbdetect-tiles'>{tiles['size']}-px tiles ({tiles['tiles']} from "
                 f"{tiles['frames']} frames; mAP by slices)</span>") if tiles else ""
        self.header.value = (f"<b>{html.escape(str(title))}</b> &middot; {getattr(run, 'epochs', '?')} epochs{tiled} "
                             f"&middot; <code>{html.escape(str(getattr(run, 'out_dir', '')))}</code>")
        self.bar.max = max(1, int(getattr(run, "total_steps", 1) or 1))
        self.bar.value = int(getattr(run, "step", 0) or 0)
        self.show_status(getattr(run, "status", "pending"), "running")
        return self

    # -- outputs --------------------------------------------------------------------------------------------
    def show_progress(self, progress: dict, rec: dict | None) -> None:
        self.bar.value = min(int(progress.get("step", 0) or 0), self.bar.max)
        loss = rec.get("loss") if rec else None
        lr = rec.get("lr") if rec else None
        self.progress_text.value = html.escape(progress_line(progress, loss, lr))

    def show_curves(self, png: bytes) -> None:
        self.image.value = png
        self.curves_caption.value = (f"<small class='nbdetect-curves' data-epoch='{int(self.drawn_epoch)}' "
                                     f"style='color:#888'>{html.escape(self.image_title or '')}</small>")

    @staticmethod
    def _verdict_html(verdict) -> str:
        colour = VERDICT_COLOURS.get(verdict.status, "#333")
        return (f"<div class='nbdetect-verdict' data-status='{verdict.status}' data-epoch='{int(verdict.epoch or 0)}' "
                f"style='border-left:4px solid {colour};"
                f"padding:4px 8px;margin:4px 0'><b style='color:{colour}'>Verdict: {html.escape(verdict.headline)}"
                f"</b><br><small>{html.escape(verdict.rule_text)}</small></div>")

    def show_verdict(self, verdict) -> None:
        self.verdict_box.value = self._verdict_html(verdict)
        action = verdict.next_action
        if verdict.suggests_switch and self.next_run is None and self.start_next is not None:
            self.next_button.description = f"Start {actions.title(action)}"
            self.next_button.tooltip = f"stop this run (if still running) and start {short_title(action)}"
            self.next_button.layout.display = None
        else:
            self.next_button.layout.display = "none"

    def show_status(self, text: str, kind: str) -> None:
        colour = STATUS_COLOURS.get(kind, "#333")
        self.status.value = (f"<span class='nbdetect-status' data-status='{html.escape(kind)}' "
                             f"style='color:{colour}'>{html.escape(text)}</span>")
        done = kind in ("stopped", "finished", "failed")
        if done or kind == "stopping":
            self.stop_button.disabled = True
        if done:
            self.bar.bar_style = {"finished": "success", "failed": "danger"}.get(kind, "warning")
        if kind == "stopped" and self.run is not None:  # on the button too: where, and that it is saved
            where = self.run.where() if hasattr(self.run, "where") else ""
            saved = getattr(self.run, "last_checkpoint", None) is not None
            self.stop_button.description = f"stopped {where}".strip() + (", checkpoint saved" if saved else "")
            self.stop_button.icon = "check"
            self.stop_button.layout.width = "auto"
        elif done and self.stop_button.description == "stopping...":  # it ended otherwise meanwhile
            self.stop_button.description, self.stop_button.icon = kind, ""

    def on_run_start(self, run) -> None:
        if self.run is not run:
            self.bind(run)
        super().on_run_start(run)

    def on_run_end(self, run) -> None:
        super().on_run_end(run)
        if getattr(run, "status", "") == "failed":
            self.show_status(status_line(run), "failed")

    # -- controls -------------------------------------------------------------------------------------------
    def _on_stop(self, _button=None) -> None:
        if self.run is None:
            return
        self.run.stop()
        keep_busy_shown()  # handled in nbdetect's subshell while a cell runs: the kernel still reads busy after
        self.stop_button.disabled = True
        if getattr(self.run, "status", "") in ("running", "stopping", "pending"):
            self.stop_button.description = "stopping..."  # at once: the run stops at its next iteration
            self.stop_button.icon = "hourglass-half"
            self.show_status(status_line(self.run) if self.run.status == "stopping" else "stopping...", "stopping")
        if getattr(self.run, "status", "") in ("stopped", "finished", "failed"):  # it ended meanwhile: say how
            self.show_status(status_line(self.run), self.run.status)

    def _on_log_lr(self, change) -> None:
        self.log_lr = bool(change["new"])
        if self.run is not None:
            self.render(self.run, force=True)

    def _on_next(self, _button=None) -> None:
        action = self.verdict.next_action
        if not action or self.next_run is not None:
            return
        with self.output:
            try:
                run = self.run
                if run is not None and getattr(run, "is_active", False):
                    self._on_stop()
                    try:
                        run.wait(timeout=120)
                    except Exception:
                        pass
                self.next_button.layout.display = "none"
                self.next_run = self.start_next(run, action)
            except Exception as exc:
                self.show_status(f"could not start {action}: {type(exc).__name__}: {exc}", "failed")
