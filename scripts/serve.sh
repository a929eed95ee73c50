#!/usr/bin/env bash
# Set up (first run only) and start NeuronLab. Students on the school network open
# http://<this machine's address>:8000/ ; settings are NEURONLAB_* variables (README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# app.protocol closes connections whose request does not arrive in time (slowloris); a shutdown
# (Ctrl+C, SIGTERM) gives open requests 5 s, then running jobs save their models and stop.
exec .venv/bin/uvicorn --factory app.main:create_app --host "${NEURONLAB_HOST:-0.0.0.0}" --port "${NEURONLAB_PORT:-8000}" \
  --http app.protocol:GuardedH11Protocol --timeout-keep-alive 5 --timeout-graceful-shutdown 5 \
  --limit-concurrency "${NEURONLAB_MAX_CONNECTIONS:-500}" "$@"
