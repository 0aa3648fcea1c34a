"""Text fallback for terminals and CI: one progress line every ``interval`` seconds, one per epoch, and the verdict."""
from __future__ import annotations

import math
import sys

from .core import Monitor, progress_line


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) and math.isfinite(v) else "--"


class TextMonitor(Monitor):
    wants_curves = False

    def __init__(self, stream=None, interval: float = 30.0, **kwargs):
        super().__init__(progress_interval=interval, **kwargs)
        self.stream = stream if stream is not None else sys.stdout
        self._last_rule = None
        self._last_said = None
        self._last_progress = 0.0  # the first line comes after ``interval`` seconds, not at iteration 1

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except Exception:
            pass

    def _name(self) -> str:
        recipe = getattr(self.run, "recipe", None)
        return getattr(recipe, "name", "run")

    def on_run_start(self, run) -> None:
        import time

        super().on_run_start(run)
        recipe = getattr(run, "recipe", None)
        what = recipe.describe() if hasattr(recipe, "describe") else self._name()
        self._print(f"[{self._name()}] training {what}; {getattr(run, 'total_steps', '?')} iterations; "
                    f"files in {getattr(run, 'out_dir', '?')}")
        self._last_progress = time.monotonic()

    def show_progress(self, progress: dict, rec: dict | None) -> None:
        if rec is None:
            return  # epoch ends get their own line
        self._print(f"[{self._name()}] {progress_line(progress, rec.get('loss'), rec.get('lr'))}")

    def show_epoch(self, run, rec: dict) -> None:
        epochs = getattr(run, "epochs", 0)
        ips = rec.get("images_per_s")
        self._print(f"[{self._name()}] epoch {rec.get('epoch')}/{epochs}: train loss {_fmt(rec.get('train_loss'))}, "
                    f"val loss {_fmt(rec.get('val_loss'))}, mAP {_fmt(rec.get('map'))}, mAP@.5 {_fmt(rec.get('map50'))}, "
                    f"lr {_fmt(rec.get('lr'))}, {_fmt(ips)} images/s")

    def show_verdict(self, verdict) -> None:
        """One message per decision: a verdict is printed when it changes (its status, rule or headline), with
        its evidence the first time its rule speaks; an unchanged verdict adds nothing to the epoch line."""
        if verdict.status == "pending":
            return
        said = (verdict.status, verdict.rule_id, verdict.headline)
        if said == self._last_said:
            return
        self._last_said = said
        self._print(f"[{self._name()}] verdict: {verdict.headline}")
        key = (verdict.rule_id, verdict.status)
        if key != self._last_rule:
            self._last_rule = key
            self._print(f"[{self._name()}]   {verdict.rule_text}")

    def show_status(self, text: str, kind: str) -> None:
        if kind != "running" or text not in ("running", ""):
            self._print(f"[{self._name()}] {text}")
