#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine, then the suite itself.
# Usage: bash scripts/test.sh [pytest args]
#   PYTHON=/path/to/venv/bin/python bash scripts/test.sh   runs everything with that interpreter; the venv
#   need not be activated: every step and every test runs it (or sys.executable), never a Python program
#   found on PATH (tests/test_fresh_venv.py checks this)
#   NBDETECT_NO_CHROMIUM=1   does not install Debian's chromium (the browser tests are then skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# The JupyterLab extension, built from source BEFORE the install below so that the install puts it
# (wheel shared-data) into <sys.prefix>/share/jupyter/labextensions with the server-extension enable file.
# The build runs against the installed JupyterLab, so that comes first when missing.
if command -v npm >/dev/null 2>&1; then
  "$PY" -c "import jupyterlab" 2>/dev/null \
    || "$PY" -m pip install -q --disable-pip-version-check "jupyterlab>=4.1,<5"
  PYTHON="$PY" bash jupyterlab_ext/build.sh
else
  echo "scripts/test.sh: npm not found; the JupyterLab extension is not built (its browser test will be skipped)"
fi

# Python packages (PyPI's torch + torchvision pair; it runs on CPU too).
"$PY" -m pip install -q --disable-pip-version-check -e ".[test]"

# Chromium for the browser tests (Debian package; Playwright drives /usr/bin/chromium, no browser download).
if [ -z "${NBDETECT_NO_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
    || echo "scripts/test.sh: could not install chromium; browser tests will be skipped"
fi

# Two worker processes (pytest-xdist), each test file on one of them (its module fixtures, e.g. a Jupyter
# server, start once): nbdetect trains on 1 thread on a 2-core machine, so two files run side by side.
# NBDETECT_TEST_WORKERS=0 runs in one process (so does a 1-core machine); -n given, -p no:xdist or --collect-only: as given.
cores=$(nproc 2>/dev/null || echo 2)
workers=${NBDETECT_TEST_WORKERS:-$([ "$cores" -ge 2 ] && echo 2 || echo 0)}  # one core: one process
case " $* " in *" -n "*|*" -n="*|*" --numprocesses"*|*"no:xdist"*|*" --collect-only "*|*" --co "*) workers=0 ;; esac
if [ "$workers" != 0 ]; then
  set -- -n "$workers" --dist loadfile "$@"
fi
"$PY" -m pytest "$@"

# Tests write only to temporary directories: a test that leaves a file in the checkout fails the run.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && [ -n "$(git status --porcelain)" ]; then
  echo "scripts/test.sh: the tests changed the checkout:" >&2
  git status --porcelain >&2
  exit 1
fi
