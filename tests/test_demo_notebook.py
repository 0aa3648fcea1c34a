"""notebooks/AS4_demo.ipynb runs top to bottom in a real kernel (nbclient) and each step shows what it should."""
import re
import shutil

import pytest

from nb_outputs import cell_text

from nbdetect_test_paths import REPO

pytestmark = pytest.mark.slow


def test_demo_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    shutil.copy(REPO / "notebooks" / "AS4_demo.ipynb", tmp_path / "AS4_demo.ipynb")
    nb = nbformat.read(tmp_path / "AS4_demo.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    texts = [cell_text(c) for c in code]
    assert not any("ERROR" in t for t in texts), texts

    seed = next(t for t in texts if "epoch 1: lr" in t)
    lrs = [float(x) for x in re.findall(r"lr ([0-9.e+-]+)", seed)]
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] == pytest.approx(2e-6)  # the two MultiStepLR cuts

    report = next(t for t in texts if "<Report" in t)
    # what the README says the demo shows: the LR cut before convergence named as the root cause
    assert "root_cause='lr_decay_before_convergence'" in report, report[:600]
    assert "next_action='alternative_1'" in report

    panel = next(c for c in code if "alternative_1(" in c.source)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in panel.outputs)
    # Run All: the submission cell waited for the background run and used its best.pt
    submission = texts[-1]
    assert "waiting for alternative_1" in submission and "alternative_1 finished; choosing the checkpoint now" \
        in submission, submission

    assert (tmp_path / "nbdetect_runs" / "alternative_1" / "best.pt").exists()
    csv = tmp_path / "submission" / "predictions.csv"
    assert csv.read_text().startswith("file_name,image_id,x1,y1,x2,y2,score,label,class_name")
    assert "on 4 images" in submission, submission
