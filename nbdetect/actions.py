"""Next actions: what a verdict or a diagnose() report tells the user to run, each in one line.

Pure data. Every ``next_action`` that nbdetect emits is a key of :data:`ACTIONS`
(a test checks it); the value says what to type (``call``: a function of nbdetect or of the run, which a test
checks exists) and what it does (``how``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    title: str  # short, for headlines: "Alternative 2 (Faster R-CNN)"
    how: str  # one line: what to run and why
    call: str = ""  # what to type in a cell, e.g. "nbdetect.diagnose(model, optimizer, scheduler, ...)"


def recipe_action(recipe) -> Action:
    """A recipe as an action: its record gives the title and what running it does."""
    how = recipe.how[:1].upper() + recipe.how[1:]
    return Action(recipe.name, recipe.title, f"{how}.", recipe.call or f"nbdetect.run_recipe({recipe.name!r}, train, val)")


def _recipe_actions() -> list[Action]:
    """Every recipe registered at import time (``get`` also finds those registered later)."""
    from .recipes import RECIPES

    return [recipe_action(r) for r in RECIPES.values() if r.call]


ACTIONS: dict[str, Action] = {a.name: a for a in (
    *_recipe_actions(),
    Action("diagnose", "the diagnostic (nbdetect.diagnose())",
           "It checks images, boxes, labels, the model head and the loss scale, and names the root cause.",
           "nbdetect.diagnose(model, optimizer, scheduler, data=train_dataset, history=val_losses)"),
    Action("fix_data", "a fix of the data",
           "Fix the data problem named above in your Dataset (its Fix line says how), then re-check the data "
           "with this call before training: no schedule can compensate for bad inputs.",
           "nbdetect.diagnose(data=train_dataset, val_data=val_dataset)"),
    Action("fix_loss_reporting", "a fix of how the loss is reported",
           "The loss was summed over batches: this gives it per batch (running_loss / len(loader)), the scale "
           "the guide's numbers and nbdetect use; the training may be fine, compare the corrected numbers before "
           "changing anything else.",
           "val_losses = nbdetect.per_batch(val_losses, val_loader)"),
    Action("fix_input", "a readable input",
           "Part of what you passed could not be read or checked (named above, with why): pass it in a form nbdetect "
           "reads, e.g. a list of per-epoch losses or the training log file, so the check can run.",
           "nbdetect.diagnose(model, optimizer, scheduler, data=train_dataset, history=val_losses)"),
    Action("fix_optimizer", "an optimizer over the final model",
           "Build the optimizer after the model is final (head replaced, nothing frozen by mistake), over its "
           "trainable parameters, then train again: the parameters it does not hold never change.",
           "nbdetect.alternative_3(optimizer, model, train, val, lr=1e-4)"),
    Action("lower_lr", "a lower learning rate",
           "Lower the learning rate 3-10x and keep warmup and gradient clipping on.",
           "nbdetect.alternative_1(train, val, num_classes=K, lr=1e-4)"),
    Action("use_best", "best.pt",
           "Stop here: best.pt holds the epoch with the lowest validation loss; submit it, or add data or "
           "augmentation before training longer.",
           "nbdetect.make_submission(nbdetect.best_checkpoint(), test_images)"),
    Action("submission", "the submission (nbdetect.make_submission())",
           "Predict the test images with the latest run's best.pt (CSV + COCO JSON, boxes in original pixels).",
           "nbdetect.make_submission(nbdetect.best_checkpoint(), test_images)"),
    Action("train_longer", "a longer run",
           "The run was still improving when it ended: run the same recipe again with more epochs (best.pt of this "
           "run stays usable meanwhile).",
           "nbdetect.run_recipe(run.recipe.name, train, val, num_classes=K, epochs=2 * run.epochs)"),
    Action("continue", "more training",
           "Nothing blocks learning: keep training (wait() returns when the run ends).",
           "run.wait()"),
)}


def get(name: str | None) -> Action | None:
    """The action called ``name``: a fixed one above, or a recipe (also one registered later)."""
    if name is None:
        return None
    if name in ACTIONS:
        return ACTIONS[name]
    from .recipes import find

    recipe = find(name)
    return recipe_action(recipe) if recipe is not None else None


def title(name: str | None) -> str:
    """Short name of an action for headlines ('' for None)."""
    a = get(name)
    return a.title if a is not None else (name or "")


def how(name: str | None) -> str:
    """The one line saying what to run."""
    a = get(name)
    return a.how if a is not None else (name or "")


def call(name: str | None) -> str:
    """What to type in a cell for the action (its name when unknown)."""
    a = get(name)
    return (a.call or a.name) if a is not None else (name or "")


def instruction(name: str | None) -> str:
    """What it does and what to type, in one line (a finding's fix)."""
    a = get(name)
    return f"{a.how} Run: {a.call or a.name}" if a is not None else (name or "")
