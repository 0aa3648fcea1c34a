"""Jupyter server extension: serves the ready notebook cells to the JupyterLab extension.

``GET <base_url>/nbdetect/cells`` returns :func:`nbdetect.cells.as_json`. The handler takes
no input from the client (no paths, no code), writes nothing and answers GET only; like
every Jupyter API it requires an authenticated user (token or login cookie).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .cells import as_json

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

ROUTE = ("nbdetect", "cells")


class CellsHandler(APIHandler):
    """The cells as JSON: a list of ``{id, title, description, source}``."""

    SUPPORTED_METHODS = ("GET",)

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(as_json()))


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], *ROUTE)
    web_app.add_handlers(".*$", [(route, CellsHandler)])
    serverapp.log.info("nbdetect: serving the notebook cells at %s", route)
