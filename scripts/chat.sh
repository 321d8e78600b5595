#!/usr/bin/env bash
# Starts the action server in the background, waits until it answers, then
# opens `rasa shell`, its log in var/shell.log. Leaving the shell (/stop or Ctrl-C)
# stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/kestrel.tar.gz}
BIN=${VENV:-.venv}/bin
mkdir -p var

"$BIN/rasa" run actions --port 5055 >var/actions.log 2>&1 &
actions_pid=$!
trap 'kill $actions_pid 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 60); do
  if "$BIN/python" -c "import urllib.request as u; u.urlopen('http://localhost:5055/health', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 $actions_pid 2>/dev/null; then
    echo "error: the action server did not start; see var/actions.log" >&2
    exit 1
  fi
  sleep 1
done

echo "Action server up (log: var/actions.log). Loading the assistant, about 1-2 minutes"
echo "on 2 cores (Rasa's own log: var/shell.log)."
# Rasa's warnings and INFO lines go to var/shell.log; progress, errors and the
# start-up time reach the terminal (scripts/terminal_log.py).
"$BIN/rasa" shell --model "$MODEL" --endpoints endpoints.yml \
  2> >("$BIN/python" scripts/terminal_log.py var/shell.log "$(date +%s)" >&2)
