"""Pure curve analysis: convergence, plateau and divergence on a per-epoch loss series."""
from __future__ import annotations

import math
from dataclasses import dataclass


def finite(values) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def first_nonfinite(values) -> int | None:
    for i, v in enumerate(values):
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            return i
    return None


def improvement(values, start: int, end: int) -> float:
    """Relative decrease from index ``start`` to ``end`` (0.2 = the loss fell by 20%)."""
    a, b = values[start], values[end]
    if not (math.isfinite(a) and math.isfinite(b)) or a == 0:
        return math.nan
    return (a - b) / abs(a)


def rate(values, start: int, end: int) -> float:
    """Mean relative decrease per epoch between two indices (geometric)."""
    a, b = values[start], values[end]
    if end <= start or not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return math.nan
    return 1.0 - (b / a) ** (1.0 / (end - start))


def divergence_index(values, factor: float = 2.0) -> int | None:
    """First index where the loss is non-finite, or rises above ``factor`` x its best so far and its start."""
    best = math.inf
    for i, v in enumerate(values):
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            return i
        if i > 0 and v > factor * best and v > values[0]:
            return i
        best = min(best, v)
    return None


def is_plateau(values, window: int = 5, tol: float = 0.03) -> bool:
    """The last ``window`` epochs improved the loss by less than ``tol`` (relative)."""
    vals = list(values)
    if len(vals) < window + 1:
        return False
    tail = vals[-(window + 1):]
    if not all(math.isfinite(v) for v in tail):
        return False
    return improvement(tail, 0, len(tail) - 1) < tol


@dataclass(frozen=True)
class DecayJudgement:
    epoch: int  # 1-based epoch that first used the lower LR
    factor: float  # new LR / old LR
    rate_before: float  # relative improvement per epoch just before the drop
    rate_after: float  # ... just after (nan when no epoch after)
    still_learning: bool  # the loss was still falling clearly when the LR dropped
    stalled_after: bool  # and progress (almost) stopped after it


def judge_decay(values, drop_index: int, window: int = 5, learning_rate_tol: float = 0.01) -> DecayJudgement:
    """Was the loss still falling when the LR dropped at ``drop_index`` (0-based epoch with the new LR)?

    still_learning: mean improvement per epoch over the ``window`` epochs before
    the drop is above ``learning_rate_tol`` (1%/epoch). stalled_after: the rate
    after the drop is under a third of the rate before and under that tolerance.
    """
    n = len(values)
    w = max(1, min(window, drop_index - 1))
    before = rate(values, drop_index - 1 - w, drop_index - 1) if drop_index - 1 - w >= 0 else math.nan
    wa = min(window, n - 1 - drop_index)
    after = rate(values, drop_index, drop_index + wa) if wa >= 2 else math.nan
    still = math.isfinite(before) and before > learning_rate_tol
    stalled = still and math.isfinite(after) and after < max(before / 3.0, 0.0) and after < learning_rate_tol
    return DecayJudgement(drop_index + 1, math.nan, before, after, still, stalled)


def lr_drops(lrs, min_factor: float = 2.0) -> list[tuple[int, float]]:
    """Indices where the LR falls by at least ``min_factor`` from one epoch to the next, with new/old."""
    out = []
    for i in range(1, len(lrs)):
        a, b = lrs[i - 1], lrs[i]
        if a > 0 and math.isfinite(a) and math.isfinite(b) and b * min_factor <= a:
            out.append((i, b / a))
    return out


def below_expected(values, expected) -> list[tuple[int, float, float, float]]:
    """Epochs whose loss is above the expected upper bound: ``(epoch, loss, lo, hi)``.

    ``expected``: ``{epoch: (lo, hi)}`` or a list of ``(epoch, lo, hi)``; epochs are 1-based.
    """
    items = expected.items() if isinstance(expected, dict) else [(e, (lo, hi)) for e, lo, hi in expected]
    out = []
    for epoch, (lo, hi) in sorted(items):
        i = int(epoch) - 1
        if 0 <= i < len(values) and math.isfinite(values[i]) and values[i] > hi:
            out.append((int(epoch), float(values[i]), float(lo), float(hi)))
    return out
