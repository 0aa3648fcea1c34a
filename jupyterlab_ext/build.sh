#!/usr/bin/env bash
# Build the JupyterLab extension from source into nbdetect/labextension/ (needs node + npm and JupyterLab).
# `pip install .` and `pip wheel .` run the same builder through hatch-jupyter-builder (pyproject.toml).
# Usage: bash jupyterlab_ext/build.sh   (PYTHON=... picks the interpreter whose JupyterLab it is built against)
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-python3}" jupyterlab_ext/builder.py --force
