"""How numbers are written in nbdetect's messages (pure): one home for each format, so a verdict, a report and
a refusal write the same value the same way."""
from __future__ import annotations

import math


def fmt_value(x: float | None, missing: str = "n/a") -> str:
    """A loss, an LR or a ratio: 3 significant digits, whole numbers from 100, scientific below 0.01."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
        return missing
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 0.01:
        return f"{x:.3g}"
    return f"{x:.2e}"


def fmt_score(v, missing: str = "-") -> str:
    """An mAP or a score in [0, 1]: three decimals."""
    return f"{v:.3f}" if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else missing


def fmt_box(box) -> str:
    """A box's four coordinates as written in a message: ``[x1, y1, x2, y2]`` with 4 significant digits."""
    return "[" + ", ".join(f"{float(v):.4g}" for v in box) + "]"
