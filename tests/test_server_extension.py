"""The server extension behind the JupyterLab extension: GET <base_url>/nbdetect/cells.

A real ``jupyter server`` subprocess with the shipped enable file
(jupyter-config/server-config/nbdetect.json) in a temporary config dir; no browser.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from jupyter_servers import start_jupyter
from nbdetect.cells import as_json

pytestmark = pytest.mark.slow  # every test here starts a Jupyter server

pytest.importorskip("jupyter_server")

BASE_URL = "/base/"  # a non-root base_url: the route must follow it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    for jupyter in start_jupyter(tmp_path_factory, "jupyter_server", base_url=BASE_URL, check_xsrf=True):
        yield jupyter.base + "/", jupyter.token, jupyter.log


def _request(url: str, method: str = "GET", token: str | None = None, data: bytes | None = None):
    req = urllib.request.Request(url, method=method, data=data)
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.mark.slow
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
