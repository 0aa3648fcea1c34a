"""Root-cause ordering: failures first, then warnings, each from the most fundamental code (registry.CODES).

A failing data or pipeline problem makes every schedule observation moot (a model fed 0-255 images or
shifted labels cannot be rescued by a better LR), so codes are ranked from what goes into the model to
how the curve looks. An inconclusive (skipped) check is never the root cause.
"""
from __future__ import annotations

from .. import actions
from . import registry

STATUS_ORDER = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}
FIX_DATA = registry.FIX_DATA


def next_action_text(name: str) -> str:
    return actions.how(name)


def can_be_root(finding) -> bool:
    return finding.status == "fail" or (finding.status == "warn" and not registry.is_observation(finding.code))


def sort_key(finding) -> tuple:
    return (STATUS_ORDER.get(finding.status, 9), finding.priority, finding.check, finding.code)


def rank(findings: list) -> list:
    """Findings sorted: failures first, then warnings, each from most to least fundamental."""
    return sorted(findings, key=sort_key)


def next_action_for(root) -> str:
    if root is None or root.status not in ("fail", "warn"):
        return "continue"
    return getattr(root, "next_action", None) or registry.next_action(root.code)
