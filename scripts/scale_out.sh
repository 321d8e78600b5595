#!/usr/bin/env bash
# The scale-out topology on one machine (README, "Scale-out"): the action server,
# REPLICAS `rasa run` processes sharing PostgreSQL, Redis and RabbitMQ
# (deploy/endpoints.production.yml), and nginx in front of them. Waits until all
# answer, prints the URL, stops everything on Ctrl-C.
#   RASA_AUTH_TOKEN   required, as for `make serve`
#   TRACKER_STORE_URL default postgresql://postgres@127.0.0.1:5432/test
#   REDIS_* RABBITMQ_* defaults: the local services (see deploy/endpoints.production.yml)
#   WEBCHAT_SESSION_SECRET  signs web chat session tokens (default: a random one per start)
#   REPLICAS          Rasa servers (default 2), on ports 5006, 5007, ...
#   PORT              nginx's port (default 5005)
#   CONSOLE_PORT      the support team's console over the same tracker store (default
#                     8800; one instance; starts once a console user exists)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/kestrel.tar.gz}
BIN=${VENV:-.venv}/bin
REPLICAS=${REPLICAS:-2}
PORT=${PORT:-5005}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
if [ -z "${RASA_AUTH_TOKEN:-}" ]; then
  echo "error: set RASA_AUTH_TOKEN first (see make serve)." >&2; exit 1
fi
[ -x "$NGINX" ] || { echo "error: nginx not found; install Debian's nginx-light." >&2; exit 1; }
export TRACKER_STORE_URL=${TRACKER_STORE_URL:-postgresql://postgres@127.0.0.1:5432/test}
export ACTION_SERVER_URL=${ACTION_SERVER_URL:-http://127.0.0.1:5055/webhook}
export REDIS_HOST=${REDIS_HOST:-127.0.0.1} REDIS_PORT=${REDIS_PORT:-6379}
export REDIS_DB=${REDIS_DB:-0} REDIS_PASSWORD=${REDIS_PASSWORD:-}
# Slack deliveries of one event_id, whichever replica they reach, are handled once.
export SLACK_DEDUPE_URL=${SLACK_DEDUPE_URL:-redis://${REDIS_PASSWORD:+:$REDIS_PASSWORD@}$REDIS_HOST:$REDIS_PORT/$REDIS_DB}
# One web chat session secret for every replica: a session resumes on any of them.
export WEBCHAT_SESSION_SECRET=${WEBCHAT_SESSION_SECRET:-$("$BIN/python" -c 'import secrets; print(secrets.token_hex(32))')}
export RABBITMQ_HOST=${RABBITMQ_HOST:-127.0.0.1} RABBITMQ_USER=${RABBITMQ_USER:-guest}
export RABBITMQ_PASSWORD=${RABBITMQ_PASSWORD:-guest}
var=$(pwd)/var/scale-out
mkdir -p "$var"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; echo "Stopped."' EXIT
trap 'exit 0' INT TERM

"$BIN/rasa" run actions --port 5055 >"$var/actions.log" 2>&1 &
pids+=($!)
upstreams=""
for i in $(seq 1 "$REPLICAS"); do
  port=$((5005 + i))
  "$BIN/rasa" run --model "$MODEL" --port "$port" --endpoints deploy/endpoints.production.yml \
    --credentials credentials.yml --enable-api --auth-token "$RASA_AUTH_TOKEN" \
    >"$var/rasa-$port.log" 2>&1 &
  pids+=($!)
  upstreams+="server 127.0.0.1:$port; "
done
sed -e "s|@VAR@|$var|g" -e "s|@PORT@|$PORT|g" -e "s|@UPSTREAMS@|$upstreams|g" \
  deploy/nginx.conf.template >"$var/nginx.conf"
"$NGINX" -p "$var" -c "$var/nginx.conf" &
pids+=($!)
"$BIN/python" -m components.console serve --port "${CONSOLE_PORT:-8800}" >"$var/console.log" 2>&1 &
console_pid=$!
pids+=($console_pid)

wait_for() {  # url, seconds
  for _ in $(seq 1 "$2"); do
    "$BIN/python" -c "import urllib.request as u; u.urlopen('$1', timeout=1)" 2>/dev/null && return 0
    sleep 1
  done
  echo "error: $1 did not answer in $2 s; see $var/*.log" >&2; exit 1
}
wait_for http://127.0.0.1:5055/health 120
for i in $(seq 1 "$REPLICAS"); do wait_for "http://127.0.0.1:$((5005 + i))/" 300; done
wait_for "http://127.0.0.1:$PORT/" 30
echo "Kestrel scale-out is up: nginx on http://localhost:$PORT -> $REPLICAS Rasa servers"
echo "  (tracker store $TRACKER_STORE_URL, Redis lock store, RabbitMQ queue kestrel_events)."
if kill -0 "$console_pid" 2>/dev/null; then
  echo "  Console: http://localhost:${CONSOLE_PORT:-8800}/ (one instance, same tracker store)."
else
  echo "  Console: not started: $(tail -n 1 "$var/console.log")"
fi
echo "  Logs: $var/. Ctrl-C stops everything."
wait
