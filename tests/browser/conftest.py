"""JupyterLab 4 / Notebook 7 servers and headless Chromium fixtures for the browser tests.

Skips cleanly when JupyterLab, Notebook 7, Playwright or a Chromium binary is missing.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> str | None:
    for cand in (os.environ.get("NBDETECT_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                 shutil.which("chromium"), shutil.which("google-chrome")):
        if cand and Path(cand).exists():
            return cand
    return None


class LabServer:
    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        nb = {"nbformat": 4, "nbformat_minor": 5,
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                          "language": "python"}},
              "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
                         "outputs": [], "source": src} for i, src in enumerate(cells)]}
        path = self.root / name
        path.write_text(json.dumps(nb), encoding="utf-8")
        return path


def _start_jupyter(tmp_path_factory, app: str, extra_args=()):
    """Start ``python -m <app>`` (jupyterlab or notebook) on a free localhost port; yields a LabServer."""
    root = tmp_path_factory.mktemp(app)
    port, token = _free_port(), secrets.token_hex(16)
    log = root.parent / f"{app}-{port}.log"
    # A private config dir, holding only the nbdetect server-extension enable file (the one the wheel ships),
    # so the extension's GET /nbdetect/cells is served from this checkout whether or not it is installed.
    config_d = root.parent / f"jcfg-{app}" / "jupyter_server_config.d"
    config_d.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "jupyter-config" / "server-config" / "nbdetect.json", config_d / "nbdetect.json")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JUPYTER_CONFIG_DIR": str(config_d.parent), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", app, "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=True"]
    if app == "jupyterlab":
        cmd += [f"--LabApp.workspaces_dir={root.parent / 'ws'}", f"--LabApp.user_settings_dir={root.parent / 'us'}",
                "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    cmd += list(extra_args)
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=root)
    server = LabServer(root, port, token, proc, log)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2) as resp:
                if resp.status == 200:
                    break
        except Exception:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{app} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    yield from _start_jupyter(tmp_path_factory, "jupyterlab")


@pytest.fixture(scope="module")
def lab_server_without_cells(tmp_path_factory):
    """JupyterLab with the nbdetect labextension but its server extension switched off."""
    pytest.importorskip("jupyterlab")
    yield from _start_jupyter(tmp_path_factory, "jupyterlab", ["--ServerApp.jpserver_extensions={'nbdetect': False}"])


@pytest.fixture(scope="module")
def notebook7_server(tmp_path_factory):
    notebook = pytest.importorskip("notebook")
    if int(notebook.__version__.split(".")[0]) < 7:
        pytest.skip(f"Notebook {notebook.__version__} is not Notebook 7")
    yield from _start_jupyter(tmp_path_factory, "notebook")


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
