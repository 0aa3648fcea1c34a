"""The guide's training recipes as plain data.

``SEED_MULTISTEP`` is the student's failing configuration, kept so the
difference can be shown rather than claimed. ``scaled(epochs)`` compresses a
recipe to a shorter run keeping its milestones and decision point at the same
fraction of the run (epoch 30 of 60 -> epoch 5 of 10).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import schedules


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    preset: str
    epochs: int
    optimizer: str  # "adamw" | "adam" | "sgd"
    lr: float
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "warmup_cosine"  # "warmup_cosine" | "multistep" | "constant"
    warmup_epochs: float = 1.0
    min_lr: float = 1e-6
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    grad_clip: float | None = 10.0
    batch_size: int = 4
    decision_epoch: int | None = None  # the guide's "wait for epoch 20" point
    on_failure: str | None = None  # what the guide says to run next if the decision fails

    def replace(self, **changes) -> "Recipe":
        return dataclasses.replace(self, **changes)

    def scaled(self, epochs: int) -> "Recipe":
        """The same recipe over ``epochs`` epochs, milestones and decision point moved proportionally."""
        if epochs == self.epochs:
            return self
        f = epochs / self.epochs
        milestones = tuple(sorted({max(1, round(m * f)) for m in self.milestones}))
        decision = max(1, round(self.decision_epoch * f)) if self.decision_epoch else None
        return self.replace(epochs=epochs, milestones=milestones, decision_epoch=decision,
                            warmup_epochs=min(self.warmup_epochs, max(epochs * 0.1, 0.0)))

    def make_schedule(self, steps_per_epoch: int) -> schedules.Schedule:
        if self.schedule == "warmup_cosine":
            return schedules.warmup_cosine(self.lr, self.min_lr, self.epochs, steps_per_epoch, self.warmup_epochs)
        if self.schedule == "multistep":
            return schedules.multistep(self.lr, self.milestones, self.gamma, self.epochs, steps_per_epoch,
                                       self.warmup_epochs)
        if self.schedule == "constant":
            return schedules.constant(self.lr, self.epochs, steps_per_epoch)
        raise ValueError(f"unknown schedule {self.schedule!r}")

    def make_optimizer(self, params):
        import torch

        params = [p for p in params if p.requires_grad]
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        raise ValueError(f"unknown optimizer {self.optimizer!r}")

    def describe(self) -> str:
        if self.schedule == "multistep":
            sched = f"MultiStepLR milestones {list(self.milestones)} x{self.gamma}"
        elif self.schedule == "warmup_cosine":
            sched = f"{self.warmup_epochs:g}-epoch linear warmup then cosine {self.lr:g} -> {self.min_lr:g}"
        else:
            sched = f"constant {self.lr:g}"
        clip = f", grad clip {self.grad_clip:g}" if self.grad_clip else ""
        return f"{self.title}: {self.preset}, {self.optimizer} lr {self.lr:g}, {sched}{clip}, {self.epochs} epochs"


ALTERNATIVE_1 = Recipe(
    name="alternative_1",
    title="Alternative 1 (RetinaNet, warmup + cosine)",
    preset="retinanet_resnet50_fpn",
    epochs=50,
    optimizer="adamw",
    lr=5e-4,
    schedule="warmup_cosine",
    warmup_epochs=1.0,
    min_lr=1e-6,
    grad_clip=10.0,
    decision_epoch=20,
    on_failure="alternative_2",
)

# torchvision's detection reference trains Faster R-CNN with SGD lr 0.02 for 16 images per
# step; scaled linearly to 4 images per step that is 0.005.
ALTERNATIVE_2 = Recipe(
    name="alternative_2",
    title="Alternative 2 (Faster R-CNN, SGD + warmup + cosine)",
    preset="fasterrcnn_resnet50_fpn",
    epochs=40,
    optimizer="sgd",
    lr=0.005,
    momentum=0.9,
    weight_decay=1e-4,
    schedule="warmup_cosine",
    warmup_epochs=1.0,
    min_lr=1e-6,
    grad_clip=10.0,
    decision_epoch=20,
    on_failure="diagnose",
)

SEED_MULTISTEP = Recipe(
    name="seed_multistep",
    title="Seed configuration (RetinaNet, MultiStepLR [30, 45])",
    preset="retinanet_resnet50_fpn",
    epochs=60,
    optimizer="adamw",
    lr=2e-4,
    schedule="multistep",
    warmup_epochs=0.0,
    milestones=(30, 45),
    gamma=0.1,
    grad_clip=None,
    decision_epoch=None,
    on_failure="alternative_1",
)

ALTERNATIVE_3 = Recipe(
    name="alternative_3",
    title="Alternative 3 (manual LR boost, continue training)",
    preset="retinanet_resnet50_fpn",
    epochs=10,
    optimizer="keep",
    lr=1e-4,
    schedule="constant",
    warmup_epochs=0.0,
    grad_clip=10.0,
    on_failure="alternative_1",
)

RECIPES = {r.name: r for r in (ALTERNATIVE_1, ALTERNATIVE_2, ALTERNATIVE_3, SEED_MULTISTEP)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}") from None
