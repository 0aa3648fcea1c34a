"""The ready notebook cells: the one source for the JupyterLab extension, the CLI and the demo notebook.

Each cell runs as pasted. The names a user may need to change are upper-case
assignments at the top of the cell, each marked ``# EDIT:``. Cells that continue
an AS4-style notebook pick up its usual variable names (``model``, ``optimizer``,
``scheduler``, ``train_dataset``, ``val_dataset``) with :func:`from_notebook`: a name
the cell needs and the notebook lacks (after a kernel restart, say) is a clear error
naming it, never a silent switch to the demo data; optional ones are None.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .recipes import ALTERNATIVE_3, RECIPES

# ``NAME = value  # EDIT: what to put here``: groups name, " = ", value, "  # EDIT: ..."
EDIT_LINE = re.compile(r"^(\w+)(\s*=\s*)(.*?)(\s*# EDIT:.*)$")


@dataclass(frozen=True)
class Cell:
    id: str           # stable identifier used by the extension command ids and the CLI
    title: str        # menu / palette label
    description: str  # one-line caption (tooltip)
    source: str       # the code cell's text

    def edit_names(self) -> list[str]:
        """The names the user may edit (lines marked ``# EDIT:``)."""
        return [m.group(1) for m in map(EDIT_LINE.match, self.source.splitlines()) if m]


def from_notebook(namespace: dict, name: str | tuple[str, ...], required: bool = True):
    """``namespace[name]`` (a notebook's ``globals()``), or of the first of several names that is defined; a
    missing required name is a MissingError saying what to do, a missing optional one is None."""
    names = (name,) if isinstance(name, str) else tuple(name)
    for candidate in names:
        if candidate in namespace:
            return namespace[candidate]
    if not required:
        return None
    name = " or ".join(names)
    from .errors import MissingError

    raise MissingError(f"{name} is not defined in this notebook", where=name,
                       fix=f"run the cell that creates {name} first (after a kernel restart, re-run the notebook "
                           "from the top), or edit the line of this cell that reads it (set it to None for "
                           "nbdetect's demo data where the cell allows it)")


def has_gpu() -> bool:
    """Whether this machine has a CUDA GPU, without importing torch (the Jupyter server serving the cells must
    not pay for it): torch's answer when torch is already imported, else the NVIDIA driver's GPU list (Linux) or
    nvidia-smi on the PATH (elsewhere); CUDA_VISIBLE_DEVICES="" or "-1" hides the GPUs as it does from torch."""
    import os
    import shutil
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "cuda"):
        return bool(torch.cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = "/proc/driver/nvidia/gpus"
    if sys.platform.startswith("linux"):
        return os.path.isdir(gpus) and bool(os.listdir(gpus))
    return shutil.which("nvidia-smi") is not None


def _sides(image_size) -> str:
    sides = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    return f"{min(sides)}x{max(sides)} px"


def train_cell(recipe, *, gpu: bool | None = None, preset: str | None = None, epochs: int | None = None,
               image_size=None) -> Cell:
    """The ready cell that trains ``recipe`` (its record gives the name, title, note and epochs), its header
    saying what runs on this machine: the guide's model and epochs with a GPU (``gpu``: default, this machine's),
    without one the CPU-sized model at the data's own size (at most CPU_IMAGE_SIZE) for ``recipe.cpu_epochs``.
    ``preset``, ``epochs`` and ``image_size`` describe a cell whose values are filled in (the demo notebook's);
    the code stays the same template, render() fills the values."""
    from .recipes import CPU_IMAGE_SIZE

    gpu = has_gpu() if gpu is None else gpu
    model = preset or (recipe.preset if gpu else recipe.tiny_preset)
    n = epochs or (recipe.epochs if gpu else recipe.cpu_epochs)
    tiny = model == recipe.tiny_preset
    cpu_max = _sides(CPU_IMAGE_SIZE)
    if image_size is not None:
        size = f"at {_sides(image_size)}"
    elif tiny:
        size = f"at your images' own size, at most {cpu_max} (smaller images are not upscaled)"
    else:
        size = "at the preset's own size"
    if preset is not None:
        where = "Trains"
    else:
        where = "On this machine (GPU):" if gpu else "On this machine (no GPU):"
    weights = "from scratch" if tiny else "COCO-pretrained"
    runs = f"# {where} {'the CPU-sized ' if tiny else ''}{model} ({weights}) {size}, {n} epochs."
    if tiny or n != recipe.epochs:
        runs += (f"\n# The guide's setup: PRESET = \"{recipe.preset}\", EPOCHS = {recipe.epochs}, IMAGE_SIZE = None"
                 f"{' (about 3 s per image on a 2-core CPU), or run on a GPU' if not gpu or preset else ''}.")
    shown = recipe.scaled(n).replace(preset=model)
    size_note = (f"None: your images' own size, at most {cpu_max}" if tiny and image_size is None
                 else "None: the preset's")
    preset_note = (f"None: {recipe.preset} on a GPU, the CPU-sized {recipe.tiny_preset} on a CPU")
    note = recipe.cell_note
    if recipe.decision_epoch and shown.decision_epoch != recipe.decision_epoch:  # the verdict's epoch, scaled too
        note = note.replace(f"epoch {recipe.decision_epoch}", f"epoch {shown.decision_epoch}")
    source = f'''\
# nbdetect | {shown.describe()}.
{runs}
# {note}
# Run All works: a later training, submission or comparison cell waits for this run to finish.
import nbdetect

TRAIN_DATA = nbdetect.from_notebook(globals(), "train_dataset")  # EDIT: your training Dataset, DataLoader or YOLO data.yaml (None: demo data)
VAL_DATA = nbdetect.from_notebook(globals(), "val_dataset", False)  # EDIT: your validation Dataset or DataLoader (or None)
NUM_CLASSES = None                           # EDIT: number of real classes K, labels 1..K (None: read from the data)
EPOCHS = {n}                                  # EDIT: epochs to train (the guide's {recipe.epochs})
PRESET = None                                # EDIT: model preset ({preset_note})
IMAGE_SIZE = None                            # EDIT: (short side, long side) in pixels the model resizes to ({size_note})
BATCH_SIZE = {recipe.batch_size}                               # EDIT: images per step (lower it if memory runs out)

run = nbdetect.{recipe.name}(TRAIN_DATA, VAL_DATA, num_classes=NUM_CLASSES, epochs=EPOCHS, preset=PRESET,
                          image_size=IMAGE_SIZE, batch_size=BATCH_SIZE)
'''
    return Cell(recipe.name, recipe.cell_title, f"Train {shown.describe()}, live panel", source)


_ALT_3 = f'''\
# nbdetect | Alternative 3: raise the LR of your live optimizer to 1e-4 and keep training your model for 10 epochs.
# The optimizer keeps its state; if the loss starts falling again, the old LR was too low (the MultiStepLR cut).
# The verdict compares with your validation loss before the change (PREVIOUS_LOSS, or measured before step 1).
import nbdetect

MODEL = nbdetect.from_notebook(globals(), "model")                  # EDIT: the model you have been training
OPTIMIZER = nbdetect.from_notebook(globals(), "optimizer")          # EDIT: its optimizer
SCHEDULER = nbdetect.from_notebook(globals(), "scheduler", False)   # EDIT: its LR scheduler (or None)
TRAIN_DATA = nbdetect.from_notebook(globals(), "train_dataset")     # EDIT: your training Dataset or DataLoader
VAL_DATA = nbdetect.from_notebook(globals(), "val_dataset", False)  # EDIT: your validation Dataset or DataLoader (or None)
LR = 1e-4                                                           # EDIT: the new learning rate (the guide's 1e-4)
EPOCHS = 10                                                         # EDIT: epochs to continue for (the guide's 10)
PREVIOUS_LOSS = None                                                # EDIT: your last validation loss per batch (None: measured)

run = nbdetect.{ALTERNATIVE_3.name}(OPTIMIZER, MODEL, TRAIN_DATA, VAL_DATA, scheduler=SCHEDULER, lr=LR, epochs=EPOCHS,
                            previous_loss=PREVIOUS_LOSS)
'''

_FIND_LR = '''\
# nbdetect | Find a learning rate: an LR range test (a short sweep at rising LRs) on your data; model and optimizer are restored.
# The plot marks the valley (the suggestion) and the steepest fall; train with lr=lr_test.lr, or pass lr="auto".
import nbdetect

TRAIN_DATA = nbdetect.from_notebook(globals(), "train_dataset")  # EDIT: your training Dataset or DataLoader (None: demo data)
MODEL = nbdetect.from_notebook(globals(), "model", False)        # EDIT: your model (None: Alternative 1's model)
NUM_ITER = 200                                                    # EDIT: steps in the sweep (more: smoother, slower)

lr_test = nbdetect.find_lr(MODEL, TRAIN_DATA, num_iter=NUM_ITER)
lr_test
'''

_DIAGNOSE = '''\
# nbdetect | Diagnose: checks data, labels, model head, LR schedule and loss curve; names the root cause first.
import nbdetect

MODEL = nbdetect.from_notebook(globals(), "model", False)          # EDIT: your model (or None)
OPTIMIZER = nbdetect.from_notebook(globals(), "optimizer", False)  # EDIT: its optimizer (or None)
SCHEDULER = nbdetect.from_notebook(globals(), "scheduler", False)  # EDIT: its LR scheduler (or None)
DATA = nbdetect.from_notebook(globals(), ("train_loader", "train_dataset"), False)  # EDIT: your training DataLoader or Dataset (or None)
VAL_DATA = nbdetect.from_notebook(globals(), ("val_loader", "val_dataset"), False)  # EDIT: your validation DataLoader or Dataset (or None); a loader gives its batch count
HISTORY = nbdetect.from_notebook(globals(), "val_losses", False)   # EDIT: per-epoch losses, a run folder or YOLO results.csv (or None)
HISTORY_KIND = "val"                                               # EDIT: "val" if HISTORY is a validation loss list, "train" if training
EPOCHS = 60                                   # EDIT: the number of epochs you planned

report = nbdetect.diagnose(MODEL, OPTIMIZER, SCHEDULER, data=DATA, history=HISTORY, epochs=EPOCHS,
                           val_data=VAL_DATA, history_kind=HISTORY_KIND)
report
'''

_SUBMISSION = '''\
# nbdetect | Generate submission: predictions as CSV and COCO results JSON, boxes in original image pixels.
# Waits for a training run still going in this kernel, then uses the best.pt of the latest run.
import nbdetect

CHECKPOINT = nbdetect.best_checkpoint()  # EDIT: best.pt of the run to submit, e.g. "nbdetect_runs/alternative_1/best.pt" (or a model object)
TEST_IMAGES = "test_images"              # EDIT: folder of test images (or a Dataset)
SCORE_THRESHOLD = 0.3                    # EDIT: keep boxes scoring at least this (mAP tools use 0.001)
LABEL_BASE = 1                           # EDIT: 1 writes labels 1..K, 0 writes 0..K-1 (YOLO-style)

submission = nbdetect.make_submission(CHECKPOINT, TEST_IMAGES, "submission", score_threshold=SCORE_THRESHOLD,
                                      label_base=LABEL_BASE)
submission
'''

_COMPARE_YOLO = '''\
# nbdetect | Compare with my YOLOv8: mAP per epoch of your Ultralytics run next to nbdetect's runs.
# Losses of different frameworks are on different scales; mAP on the same validation images is comparable.
import nbdetect

YOLO_RESULTS = "runs/detect/train/results.csv"  # EDIT: results.csv of your YOLOv8 training
NBDETECT_RUNS = ["nbdetect_runs"]               # EDIT: run folders to compare (nbdetect_runs: every run in it)

comparison = nbdetect.compare_with_yolo(YOLO_RESULTS, NBDETECT_RUNS)
comparison
'''

def all_cells(gpu: bool | None = None) -> tuple[Cell, ...]:
    """Every ready cell: one per recipe with a cell (its record), then the continue/diagnose/submit/compare cells.
    The training cells say (and set) what runs on a machine with a GPU or without one (``gpu``; default: this
    machine)."""
    gpu = has_gpu() if gpu is None else gpu
    trains = tuple(train_cell(r, gpu=gpu) for r in RECIPES.values() if r.cell_title)
    return trains + (
        Cell(ALTERNATIVE_3.name, "Alternative 3: raise the LR and continue",
             "Set your optimizer's LR to 1e-4 and keep training your model for 10 epochs", _ALT_3),
        Cell("find_lr", "Find a learning rate",
             "LR range test on your data with a plot and a suggested LR (model and optimizer restored)", _FIND_LR),
        Cell("diagnose", "Diagnose my training",
             "Inline report: data, labels, model head, LR schedule and loss curve, root cause first", _DIAGNOSE),
        Cell("submission", "Generate submission",
             "Predict on test images and write predictions.csv and predictions_coco.json", _SUBMISSION),
        Cell("compare_yolo", "Compare with my YOLOv8 results",
             "mAP per epoch of your Ultralytics results.csv next to nbdetect runs", _COMPARE_YOLO),
    )


CELLS: tuple[Cell, ...] = all_cells()


def get_cell(cell_id: str, gpu: bool | None = None) -> Cell:
    for cell in all_cells(gpu):
        if cell.id == cell_id:
            return cell
    raise KeyError(f"no nbdetect cell {cell_id!r}; the cells are: {', '.join(c.id for c in CELLS)}")


def as_json(gpu: bool | None = None) -> list[dict]:
    """The cells as plain dicts (what the JupyterLab extension receives), for this machine (the server's)."""
    return [asdict(c) for c in all_cells(gpu)]
