"""Reconstruct the LR a run used (and will use) from its optimizer and scheduler.

The user's objects are never touched: the optimizer and scheduler are deep-copied
together with every parameter (and optimizer-state tensor) replaced by a
one-element dummy, so the copy is cheap even for a ResNet-50 detector. The LR at
scheduler step ``s`` is then read from the copy in closed form for torch's
schedulers (including SequentialLR/ChainedScheduler built from them); unknown
schedulers are replayed forward from their current state.
"""
from __future__ import annotations

import copy
import math
import warnings
from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass
class LRTimeline:
    """LR of the first param group at the start of each epoch (index 0 = epoch 1)."""

    per_epoch: list[float]
    interval: str  # "epoch" | "step": how often the scheduler is stepped
    scheduler: str  # class name
    steps_done: int  # scheduler steps already taken (its last_epoch)
    current_lr: float  # the user's optimizer LR now
    base_lr: float
    exact: bool = True  # False when the past had to be guessed
    notes: list[str] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        if self.interval == "epoch":
            return self.steps_done
        return -1


def copy_with_dummy_params(optimizer, scheduler=None):
    """Deep copies of ``(optimizer, scheduler)`` sharing nothing with the originals and holding no big tensors."""
    import torch

    memo: dict = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            memo[id(p)] = torch.zeros(1, requires_grad=True)
    for state in optimizer.state.values():
        for v in state.values():
            if torch.is_tensor(v) and v.numel() > 1:
                memo[id(v)] = torch.zeros(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return copy.deepcopy((optimizer, scheduler), memo)


def _closed_form(s, step: int) -> list[float] | None:
    """LRs of every group at scheduler step ``step`` for a (copied) torch scheduler, or None if unknown."""
    from torch.optim import lr_scheduler as L

    name = type(s).__name__
    if isinstance(s, L.SequentialLR):
        idx = bisect_right(s._milestones, step)
        local = step if idx == 0 else step - s._milestones[idx - 1]
        return _closed_form(s._schedulers[idx], local)
    if isinstance(s, L.ChainedScheduler):
        lrs = list(s._schedulers[0].base_lrs)
        for sub in s._schedulers:
            sub_lrs = _closed_form(sub, step)
            if sub_lrs is None:
                return None
            lrs = [lr * (x / b if b else 1.0) for lr, x, b in zip(lrs, sub_lrs, sub.base_lrs)]
        return lrs
    if isinstance(s, L.LambdaLR):
        return [b * f(step) for b, f in zip(s.base_lrs, s.lr_lambdas)]
    if isinstance(s, L.MultiplicativeLR):
        out = []
        for b, f in zip(s.base_lrs, s.lr_lambdas):
            lr = b
            for k in range(1, step + 1):
                lr *= f(k)
            out.append(lr)
        return out
    if isinstance(s, L.CosineAnnealingWarmRestarts):
        t_cur, t_i = step, s.T_0
        while t_cur >= t_i:
            t_cur -= t_i
            t_i *= s.T_mult
        return [s.eta_min + (b - s.eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2 for b in s.base_lrs]
    if isinstance(s, (L.OneCycleLR, L.CyclicLR)):
        if isinstance(s, L.OneCycleLR):
            step = min(step, s.total_steps - 1)
        s.last_epoch = step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [float(x) for x in s.get_lr()]
    if hasattr(s, "_get_closed_form_lr") and name != "ReduceLROnPlateau":
        s.last_epoch = step
        return [float(x) for x in s._get_closed_form_lr()]
    return None


def _forward(s, opt, steps: int) -> list[float]:
    """LR of group 0 for the next ``steps`` steps, stepping the copy."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            out.append(float(opt.param_groups[0]["lr"]))
            s.step()
    return out


def steps_taken(scheduler) -> int:
    """How many times ``scheduler.step()`` has been called (its ``last_epoch``)."""
    if hasattr(scheduler, "last_epoch"):
        return int(scheduler.last_epoch)
    subs = getattr(scheduler, "_schedulers", None)
    return int(subs[0].last_epoch) if subs else 0


def guess_interval(scheduler, epochs_done: int | None, steps_per_epoch: int | None) -> str:
    """``"step"`` when the scheduler has been stepped once per iteration, else ``"epoch"``."""
    from torch.optim import lr_scheduler as L

    steps = steps_taken(scheduler)
    if epochs_done and steps_per_epoch and steps_per_epoch > 1:
        per_epoch = abs(steps - epochs_done)
        per_step = abs(steps - epochs_done * steps_per_epoch)
        return "step" if per_step < per_epoch else "epoch"
    if isinstance(scheduler, (L.OneCycleLR, L.CyclicLR)):
        return "step"
    return "epoch"


def planned_epochs_hint(scheduler, interval: str, steps_per_epoch: int | None) -> int | None:
    """How many epochs the scheduler looks planned for (OneCycle total, cosine T_max, milestones)."""
    from torch.optim import lr_scheduler as L

    spe = (steps_per_epoch or 1) if interval == "step" else 1
    if isinstance(scheduler, L.OneCycleLR):
        return math.ceil(scheduler.total_steps / spe)
    if isinstance(scheduler, L.CosineAnnealingLR):
        return math.ceil(scheduler.T_max / spe)
    if isinstance(scheduler, L.MultiStepLR) and scheduler.milestones:
        return math.ceil(max(scheduler.milestones) / spe * 4 / 3)
    if isinstance(scheduler, L.SequentialLR):
        return math.ceil(max(scheduler._milestones) / spe * 2)
    return None


def reconstruct(optimizer, scheduler=None, *, epochs: int | None = None, epochs_done: int | None = None,
                steps_per_epoch: int | None = None, interval: str = "auto") -> LRTimeline:
    """The LR at the start of every epoch of the run, from step 0 to ``epochs``."""
    current = float(optimizer.param_groups[0]["lr"])
    if scheduler is None:
        n = epochs or max(epochs_done or 0, 1)
        return LRTimeline([current] * n, "epoch", "none", 0, current, current, exact=True,
                          notes=["no scheduler: the LR is constant at the optimizer's value"])
    if interval == "auto":
        interval = guess_interval(scheduler, epochs_done, steps_per_epoch)
    spe = (steps_per_epoch or 1) if interval == "step" else 1
    steps_done = steps_taken(scheduler)
    if epochs is None:
        done = epochs_done if epochs_done is not None else math.ceil(steps_done / spe)
        epochs = max(done, planned_epochs_hint(scheduler, interval, steps_per_epoch) or 0, 1)
    if type(scheduler).__name__ == "ReduceLROnPlateau":
        return LRTimeline([math.nan] * epochs, interval, "ReduceLROnPlateau", steps_done, current, current,
                          exact=False, notes=["ReduceLROnPlateau depends on the metric it is fed: "
                                              "its LR is known only from the logged history"])
    opt_c, sched_c = copy_with_dummy_params(optimizer, scheduler)
    base = float(opt_c.param_groups[0].get("initial_lr", current))
    notes: list[str] = []
    probe = _closed_form(sched_c, 0)
    if probe is not None:
        per_epoch = [float(_closed_form(sched_c, e * spe)[0]) for e in range(epochs)]
        check = _closed_form(sched_c, steps_done)
        exact = check is not None and math.isclose(check[0], current, rel_tol=1e-3, abs_tol=1e-12)
        if not exact:
            notes.append(f"the optimizer's LR now ({current:.3g}) differs from what {type(scheduler).__name__} "
                         f"gives at step {steps_done} ({check[0]:.3g}): the LR was changed by hand")
    else:
        # Unknown scheduler: the past is unknown, replay the future from the current state.
        ahead = max(0, epochs * spe - steps_done)
        future = _forward(sched_c, opt_c, ahead)
        past_epochs = math.ceil(steps_done / spe)
        per_epoch = [math.nan] * past_epochs + future[::spe]
        per_epoch = per_epoch[:epochs]
        exact = False
        notes.append(f"{type(scheduler).__name__} cannot be evaluated in closed form: "
                     "only the LR from now on was replayed")
    return LRTimeline(per_epoch, interval, type(scheduler).__name__, steps_done, current, base, exact, notes)
