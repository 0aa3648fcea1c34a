"""The ready cells without JupyterLab: add them to an existing ``.ipynb`` or write the demo notebook (nbformat).

For VS Code, classic Notebook or scripted use:

    python -m nbdetect cells list
    python -m nbdetect cells add AS4.ipynb alternative_1 diagnose --after 12
    python -m nbdetect demo-notebook notebooks/AS4_demo.ipynb
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from .atomic import atomic_write
from .cells import CELLS, EDIT_LINE, Cell, get_cell, train_cell
from .recipes import FIRST

NB_VERSION = 4


def render(cell_id: str | Cell, **values: str) -> str:
    """The cell's source (a cell id, or a Cell such as cells.train_cell's) with the right-hand side of
    ``NAME = ...  # EDIT:`` lines replaced by ``values`` (Python expressions as text)."""
    cell = cell_id if isinstance(cell_id, Cell) else get_cell(cell_id)
    unknown = set(values) - set(cell.edit_names())
    if unknown:
        raise KeyError(f"cell {cell.id!r} has no editable name {sorted(unknown)}; it has {cell.edit_names()}")
    lines = []
    for line in cell.source.splitlines(keepends=True):
        m = EDIT_LINE.match(line.rstrip("\n"))
        if m and m.group(1) in values:
            line = f"{m.group(1)}{m.group(2)}{values[m.group(1)]}{m.group(4)}\n"
        lines.append(line)
    return "".join(lines)


def _write_atomic(nb, path: Path) -> Path:
    nbformat.validate(nb)
    return atomic_write(path, lambda fh: nbformat.write(nb, fh), mode="w")


def add_cells(notebook: str | Path, cell_ids, *, after: int | None = None, out: str | Path | None = None) -> Path:
    """Insert the chosen cells into ``notebook`` after cell index ``after`` (0-based; default: at the end).

    Writes ``out`` (default: the notebook itself, replaced atomically) and returns its path.
    """
    path = Path(notebook)
    nb = nbformat.read(path, as_version=NB_VERSION)
    cells = [nbformat.v4.new_code_cell(get_cell(i).source) for i in ([cell_ids] if isinstance(cell_ids, str) else cell_ids)]
    n = len(nb.cells)
    if after is None:
        at = n
    elif not -1 <= after < n:
        raise IndexError(f"{path} has {n} cells: --after must be between -1 (before the first) and {n - 1}")
    else:
        at = after + 1
    nb.cells[at:at] = cells
    return _write_atomic(nb, Path(out) if out else path)


DEMO_TITLE = """\
# AS4-style demo: rescuing a RetinaNet that stopped learning

This notebook replays the situation nbdetect was built for, on its embedded synthetic traffic signs and a
tiny RetinaNet so it runs on a laptop CPU in a few minutes:

1. **The seed**: RetinaNet with AdamW 2e-4 and `MultiStepLR` cutting the LR x0.1 at 50% and 75% of the
   epochs (the AS4 notebook's milestones [30, 45] of 60, compressed).
2. **`diagnose()`** on that model, optimizer, scheduler and loss history.
3. **Alternative 1** (warmup + cosine LR, gradient clipping) with the live panel.
4. **Submission** from the best checkpoint.

Every training here is the tiny RetinaNet at the demo's 192 px for `EPOCHS` epochs, on any machine. On a GPU
with your own data, set `PRESET = None`, `IMAGE_SIZE = None` and `EPOCHS = 50` in the Alternative 1 cell to get
the guide's COCO-pretrained RetinaNet R50-FPN for 50 epochs.
"""

DEMO_SETUP = """\
import torch
import nbdetect

torch.manual_seed(0)
EPOCHS = 8
train_dataset, val_dataset = nbdetect.synthetic_split(n_train=48, n_val=16, image_size=(192, 192))
NUM_CLASSES = train_dataset.num_classes
print(len(train_dataset), "training images,", len(val_dataset), "validation images,", NUM_CLASSES, "classes:",
      train_dataset.class_names)
"""

DEMO_SEED = """\
# The seed's own training loop: AdamW 2e-4, MultiStepLR at 50% and 75% of the epochs, gamma 0.1.
from torch.utils.data import DataLoader

collate = lambda batch: tuple(zip(*batch))
train_loader = DataLoader(train_dataset, batch_size=4, shuffle=True, collate_fn=collate)
val_loader = DataLoader(val_dataset, batch_size=4, collate_fn=collate)

model = nbdetect.build_model("retinanet_tiny", NUM_CLASSES, weights=None, min_size=192, max_size=192)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[EPOCHS // 2, EPOCHS * 3 // 4], gamma=0.1)

train_losses, val_losses = [], []
for epoch in range(EPOCHS):
    model.train()
    total = 0.0
    for images, targets in train_loader:
        loss = sum(model(list(images), list(targets)).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    train_losses.append(total / len(train_loader))
    with torch.no_grad():  # the loss in train mode without updates (BatchNorm statistics aside)
        val_losses.append(sum(sum(model(list(i), list(t)).values()).item() for i, t in val_loader) / len(val_loader))
    scheduler.step()
    print(f"epoch {epoch + 1}: lr {optimizer.param_groups[0]['lr']:.1e}  train {train_losses[-1]:.3f}  "
          f"val {val_losses[-1]:.3f}")
"""

DEMO_ALT1_NOTE = """\
## Alternative 1 with the live panel

The cell below is nbdetect's Alternative 1 cell (menu *nbdetect* > *Alternative 1*) with the demo's values
filled in (the tiny RetinaNet at 192 px for `EPOCHS` epochs; its header says so). The panel shows the LR schedule ahead of time, the loss curves, the verdict and a Stop button;
training runs in the background. The submission cell below waits for it, so the notebook runs top to bottom
("Run All").
"""


def demo_notebook(epochs: int = 8):
    """The AS4-style demo notebook (an nbformat NotebookNode)."""
    # the header says what this cell runs (the tiny model at the demo's 192 px for EPOCHS), on any machine
    demo_alt1 = train_cell(FIRST, gpu=False, preset=FIRST.tiny_preset, epochs=int(epochs), image_size=192)
    alt1 = render(demo_alt1, TRAIN_DATA="train_dataset", VAL_DATA="val_dataset", NUM_CLASSES="NUM_CLASSES",
                  EPOCHS="EPOCHS", PRESET=f'"{FIRST.tiny_preset}"', IMAGE_SIZE="192")
    diagnose = render("diagnose", EPOCHS="EPOCHS")
    submission = render("submission", TEST_IMAGES="test_images", SCORE_THRESHOLD="0.05")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(DEMO_TITLE),
        nbformat.v4.new_code_cell(DEMO_SETUP.replace("EPOCHS = 8", f"EPOCHS = {int(epochs)}")),
        nbformat.v4.new_markdown_cell("## 1. The seed: RetinaNet with MultiStepLR"),
        nbformat.v4.new_code_cell(DEMO_SEED),
        nbformat.v4.new_markdown_cell("## 2. What is wrong? `diagnose()`\n\nnbdetect's Diagnose cell; it finds "
                                      "`model`, `optimizer`, `scheduler`, `train_dataset` and `val_losses` above."),
        nbformat.v4.new_code_cell(diagnose),
        nbformat.v4.new_markdown_cell(DEMO_ALT1_NOTE),
        nbformat.v4.new_code_cell(alt1),
        nbformat.v4.new_markdown_cell("## 3. Submission\n\nA few test images written to a folder, then nbdetect's "
                                      "Generate-submission cell: it waits for the run above, then uses its best.pt."),
        nbformat.v4.new_code_cell(
            "from pathlib import Path\nfrom torchvision.transforms.functional import to_pil_image\n\n"
            "test_images = Path('test_images')\ntest_images.mkdir(exist_ok=True)\n"
            "test_dataset = nbdetect.synthetic_split(n_train=1, n_val=4, image_size=(192, 192), seed=7)[1]\n"
            "for i in range(len(test_dataset)):\n"
            "    to_pil_image(test_dataset[i][0]).save(test_images / f'test_{i:03d}.png')\n"
            "sorted(p.name for p in test_images.iterdir())"),
        nbformat.v4.new_code_cell(submission),
    ]
    return nb


def write_demo_notebook(path: str | Path = "AS4_demo.ipynb", epochs: int = 8) -> Path:
    return _write_atomic(demo_notebook(epochs), Path(path))


# -- command line -------------------------------------------------------------------------------------

def _cells_cmd(args) -> int:
    if args.action == "list":
        for c in CELLS:
            print(f"{c.id:<15} {c.title}  ({c.description})")
    elif args.action == "show":
        for i in [args.notebook, *args.ids] if args.notebook else [c.id for c in CELLS]:
            print(get_cell(i).source)
    else:
        if not args.notebook or not args.ids:
            raise SystemExit("usage: nbdetect cells add NOTEBOOK CELL_ID [CELL_ID ...] [--after N] [--out PATH]")
        out = add_cells(args.notebook, args.ids, after=args.after, out=args.out)
        print(f"added {', '.join(args.ids)} to {out}")
    return 0


def _demo_nb_cmd(args) -> int:
    print(f"wrote {write_demo_notebook(args.path, epochs=args.epochs)}")
    return 0


def register_cli(sub) -> None:
    ids = ", ".join(c.id for c in CELLS)
    p = sub.add_parser("cells", help=f"list, show or add the ready notebook cells ({ids})")
    p.add_argument("action", choices=["list", "show", "add"])
    p.add_argument("notebook", nargs="?", help="add: the .ipynb to add cells to")
    p.add_argument("ids", nargs="*", help=f"cell ids: {ids}")
    p.add_argument("--after", type=int, help="add: insert after this cell index (0-based; default: at the end)")
    p.add_argument("--out", help="add: write here instead of replacing the notebook")
    p.set_defaults(func=_cells_cmd)
    d = sub.add_parser("demo-notebook", help="write the AS4-style demo notebook")
    d.add_argument("path", nargs="?", default="AS4_demo.ipynb")
    d.add_argument("--epochs", type=int, default=8)
    d.set_defaults(func=_demo_nb_cmd)
