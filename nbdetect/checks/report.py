"""Findings and the report that holds them: data, plain text and notebook HTML."""
from __future__ import annotations

import base64
import html
from dataclasses import asdict, dataclass, field

from . import rank as _rank
from . import registry as _registry

STATUSES = ("pass", "warn", "fail", "skip")
_COLOURS = {"fail": "#f8d7da", "warn": "#fff3cd", "pass": "#d4edda", "skip": "#e9ecef"}
_MARKS = {"fail": "FAIL", "warn": "WARN", "pass": "pass", "skip": "skip"}


@dataclass
class Finding:
    """One check's result.

    check: the family ("images", "boxes", "labels", "model", "loss_scale",
    "overfit", "lr", "curve"); code: stable id (see registry.CODES);
    evidence: the numbers behind the status; fix: what to change;
    indices: offending sample indices (dataset order).
    """

    check: str
    code: str
    status: str
    title: str
    evidence: str = ""
    fix: str = ""
    indices: list[int] = field(default_factory=list)
    priority: int | None = None
    next_action: str | None = None  # when the finding knows better than its code's default (registry.CODES)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.priority is None:
            self.priority = _registry.priority(self.code)
        self.indices = [int(i) for i in self.indices]

    @property
    def severity(self) -> int:
        """3 fail, 2 warn, 0 pass/skip."""
        return {"fail": 3, "warn": 2}.get(self.status, 0)

    @property
    def is_problem(self) -> bool:
        return self.status in ("fail", "warn")


@dataclass
class SampleView:
    index: int
    code: str
    png: bytes


class Report:
    """What diagnose() found, ranked; root cause first."""

    def __init__(self, findings: list[Finding], skipped: list[str] | None = None, *,
                 plot_png: bytes | None = None, samples: list[SampleView] | None = None,
                 lr_timeline=None, history=None, elapsed_s: float = 0.0, checked: bool = True):
        self.findings = _rank.rank(list(findings))
        self.skipped = list(skipped or [])
        self.plot_png = plot_png
        self.samples = list(samples or [])
        self.lr_timeline = lr_timeline
        self.history = history
        self.elapsed_s = elapsed_s
        self.checked = checked  # False: nothing was given that could be checked

    # -- data ----------------------------------------------------------------
    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.is_problem]

    @property
    def root_cause(self) -> Finding | None:
        return next((f for f in self.findings if _rank.can_be_root(f)), None)

    @property
    def not_checked(self) -> list[Finding]:
        """Checks that could not run and inputs that could not be read: the report is inconclusive there."""
        return [f for f in self.findings if f.code == "not_checked"]

    @property
    def conclusive(self) -> bool:
        return self.checked and not self.not_checked

    @property
    def next_action(self) -> str:
        """A key of :data:`nbdetect.actions.ACTIONS` (``"fix_data"``, ``"alternative_1"``, ``"continue"``...)."""
        if not self.checked:
            return "fix_input"
        root = self.root_cause
        if root is None and self.not_checked:
            return "fix_input"
        return _rank.next_action_for(root)

    @property
    def next_action_text(self) -> str:
        if not self.checked:
            return "Nothing was checked: pass model=, data=, history= (and optimizer=, scheduler=) to diagnose()."
        return _rank.next_action_text(self.next_action)

    @property
    def next_call(self) -> str:
        """What to type for the next action (a function of nbdetect or of the run)."""
        from .. import actions

        return actions.call(self.next_action)

    def codes(self, status: str | None = None) -> list[str]:
        return [f.code for f in self.findings if status is None or f.status == status]

    def get(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    def to_dict(self) -> dict:
        return {
            "root_cause": self.root_cause.code if self.root_cause else None,
            "checked": self.checked,
            "next_action": self.next_action,
            "findings": [asdict(f) for f in self.findings],
            "skipped": list(self.skipped),
        }

    def _headline(self) -> str:
        """What a report without a root cause says: never "No problem found" when something was not checked."""
        if not self.checked:
            return "Nothing to check: no model, data, optimizer or history was given."
        missing = self.not_checked
        if missing:
            what = "; ".join(f.title.removeprefix("Not checked: ") for f in missing)
            done = sorted({f.check for f in self.findings if f.code != "not_checked" and f.status != "skip"})
            return (f"Inconclusive: no problem in what was checked ({', '.join(done) or 'nothing'}), but NOT "
                    f"checked: {what}.")
        return "No problem found: nothing here explains a run that does not learn."

    # -- text ----------------------------------------------------------------
    def to_text(self) -> str:
        lines = ["nbdetect diagnose report", "=" * 24]
        root = self.root_cause
        if root is None:
            lines.append(self._headline())
        else:
            lines.append(f"Most likely root cause: {root.title}")
            if root.fix:
                lines.append(f"  Fix: {root.fix}")
        lines.append(f"Next: {self.next_call} - {self.next_action_text}")
        others = [f for f in self.problems if f is not root]
        if others:
            lines.append("")
            lines.append("Other problems, in order:" if root is not None else "Observations:")
            for f in others:
                lines.append(f"  [{_MARKS[f.status]}] {f.title}")
        lines.append("")
        lines.append("All checks:")
        for f in self.findings:
            lines.append(f"[{_MARKS[f.status]}] {f.check}/{f.code}: {f.title}")
            if f.evidence:
                lines.extend("       " + part for part in f.evidence.splitlines())
            if f.fix and f.is_problem:
                lines.extend("   fix: " + part for part in f.fix.splitlines())
            if f.indices:
                lines.append("   samples: " + _short_list(f.indices))
        if self.skipped:
            lines.append("")
            lines.append("Skipped:")
            lines.extend(f"  - {s}" for s in self.skipped)
        lines.append(f"({self.elapsed_s:.1f} s)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        root = self.root_cause
        return f"<Report root_cause={root.code if root else None!r} next_action={self.next_action!r} " \
               f"findings={len(self.findings)}>"

    # -- HTML ----------------------------------------------------------------
    def _repr_html_(self) -> str:
        esc = html.escape
        root = self.root_cause
        parts = ['<div class="nbdetect-diagnose" style="font-family:sans-serif;max-width:1100px">',
                 "<h3 style='margin:4px 0'>nbdetect diagnose</h3>"]
        if root is None:
            parts.append(f"<p><b>{esc(self._headline())}</b></p>")
        else:
            parts.append(f"<p style='background:{_COLOURS[root.status]};padding:6px'>"
                         f"<b>Most likely root cause:</b> {esc(root.title)}<br>"
                         f"<b>Fix:</b> <code style='white-space:pre-wrap'>{esc(root.fix)}</code></p>")
        parts.append(f"<p><b>Next:</b> <code>{esc(self.next_call)}</code> - {esc(self.next_action_text)}</p>")
        parts.append("<table style='border-collapse:collapse;font-size:13px'>"
                     "<tr><th>status</th><th>check</th><th>finding</th><th>evidence</th><th>fix</th>"
                     "<th>samples</th></tr>")
        for f in self.findings:
            style = f"background:{_COLOURS[f.status]};border:1px solid #ccc;padding:3px;vertical-align:top"
            fix = esc(f.fix) if f.is_problem else ""
            parts.append(
                f"<tr><td style='{style}'><b>{_MARKS[f.status]}</b></td>"
                f"<td style='{style}'>{esc(f.check)}</td>"
                f"<td style='{style}'>{esc(f.title)}</td>"
                f"<td style='{style};white-space:pre-wrap'>{esc(f.evidence)}</td>"
                f"<td style='{style};white-space:pre-wrap'><code>{fix}</code></td>"
                f"<td style='{style}'>{esc(_short_list(f.indices))}</td></tr>"
            )
        parts.append("</table>")
        if self.plot_png:
            parts.append(_img(self.plot_png, "learning rate and loss per epoch"))
        if self.samples:
            parts.append("<p><b>Offending samples</b> (boxes as given):</p><div>")
            for s in self.samples:
                parts.append(f"<figure style='display:inline-block;margin:4px'>{_img(s.png, s.code)}"
                             f"<figcaption style='font-size:12px'>sample {s.index}: {esc(s.code)}</figcaption>"
                             "</figure>")
            parts.append("</div>")
        if self.skipped:
            parts.append("<p><b>Skipped:</b></p><ul>" + "".join(f"<li>{esc(s)}</li>" for s in self.skipped)
                         + "</ul>")
        parts.append(f"<p style='color:#888;font-size:11px'>{self.elapsed_s:.1f} s</p></div>")
        return "".join(parts)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'/>"


def _short_list(indices: list[int], limit: int = 20) -> str:
    if not indices:
        return ""
    head = ", ".join(str(i) for i in indices[:limit])
    return head + (f" ... (+{len(indices) - limit} more)" if len(indices) > limit else "")
