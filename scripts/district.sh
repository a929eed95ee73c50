#!/usr/bin/env bash
# District mode on one machine (docs/scaling.md), one command:
#   - a Redis (NEURONLAB_REDIS_URL if set, else one started on NEURONLAB_REDIS_PORT, 6390);
#   - NEURONLAB_REPLICAS (2) stateless uvicorn replicas on 127.0.0.1:NEURONLAB_REPLICA_PORT (8101),
#     8102, ... sharing NEURONLAB_DATA_DIR; arguments given to this script go to each uvicorn;
#   - NEURONLAB_WORKERS (2) training workers (RQ), each training one job at a time;
#   - nginx in front on NEURONLAB_PORT (8000), configured from deploy/nginx.conf.
# Logs go to NEURONLAB_DISTRICT_DIR/logs (data/district). Ctrl+C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --district
replicas=${NEURONLAB_REPLICAS:-2}
port=${NEURONLAB_PORT:-8000}
first=${NEURONLAB_REPLICA_PORT:-8101}
run=$(realpath -m "${NEURONLAB_DISTRICT_DIR:-data/district}")
mkdir -p "$run/logs" "$run/tmp" "$run/redis"
pids=() redis_pid=""
stop() {  # SIGTERM (a training worker stops its job, saving it), up to 20 s, then SIGKILL
  kill "$@" 2>/dev/null || true
  for _ in $(seq 100); do
    local alive=0 p
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.2
  done
  kill -9 "$@" 2>/dev/null || true
}
# Redis goes last: the replicas and workers need it to stop cleanly
cleanup() { trap - EXIT INT TERM; stop "${pids[@]}"; [ -z "$redis_pid" ] || stop "$redis_pid"; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${NEURONLAB_REDIS_URL:-}" ]; then
  redis_port=${NEURONLAB_REDIS_PORT:-6390}
  # job records survive a Redis restart (append-only file in $run/redis)
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$run/redis" --save "" --appendonly yes \
    --logfile "$run/logs/redis.log" & redis_pid=$!
  export NEURONLAB_REDIS_URL=redis://127.0.0.1:$redis_port/0
fi
# one admin key for all replicas (each would make up its own)
export NEURONLAB_ADMIN_KEY=${NEURONLAB_ADMIN_KEY:-$(.venv/bin/python -c "import secrets; print(secrets.token_urlsafe(24))")}
echo "NeuronLab district: $replicas replicas, Redis $NEURONLAB_REDIS_URL, admin key $NEURONLAB_ADMIN_KEY" >&2

upstream=""
for i in $(seq 1 "$replicas"); do
  p=$((first + i - 1))
  .venv/bin/uvicorn --factory app.main:create_app --host 127.0.0.1 --port "$p" \
    --http app.protocol:GuardedH11Protocol --timeout-keep-alive 5 --timeout-graceful-shutdown 5 \
    --proxy-headers --forwarded-allow-ips 127.0.0.1 \
    --limit-concurrency "${NEURONLAB_MAX_CONNECTIONS:-500}" "$@" >>"$run/logs/replica-$i.log" 2>&1 & pids+=($!)
  upstream+="    server 127.0.0.1:$p max_fails=2 fail_timeout=5s;\\n"
done
replica_pids=("${pids[@]: -$replicas}")
# training workers (RQ): each takes one job at a time from the district's queue
for i in $(seq 1 "${NEURONLAB_WORKERS:-2}"); do
  .venv/bin/python -m engine.training.district --data-dir "${NEURONLAB_DATA_DIR:-data}" >>"$run/logs/worker-$i.log" 2>&1 & pids+=($!)
done
# nginx opens the door once every replica answers (a request sent to one still starting would fail)
.venv/bin/python - "$first" "${replica_pids[@]}" <<'PY'
import os, sys, time, urllib.request
first, pids = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
for port, pid in enumerate(pids, first):
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            try:
                os.kill(pid, 0)
            except OSError:
                sys.exit(f"the replica on port {port} stopped: see its log")
            time.sleep(0.2)
PY
# the sample config, with this run's replicas and port
sed -e '/^    server 127\.0\.0\.1:81/d' -e "s#^    \(least_conn\|hash \).*#&\\n${upstream%\\n}#" -e "s|listen 8000;|listen $port;|" \
  deploy/nginx.conf > "$run/nginx.conf"
nginx -p "$run/" -c "$run/nginx.conf" -g "daemon off;" & pids+=($!)
echo "Open http://<this machine's address>:$port/ (logs in $run/logs)" >&2
wait -n "${pids[@]}" ${redis_pid:+"$redis_pid"}
