"""Learning-rate schedules as pure data: ``lr_at(step)`` for every iteration.

The same object draws the planned curve before training starts, drives the
optimizer during training (through :func:`to_torch`, a ``LambdaLR`` stepped
once per iteration), and is restored exactly on resume (the ``LambdaLR`` state
is just the step counter).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schedule:
    """A per-iteration LR schedule.

    kind:
      * ``"warmup_cosine"``: linear warmup from ``base_lr * warmup_start_factor``
        to ``base_lr`` over ``warmup_steps``, then cosine from ``base_lr`` to
        ``min_lr`` at the last step.
      * ``"multistep"``: ``base_lr`` multiplied by ``gamma`` at each epoch in
        ``milestones`` (epoch-based, like ``torch.optim.lr_scheduler.MultiStepLR``
        stepped once per epoch), optional warmup.
      * ``"constant"``: ``base_lr`` throughout, optional warmup.
    """

    kind: str
    base_lr: float
    total_steps: int
    steps_per_epoch: int = 1
    warmup_steps: int = 0
    warmup_start_factor: float = 0.001
    min_lr: float = 0.0
    milestones: tuple[int, ...] = field(default_factory=tuple)
    gamma: float = 0.1

    def __post_init__(self):
        if self.kind not in ("warmup_cosine", "multistep", "constant"):
            raise ValueError(f"unknown schedule kind {self.kind!r}")
        if self.total_steps < 1 or self.steps_per_epoch < 1:
            raise ValueError("total_steps and steps_per_epoch must be >= 1")
        if self.base_lr <= 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
        if not 0 <= self.warmup_steps < self.total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps), got {self.warmup_steps}")

    def lr_at(self, step: int) -> float:
        """LR used by iteration ``step`` (0-based)."""
        step = min(max(int(step), 0), self.total_steps - 1)
        if step < self.warmup_steps:
            frac = step / self.warmup_steps
            start = self.base_lr * self.warmup_start_factor
            return start + (self.base_lr - start) * frac
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "multistep":
            epoch = step // self.steps_per_epoch
            drops = sum(1 for m in self.milestones if epoch >= m)
            return self.base_lr * self.gamma**drops
        span = self.total_steps - 1 - self.warmup_steps
        t = 1.0 if span <= 0 else (step - self.warmup_steps) / span
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * t))

    def planned(self) -> list[float]:
        """LR at every step, known before training starts."""
        return [self.lr_at(s) for s in range(self.total_steps)]

    def per_epoch(self) -> list[float]:
        """LR at the first iteration of each epoch."""
        epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        return [self.lr_at(e * self.steps_per_epoch) for e in range(epochs)]


def warmup_cosine(base_lr, min_lr, epochs, steps_per_epoch, warmup_epochs=1.0, warmup_start_factor=0.001):
    total = epochs * steps_per_epoch
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), total - 1)
    return Schedule("warmup_cosine", base_lr, total, steps_per_epoch, warmup, warmup_start_factor, min_lr)


def multistep(base_lr, milestones, gamma, epochs, steps_per_epoch, warmup_epochs=0.0):
    total = epochs * steps_per_epoch
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), total - 1)
    return Schedule("multistep", base_lr, total, steps_per_epoch, warmup, milestones=tuple(milestones), gamma=gamma)


def constant(base_lr, epochs, steps_per_epoch):
    return Schedule("constant", base_lr, epochs * steps_per_epoch, steps_per_epoch)


def to_torch(optimizer, schedule: Schedule):
    """A ``LambdaLR`` that sets every param group's LR to ``schedule.lr_at(step)``.

    Each group's ``initial_lr`` is set to ``schedule.base_lr`` so the factor is exact.
    Step it once per iteration, after ``optimizer.step()``.
    """
    from torch.optim.lr_scheduler import LambdaLR

    for group in optimizer.param_groups:
        group["initial_lr"] = schedule.base_lr
        group["lr"] = schedule.base_lr
    return LambdaLR(optimizer, lr_lambda=_Factor(schedule))


class _Factor:
    """Picklable LR factor (LambdaLR saves non-lambda callables' __dict__ in its state)."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def __call__(self, step: int) -> float:
        return self.schedule.lr_at(step) / self.schedule.base_lr
