#!/usr/bin/env bash
# Set up .venv with careerbot and its export extra (torch: the first build exports the model
# to ONNX), then serve corpus/ over HTTP (building the index when missing).
# Extra arguments go to `careerbot serve`, e.g. --port 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || "${PYTHON:-python3.11}" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[export]'
exec .venv/bin/careerbot serve "$@"
