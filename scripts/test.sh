#!/usr/bin/env bash
# Set up Chromium and .venv with careerbot and its test tools, then run every check:
# format, lint, types, tests (unit, API, real model, browser, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
# A throwaway PostgreSQL (scripts/postgres.sh) for the tests, removed on any exit.
source scripts/postgres.sh
trap postgres_stop EXIT
# Browser tests drive Debian's Chromium (Playwright's own browser download fails offline);
# the cluster test (scripts/cluster.py) puts Debian's nginx in front of the replicas.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || "${PYTHON:-python3.11}" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test,export]'
.venv/bin/ruff format --check src tests scripts
.venv/bin/ruff check src tests scripts
.venv/bin/mypy
postgres_start  # exports CAREERBOT_TEST_POSTGRES_URL
.venv/bin/python -m pytest "$@"
