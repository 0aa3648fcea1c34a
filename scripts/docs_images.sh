#!/usr/bin/env bash
# Regenerate the README's screenshots (docs/extension_menu.png, docs/monitor_panel.png) with the browser tests.
# The test suite itself never writes into the repository; this script is the one place that does.
set -euo pipefail
cd "$(dirname "$0")/.."
NBDETECT_DOCS_SHOTS="$PWD/docs" "${PYTHON:-python3}" -m pytest -q tests/browser -k "insert_every_cell or panel_updates" "$@"
