#!/usr/bin/env bash
# `make console`: the support team's console (components/console) on CONSOLE_PORT
# (default 8800), over TRACKER_STORE_URL (default sqlite:///var/tracker.db).
# With no console user yet and a terminal, it first asks for a team lead's name and
# password (stored Argon2-hashed in var/console_users.json).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
users=${CONSOLE_USERS_FILE:-var/console_users.json}
if [ ! -s "$users" ] && [ -z "${CONSOLE_USERS:-}" ]; then
  if [ -t 0 ]; then
    echo "No console user yet: create the first team lead."
    read -r -p "Lead's user name: " name
    "$BIN/python" -m components.console add-user "$name" --role lead
  else
    echo "error: no console user; run: $BIN/python -m components.console add-user NAME --role lead" >&2
    exit 1
  fi
fi
exec "$BIN/python" -m components.console serve --port "${CONSOLE_PORT:-8800}"
