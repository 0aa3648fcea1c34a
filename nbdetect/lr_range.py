"""What an LR range test says: pure analysis of (lr, loss) pairs from an exponential LR sweep.

The sweep (``nbdetect.find_lr``) raises the LR geometrically each iteration and records the training loss.
Here the raw losses are smoothed (a bias-corrected exponential average), the sweep is cut at the first
non-finite loss or where the smoothed loss passes ``blowup`` x its best, both ends are trimmed, and two
suggestions are read off the curve against log10(LR):

* ``steepest``: where the smoothed loss falls fastest;
* ``valley``: two thirds of the way down the longest stretch over which the loss keeps falling (a point
  well inside the useful range, away from the cliff where the loss blows up);
* ``bottom``: where the loss is lowest before it rises.

The suggestion (``lr``) depends on the schedule it will be used with: the bottom as the peak of a warm-up +
decay schedule (the recipes'), the valley for a constant LR.

A curve that is too short, or whose fall (the first steps' median against the lowest window median) is not
clearly larger than the noise of such medians, gets no number but a reason: a suggestion read off noise would
be worse than the recipe's default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MIN_POINTS = 20  # fewer kept points than this: too short to read
SIGNIFICANCE = 4.0  # the fall must exceed this many sd of a difference of two window means


@dataclass
class LRSuggestion:
    valley: float | None
    steepest: float | None
    status: str  # "ok" | "too_short" | "too_noisy"
    reason: str
    kept: tuple[int, int] = (0, 0)  # the [start, end) indices of the points the suggestions were read from
    smoothed: list = field(default_factory=list)
    bottom: float | None = None  # where the loss is lowest before it blows up
    schedule: str = "decaying"  # what the LR will do in training: "decaying" (warm-up + cosine, steps) or "constant"

    @property
    def lr(self) -> float | None:
        """The LR to use. For a schedule that warms up and decays (the recipes' warm-up + cosine), the peak LR:
        the bottom of the sweep, as one-cycle training takes its maximum LR where the loss stops falling (the
        decay brings the LR back into the falling range). For a constant LR, the valley, well inside the range
        where the loss falls and away from the cliff."""
        return self.bottom if self.schedule == "decaying" and self.bottom is not None else self.valley


def median_filter(values, width: int = 5) -> list[float]:
    """Running median over ``width`` points (centred, shrinking at the ends): one outlier batch is not a trend."""
    half = width // 2
    windows = (sorted(values[max(0, i - half):i + half + 1]) for i in range(len(values)))
    return [w[len(w) // 2] for w in windows]


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
    """The sweep should stop: a non-finite loss, or the smoothed loss past ``blowup`` x its best. (Asked after
    every step, it re-smooths the whole sweep: a few ms over a few hundred points, against a training step.)"""
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
            beta: float = 0.9, schedule: str = "decaying") -> LRSuggestion:
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
    # the fall: the first points' median against the lowest median of as many consecutive points (medians: an
    # outlier batch moves neither), in units of the noise of such a difference (sd of a median of m points is
    # 1.25 sd / sqrt(m); the lowest of several windows is biased low: hence a margin of 4, not 2)
    m = max(5, len(raw) // 5)

    def median(values):
        v = sorted(values)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    start = median(raw[:m])
    low = min(median(raw[i:i + m]) for i in range(0, len(raw) - m + 1))
    fall, spread = start - low, 1.2533 * noise * math.sqrt(2 / m)
    if fall <= 0 or fall < SIGNIFICANCE * spread:
        return LRSuggestion(None, None, "too_noisy",
                            f"the loss falls by {fall:.3g} over the sweep, within its noise ({noise:.3g} sd per "
                            f"step, {spread:.3g} for the median of {m} steps): use more images per step, a longer "
                            "sweep (num_iter), or the recipe's LR", (lo, hi), sm)
    grads = [(sm[i + 1] - sm[i - 1]) / (x[i + 1] - x[i - 1]) for i in range(1, len(sm) - 1)]
    steep = 1 + min(range(len(grads)), key=grads.__getitem__)
    a, b = _longest_fall(sm)
    valley = a + int(round((b - a) * 2 / 3)) if b > a else steep
    # the bottom, located without the EMA's lag: a centred mean of the median-filtered loss
    mf = median_filter(raw)
    k = max(2, len(mf) // 40)
    centred = [sum(mf[max(0, i - k):i + k + 1]) / len(mf[max(0, i - k):i + k + 1]) for i in range(len(mf))]
    bottom = min(range(len(centred)), key=centred.__getitem__)
    return LRSuggestion(float(lrs[lo + valley]), float(lrs[lo + steep]), "ok",
                        f"loss falls by {fall:.3g} (noise {noise:.3g} sd) between LR {lrs[lo + a]:.2g} and "
                        f"{lrs[lo + b]:.2g}; fastest at {lrs[lo + steep]:.2g}, lowest at {lrs[lo + bottom]:.2g}",
                        (lo, hi), sm, float(lrs[lo + bottom]), schedule)
