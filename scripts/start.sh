#!/usr/bin/env bash
# Set up .venv with careerbot, build the index of corpus/ when it is missing, and answer a question.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || "${PYTHON:-python3.11}" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e .
.venv/bin/careerbot ask "${1:-How can a data scientist become a machine learning engineer?}"
