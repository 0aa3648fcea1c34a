"""The ready cells: well-formed, wired to the real API, insertable with nbformat, YOLOv8 comparison."""
import ast
import inspect
import json
import math
import re

import nbformat
import pytest

import nbdetect
from nbdetect import cells as cells_mod
from nbdetect.cells import CELLS, as_json, get_cell
from nbdetect.cli import main as cli_main
from nbdetect.errors import MissingError
from nbdetect.history import History
from nbdetect.history_files import HistoryWriter
from nbdetect.notebook_tools import add_cells, demo_notebook, render
from nbdetect.recipes import RECIPES
from nbdetect.yolo_compare import compare_with_yolo, read_yolo_results

# the public function each cell must call: a recipe's cell calls what its record's ``call`` names; the other
# cells are no recipe
RECIPE_CELLS = {r.name: re.match(r"nbdetect\.(\w+)\(", r.call).group(1)
                for r in RECIPES.values() if r.call and any(c.id == r.name for c in CELLS)}
OTHER_CELLS = {"diagnose": "diagnose", "submission": "make_submission", "compare_yolo": "compare_with_yolo",
               "find_lr": "find_lr"}
CALLS = {**RECIPE_CELLS, **OTHER_CELLS}


def test_every_cell_is_listed_once_parses_and_marks_what_to_edit():
    assert sorted(c.id for c in CELLS) == sorted(CALLS)
    assert {"alternative_1", "alternative_2", "alternative_3"} <= set(RECIPE_CELLS)  # read from the records
    for cell in CELLS:
        ast.parse(cell.source)
        assert cell.title and cell.description
        assert cell.edit_names(), f"{cell.id} marks no name to edit"
        code = [line for line in cell.source.splitlines() if line and not line.startswith("#")
                and "# EDIT:" not in line]
        assert len(code) <= 5, f"{cell.id} is not short: {code}"
    assert as_json() == [{"id": c.id, "title": c.title, "description": c.description, "source": c.source}
                         for c in CELLS]
    json.dumps(as_json())
    with pytest.raises(KeyError, match="alternative_1"):
        get_cell("nope")


# what a student may need to change in each cell, each an "# EDIT:" line
MUST_EDIT = {"alternative_3": {"LR", "EPOCHS", "PREVIOUS_LOSS"},
             "submission": {"CHECKPOINT", "TEST_IMAGES", "SCORE_THRESHOLD", "LABEL_BASE"},
             "diagnose": {"EPOCHS", "HISTORY", "HISTORY_KIND"}}
for _recipe in RECIPES.values():  # every training cell of a recipe record
    if _recipe.cell_title:
        MUST_EDIT[_recipe.name] = {"NUM_CLASSES", "EPOCHS", "PRESET", "IMAGE_SIZE", "BATCH_SIZE"}


@pytest.mark.parametrize("cell_id", sorted(MUST_EDIT))
def test_every_value_a_student_may_change_is_an_edit_line(cell_id):
    cell = get_cell(cell_id)
    assert MUST_EDIT[cell_id] <= set(cell.edit_names()), MUST_EDIT[cell_id] - set(cell.edit_names())
    for name in cell.edit_names():  # and each is passed on, not just assigned
        assert cell.source.count(name) >= 2, f"{name} is assigned but never used in {cell_id}"


@pytest.mark.parametrize("cell_id", sorted(CALLS))
def test_cell_calls_the_public_function_with_arguments_its_signature_accepts(cell_id, monkeypatch):
    """Run the cell as pasted into a notebook holding the AS4 names; the call reaches the real signature."""
    real = getattr(nbdetect, CALLS[cell_id])
    seen = {}

    def spy(*args, **kwargs):
        seen["bound"] = inspect.signature(real).bind(*args, **kwargs)  # TypeError on a wrong call
        return "result"

    monkeypatch.setattr(nbdetect, CALLS[cell_id], spy)
    monkeypatch.setattr(nbdetect, "best_checkpoint", lambda: "nbdetect_runs/alternative_1-2/best.pt")
    as4 = {"model": object(), "optimizer": object(), "scheduler": object(), "train_dataset": [1],
           "val_dataset": [2], "val_losses": [3.0, 2.0]}
    namespace = dict(as4)
    exec(compile(get_cell(cell_id).source, f"<cell {cell_id}>", "exec"), namespace)
    args = seen["bound"].arguments
    # the AS4 names were picked up where the cell uses them
    if cell_id in RECIPE_CELLS:
        assert args["train"] is as4["train_dataset"] and args["val"] is as4["val_dataset"]
    if cell_id == "find_lr":
        assert args["model"] is as4["model"] and args["train"] is as4["train_dataset"]
    if cell_id == "alternative_3":
        assert args["model"] is as4["model"] and args["optimizer"] is as4["optimizer"] and args["lr"] == 1e-4
    if cell_id == "diagnose":
        assert args["model"] is as4["model"] and args["history"] is as4["val_losses"]
    if cell_id == "submission":
        assert args["model"] == "nbdetect_runs/alternative_1-2/best.pt" and args["label_base"] == 1
    # in a fresh notebook (or after a kernel restart) a name the cell needs is a clear error naming it,
    # never a silent switch to the demo data; the cells that can run without the names still run
    seen.clear()
    if cell_id in RECIPE_CELLS or cell_id == "find_lr":
        from nbdetect.errors import MissingError

        with pytest.raises(MissingError, match="is not defined in this notebook"):
            exec(compile(get_cell(cell_id).source, f"<cell {cell_id}>", "exec"), {})
        assert "bound" not in seen
    else:
        exec(compile(get_cell(cell_id).source, f"<cell {cell_id}>", "exec"), {})
        assert "bound" in seen


def test_render_replaces_only_the_marked_values():
    src = render("alternative_1", TRAIN_DATA="my_train", NUM_CLASSES="43")
    assert 'TRAIN_DATA = my_train' in src and "NUM_CLASSES = 43" in src
    assert 'VAL_DATA = nbdetect.from_notebook(globals(), "val_dataset", False)' in src
    assert src.count("\n") == get_cell("alternative_1").source.count("\n")
    with pytest.raises(KeyError, match="EPOCHZ"):
        render("alternative_1", EPOCHZ="3")


def _notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="kept\n")]
    nbformat.write(nb, path)


def test_add_cells_inserts_after_the_given_cell_and_keeps_the_rest(tmp_path):
    path = tmp_path / "AS4.ipynb"
    _notebook(path, ["a = 1", "b = 2", "c = 3"])
    add_cells(path, ["diagnose", "alternative_1"], after=0)
    nb = nbformat.read(path, as_version=4)
    assert [c.source for c in nb.cells] == ["a = 1", get_cell("diagnose").source,
                                            get_cell("alternative_1").source, "b = 2", "c = 3"]
    assert nb.cells[0].outputs[0]["text"] == "kept\n"
    nbformat.validate(nb)
    add_cells(path, "submission")  # default: at the end
    assert nbformat.read(path, as_version=4).cells[-1].source == get_cell("submission").source
    with pytest.raises(IndexError, match="6 cells"):
        add_cells(path, ["diagnose"], after=6)
    with pytest.raises(KeyError):
        add_cells(path, ["nope"])
    assert len(nbformat.read(path, as_version=4).cells) == 6  # failed calls wrote nothing


def test_cli_adds_cells_to_a_copy_and_writes_the_demo_notebook(tmp_path, capsys):
    src, out = tmp_path / "AS4.ipynb", tmp_path / "AS4_nbdetect.ipynb"
    _notebook(src, ["x = 1"])
    assert cli_main(["cells", "add", str(src), "alternative_3", "--out", str(out)]) == 0
    assert len(nbformat.read(src, as_version=4).cells) == 1
    assert nbformat.read(out, as_version=4).cells[1].source == get_cell("alternative_3").source
    assert cli_main(["cells", "show", "diagnose"]) == 0
    assert "nbdetect.diagnose(" in capsys.readouterr().out
    demo = tmp_path / "demo.ipynb"
    assert cli_main(["demo-notebook", str(demo), "--epochs", "3"]) == 0
    nb = nbformat.read(demo, as_version=4)
    assert any("EPOCHS = 3" in c.source for c in nb.cells)


def test_committed_demo_notebook_is_the_generated_one():
    from nbdetect_test_paths import REPO

    committed = nbformat.read(REPO / "notebooks" / "AS4_demo.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in demo_notebook().cells], \
        "notebooks/AS4_demo.ipynb is stale: run python -m nbdetect demo-notebook notebooks/AS4_demo.ipynb"
    assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code")


def _yolo_csv(path, map50s):
    # Ultralytics pads its column names with spaces in older versions
    cols = ["                  epoch", "      train/box_loss", "   metrics/mAP50(B)", "metrics/mAP50-95(B)"]
    rows = [",".join(cols)] + [f"{i + 1},{1.5 - 0.1 * i},{m},{m / 2}" for i, m in enumerate(map50s)]
    path.write_text("\n".join(rows) + "\n")


def test_compare_with_yolo_reads_both_sides_and_names_the_leader(tmp_path):
    yolo = tmp_path / "runs" / "detect" / "train" / "results.csv"
    yolo.parent.mkdir(parents=True)
    _yolo_csv(yolo, [0.2, 0.5, 0.45])
    run_dir = tmp_path / "alt1"
    h, w = History(), HistoryWriter(run_dir)
    for epoch, m50 in enumerate([0.1, 0.3, 0.6, 0.55], 1):
        w.epoch(h.log_epoch(epoch=epoch, val_loss=1.0 / epoch, map50=m50, map=m50 / 3), h.epochs)
    w.close()

    cmp = compare_with_yolo(yolo, [run_dir, tmp_path / "missing_run"])
    rows = {r["run"]: r for r in cmp.rows()}
    assert rows["YOLOv8 (train)"]["best_map50"] == 0.5 and rows["YOLOv8 (train)"]["best_epoch"] == 2
    assert rows["alt1"]["best_map50"] == 0.6 and rows["alt1"]["best_epoch"] == 3
    assert math.isclose(rows["alt1"]["map_at_best"], 0.2)
    assert cmp.leader() == "alt1"
    assert cmp.missing == [str(tmp_path / "missing_run")]
    assert "alt1" in str(cmp) and "not found" in str(cmp)
    html = cmp._repr_html_()
    assert "data:image/png;base64," in html and "different scales" in html
    assert cmp.plot_png()[:4] == b"\x89PNG"
    with pytest.raises(MissingError, match="none of these"):
        compare_with_yolo(tmp_path / "nope.csv", [tmp_path / "nope_run"])


def test_a_results_csv_that_is_not_ultralytics_is_refused_by_name(tmp_path):
    bad = tmp_path / "results.csv"
    bad.write_text("epoch,loss\n1,2\n")
    with pytest.raises(ValueError, match="mAP50"):
        read_yolo_results(bad)


def test_cells_module_has_no_second_copy_in_the_frontend():
    """The extension fetches the cells from the server; no cell text may be duplicated in its sources."""
    from nbdetect_test_paths import REPO

    src = REPO / "jupyterlab_ext" / "src"
    if not src.exists():
        pytest.skip("no jupyterlab_ext/src in this checkout")
    text = "".join(p.read_text() for p in src.rglob("*.ts*"))
    for cell in cells_mod.CELLS:
        assert cell.source.splitlines()[0] not in text
