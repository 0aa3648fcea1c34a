#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine, then the suite itself.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Python packages (PyPI's torch + torchvision pair; it runs on CPU too).
"$PY" -m pip install -q --disable-pip-version-check -e ".[test]"

# Chromium for the browser tests (Debian package; Playwright drives /usr/bin/chromium, no browser download).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
    || echo "scripts/test.sh: could not install chromium; browser tests will be skipped"
fi

"$PY" -m pytest "$@"
