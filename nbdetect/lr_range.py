"""What an LR range test says: pure analysis of (lr, loss) pairs from an exponential LR sweep.

The sweep (``nbdetect.find_lr``) raises the LR geometrically each iteration and records the training loss.
Here the raw losses are smoothed (a bias-corrected exponential average), the sweep is cut at the first
non-finite loss or where the smoothed loss passes ``blowup`` x its best, both ends are trimmed, and two
suggestions are read off the curve against log10(LR):

* ``steepest``: where the smoothed loss falls fastest;
* ``valley``: two thirds of the way down the longest stretch over which the loss keeps falling (a point
  well inside the useful range, away from the cliff where the loss blows up).

A curve that is too short or whose fall is not clearly larger than its noise gets no number, a reason
instead: a suggestion read off noise would be worse than the recipe's default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MIN_POINTS = 20  # fewer kept points than this: too short to read
NOISE_FACTOR = 3.0  # the smoothed fall must exceed this many noise sd


@dataclass
class LRSuggestion:
    valley: float | None
    steepest: float | None
    status: str  # "ok" | "too_short" | "too_noisy"
    reason: str
    kept: tuple[int, int] = (0, 0)  # the [start, end) indices of the points the suggestions were read from
    smoothed: list = field(default_factory=list)

    @property
    def lr(self) -> float | None:
        """The LR to use: the valley (the steepest point sits closer to the cliff)."""
        return self.valley


def median_filter(values, width: int = 5) -> list[float]:
    """Running median over ``width`` points (centred, shrinking at the ends): one outlier batch is not a trend."""
    half = width // 2
    return [sorted(values[max(0, i - half):i + half + 1])[len(values[max(0, i - half):i + half + 1]) // 2]
            for i in range(len(values))]


def smooth(losses, beta: float = 0.9) -> list[float]:
    """A running median (outlier batches out), then a bias-corrected exponential moving average."""
    out, avg = [], 0.0
    for i, v in enumerate(median_filter(list(losses)), start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** i))
    return out


def _cut(losses, blowup: float) -> int:
    """Number of points before the first non-finite loss or the smoothed blow-up."""
    n = 0
    for v in losses:
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            break
        n += 1
    sm = smooth(losses[:n])
    best = math.inf
    for i, v in enumerate(sm):
        best = min(best, v)
        if i > 5 and v > blowup * best:
            return i
    return n


def blown_up(losses, blowup: float = 4.0) -> bool:
    """The sweep should stop: a non-finite loss, or the smoothed loss past ``blowup`` x its best."""
    return _cut(list(losses), blowup) < len(losses)


def _longest_fall(values) -> tuple[int, int]:
    """(start, end) indices of the longest strictly decreasing subsequence, spanning as many points as
    possible (O(n^2); a sweep has a few hundred points)."""
    n = len(values)
    if n == 0:
        return 0, 0
    length, start = [1] * n, list(range(n))
    for j in range(n):
        for i in range(j):
            if values[i] > values[j] and length[i] + 1 > length[j]:
                length[j], start[j] = length[i] + 1, start[i]
    end = max(range(n), key=lambda k: (length[k], k - start[k]))
    return start[end], end


def suggest(lrs, losses, *, skip_start: float = 0.1, skip_end: float = 0.05, blowup: float = 4.0,
            beta: float = 0.9) -> LRSuggestion:
    """Read the suggestions off a sweep; see the module docstring."""
    if len(lrs) != len(losses):
        raise ValueError(f"{len(lrs)} LRs but {len(losses)} losses")
    n = _cut(list(losses), blowup)
    lo = max(2, int(n * skip_start))
    hi = n - max(1, int(n * skip_end))
    if hi - lo < MIN_POINTS:
        return LRSuggestion(None, None, "too_short",
                            f"only {max(hi - lo, 0)} usable points (need {MIN_POINTS}): sweep more iterations or "
                            "start from a lower LR", (lo, max(hi, lo)))
    raw = [float(v) for v in losses[lo:hi]]
    sm = smooth(losses[:hi], beta)[lo:hi]
    x = [math.log10(v) for v in lrs[lo:hi]]
    # noise: robust sd from second differences of the raw loss (a trend, straight or curving slowly, cancels)
    d2 = sorted(abs(raw[i + 1] - 2 * raw[i] + raw[i - 1]) for i in range(1, len(raw) - 1))
    noise = 1.4826 * d2[len(d2) // 2] / math.sqrt(6)
    fall = max(sm[: max(1, len(sm) // 3)]) - min(sm)
    if fall <= NOISE_FACTOR * noise or fall <= 0:
        return LRSuggestion(None, None, "too_noisy",
                            f"the loss falls by {fall:.3g} over the sweep, not clearly more than its noise "
                            f"({noise:.3g} sd): use more images per step, a longer sweep, or the recipe's LR",
                            (lo, hi), sm)
    grads = [(sm[i + 1] - sm[i - 1]) / (x[i + 1] - x[i - 1]) for i in range(1, len(sm) - 1)]
    steep = 1 + min(range(len(grads)), key=grads.__getitem__)
    a, b = _longest_fall(sm)
    valley = a + int(round((b - a) * 2 / 3)) if b > a else steep
    return LRSuggestion(float(lrs[lo + valley]), float(lrs[lo + steep]), "ok",
                        f"loss falls by {fall:.3g} (noise {noise:.3g} sd) between LR {lrs[lo + a]:.2g} and "
                        f"{lrs[lo + b]:.2g}; fastest at {lrs[lo + steep]:.2g}", (lo, hi), sm)
