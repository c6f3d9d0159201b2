#!/usr/bin/env bash
# Installs what the webhook signature verifiers need, idempotently (the approach of
# conformance/run.sh): a Python virtualenv at conformance/webhooks/.venv with the pinned
# requirements.txt (the official `standardwebhooks` package), and `npm ci` in
# conformance/webhooks from package-lock.json (the official npm `standardwebhooks`).
# Each step is redone only when its pins changed (a stamp holds the pin file's hash).
# Fails (exit 1) when python3 or node/npm are missing.
# Called by crates/services/tests/webhook_signatures.rs; safe to run by hand.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
export PYTHONDONTWRITEBYTECODE=1

log() { echo "==> $*" >&2; }
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "webhooks conformance: '$1' is required but not installed" >&2
    exit 1
  fi
}
need python3
need node
need npm

# One setup at a time (several test processes may call this together).
exec 9>"$HERE/.setup.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

# --- Python: the official standardwebhooks package ------------------------------------------
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
stamp="$VENV/.conformance-requirements-sha256"
if [[ ! -x "$VENV/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    PY="$(command -v python3.11 || command -v python3)"
    log "creating virtualenv $VENV with $PY"
    "$PY" -m venv "$VENV"
  fi
  log "pip install -r $HERE/requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$want" >"$stamp"
fi

# --- Node: the official npm standardwebhooks package -----------------------------------------
want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
stamp="$HERE/node_modules/.conformance-lock-sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "npm ci in $HERE"
  (cd "$HERE" && npm ci --no-audit --no-fund --silent)
  echo "$want" >"$stamp"
fi
