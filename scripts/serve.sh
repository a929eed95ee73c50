#!/usr/bin/env bash
# Set up (first run only) and start NeuronLab: `neuronlab serve` (neuronlab/cli.py) prints the
# address students open (http://<this machine's address>:8000/join), its QR code, the admin key and
# the data folder. Flags: --host, --port, --data DIR, --config FILE, --open; every setting
# (NEURONLAB_* variables, neuronlab.toml): bash scripts/serve.sh --help.
# As before: slow clients are cut off (app.protocol), a shutdown (Ctrl+C, SIGTERM) gives open
# requests 5 s, then running jobs save their models and stop; NEURONLAB_MAX_CONNECTIONS caps connections.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m neuronlab serve "$@"
