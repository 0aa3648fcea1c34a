"""The server extension behind the JupyterLab extension: GET <base_url>/nbdetect/cells.

A real ``jupyter server`` subprocess with the shipped enable file
(jupyter-config/server-config/nbdetect.json) in a temporary config dir; no browser.
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
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nbdetect.cells import as_json

pytest.importorskip("jupyter_server")

REPO = Path(__file__).resolve().parents[1]
BASE_URL = "/base/"  # a non-root base_url: the route must follow it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jserver")
    config_d = tmp / "config" / "jupyter_server_config.d"
    config_d.mkdir(parents=True)
    shutil.copy(REPO / "jupyter-config" / "server-config" / "nbdetect.json", config_d / "nbdetect.json")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    log = tmp / "server.log"
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", f"--ServerApp.base_url={BASE_URL}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={tmp}"]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    base = f"http://127.0.0.1:{port}{BASE_URL}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}api/status?token={token}", timeout=2):
                break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"jupyter server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    yield base, token, log
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _request(url: str, method: str = "GET", token: str | None = None, data: bytes | None = None):
    req = urllib.request.Request(url, method=method, data=data)
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_extension_is_loaded(server):
    _, _, log = server
    assert "nbdetect: serving the notebook cells" in log.read_text()


def test_authenticated_get_returns_the_cells(server):
    base, token, _ = server
    status, headers, body = _request(base + "nbdetect/cells", token=token)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == as_json()


def test_unauthenticated_get_is_refused(server):
    base, _, _ = server
    status, _, body = _request(base + "nbdetect/cells")
    assert status in (401, 403)
    assert b"import nbdetect" not in body
    status, _, _ = _request(base + "nbdetect/cells", token="not-the-token")
    assert status in (401, 403)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_is_allowed(server, method):
    base, token, _ = server
    status, _, _ = _request(base + "nbdetect/cells", method=method, token=token, data=b"{}")
    assert status == 405


def test_route_takes_no_path(server):
    base, token, _ = server
    status, _, _ = _request(base + "nbdetect/cells/../../etc/passwd", token=token)
    assert status == 404
    status, _, _ = _request(base + "nbdetect/cells/alternative_1", token=token)
    assert status == 404
