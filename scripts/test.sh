#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine (as root): installs the apt peers and a
# .venv, then lint (ruff), types (mypy) and every test, real-peer tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check bmprov tests bench sample_sheets scripts
.venv/bin/ruff format --check bmprov tests bench sample_sheets scripts
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
