#!/usr/bin/env bash
# Starts the action server, `rasa run` (REST, socket.io, Slack, HTTP API) and the
# web chat page (webchat/, with the help center's pages in webchat/help/ that
# `make help-pages` builds), waits until all answer, prints the URLs, and stops all
# of them on Ctrl-C.
#   RASA_AUTH_TOKEN  required: the token Rasa's HTTP API asks for (?token=...)
#   CORS_ORIGINS     browser origins allowed on the HTTP API, space-separated
#                    (default: the web chat page's origin)
#   PORT             Rasa's port (default 5005)
#   WEBCHAT_PORT     the web chat page's port (default 8080)
#   CONSOLE_PORT     the support team's console (default 8800); it starts once a user
#                    exists (python -m components.console add-user NAME --role lead)
#   WEBCHAT_SESSION_SECRET  signs the web chat's session tokens; unset: a random one per
#                    start, so sessions resume only until the server restarts
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/kestrel.tar.gz}
BIN=${VENV:-.venv}/bin
PORT=${PORT:-5005}
WEBCHAT_PORT=${WEBCHAT_PORT:-8080}
CONSOLE_PORT=${CONSOLE_PORT:-8800}
if [ -z "${RASA_AUTH_TOKEN:-}" ]; then
  echo "error: set RASA_AUTH_TOKEN (a long random string) first; Rasa's HTTP API refuses" \
       "requests without it. For example: export RASA_AUTH_TOKEN=\$(openssl rand -hex 24)" >&2
  exit 1
fi
read -r -a origins <<<"${CORS_ORIGINS:-http://localhost:$WEBCHAT_PORT}"
mkdir -p var

"$BIN/rasa" run actions --port 5055 >var/actions.log 2>&1 &
actions_pid=$!
"$BIN/rasa" run --model "$MODEL" --port "$PORT" --endpoints endpoints.yml \
  --credentials credentials.yml --enable-api --auth-token "$RASA_AUTH_TOKEN" \
  --cors "${origins[@]}" >var/rasa.log 2>&1 &
rasa_pid=$!
# The page is static files; any web server will do in production (README, "Web chat").
"$BIN/python" -m http.server "$WEBCHAT_PORT" --directory webchat >var/webchat.log 2>&1 &
page_pid=$!
"$BIN/python" -m components.console serve --port "$CONSOLE_PORT" >var/console.log 2>&1 &
console_pid=$!
trap 'kill $actions_pid $rasa_pid $page_pid $console_pid 2>/dev/null || true; wait 2>/dev/null; echo "Stopped."' EXIT
trap 'exit 0' INT TERM

wait_for() {  # url, pid, log, seconds
  for _ in $(seq 1 "$4"); do
    if "$BIN/python" -c "import urllib.request as u; u.urlopen('$1', timeout=1)" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "error: a server did not start; see $3" >&2
      exit 1
    fi
    sleep 1
  done
  echo "error: $1 did not answer in $4 s; see $3" >&2
  exit 1
}
wait_for http://localhost:5055/health $actions_pid var/actions.log 120
wait_for "http://localhost:$WEBCHAT_PORT/index.html" $page_pid var/webchat.log 30
wait_for "http://localhost:$PORT/" $rasa_pid var/rasa.log 300

echo "Kestrel assistant is up (logs: var/rasa.log, var/actions.log). Ctrl-C stops it."
echo "  Web chat:      http://localhost:$WEBCHAT_PORT/?server=http://localhost:$PORT"
if [ -f webchat/help/index.html ]; then
  echo "  Help center:   http://localhost:$WEBCHAT_PORT/help/"
else
  echo "  Help center:   not built (make help-pages); citations link to nothing"
fi
echo "  REST:     POST http://localhost:$PORT/webhooks/rest/webhook"
echo "  socket.io:     http://localhost:$PORT/socket.io"
if kill -0 $console_pid 2>/dev/null; then
  echo "  Console:       http://localhost:$CONSOLE_PORT/ (log: var/console.log)"
else
  echo "  Console:       not started: $(tail -n 1 var/console.log)"
fi
echo "  HTTP API:      http://localhost:$PORT/status?token=\$RASA_AUTH_TOKEN"
wait $rasa_pid
