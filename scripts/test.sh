#!/usr/bin/env bash
# Set up (with the test tools and chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check app engine neuronlab tests bench   # pyflakes, import order, line length (pyproject.toml)
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"   # two at a time: see tests/conftest.py
