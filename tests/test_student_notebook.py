"""A student's own AS4-style notebook (own Dataset class, own MobileNet RetinaNet, validation loss summed over
batches, MultiStepLR, no nbdetect) gets the ready cells through the product's CLI, a student's edits, and runs
top to bottom as "Run All" in a real kernel (nbclient): every cell finishes and the submission holds boxes."""
import re
import subprocess
import sys

import pytest

from nb_outputs import cell_text

pytestmark = pytest.mark.slow

STUDENT_CELLS = [
    # 1. the student's own Dataset over a GTSDB-style gt.txt (file;x1;y1;x2;y2;class, classes 0-based)
    '''\
import csv
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

torch.manual_seed(0)
torch.set_num_threads(1)


class SignDataset(torch.utils.data.Dataset):
    def __init__(self, root, files):
        self.root = Path(root)
        self.files = files
        self.boxes = {}
        for row in csv.reader(open(self.root / "gt.txt"), delimiter=";"):
            self.boxes.setdefault(row[0], []).append(([float(v) for v in row[1:5]], int(row[5]) + 1))

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        name = self.files[i]
        image = pil_to_tensor(Image.open(self.root / name).convert("RGB")).float() / 255
        rows = self.boxes.get(name, [])
        target = {"boxes": torch.tensor([b for b, _ in rows], dtype=torch.float32).reshape(-1, 4),
                  "labels": torch.tensor([c for _, c in rows], dtype=torch.int64)}
        return image, target


names = sorted(p.name for p in Path("data").glob("*.png"))
train_dataset = SignDataset("data", names[:16])
val_dataset = SignDataset("data", names[16:])
print(len(train_dataset), len(val_dataset))
''',
    # 2. the student's own model: RetinaNet on a MobileNetV3 FPN backbone, random init (offline)
    '''\
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import mobilenet_backbone
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

backbone = mobilenet_backbone(backbone_name="mobilenet_v3_small", weights=None, fpn=True, trainable_layers=6,
                              returned_layers=[3, 4], extra_blocks=LastLevelP6P7(256, 256))
anchors = AnchorGenerator(((16, 20, 25), (32, 40, 50), (64, 80, 101), (128, 161, 203)), ((0.8, 1.0, 1.25),) * 4)
model = RetinaNet(backbone, num_classes=4, anchor_generator=anchors, min_size=128, max_size=128)
''',
    # 3. the student's loop: MultiStepLR, validation loss SUMMED over batches (the AS4 habit)
    '''\
collate = lambda batch: tuple(zip(*batch))
train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=4, shuffle=True, collate_fn=collate)
val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=2, collate_fn=collate)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1], gamma=0.1)
val_losses = []
for epoch in range(2):
    model.train()
    for images, targets in train_loader:
        loss = sum(model(list(images), list(targets)).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        val_losses.append(sum(sum(model(list(i), list(t)).values()).item() for i, t in val_loader))
    scheduler.step()
print(val_losses)
''',
]

# What a student edits in the pasted cells (the "# EDIT:" lines only): shorter runs, a low score threshold.
EDITS = {"alternative_3": {"EPOCHS": "1"}, "alternative_1": {"EPOCHS": "2"},
         "diagnose": {"EPOCHS": "2"}, "submission": {"SCORE_THRESHOLD": "0.001"}}


def _write_data(folder, n=24, test=4):
    """GTSDB-style data: coloured squares on noise, gt.txt with 0-based classes; a test image folder."""
    import torch
    from PIL import Image

    g = torch.Generator().manual_seed(1)
    (folder / "data").mkdir()
    (folder / "test_images").mkdir()
    rows = []
    for i in range(n + test):
        img = (torch.rand(128, 128, 3, generator=g) * 60).to(torch.uint8)
        cls = i % 3
        x, y = 8 + (i * 13) % 70, 10 + (i * 29) % 70
        img[y:y + 40, x:x + 40, cls] = 250
        name = f"{i:05d}.png"
        target = folder / ("data" if i < n else "test_images") / name
        Image.fromarray(img.numpy()).save(target)
        if i < n:
            rows.append(f"{name};{x};{y};{x + 40};{y + 40};{cls}")
    (folder / "data" / "gt.txt").write_text("\n".join(rows) + "\n")


def _edit(source: str, values: dict) -> str:
    for name, value in values.items():
        source, n = re.subn(rf"^({name}\s*=\s*)(.*?)(\s*# EDIT:.*)$", rf"\g<1>{value}\g<3>", source, flags=re.M)
        assert n == 1, f"no EDIT line for {name}"
    return source


def test_a_students_notebook_with_the_ready_cells_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    _write_data(tmp_path)
    nb_path = tmp_path / "AS4.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in STUDENT_CELLS]
    nbformat.write(nb, nb_path)

    # the product's own CLI adds the ready cells at the end, in the order a student would try them
    order = ["alternative_3", "alternative_1", "diagnose", "submission"]
    subprocess.run([sys.executable, "-m", "nbdetect", "cells", "add", str(nb_path), *order], check=True,
                   capture_output=True, text=True, cwd=tmp_path)
    nb = nbformat.read(nb_path, as_version=4)
    added = nb.cells[len(STUDENT_CELLS):]
    assert len(added) == len(order)
    for cell, cell_id in zip(added, order):
        cell.source = _edit(cell.source, EDITS[cell_id])

    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = {cell_id: cell_text(cell) for cell, cell_id in zip(nb.cells[len(STUDENT_CELLS):], order)}
    errors = [f"{i}: {cell_text(c)[-800:]}" for i, c in enumerate(nb.cells) if "ERROR" in cell_text(c)]
    assert not errors, errors

    # Alternative 3 returned at once (background); Alternative 1 waited for it instead of being refused
    assert "raised from 0.0001 to 0.0001" not in texts["alternative_3"]
    assert "LR raised from 2e-05 to 0.0001" in texts["alternative_3"], texts["alternative_3"]
    assert "waiting for alternative_3" in texts["alternative_1"], texts["alternative_1"]
    # as pasted on a CPU: num_classes read from the data, the CPU-sized model, no pretrained download attempt
    assert "num_classes read from the data: 3" in texts["alternative_1"], texts["alternative_1"]
    # at the data's own 128 px (never upscaled to 480x800), for the cell's epochs
    assert "CPU-sized 'retinanet_tiny' model at 128x128 px on your data (its own size" in texts["alternative_1"]
    assert "for 2 epochs" in texts["alternative_1"], texts["alternative_1"]
    # diagnose read the notebook's val_loader and named the validation loss summed over its 4 batches
    assert "summed over the 4 batches" in texts["diagnose"], texts["diagnose"]
    assert "root_cause='loss_summed_over_batches'" in texts["diagnose"], texts["diagnose"]
    # the submission waited for Alternative 1 and wrote boxes from its best.pt
    assert "waiting for alternative_1" in texts["submission"], texts["submission"]
    rows = (tmp_path / "submission" / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("file_name,image_id") and len(rows) > 1, rows[:3]
    assert f"{len(rows) - 1} boxes on 4 images" in texts["submission"]  # its summary, shown as the value
    assert {r.split(",")[0] for r in rows[1:]} <= {f"{i:05d}.png" for i in range(24, 28)}
    assert (tmp_path / "nbdetect_runs" / "alternative_1" / "best.pt").exists()
    assert (tmp_path / "nbdetect_runs" / "alternative_3" / "last.pt").exists()
