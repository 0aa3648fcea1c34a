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

#: The image size (short side, long side) of the CPU-sized model on a student's own data: small signs stay a
#: dozen pixels wide on GTSDB-like 1360x800 images, and a tiny-model step stays well under a second on 2 cores.
#: Smaller images are never upscaled to it: the size is capped at the data's own (alternatives.cpu_image_size).
CPU_IMAGE_SIZE = (480, 800)
#: Epochs of a ready cell on a machine without a GPU (the CPU-sized model; ``python -m nbdetect demo`` trains
#: as many): a recipe with fewer keeps its own.
CPU_EPOCHS = 12


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
    next_on_failure: str | None = None  # what the guide says to run next when this recipe fails
    short_title: str = ""  # "Alternative 1", for verdict headlines
    tiny_preset: str = ""  # the CPU-sized model of the same family (tests, demo, a CPU notebook)
    # the verdict's rules (nbdetect.verdict.rules() ids) that judge this recipe; a kind it names none of comes
    # from its preset's family record (nbdetect.families: the final grading), else the generic rule
    rules: tuple[str, ...] = ()
    how: str = ""  # one line: what running it does (the next-action table shows it)
    call: str = ""  # how a notebook runs it, e.g. "nbdetect.alternative_1(train, val, num_classes=K)"
    cell_title: str = ""  # the ready cell (nbdetect.cells) that trains it: menu label ('' = no cell)
    cell_note: str = ""  # the cell's second comment line
    augment: object = False  # box-aware training augmentation when nbdetect builds the loader: True (its defaults)
    # or an AugmentConfig (nbdetect.data.augment)
    ema: bool = False  # validate, score and save best.pt with a moving average of the weights (hooks.WeightEMA)
    data_anchors: bool = False  # fit the preset's anchors to the training boxes when nbdetect builds the model
    match_iou: tuple[float, float] | None = None  # RetinaNet anchor matching (foreground, background IoU); None/False: the model's
    naming_loss: float | None = None  # weight of the naming loss (nbdetect.losses) on a RetinaNet; None/0: without
    box_loss: str | None = None  # the box regression loss (models.BOX_LOSSES) on a RetinaNet; None/False: the model's
    box_weight: float | None = None  # the box regression losses times this (models.set_box_weight); None/False: x1
    iou_scores: bool = False  # class scores trained against the predicted box's IoU (models.set_iou_scores)
    box_voting: float | None = None  # predict with box voting at this IoU (models.set_box_voting); None/False: NMS

    @property
    def on_failure(self) -> str | None:  # the name earlier versions used
        return self.next_on_failure

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

    @property
    def cpu_epochs(self) -> int:
        """The epochs of this recipe's ready cell on a CPU (its CPU-sized model): CPU_EPOCHS at most."""
        return min(self.epochs, CPU_EPOCHS)

    def make_schedule(self, steps_per_epoch: int) -> schedules.Schedule:
        if self.schedule == "warmup_cosine":
            return schedules.warmup_cosine(self.lr, self.min_lr, self.epochs, steps_per_epoch, self.warmup_epochs)
        if self.schedule == "multistep":
            return schedules.multistep(self.lr, self.milestones, self.gamma, self.epochs, steps_per_epoch,
                                       self.warmup_epochs)
        if self.schedule == "constant":
            return schedules.constant(self.lr, self.epochs, steps_per_epoch)
        raise ValueError(f"unknown schedule {self.schedule!r}")

    def make_optimizer(self, model_or_params):
        """The recipe's optimizer. Given a model: two parameter groups, weight decay on the weights of
        convolutions and linear layers only (biases and norm scales/shifts get none, as torchvision's references
        and Ultralytics do); both groups follow the same warm-up and schedule. Given parameters: one group."""
        import torch

        if isinstance(model_or_params, torch.nn.Module):
            groups = decay_groups(model_or_params, self.weight_decay)
        else:
            groups = [{"params": [p for p in model_or_params if p.requires_grad], "weight_decay": self.weight_decay}]
        if self.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=self.lr)
        if self.optimizer == "adam":
            return torch.optim.Adam(groups, lr=self.lr)
        if self.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum)
        raise ValueError(f"unknown optimizer {self.optimizer!r}")

    def describe(self) -> str:
        if self.schedule == "multistep":
            sched = f"MultiStepLR milestones {list(self.milestones)} x{self.gamma}"
        elif self.schedule == "warmup_cosine":
            sched = f"{self.warmup_epochs:g}-epoch linear warmup then cosine {self.lr:g} -> {self.min_lr:g}"
        else:
            sched = f"constant {self.lr:g}"
        clip = f", grad clip {self.grad_clip:g}" if self.grad_clip else ""
        how = f" ({self.augment.describe()})" if hasattr(self.augment, "describe") else ""  # an AugmentConfig
        aug = ((f", box-aware augmentation{how}" if self.augment else "") + (", weight EMA" if self.ema else "")
               + (", anchors fitted to the data where that covers more boxes" if self.data_anchors else "")
               + (f", anchors matched at IoU {self.match_iou[0]:g}/{self.match_iou[1]:g}" if self.match_iou else "")
               + (f", box loss x{self.box_weight:g}" if self.box_weight else "")
               + (", IoU-aware class scores" if self.iou_scores else "")
               + (f", boxes placed by voting at IoU {self.box_voting:g}" if self.box_voting else ""))
        return (f"{self.title}: {self.preset}, {self.optimizer} lr {self.lr:g}, {sched}{clip}{aug}, "
                f"{self.epochs} epochs")


def decay_groups(model, weight_decay: float) -> list[dict]:
    """``[weights with decay, biases and norm parameters without]`` of the trainable parameters (empty groups
    dropped). A parameter with one dimension or none is a bias or a norm's scale/shift."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "weights"},
              {"params": no_decay, "weight_decay": 0.0, "name": "biases and norms"}]
    return [g for g in groups if g["params"]]


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
    next_on_failure="alternative_2",
    short_title="Alternative 1",
    tiny_preset="retinanet_tiny",
    rules=("alt1_epoch20", "early_epoch15"),  # graded at the end by its family's rule (final_retinanet)
    how="RetinaNet, AdamW 5e-4, warmup + cosine, gradient clipping, a head with its prior bias",
    call="nbdetect.alternative_1(train, val, num_classes=K)",
    cell_title="Alternative 1: RetinaNet, warmup + cosine LR",
    cell_note="The panel shows LR and loss curves, the verdict at epoch 20 and a Stop button; training runs in the "
              "background.",
    augment=True,
    ema=True,
    data_anchors=True,
    match_iou=(0.3, 0.2),  # more positive anchors for small boxes than torchvision's 0.5/0.4 (models.set_anchor_matching)
    naming_loss=1.0,  # cross-entropy among the classes on matched anchors: names small signs (nbdetect.losses)
    box_voting=0.6,  # each kept box the score-weighted mean of the candidates it suppresses (models.set_box_voting)
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
    next_on_failure="diagnose",
    short_title="Alternative 2",
    tiny_preset="fasterrcnn_tiny",
    rules=("alt2_epoch20", "early_epoch15"),  # graded at the end by its family's rule (final_fasterrcnn)
    how="Faster R-CNN, better on small objects",
    call="nbdetect.alternative_2(train, val, num_classes=K)",
    cell_title="Alternative 2: Faster R-CNN",
    cell_note="Faster R-CNN reserves label 0 for background: nbdetect builds it with K + 1 outputs for your labels "
              "1..K.",
    augment=True,
    ema=True,
    data_anchors=True,
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
    next_on_failure="alternative_1",
    short_title="the seed MultiStepLR config",
    tiny_preset="retinanet_tiny",
    rules=("final_seed", "early_epoch15"),
    how="the AS4 notebook's failing configuration, kept to show the difference",
    call="nbdetect.seed_multistep(train, val, num_classes=K)",
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
    next_on_failure="alternative_1",
    short_title="Alternative 3",
    tiny_preset="retinanet_tiny",
    rules=("final_lr_boost", "early_epoch15"),
    how="raise the LR of your live optimizer and continue (a quick test, not for the final model)",
    call="nbdetect.alternative_3(optimizer, model, train, val, lr=1e-4)",
)

RECIPES = {r.name: r for r in (ALTERNATIVE_1, ALTERNATIVE_2, ALTERNATIVE_3, SEED_MULTISTEP)}


#: The recipe the guide recommends first; also the next step for a run that is not one of nbdetect's recipes.
FIRST = ALTERNATIVE_1


def register(recipe: Recipe) -> Recipe:
    """Add a recipe (its verdict rules, next step and title are read from the record by everyone)."""
    if recipe.name in RECIPES and RECIPES[recipe.name] is not recipe:
        raise ValueError(f"a recipe named {recipe.name!r} is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


def find(name: str | None) -> Recipe | None:
    """The registered recipe called ``name``, or None (a user's own run)."""
    return RECIPES.get(name or "")


def next_on_failure(name: str | None) -> str:
    """What the guide says to run after ``name`` fails (the first recipe for a run of your own)."""
    recipe = find(name)
    return (recipe.next_on_failure if recipe is not None and recipe.next_on_failure else FIRST.name)


def short_title(name: str | None) -> str:
    recipe = find(name)
    return recipe.short_title or recipe.title if recipe is not None else (name or "this run")


def get_recipe(name: str) -> Recipe:
    from .errors import choose_from

    return choose_from(RECIPES, name, "recipe")
