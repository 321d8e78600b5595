#!/usr/bin/env bash
# Starts the action server in the background, waits until it answers, then
# opens `rasa shell`. Leaving the shell (/stop or Ctrl-C) stops both.
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

echo "Action server up (log: var/actions.log). Loading the assistant; type /stop to leave."
"$BIN/rasa" shell --model "$MODEL" --endpoints endpoints.yml
