#!/usr/bin/env bash
# Builds llama.cpp's server (llama-cpp-python[server]) into .venv-llama, with gguf
# and safetensors for scripts/gguf_export.py: what tests/test_llama_server_e2e.py
# serves the project's own generator with, over the OpenAI API the assistant's
# `nlg.server` speaks (README, "Use your own model").
#
# PyPI has llama-cpp-python only as source, so pip compiles llama.cpp: 464 s on
# 2 cores measured on 2026-12-03, once; pip keeps the built wheel in its cache.
# A venv of its own, because the server needs pydantic 2 and numpy 2.
# Idempotent: a stamp named after the hash of this script and its constraints.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LLAMA_VENV:-.venv-llama}
PYTHON=${PYTHON:-python3.11}
hash=$(cat scripts/llama_server_constraints.txt scripts/install_llama_server.sh | sha256sum | cut -c1-16)
stamp="$VENV/.installed-$hash"
if [ -f "$stamp" ]; then
  exit 0
fi
start=$(date +%s)
echo "Building llama.cpp's server into $VENV (about 8 min on 2 cores the first time)..."
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --progress-bar off -q -c scripts/llama_server_constraints.txt \
  "llama-cpp-python[server]" gguf safetensors
touch "$stamp"
echo "llama.cpp's server ready in $(( $(date +%s) - start )) s: $VENV/bin/python -m llama_cpp.server"
