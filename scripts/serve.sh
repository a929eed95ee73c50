#!/usr/bin/env bash
# Set up (first run only) and start NeuronLab. Students on the school network open
# http://<this machine's address>:8000/ ; settings are NEURONLAB_* variables (README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/uvicorn app.main:app --host "${NEURONLAB_HOST:-0.0.0.0}" --port "${NEURONLAB_PORT:-8000}" "$@"
