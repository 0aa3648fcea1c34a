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


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("alternative_1", "Alternative 1 (RetinaNet, warmup + cosine)",
           "Run nbdetect.alternative_1(train, val, num_classes=K): RetinaNet, AdamW 5e-4, warmup + cosine, "
           "gradient clipping, a head with its prior bias."),
    Action("alternative_2", "Alternative 2 (Faster R-CNN)",
           "Run nbdetect.alternative_2(train, val, num_classes=K): Faster R-CNN, better on small objects."),
    Action("alternative_3", "Alternative 3 (LR boost)",
           "Run nbdetect.alternative_3(optimizer, model, train, val, lr=1e-4): raise the LR of your live optimizer "
           "and continue (a quick test, not for the final model)."),
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
           "nbdetect.alternative_1(..., lr=1e-4)."),
    Action("use_best", "best.pt",
           "Stop here: best.pt holds the epoch with the lowest validation loss; use it "
           "(nbdetect.make_submission) or add data/augmentation before training longer."),
    Action("submission", "the submission (nbdetect.make_submission())",
           "Generate the submission from best.pt: nbdetect.make_submission(checkpoint, images_dir, out_dir)."),
    Action("continue", "more training",
           "Nothing blocks learning: keep training."),
)}


def title(name: str | None) -> str:
    """Short name of an action for headlines ('' for None)."""
    if name is None:
        return ""
    return ACTIONS[name].title if name in ACTIONS else name


def how(name: str | None) -> str:
    """The one line saying what to run."""
    if name is None:
        return ""
    return ACTIONS[name].how if name in ACTIONS else name
