"""User-given expectations for a loss curve (``diagnose(expected={epoch: (lo, hi)})``).

Everything else about a curve (trend, plateau, divergence, LR cuts) is a fact of
:mod:`nbdetect.curve_facts`, judged by :mod:`nbdetect.verdict`.
"""
from __future__ import annotations

import math


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
