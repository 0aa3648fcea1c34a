"""Next actions: what a verdict or a diagnose() report tells the user to run, each in one line.

Pure data. Every ``next_action`` that nbdetect emits is a key of :data:`ACTIONS`
(a test checks it); the value names the cell or function to run and what it does.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    name: str
    title: str  # short, for headlines: "Alternative 2 (Faster R-CNN)"
    how: str  # one line: what to run and why


def recipe_action(recipe) -> Action:
    """A recipe as an action: its record gives the title and what running it does."""
    return Action(recipe.name, recipe.title, f"Run {recipe.call or recipe.name}: {recipe.how}.")


def _recipe_actions() -> list[Action]:
    """Every recipe registered at import time (``get`` also finds those registered later)."""
    from .recipes import RECIPES

    return [recipe_action(r) for r in RECIPES.values() if r.call]


ACTIONS: dict[str, Action] = {a.name: a for a in (
    *_recipe_actions(),
    Action("diagnose", "the diagnostic (nbdetect.diagnose())",
           "Run nbdetect.diagnose(model=..., data=..., history=...): it checks images, boxes, labels, the model "
           "head and the loss scale, and names the root cause."),
    Action("fix_data", "a fix of the data",
           "Fix the data problem named above in your Dataset (its Fix line says how), re-run nbdetect.diagnose(), "
           "then train: no schedule can compensate for bad inputs."),
    Action("fix_loss_reporting", "a fix of how the loss is reported",
           "Report the loss averaged over batches (running_loss / len(loader)); the training may be fine, compare "
           "the corrected numbers before changing anything else."),
    Action("lower_lr", "a lower learning rate",
           "Lower the learning rate 3-10x and keep warmup and gradient clipping on, e.g. "
           "nbdetect.alternative_1(..., lr=1e-4)."),  # the recipe's function name, as a user types it
    Action("use_best", "best.pt",
           "Stop here: best.pt holds the epoch with the lowest validation loss; use it "
           "(nbdetect.make_submission) or add data/augmentation before training longer."),
    Action("submission", "the submission (nbdetect.make_submission())",
           "Generate the submission from best.pt: nbdetect.make_submission(checkpoint, images_dir, out_dir)."),
    Action("continue", "more training",
           "Nothing blocks learning: keep training."),
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
