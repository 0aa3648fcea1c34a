"""The JupyterLab extension in real JupyterLab 4 (headless Chromium): every nbdetect cell inserted
through the notebook toolbar menu and through the command palette lands below the active cell with
exactly the package's source; the inserted Alternative 1 cell then runs (tiny config) and shows its panel.

Skips when the extension is not built and installed (bash jupyterlab_ext/build.sh, then pip install).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nbdetect.cells import CELLS, get_cell
from nbdetect.notebook_tools import render

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# screenshots for the README are written only when scripts/docs_images.sh asks (tests write to temp dirs only)
DOCS_SHOTS = os.environ.get("NBDETECT_DOCS_SHOTS")
EXTENSION = "nbdetect-jupyterlab"
CELL_SEL = ".jp-Notebook .jp-Cell"

TINY = ('weights=None, device="cpu", out_dir="ext_run", '
        'synthetic={"n_train": 8, "n_val": 4, "image_size": (128, 128)}, monitor="panel")')


def _labextension_installed() -> bool:
    jupyter_core_paths = pytest.importorskip("jupyter_core.paths")
    return any((Path(d) / EXTENSION / "package.json").is_file()
               for d in jupyter_core_paths.jupyter_path("labextensions"))


if not _labextension_installed():  # decided before the lab server fixture starts a server for nothing
    pytest.skip(f"the {EXTENSION} labextension is not installed (bash jupyterlab_ext/build.sh; pip install .)",
                allow_module_level=True)


def _cell_text(page, index: int) -> str:
    return page.evaluate(
        """(i) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelectorAll('.cm-content .cm-line')]
                  .map(line => line.textContent).join('\\n')""", index)


def _active_index(page) -> int:
    return page.evaluate("() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
                         ".findIndex(c => c.classList.contains('jp-mod-active'))")


def _cell_count(page) -> int:
    return page.locator(CELL_SEL).count()


def _activate(page, index: int) -> None:
    page.click(f"{CELL_SEL} >> nth={index} >> .jp-InputPrompt")
    page.wait_for_function(
        "(i) => document.querySelectorAll('.jp-Notebook .jp-Cell')[i].classList.contains('jp-mod-active')", arg=index)


def _assert_inserted(page, expected: list[str], active: int, cell_id: str) -> None:
    """The new cell sits right below `active`, is the active one and holds the cell's exact source."""
    page.wait_for_function("(n) => document.querySelectorAll('.jp-Notebook .jp-Cell').length === n",
                           arg=len(expected) + 1)
    expected.insert(active + 1, get_cell(cell_id).source)
    assert _active_index(page) == active + 1, f"{cell_id}: not active below cell {active}"
    assert page.locator(CELL_SEL).nth(active + 1).evaluate("c => c.classList.contains('jp-CodeCell')")
    assert _cell_text(page, active + 1) == get_cell(cell_id).source


def _run_cell(page, index: int) -> None:
    """Shift+Enter in cell `index`; retried while the kernel connection is still settling."""
    for _ in range(5):
        _activate(page, index)
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "(i) => /\\[(\\*|\\d+)\\]/.test(document.querySelectorAll("
                "'.jp-Notebook .jp-Cell')[i].querySelector('.jp-InputPrompt').innerText)", arg=index, timeout=10_000)
            return
        except Exception:
            page.wait_for_timeout(2000)
    raise AssertionError("the cell never started executing")


def test_insert_every_cell_from_menu_and_palette_then_run_alternative_1(lab_server, page):
    lab_server.write_notebook("ext.ipynb", ["x = 1"])
    page.goto(lab_server.url("lab/tree/ext.ipynb"))
    page.wait_for_selector(f"{CELL_SEL} .cm-content", timeout=90_000)
    page.wait_for_selector("text=/ipykernel\\) \\| Idle/", timeout=90_000)
    expected = ["x = 1"]

    # Toolbar menu: activate cell i (the last one, then ones further up), insert below it.
    for i, cell in enumerate(CELLS):
        _activate(page, i)
        page.click(".jp-NotebookPanel-toolbar .nbdetect-toolbar-button")
        item = page.wait_for_selector(f".nbdetect-menu .lm-Menu-item:has-text('{cell.title}')", timeout=30_000)
        if i == 0:
            assert page.locator(".nbdetect-menu .lm-Menu-item").count() == len(CELLS)
        if i == 0 and DOCS_SHOTS:
            menu = page.locator(".nbdetect-menu").bounding_box()
            page.screenshot(path=str(Path(DOCS_SHOTS) / "extension_menu.png"),
                            clip={"x": 0, "y": 0, "width": min(1300, menu["x"] + menu["width"] + 320),
                                  "height": menu["y"] + menu["height"] + 40})
        item.click()
        _assert_inserted(page, expected, i, cell.id)

    # Command palette (Ctrl+Shift+C, the title, Enter): always below the first cell.
    for cell in CELLS:
        _activate(page, 0)
        page.keyboard.press("Control+Shift+C")
        page.wait_for_selector(".lm-CommandPalette-input:focus", timeout=10_000)
        page.keyboard.type(cell.title)
        top = page.wait_for_selector(".lm-CommandPalette-item.lm-mod-active .lm-CommandPalette-itemLabel")
        assert top.inner_text() == cell.title
        page.keyboard.press("Enter")
        _assert_inserted(page, expected, 0, cell.id)
    assert _cell_count(page) == 1 + 2 * len(CELLS)

    # Run the Alternative 1 cell the menu inserted, edited down to a tiny CPU configuration.
    index = expected.index(get_cell("alternative_1").source, 2)  # the menu's copy (the palette's is at 1..6)
    # a fresh notebook has no train_dataset (the cell would say so): the demo data is asked for on its EDIT line
    source = render("alternative_1", TRAIN_DATA="None", EPOCHS="3", PRESET='"retinanet_tiny"')
    tiny = source.replace("import nbdetect\n", "import nbdetect\nimport torch\ntorch.set_num_threads(1)\n", 1)
    tiny = tiny.replace("batch_size=BATCH_SIZE)", "batch_size=BATCH_SIZE, " + TINY)
    assert tiny.count(TINY) == 1 and "set_num_threads" in tiny
    _activate(page, index)
    page.click(f"{CELL_SEL} >> nth={index} >> .cm-content")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(tiny)
    assert _cell_text(page, index).rstrip("\n") == tiny.rstrip("\n")
    _run_cell(page, index)
    cell = page.locator(CELL_SEL).nth(index)
    try:
        cell.locator(".nbdetect-monitor").wait_for(timeout=120_000)
        cell.locator(".nbdetect-status[data-status='finished']").wait_for(timeout=300_000)
    except Exception:
        page.screenshot(path=str(lab_server.root.parent / "ext_run.png"))
        raise AssertionError("no finished panel; cell output: " + cell.inner_text())
    assert "epoch 3/3" in cell.locator(".nbdetect-monitor").inner_text()


def test_menu_says_when_the_cells_cannot_be_loaded(lab_server_without_cells, page):
    server = lab_server_without_cells
    assert "nbdetect: serving the notebook cells" not in server.log.read_text()
    server.write_notebook("nocells.ipynb", ["x = 1"])
    page.goto(server.url("lab/tree/nocells.ipynb"))
    page.wait_for_selector(f"{CELL_SEL} .cm-content", timeout=90_000)
    page.click(".jp-NotebookPanel-toolbar .nbdetect-toolbar-button")
    item = page.wait_for_selector(".nbdetect-menu .lm-Menu-item", timeout=30_000)
    assert "server extension" in item.inner_text()
    assert page.locator(".nbdetect-menu .lm-Menu-item").count() == 1
    assert "lm-mod-disabled" in (item.get_attribute("class") or "")


def test_menu_and_palette_insert_cells_in_notebook_7(notebook7_server, page):
    """Notebook 7 loads the same prebuilt extension: its toolbar menu and palette insert the cells too."""
    notebook7_server.write_notebook("nb7.ipynb", ["x = 1", "y = 2"])
    page.goto(notebook7_server.url("notebooks/nb7.ipynb"))
    page.wait_for_selector(f"{CELL_SEL} .cm-content", timeout=90_000)
    expected = ["x = 1", "y = 2"]
    _activate(page, 0)
    page.click(".jp-NotebookPanel-toolbar .nbdetect-toolbar-button")
    page.click(f".nbdetect-menu .lm-Menu-item:has-text('{get_cell('diagnose').title}')")
    _assert_inserted(page, expected, 0, "diagnose")
    assert _cell_text(page, 2) == "y = 2"
    # and its command palette
    _activate(page, 2)
    page.keyboard.press("Control+Shift+C")
    page.wait_for_selector(".lm-CommandPalette-input:focus", timeout=10_000)
    page.keyboard.type(get_cell("submission").title)
    page.wait_for_selector(".lm-CommandPalette-item.lm-mod-active .lm-CommandPalette-itemLabel")
    page.keyboard.press("Enter")
    _assert_inserted(page, expected, 2, "submission")
