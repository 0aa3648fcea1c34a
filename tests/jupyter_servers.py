"""Start a real Jupyter server (jupyter_server, JupyterLab or Notebook 7) on localhost for the tests.

The server gets a private config dir holding only the nbdetect server-extension enable file (the one
the wheel ships), so GET <base_url>/nbdetect/cells is served from this checkout whether or not
nbdetect is installed.
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

from nbdetect_test_paths import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path, base_url: str = "/"):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log
        self.base_url = base_url

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url.rstrip('/')}"

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


def start_jupyter(tmp_path_factory, app: str, extra_args=(), base_url: str = "/", check_xsrf: bool = False):
    """Start ``python -m <app>`` on a free localhost port; yields a JupyterServer, stops it afterwards.

    ``check_xsrf=True`` keeps jupyter_server's default XSRF protection (the browser tests turn it off).
    """
    root = tmp_path_factory.mktemp(app)
    port, token = free_port(), secrets.token_hex(16)
    log = root.parent / f"{app}-{port}.log"
    config_d = root.parent / f"jcfg-{app}" / "jupyter_server_config.d"
    config_d.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "jupyter-config" / "server-config" / "nbdetect.json", config_d / "nbdetect.json")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JUPYTER_CONFIG_DIR": str(config_d.parent), "JUPYTER_RUNTIME_DIR": str(root.parent / f"rt-{app}"),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", app, "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", f"--ServerApp.base_url={base_url}",
           f"--ServerApp.disable_check_xsrf={not check_xsrf}"]
    if app == "jupyterlab":
        cmd += [f"--LabApp.workspaces_dir={root.parent / 'ws'}", f"--LabApp.user_settings_dir={root.parent / 'us'}",
                "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    cmd += list(extra_args)
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=root)
    server = JupyterServer(root, port, token, proc, log, base_url)
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
