#!/usr/bin/env bash
# District mode on one machine (docs/scaling.md), one command:
#   - a Redis (NEURONLAB_REDIS_URL if set, else one started on NEURONLAB_REDIS_PORT, 6390);
#   - NEURONLAB_REPLICAS (2) stateless uvicorn replicas on 127.0.0.1:NEURONLAB_REPLICA_PORT (8101),
#     8102, ... sharing NEURONLAB_DATA_DIR; arguments given to this script go to each uvicorn;
#   - NEURONLAB_WORKERS (2) training workers (RQ), each training one job at a time;
#   - nginx in front on NEURONLAB_PORT (8000), configured from deploy/nginx.conf.
# Each runs under supervisord (the PyPI supervisor package), its config written in the run folder
# NEURONLAB_DISTRICT_DIR (data/district): a replica or worker that dies is started again while the
# rest go on, and nginx sends requests to the replicas that are up meanwhile. Logs go to
# NEURONLAB_DISTRICT_DIR/logs. Ctrl+C (or SIGTERM) stops everything, Redis last. One part:
#   .venv/bin/supervisorctl -c NEURONLAB_DISTRICT_DIR/supervisord.conf status|stop|start|restart NAME
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --district
replicas=${NEURONLAB_REPLICAS:-2}
port=${NEURONLAB_PORT:-8000}
first=${NEURONLAB_REPLICA_PORT:-8101}
run=$(realpath -m "${NEURONLAB_DISTRICT_DIR:-data/district}")
mkdir -p "$run/logs" "$run/tmp" "$run/redis"
conf="$run/supervisord.conf"
# one admin key for all replicas (each would make up its own); every program inherits it
export NEURONLAB_ADMIN_KEY=${NEURONLAB_ADMIN_KEY:-$(.venv/bin/python -c "import secrets; print(secrets.token_urlsafe(24))")}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
redis_server=$(command -v redis-server || echo /usr/bin/redis-server)
# a command line for the config file (split as a POSIX shell would; % is the file's escape)
quote() { .venv/bin/python -c 'import shlex, sys; print(shlex.join(sys.argv[1:]).replace("%", "%%"))' "$@"; }
program() {  # name, priority, seconds it may take to stop (SIGTERM, then SIGKILL), command...
  local name=$1 priority=$2 wait=$3; shift 3
  printf '\n[program:%s]\ncommand=%s\ndirectory=%s\npriority=%s\n' "$name" "$(quote "$@")" "$PWD" "$priority"
  printf 'autorestart=true\nstartsecs=1\nstartretries=1000\nstopsignal=TERM\nstopwaitsecs=%s\nkillasgroup=true\n' "$wait"
  printf 'redirect_stderr=true\nstdout_logfile=%s\nstdout_logfile_maxbytes=10MB\nstdout_logfile_backups=3\n' "$run/logs/$name.log"
}
if [ -z "${NEURONLAB_REDIS_URL:-}" ]; then
  redis_port=${NEURONLAB_REDIS_PORT:-6390}
  export NEURONLAB_REDIS_URL=redis://127.0.0.1:$redis_port/0
  own_redis=1
fi
{
  printf '; written by scripts/district.sh at each start\n[supervisord]\nsilent=true\nlogfile=%s\npidfile=%s\nchildlogdir=%s\n' \
    "$run/logs/supervisord.log" "$run/supervisord.pid" "$run/logs"
  printf '\n[unix_http_server]\nfile=%s\nchmod=0700\n' "$run/supervisor.sock"
  printf '\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n'
  printf '\n[supervisorctl]\nserverurl=unix://%s\n' "$run/supervisor.sock"
  # Redis starts first and stops last (lowest priority): the replicas and workers need it to stop cleanly
  if [ -n "${own_redis:-}" ]; then
    # job records survive a Redis restart (append-only file in $run/redis)
    program redis 10 30 "$redis_server" --port "$redis_port" --bind 127.0.0.1 --dir "$run/redis" --save "" \
      --appendonly yes --logfile ""
  fi
  names=""
  for i in $(seq 1 "$replicas"); do
    program "replica-$i" 200 20 "$PWD/.venv/bin/uvicorn" --factory app.main:create_app --host 127.0.0.1 --port $((first + i - 1)) \
      --http app.protocol:GuardedH11Protocol --timeout-keep-alive 5 --timeout-graceful-shutdown 5 \
      --proxy-headers --forwarded-allow-ips 127.0.0.1 --limit-concurrency "${NEURONLAB_MAX_CONNECTIONS:-500}" "$@"
    names+="${names:+,}replica-$i"
  done
  printf '\n[group:replicas]\nprograms=%s\npriority=200\n' "$names"  # a group stops together
  # training workers (RQ): each takes one job at a time from the district's queue; told to stop
  # (SIGTERM), one stops its job within a mini-batch, saving its model
  names=""
  for i in $(seq 1 "${NEURONLAB_WORKERS:-2}"); do
    program "worker-$i" 100 30 "$PWD/.venv/bin/python" -m engine.training.district --data-dir "${NEURONLAB_DATA_DIR:-data}"
    names+="${names:+,}worker-$i"
  done
  printf '\n[group:workers]\nprograms=%s\npriority=100\n' "$names"
  # nginx is started below, once every replica answers (a request sent to one still starting would fail)
  program nginx 300 10 "$nginx" -p "$run/" -c "$run/nginx.conf" -g "daemon off;"
  printf 'autostart=false\n'
} > "$conf"
echo "NeuronLab district: $replicas replicas, Redis $NEURONLAB_REDIS_URL, admin key $NEURONLAB_ADMIN_KEY" >&2

# the sample config, with this run's replicas and port
upstream=""
for i in $(seq 1 "$replicas"); do upstream+="    server 127.0.0.1:$((first + i - 1)) max_fails=2 fail_timeout=5s;\\n"; done
sed -e '/^    server 127\.0\.0\.1:81/d' -e "s#^    \(least_conn\|hash \).*#&\\n${upstream%\\n}#" -e "s|listen 8000;|listen $port;|" \
  deploy/nginx.conf > "$run/nginx.conf"

# supervisord in the foreground, this script's child: SIGTERM or Ctrl+C here stops it, and it stops
# every program in turn (nginx, the replicas, the workers, Redis), each within its stopwaitsecs
supervisord=""
stop() { trap - EXIT INT TERM; [ -z "$supervisord" ] || { kill -TERM "$supervisord" 2>/dev/null; wait "$supervisord" 2>/dev/null; } || true; }
trap stop EXIT INT TERM
.venv/bin/supervisord -n -c "$conf" & supervisord=$!
.venv/bin/python - "$first" "$replicas" "$supervisord" <<'PY'
import os, sys, time, urllib.request
first, count, supervisord = (int(a) for a in sys.argv[1:])
for port in range(first, first + count):
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            break
        except OSError:
            try:
                os.kill(supervisord, 0)
            except OSError:
                sys.exit("supervisord stopped: see logs/supervisord.log")
            time.sleep(0.2)
PY
.venv/bin/supervisorctl -c "$conf" start nginx >/dev/null
echo "Open http://<this machine's address>:$port/ (logs in $run/logs)" >&2
wait "$supervisord"
