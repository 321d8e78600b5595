#!/usr/bin/env bash
# Creates .venv with Rasa 3.6.21 on Python 3.11, reproducibly.
#
# Rasa 3.6.21 and rasa-sdk 3.6.2 declare Requires-Python <3.11, yet run on
# 3.11 (see the README's "Installing on Python 3.11"). So their dependencies
# come from requirements.txt first, then the two wheels alone with
# --no-deps --ignore-requires-python. The flag must never reach other
# packages: it makes pip pick releases that need Python 3.12.
#
# Idempotent: a stamp named after the hash of this script, requirements.txt
# and constraints.txt makes a second run a no-op. VENV overrides the folder.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
hash=$(cat requirements.txt constraints.txt scripts/install.sh | sha256sum | cut -c1-16)
stamp="$VENV/.installed-$hash"
if [ -f "$stamp" ]; then
  exit 0
fi

start=$(date +%s)
echo "Installing the environment into $VENV (a few minutes on a fresh machine)..."
if ! command -v "$PYTHON" >/dev/null; then
  echo "error: $PYTHON not found; this project needs CPython 3.11 (set PYTHON=...)." >&2
  exit 1
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# torch==2.13.0 is pinned exactly in requirements.txt: that spelling takes the
# CPU wheel on disk; anything else downloads several GB of CUDA packages.
# constraints.txt pins every transitive version, so pip resolves without backtracking.
"$VENV/bin/pip" install --progress-bar off -r requirements.txt -c constraints.txt
"$VENV/bin/pip" install --progress-bar off --no-deps --ignore-requires-python \
  rasa==3.6.21 rasa-sdk==3.6.2
"$VENV/bin/python" -c "import rasa, rasa_sdk, torch, transformers; \
print(f'rasa {rasa.__version__}, torch {torch.__version__}, transformers {transformers.__version__}')"
touch "$stamp"
echo "Environment ready in $(( $(date +%s) - start )) s."
