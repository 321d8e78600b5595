#!/usr/bin/env bash
# Installs what the tests drive besides Python: Debian's chromium and
# chromium-driver (the browser test), tmux (the `rasa shell` test), nginx-light
# (the scale-out test's load balancer), and the web chat page's npm packages
# (socket.io-client; playwright-core for the browser test); then llama.cpp's server
# in .venv-llama (scripts/install_llama_server.sh; the test with a real inference server).
# Idempotent; apt-get runs only for what is missing, and needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v tmux >/dev/null || missing+=(tmux)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Without a fresh package index the install can fail on a new machine; update then.
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && \
         $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi
command -v node >/dev/null || { echo "error: node and npm are needed (Debian: nodejs npm)" >&2; exit 1; }
if [ ! -f webchat/node_modules/.package-lock.json ] || \
   [ webchat/package-lock.json -nt webchat/node_modules/.package-lock.json ]; then
  (cd webchat && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "Test tools ready: $(/usr/bin/chromium --version 2>/dev/null | head -1), tmux $(tmux -V | cut -d' ' -f2), nginx"
scripts/install_llama_server.sh
