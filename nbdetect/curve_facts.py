"""Facts about a training curve, computed once, read by the live verdict and by diagnose().

Pure Python (no torch, no widgets). :func:`curve_facts` turns per-epoch records
(``History.epochs``: ``epoch``, ``train_loss``, ``val_loss``, ``lr``, ``map``, ``map50``)
into a frozen :class:`CurveFacts`. Every fact is scale-free: losses are compared
as ratios and slopes are taken on ``log(loss)``, so the same history multiplied
by 0.3 or by 2000 gives the same facts (the reference, best and last values
scale, nothing else does).

Noise-aware: the per-epoch noise of the judged series is estimated from the
spread of its epoch-to-epoch log changes (median absolute deviation), and an
improvement counts only when it is larger than a margin derived from that noise
(never below ``MIN_DELTA``, 1%).

Gaps: an epoch without a validation loss (``None``, a missing key, or a NaN
placeholder while the training loss is finite, as when validating every other
epoch) is *missing*, not a value. A NaN/Inf counts as a non-finite loss when it
is a training loss, an Inf, or a NaN validation loss at the end of the history
longer than the run's validation cadence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MIN_DELTA = 0.01  # the smallest relative change ever called an improvement or a rise
NOISE_MARGIN = 2.0  # an improvement must exceed this many noise standard deviations
DEFAULT_NOISE = 0.01  # relative noise assumed when there are too few epochs to measure it
CUT_FACTOR = 2.0  # an LR at least this many times lower than the epoch before: a cut (a step)
STEP_FLAT_TOL = 0.05  # the LR was constant (within 5%) in the epoch before a step cut
WARMUP_RISE = 1.05  # an LR 5% above the epoch before, from the start: still warming up
MAX_MARGIN = 0.9  # a margin is a fraction of the loss: never 100% or more, however noisy the curve
MAP_COLLAPSE = 0.5  # mAP below half of its best: collapsed
MEANINGFUL_GAIN = 0.05  # a pace that matters: another half-run at it gains 5% of the loss ...
MEANINGFUL_MAP_GAIN = 0.01  # ... or 0.01 mAP
MIN_MAP_CHANGE = 0.002  # an mAP trend adding less than this over its window is no trend
MAX_PAIRS_POINTS = 60  # Theil-Sen on at most this many points (all pairs: 1770 slopes)
SLOPE_RESOLUTION = 0.01  # a trend is known once its standard error is below 1% per epoch (evidence_points)


# -- small helpers ----------------------------------------------------------------------------------------
def to_float(v) -> float | None:
    """A finite-or-not float, or None when the value is absent or not a number."""
    if v is None or isinstance(v, bool):
        return None
    try:
        out = float(v)
    except (TypeError, ValueError):
        return None
    return out


def is_finite(v) -> bool:
    return v is not None and math.isfinite(v)


def bounded_exp(x: float) -> float:
    """exp(x) for a log-slope times a span, kept inside float range (a history of absurd values can make the
    slope huge; math.exp raises OverflowError past 709)."""
    return math.exp(min(700.0, max(-700.0, x)))


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return math.nan
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _log(v: float) -> float:
    return math.log(max(v, 1e-30))


def theil_sen(points: list[tuple[int, float]], log: bool = True) -> tuple[float, float, float]:
    """Median, optimistic (25th percentile) and pessimistic (75th) slope per epoch of ``log(value)`` (of the
    value itself when ``log`` is False).

    The Theil-Sen estimator: the median of the slopes of all pairs, robust to a few noisy epochs. Long
    series are thinned evenly to ``MAX_PAIRS_POINTS`` points first, so the cost stays bounded.
    """
    if len(points) > MAX_PAIRS_POINTS:
        step = (len(points) - 1) / (MAX_PAIRS_POINTS - 1)
        points = [points[round(i * step)] for i in range(MAX_PAIRS_POINTS)]
    ys = [_log(y) if log else y for _, y in points]
    slopes = []
    for i in range(len(points)):
        for j in range(i + 1, len(points)):
            xa, xb = points[i][0], points[j][0]
            if xb != xa:
                d = (ys[j] - ys[i]) / (xb - xa)
                if math.isfinite(d):
                    slopes.append(d)
    if not slopes:
        return math.nan, math.nan, math.nan
    return _median(slopes), _quantile(slopes, 0.25), _quantile(slopes, 0.75)


def noise_of(points: list[tuple[int, float]]) -> float | None:
    """Relative per-epoch noise: robust spread of the second differences of ``log(value)`` (None: < 5 points).

    A smooth curve (even one whose trend turns, as when overfitting starts) has second differences near 0;
    independent noise of sd ``s`` gives second differences of sd ``s * sqrt(6)``.
    """
    if len(points) < 5:
        return None
    logs = [_log(v) for _, v in points]
    d2 = [logs[i + 1] - 2 * logs[i] + logs[i - 1] for i in range(1, len(logs) - 1)]
    mad = _median([abs(d) for d in d2])
    return 1.4826 * mad / math.sqrt(6)


# -- the facts --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LRCut:
    epoch: int  # first epoch that trained at the lower LR (1-based)
    before: float
    after: float

    @property
    def factor(self) -> float:
        return self.before / self.after if self.after > 0 else math.inf


@dataclass(frozen=True)
class LRFacts:
    """What the recorded LR of every epoch says: warm-up, peak, step cuts, where it is now."""

    known: bool = False
    peak: float | None = None
    peak_epoch: int | None = None
    current: float | None = None
    warmup_end: int = 0  # last epoch whose LR was still rising from the start (0: no warm-up seen)
    cuts: tuple[LRCut, ...] = ()
    raised_after: int | None = None  # epoch the LR was raised again after the last cut (an LR boost)
    plateau_driven: bool = False  # the cuts answer a plateau (ReduceLROnPlateau): they follow a stall, not cause it
    points: tuple[tuple[int, float], ...] = ()  # (epoch, LR) of every epoch that recorded one

    def fraction_at(self, epoch: int) -> float | None:
        """The LR at ``epoch`` (the latest recorded at or before it) as a fraction of the peak."""
        known = [lr for e, lr in self.points if e <= epoch]
        return known[-1] / self.peak if known and self.peak else None

    @property
    def last_cut(self) -> LRCut | None:
        return self.cuts[-1] if self.cuts else None

    @property
    def fraction_of_peak(self) -> float | None:
        if self.peak and self.current is not None:
            return self.current / self.peak
        return None


@dataclass(frozen=True)
class NonFinite:
    epoch: int
    metric: str  # "train_loss" | "val_loss"
    value: float


@dataclass(frozen=True)
class CurveFacts:
    """Facts about one run's loss curve after its latest epoch; see the module docstring.

    ``points``: ``(epoch, value)`` of the judged series (finite values only; gaps left out).
    ``trend``: median slope of ``log(loss)`` per epoch over the trailing ``window`` points
    (-0.05 = falling 5% per epoch).
    ``projected_end``: the loss at ``total_epochs`` on a power law fitted to the trailing window
    (log loss against log epoch, favourable slope bound): since losses decelerate at least that
    fast, a run whose projection misses a line will almost surely miss it.
    """

    metric: str
    n_epochs: int
    total_epochs: int
    points: tuple[tuple[int, float], ...]
    train_points: tuple[tuple[int, float], ...]
    reference: float | None
    nonfinite: NonFinite | None
    noise: float
    margin: float
    window: int
    trend: float
    trend_from: str | None  # the series the trend was measured on (None: too few epochs)
    current: float | None  # the loss now, robust to one noisy epoch (median fit of the trailing window)
    projected_end: float | None
    best: float | None
    best_epoch: int | None
    last: float | None
    last_epoch: int | None
    plateau_epochs: int  # epochs since the last improvement on the best by more than the margin
    train_noise: float
    lr: LRFacts = field(default_factory=LRFacts)
    map_points: tuple[tuple[int, float], ...] = ()
    map_trend: float = math.nan  # absolute mAP change per epoch over the trailing window
    map_key: str = ""  # "map50" or "map": the series read as mAP
    map_noise: float = 0.0  # absolute per-evaluation noise of mAP (second differences)
    evidence_points: int = 5  # judged epochs needed before a stop (from the noise: see evidence_points())

    # -- derived ----------------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.n_epochs >= self.total_epochs

    @property
    def has_map(self) -> bool:
        return any(v > 0 for _, v in self.map_points)

    @property
    def map_margin(self) -> float:
        """The smallest mAP change read as real: 0.005, or 2 noise sd."""
        return max(0.005, NOISE_MARGIN * self.map_noise)

    @property
    def map_best(self) -> tuple[int, float] | None:
        return max(self.map_points, key=lambda p: p[1]) if self.map_points else None

    @property
    def trend_points(self) -> tuple[tuple[int, float], ...]:
        """The series the trend is read from: the judged one, or the training loss when the trend comes from it."""
        return self.points if self.trend_from in (None, self.metric) else self.train_points

    def loss_improving(self, n: int) -> bool:
        """The judged loss falls significantly over its last ``n`` points (slope beyond 2 standard errors)."""
        pts = self.trend_points
        return significant_slope(pts[-n:], self.noise, log=True) < 0

    def map_improving(self, n: int) -> bool:
        """mAP rises significantly over its last ``n`` evaluations and by more than 0.002 in all."""
        return self.has_map and significant_slope(self.map_points[-n:], self.map_noise, log=False,
                                                  min_change=MIN_MAP_CHANGE) > 0

    @property
    def map_rising(self) -> bool:
        """mAP still improving beyond its noise over the trailing window: a significant upward trend, or a new
        best in the window above the best before it by more than the margin."""
        if not self.has_map or len(self.map_points) < 3:
            return False
        w = window_size(len(self.map_points)) + 1
        if self.map_improving(w):
            return True
        tail, before = self.map_points[-w:], self.map_points[:-w]
        return bool(before) and max(v for _, v in tail) > max(v for _, v in before) + self.map_margin

    @property
    def map_falling(self) -> bool:
        """The last 3 evaluations all below the best mAP by more than the margin."""
        best = self.map_best
        recent = self.map_points[-3:]
        return (best is not None and best[1] > 0 and len(recent) == 3 and best[0] < recent[0][0]
                and all(v < best[1] - self.map_margin for _, v in recent))

    @property
    def map_collapsed(self) -> bool:
        """The last two evaluations below half of the best mAP, a best well above the noise (4 sd, 0.02)."""
        best = self.map_best
        if best is None or best[1] < max(0.02, 4 * self.map_noise) or len(self.map_points) < 3:
            return False
        last_two = self.map_points[-2:]
        return best[0] < last_two[0][0] and all(v < MAP_COLLAPSE * best[1] for _, v in last_two)

    @property
    def improving(self) -> bool:
        """The judged loss falls beyond its noise over the trailing window."""
        return self.loss_improving(self.window + 1)

    def pace_matters(self, n: int | None = None) -> bool:
        """The loss falls at a pace that matters over its last ``n`` points (default: the trailing window, or the
        last quarter of the run when longer):
        significantly, and kept for another half of the run (at least 10 epochs) it gains more than the noise
        margin and 5% of the loss."""
        pts = self.trend_points
        n = n or max(self.window + 1, len(pts) // 4)
        slope = significant_slope(pts[-n:], self.noise, log=True)
        horizon = max(10, self.n_epochs / 2)
        return slope < 0 and -slope * horizon > max(MEANINGFUL_GAIN, self.margin)

    @property
    def pace_points(self) -> int:
        """The points over which a pace that matters (``pace_matters``) stands out of this curve's noise
        reliably: the smallest n whose least-squares slope error ``noise * sqrt(12 / (n^3 - n))`` is a third
        of that pace (a 2-error test then finds it about 5 times in 6). A slow fall in noise is only visible over that
        many epochs, so "no pace" (flat, stalled) is never read from fewer. Points validated every k epochs
        carry k times the span each: fewer of them are needed."""
        pace = max(MEANINGFUL_GAIN, self.margin) / max(10, self.n_epochs / 2)
        pts = self.trend_points
        gaps = sorted(b[0] - a[0] for a, b in zip(pts, pts[1:]))
        spacing = max(1, gaps[len(gaps) // 2]) if gaps else 1  # validated every `spacing` epochs
        n = 3
        while n < 200 and 3 * max(self.noise, 1e-4) * math.sqrt(12 / (n ** 3 - n)) / spacing > pace:
            n += 1
        return n

    @property
    def pace_window(self) -> int:
        """``pace_points``, at most the points there are (at least 3)."""
        pts = self.trend_points
        return min(self.pace_points, max(3, len(pts)))

    @property
    def dropped(self) -> float:
        """How far the loss is below the start, as a fraction of it (0: not at all)."""
        if not self.reference or self.current is None:
            return 0.0
        return 1 - self.current / self.reference

    @property
    def enough_evidence(self) -> bool:
        """Enough judged epochs, for this curve's noise, to tell a stall from a slow fall."""
        return len(self.points) >= self.evidence_points


def significant_slope(points, noise: float, log: bool = True, min_change: float = 0.0) -> float:
    """The Theil-Sen slope of ``points`` per epoch (of log values when ``log``) when it is beyond 2 standard
    errors of a least-squares slope for this noise (``noise * sqrt(12 / (n^3 - n))`` for n evenly spaced
    points) and the change over the span exceeds ``min_change``; else 0.0 (no significant trend)."""
    pts = list(points)
    if len(pts) < 3:
        return 0.0
    slope = theil_sen(pts, log=log)[0]
    span = pts[-1][0] - pts[0][0]
    if not math.isfinite(slope) or span <= 0:
        return 0.0
    n = len(pts)
    se = max(noise, 1e-4) * math.sqrt(12 / (n ** 3 - n)) * (n - 1) / span
    if abs(slope) <= 2 * se or abs(slope) * span <= min_change:
        return 0.0
    return slope


def evidence_points(noise: float) -> int:
    """Judged epochs needed before a stop: the trend of n evenly spaced points with noise sd ``noise`` has a
    standard error of ``noise * sqrt(12 / (n^3 - n))``; n is the smallest count that brings it under 1% per
    epoch (never under 5: a noise estimate needs 5 points)."""
    n = 5
    while n < 200 and noise * math.sqrt(12 / (n ** 3 - n)) > SLOPE_RESOLUTION:
        n += 1
    return n


def _plateau_length(points: list[tuple[int, float]], margin: float) -> int:
    """Epochs since the loss last beat its best by more than ``margin``."""
    if not points:
        return 0
    running, last_improved = points[0][1], points[0][0]
    need = -math.log(1 - min(margin, MAX_MARGIN)) + 1e-9  # in log space, clear of rounding: the same at every scale
    for e, v in points[1:]:
        if _log(running) - _log(v) > need:
            running, last_improved = v, e
        else:
            running = min(running, v)
    return points[-1][0] - last_improved


def window_size(n_points: int) -> int:
    """Trailing window for trends: a quarter of the points seen, 4 to 8."""
    return max(4, min(8, math.ceil(n_points / 4)))


def epoch_number(rec: dict, index: int) -> int:
    """The epoch number as written (a record without a usable one: its position, 1-based)."""
    e = to_float(rec.get("epoch"))
    return int(e) if is_finite(e) and abs(e) < 1e9 else index + 1


def by_epoch(epochs: list[dict]) -> list[dict]:
    """The records ordered by epoch number, a repeated number keeping its latest record (a resumed loop that
    appended an epoch twice)."""
    latest = {}
    for i, rec in enumerate(epochs):
        latest[epoch_number(rec, i)] = rec
    return [dict(latest[e], epoch=e) for e in sorted(latest)]


def _series(epochs: list[dict], key: str) -> list[tuple[int, float | None, bool]]:
    """``(epoch, value, present)`` per record; ``present`` False when the key is absent or None."""
    out = []
    for i, rec in enumerate(epochs):
        v = to_float(rec.get(key))
        out.append((epoch_number(rec, i), v, v is not None))
    return out


def _cadence(present_epochs: list[int]) -> int:
    gaps = [b - a for a, b in zip(present_epochs, present_epochs[1:]) if b > a]
    if not gaps:
        return 1
    return max(1, int(round(_median(gaps))))


def _nonfinite(train, val) -> NonFinite | None:
    """The first real non-finite loss; NaN validation placeholders (gaps) are not one."""
    for epoch, v, present in train:
        if present and not math.isfinite(v):
            return NonFinite(epoch, "train_loss", v)
    for epoch, v, present in val:
        if present and math.isinf(v):
            return NonFinite(epoch, "val_loss", v)
    finite_val_epochs = [e for e, v, p in val if p and math.isfinite(v)]
    if not finite_val_epochs:
        return None  # never validated: NaN placeholders only, the training loss is judged
    last_finite = finite_val_epochs[-1]
    trailing_nan = [e for e, v, p in val if p and math.isnan(v) and e > last_finite]
    # a NaN before a later finite value is a gap; a trailing run as long as the validation cadence is real
    # the cadence counts from epoch 0: a first validation at epoch 3 means "every 3 epochs" already
    if trailing_nan and len(trailing_nan) >= _cadence([0] + finite_val_epochs):
        return NonFinite(trailing_nan[0], "val_loss", math.nan)
    return None


def lr_facts(lrs: list[float | None], epochs: list[int], plateau_driven: bool = False) -> LRFacts:
    pts = [(e, lr) for e, lr in zip(epochs, lrs) if is_finite(lr) and lr > 0]
    if not pts:
        return LRFacts()
    peak_epoch, peak = max(pts, key=lambda p: p[1])
    warmup_end = 0
    for (_, a), (eb, b) in zip(pts, pts[1:]):
        if b > a * WARMUP_RISE:
            warmup_end = eb
        else:
            break
    cuts = []
    raised_after = None
    for k in range(1, len(pts)):
        (_, a), (eb, b) = pts[k - 1], pts[k]
        flat_before = k < 2 or abs(pts[k - 2][1] - a) <= STEP_FLAT_TOL * a
        if b * CUT_FACTOR <= a and flat_before:
            cuts.append(LRCut(eb, a, b))
        elif cuts and b > a * 1.5 and eb > cuts[-1].epoch:
            raised_after = eb
    return LRFacts(True, peak, peak_epoch, pts[-1][1], warmup_end, tuple(cuts), raised_after, plateau_driven,
                   tuple(pts))


def _map_points(epochs: list[dict]) -> tuple[list[tuple[int, float]], str]:
    key = "map50" if any(is_finite(to_float(r.get("map50"))) for r in epochs) else "map"
    return [(e, v) for e, v, p in _series(epochs, key) if p and math.isfinite(v)], key


def curve_facts(history_epochs: list[dict], total_epochs: int | None = None,
                lr_per_epoch: list[float] | None = None, reference_loss: float | None = None,
                lr_plateau_driven: bool = False) -> CurveFacts:
    """Facts after the latest epoch of ``history_epochs`` (see the module docstring).

    ``lr_plateau_driven``: the LR is cut by a ReduceLROnPlateau-like scheduler (its cuts follow a stall).
    """
    epochs = by_epoch([e for e in (history_epochs or []) if isinstance(e, dict)])
    n = epochs[-1]["epoch"] if epochs else 0
    total = int(total_epochs) if total_epochs and total_epochs > 0 else n
    train = _series(epochs, "train_loss")
    if not any(p for _, _, p in train):
        train = _series(epochs, "loss")
    val = _series(epochs, "val_loss")
    has_val = any(p and math.isfinite(v) for _, v, p in val)
    metric = "val_loss" if has_val else "train_loss"
    judged = val if has_val else train
    points = [(e, v) for e, v, p in judged if p and math.isfinite(v)]
    train_points = [(e, v) for e, v, p in train if p and math.isfinite(v)]
    nonfinite = _nonfinite(train, val)

    if reference_loss is not None and is_finite(to_float(reference_loss)) and reference_loss > 0:
        reference = float(reference_loss)
    else:
        firsts = [pts[0][1] for pts in (train_points, points) if pts]
        firsts = [v for v in firsts if v > 0]
        reference = max(firsts) if firsts else None

    measured = noise_of(points)
    noise = measured if measured is not None else DEFAULT_NOISE
    margin = min(MAX_MARGIN, max(MIN_DELTA, NOISE_MARGIN * noise))
    w = window_size(len(points))
    rec_epochs = [rec["epoch"] for rec in epochs]
    given = list(lr_per_epoch) if lr_per_epoch is not None else []
    lrs = [to_float(given[e - 1]) if 0 < e <= len(given) else to_float(rec.get("lr"))
           for e, rec in zip(rec_epochs, epochs)]
    lr = lr_facts(lrs, rec_epochs, lr_plateau_driven)

    tail = points[-(w + 1):]
    if lr.last_cut is not None:  # a new regime since the last LR cut: the trend is measured inside it
        since_cut = [p for p in tail if p[0] >= lr.last_cut.epoch]
        if len(since_cut) >= min(w + 1, 6):
            tail = since_cut
    if len(tail) < 3 and metric == "val_loss":  # too few validated epochs: the training loss gives the trend
        trend_tail, trend_from = train_points[-(window_size(len(train_points)) + 1):], "train_loss"
    else:
        trend_tail, trend_from = tail, metric
    if len(trend_tail) < 3:
        trend_tail, trend_from = [], None
    trend = theil_sen(trend_tail)[0] if trend_tail else math.nan
    if trend_from == metric and math.isfinite(trend):
        # current level: the median of the tail's values moved along the trend to the last epoch
        last_e = tail[-1][0]
        current = bounded_exp(_median([_log(v) + trend * (last_e - e) for e, v in tail]))
    else:
        current = points[-1][1] if points else None
    last_epoch = points[-1][0] if points else None
    plateau = _plateau_length(points, margin)
    projected = None
    if current is not None and trend_from is not None:
        # a power law through the trailing window (log loss against log epoch), its favourable slope bound:
        # exact for a power-law decay and optimistic for a loss approaching a floor
        loglog = [(math.log(e), v) for e, v in trend_tail if e > 0]
        slope = theil_sen(loglog)[1] if len(loglog) >= 3 else math.nan
        slope = min(slope, 0.0) if math.isfinite(slope) else 0.0
        span = trend_tail[-1][0] - trend_tail[0][0] if len(trend_tail) >= 2 else 0
        if span and math.isfinite(trend) and -trend * span < margin:
            slope = 0.0  # no improvement beyond the noise over the window: flat, whatever a noisy fit suggests
        long_flat = [(math.log(e), v) for e, v in points if e >= (last_epoch or n) - plateau]
        if trend_from == metric and len(long_flat) > 2 * (w + 1):
            # no new best for more than two windows: the whole plateau, not its noisiest end, says where it goes
            slope = max(slope, min(theil_sen(long_flat)[0], 0.0))
        end = max(total, last_epoch or n)
        projected = current * (end / max(1, last_epoch or n)) ** slope

    best = best_epoch = None
    if points:
        best_epoch, best = min(points, key=lambda p: p[1])

    t_noise = noise_of(train_points)

    maps, map_key = _map_points(epochs)
    m_tail = maps[-(window_size(len(maps)) + 1):]
    map_trend = math.nan
    if len(m_tail) >= 3:
        slopes = [(b - a) / (eb - ea) for (ea, a), (eb, b) in zip(m_tail, m_tail[1:]) if eb > ea]
        map_trend = _median(slopes) if slopes else math.nan
    map_noise = 0.0
    if len(maps) >= 5:
        d2 = [maps[i + 1][1] - 2 * maps[i][1] + maps[i - 1][1] for i in range(1, len(maps) - 1)]
        map_noise = 1.4826 * _median([abs(d) for d in d2]) / math.sqrt(6)

    return CurveFacts(
        metric=metric, n_epochs=n, total_epochs=max(total, n), points=tuple(points),
        train_points=tuple(train_points), reference=reference, nonfinite=nonfinite, noise=noise, margin=margin,
        window=w, trend=trend, trend_from=trend_from, current=current, projected_end=projected, best=best,
        best_epoch=best_epoch,
        last=points[-1][1] if points else None, last_epoch=last_epoch, plateau_epochs=plateau,
        train_noise=t_noise if t_noise is not None else DEFAULT_NOISE, lr=lr,
        map_points=tuple(maps), map_trend=map_trend, map_key=map_key, map_noise=map_noise,
        evidence_points=evidence_points(noise))
