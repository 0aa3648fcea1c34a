"""Rules about boxes that more than one check applies (pure: numpy, no torch)."""
from __future__ import annotations

import numpy as np


def looks_normalised(boxes, hw) -> bool:
    """The one rule for boxes given as 0-1 fractions of the image instead of pixels: every coordinate in
    [0, 1.5] (slack for rounding and boxes past the edge) on an image larger than 32 px a side, where a box of
    at most 1.5 px would be absurd. ``boxes``: [N, 4] (array or tensor); ``hw``: (height, width) or None."""
    b = np.asarray(boxes, dtype=np.float64)
    return (hw is not None and min(hw) > 32 and b.size > 0 and bool(np.isfinite(b).all())
            and float(b.max()) <= 1.5 and float(b.min()) >= 0)
