"""JupyterLab 4 / Notebook 7 servers and headless Chromium fixtures for the browser tests.

Skips cleanly when JupyterLab, Notebook 7, Playwright or a Chromium binary is missing.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from jupyter_servers import start_jupyter


def _chromium() -> str | None:
    for cand in (os.environ.get("NBDETECT_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                 shutil.which("chromium"), shutil.which("google-chrome")):
        if cand and Path(cand).exists():
            return cand
    return None


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    yield from start_jupyter(tmp_path_factory, "jupyterlab")


@pytest.fixture(scope="module")
def lab_server_without_cells(tmp_path_factory):
    """JupyterLab with the nbdetect labextension but its server extension switched off."""
    pytest.importorskip("jupyterlab")
    yield from start_jupyter(tmp_path_factory, "jupyterlab", ["--ServerApp.jpserver_extensions={'nbdetect': False}"])


@pytest.fixture(scope="module")
def notebook7_server(tmp_path_factory):
    notebook = pytest.importorskip("notebook")
    if int(notebook.__version__.split(".")[0]) < 7:
        pytest.skip(f"Notebook {notebook.__version__} is not Notebook 7")
    yield from start_jupyter(tmp_path_factory, "notebook")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium binary (set NBDETECT_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    p = context.new_page()
    yield p
    context.close()
