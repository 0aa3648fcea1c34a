#!/usr/bin/env bash
# Build the JupyterLab extension from source into nbdetect/labextension/ (needs node + npm).
# Usage: bash jupyterlab_ext/build.sh   (PYTHON=... picks the interpreter whose JupyterLab it is built against)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
npm ci --no-audit --no-fund
npx tsc --project tsconfig.json
# Build against the installed JupyterLab's own core metadata (no download of @jupyterlab/core-meta).
CORE=$("$PY" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging", "package.json"))')
"$PY" -m jupyter labextension build . --development false --core-package-file "$CORE"
# Tells `jupyter labextension list` which Python package provides the extension.
cp install.json ../nbdetect/labextension/install.json
