#!/usr/bin/env bash
# Third-party-client conformance of infrastream.
#
# Usage: conformance/run.sh [--tls] [--postgres] path/to/infrastream-binary
#
# Starts the binary on a free loopback port with a fresh data directory and a fresh admin API
# token, then runs these suites (each installs what it needs first, idempotently):
#   1. sdk             – conformance/sdk/test_sdk.py (pytest) with the real infrahub-sdk 1.23.x
#   2. graphql-http    – conformance/graphql-http/audit.mjs (graphql-http serverAudits; MUST
#                        failures fail the suite, SHOULD failures are reported as warnings)
#   3. gql-ws          – conformance/gql/test_gql_ws.py (pytest) with the Python gql 4.x
#                        WebsocketsTransport in its own virtualenv .venv-gql; cases: default
#                        (no subprotocols argument: gql offers graphql-ws, graphql-transport-ws),
#                        graphql-ws, graphql-transport-ws, both in each order. Asserts what was
#                        offered, what the server chose (the first offered one it speaks), that
#                        gql could read the choice, and what gql spoke.
#   4. node-ws         – conformance/node-ws/realtime.mjs, npm clients each in its default
#                        configuration first, then explicit variants: graphql-ws,
#                        subscriptions-transport-ws, @apollo/client with GraphQLWsLink and with
#                        the legacy WebSocketLink, @urql/core subscriptionExchange + graphql-ws
#   5. graphql-request – conformance/graphql-request/typed-variables.mjs: npm graphql-request
#                        over HTTP with typed variables named as in Infrahub
#                        (CoreGraphQLQueryCreateInput!, DeleteInput!, BranchDeleteInput!, a
#                        nullable EventSortOrder omitted, ...)
#   (3 and 4, per case: subscriptions to events(event_type:), events(branches:) and
#   query(name:) on one connection while events are caused over HTTP; exactly the matching
#   events must arrive, in order. Every case is named in the output: pytest -v ids, and
#   "ok   <case>" / "FAIL <case>: ..." lines from the node scripts.)
# A Rust client (the graphql-ws-client crate) is not here: it runs with cargo test, in
# crates/server/tests/graphql_ws_client.rs.
# The server is always stopped on exit; its log is printed if anything failed.
# Last line: "conformance: N passed, M failed" (N, M count suites). Exit status 0 iff M == 0.
#
# TLS (--tls, or CONFORMANCE_TLS=1): the same suites over https:// and wss://. The script makes
# a throwaway CA (EC P-256) and a server certificate for 127.0.0.1 and localhost signed by it
# (RSA key in PKCS#1, chain file = server certificate + CA) with the openssl CLI, starts the
# server with tls_cert/tls_key, and has every client trust the CA through its standard
# setting: NODE_EXTRA_CA_CERTS (Node: fetch, ws), SSL_CERT_FILE (Python's default SSL
# context: urllib, websockets under gql, httpx), INFRAHUB_TLS_CA_FILE (infrahub-sdk's
# tls_ca_file). INFRASTREAM_URL is then https://…; the suites derive wss:// from it.
#
# PostgreSQL (--postgres, or CONFORMANCE_POSTGRES=1): the server runs with store = postgres on a
# fresh database created in the cluster named by INFRASTREAM_TEST_DATABASE_URL (scripts/test
# starts one with scripts/postgres), instead of the embedded store.
#
# Environment (optional): CONFORMANCE_SUITES="sdk graphql-http gql-ws node-ws graphql-request"
# to run a subset, PYTEST_ADDOPTS for extra pytest flags (e.g. -k default), CONFORMANCE_CASES=text
# to run only the node-ws cases whose name contains text, RUST_LOG is passed through to the
# server, CONFORMANCE_TRACE=1 makes gql-ws (with PYTEST_ADDOPTS=-s) and node-ws print the
# WebSocket frames.
set -euo pipefail

TLS="${CONFORMANCE_TLS:-0}"
POSTGRES="${CONFORMANCE_POSTGRES:-0}"
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --tls) TLS=1 ;;
    --postgres) POSTGRES=1 ;;
    *) echo "conformance: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--tls] [--postgres] path/to/infrastream-binary" >&2
  exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$1"
if [[ "$BIN" != /* ]]; then BIN="$PWD/$BIN"; fi
if [[ ! -x "$BIN" ]]; then
  echo "conformance: $BIN is not an executable file" >&2
  echo "conformance: 0 passed, 1 failed"
  exit 1
fi

SUITES="${CONFORMANCE_SUITES:-sdk graphql-http gql-ws node-ws graphql-request}"
VENV="$HERE/.venv-sdk"
GQL_VENV="$HERE/.venv-gql" # gql and infrahub-sdk conflict: never share a virtualenv
NODE_DIR="$HERE/graphql-http"
NODE_WS_DIR="$HERE/node-ws"
GRAPHQL_REQUEST_DIR="$HERE/graphql-request"
export PYTHONDONTWRITEBYTECODE=1

log() { echo "==> $*" >&2; }

# --- dependencies (idempotent) -------------------------------------------------------------
if [[ " $SUITES " == *" sdk "* ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    PY="$(command -v python3.11 || command -v python3)"
    log "creating virtualenv $VENV with $PY"
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/sdk/requirements.txt"
fi
if [[ " $SUITES " == *" gql-ws "* ]]; then
  if [[ ! -x "$GQL_VENV/bin/python" ]]; then
    PY="$(command -v python3.11 || command -v python3)"
    log "creating virtualenv $GQL_VENV with $PY"
    "$PY" -m venv "$GQL_VENV"
  fi
  "$GQL_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/gql/requirements.txt"
fi
# npm ci whenever node_modules was not installed from the current package-lock.json (a stamp
# in node_modules holds the lock file's hash), so new or changed pins are picked up.
npm_ci() {
  local dir="$1" stamp="$1/node_modules/.conformance-lock-sha256" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
    echo "$want" >"$stamp"
  fi
}
if [[ " $SUITES " == *" graphql-http "* ]]; then npm_ci "$NODE_DIR"; fi
if [[ " $SUITES " == *" node-ws "* ]]; then npm_ci "$NODE_WS_DIR"; fi
if [[ " $SUITES " == *" graphql-request "* ]]; then npm_ci "$GRAPHQL_REQUEST_DIR"; fi

# --- server --------------------------------------------------------------------------------
PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
DATA_DIR="$(mktemp -d -t infrastream-conformance-data.XXXXXX)"
SERVER_LOG="$(mktemp -t infrastream-conformance-log.XXXXXX)"
TOKEN="$(python3 -c 'import secrets;print(secrets.token_hex(32))')"
URL="http://127.0.0.1:$PORT"
SERVER_PID=""
FAILED_ANY=0
TLS_DIR=""
SERVER_TLS_ARGS=()
CURL_TLS_ARGS=()

print_server_log() {
  echo "----- server log ($SERVER_LOG) -----" >&2
  cat "$SERVER_LOG" >&2 || true
  echo "----- end of server log -----" >&2
}

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "conformance: server did not exit within 5 s of SIGTERM, killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 || $FAILED_ANY -ne 0 ]]; then
    print_server_log
  fi
  rm -rf "$DATA_DIR"
  rm -f "$SERVER_LOG"
  if [[ -n "$TLS_DIR" ]]; then rm -rf "$TLS_DIR"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A throwaway CA and a certificate for 127.0.0.1/localhost signed by it, in $TLS_DIR.
make_certificates() {
  local dir="$1" ext="$1/server.ext"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=infrastream conformance CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
  openssl genrsa -traditional -out "$dir/server.key" 2048 2>/dev/null
  openssl req -new -key "$dir/server.key" -subj "/CN=127.0.0.1" -out "$dir/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" >"$ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$dir/server.pem" 2>/dev/null
  cat "$dir/server.pem" "$dir/ca.pem" >"$dir/chain.pem"
  chmod 600 "$dir/server.key" "$dir/ca.key"
}

if [[ "$TLS" == 1 ]]; then
  if ! command -v openssl >/dev/null; then
    echo "conformance: --tls needs the openssl command line tool to make a test certificate" \
      "(Debian: apt-get install openssl)" >&2
    echo "conformance: 0 passed, 1 failed"
    exit 1
  fi
  TLS_DIR="$(mktemp -d -t infrastream-conformance-tls.XXXXXX)"
  make_certificates "$TLS_DIR"
  URL="https://127.0.0.1:$PORT"
  SERVER_TLS_ARGS=(--set "tls_cert=$TLS_DIR/chain.pem" --set "tls_key=$TLS_DIR/server.key")
  CURL_TLS_ARGS=(--cacert "$TLS_DIR/ca.pem")
  export NODE_EXTRA_CA_CERTS="$TLS_DIR/ca.pem"
  export SSL_CERT_FILE="$TLS_DIR/ca.pem"
  export INFRAHUB_TLS_CA_FILE="$TLS_DIR/ca.pem"
  log "TLS: certificate for 127.0.0.1 signed by a throwaway CA ($TLS_DIR/ca.pem)"
fi

SERVER_STORE_ARGS=()
if [[ "$POSTGRES" == 1 ]]; then
  if [[ -z "${INFRASTREAM_TEST_DATABASE_URL:-}" ]]; then
    echo "conformance: --postgres needs INFRASTREAM_TEST_DATABASE_URL (scripts/postgres start DIR prints one)" >&2
    echo "conformance: 0 passed, 1 failed"
    exit 1
  fi
  DB_NAME="conformance_$(python3 -c 'import uuid;print(uuid.uuid4().hex)')"
  psql "$INFRASTREAM_TEST_DATABASE_URL" -qc "CREATE DATABASE $DB_NAME" >&2
  SERVER_STORE_ARGS=(--set store=postgres --set "database_url=${INFRASTREAM_TEST_DATABASE_URL%/*}/$DB_NAME")
  log "PostgreSQL: database $DB_NAME"
fi

log "starting $BIN serve --listen 127.0.0.1:$PORT --data-dir $DATA_DIR ${SERVER_TLS_ARGS[*]} ${SERVER_STORE_ARGS[*]}"
INFRASTREAM_INITIAL_ADMIN_TOKEN="$TOKEN" "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA_DIR" \
  "${SERVER_TLS_ARGS[@]}" "${SERVER_STORE_ARGS[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + 30))
until [[ "$(curl -s "${CURL_TLS_ARGS[@]}" -o /dev/null -w '%{http_code}' --max-time 2 "$URL/health" 2>/dev/null || true)" == "200" ]]; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "conformance: the server exited before answering GET /health" >&2
    FAILED_ANY=1
    echo "conformance: 0 passed, $(wc -w <<<"$SUITES") failed"
    exit 1
  fi
  if (( SECONDS >= deadline )); then
    echo "conformance: GET $URL/health did not return 200 within 30 s" >&2
    FAILED_ANY=1
    echo "conformance: 0 passed, $(wc -w <<<"$SUITES") failed"
    exit 1
  fi
  sleep 0.2
done
log "server is up at $URL (pid $SERVER_PID)"

# --- suites --------------------------------------------------------------------------------
export INFRASTREAM_URL="$URL"
export INFRASTREAM_TOKEN="$TOKEN"
passed=0
failed=0
results=()

run_suite() {
  local name="$1"
  shift
  log "suite $name"
  if "$@"; then
    passed=$((passed + 1))
    results+=("PASS $name")
  else
    failed=$((failed + 1))
    results+=("FAIL $name")
    FAILED_ANY=1
  fi
}

for suite in $SUITES; do
  case "$suite" in
    sdk)
      run_suite sdk "$VENV/bin/python" -m pytest -v -c "$HERE/sdk/pytest.ini" --rootdir "$HERE/sdk" \
        "$HERE/sdk/test_sdk.py"
      ;;
    graphql-http)
      run_suite graphql-http node "$NODE_DIR/audit.mjs"
      ;;
    gql-ws)
      run_suite gql-ws "$GQL_VENV/bin/python" -m pytest -v -c "$HERE/gql/pytest.ini" --rootdir "$HERE/gql" \
        "$HERE/gql/test_gql_ws.py"
      ;;
    node-ws)
      run_suite node-ws node "$NODE_WS_DIR/realtime.mjs"
      ;;
    graphql-request)
      run_suite graphql-request node "$GRAPHQL_REQUEST_DIR/typed-variables.mjs"
      ;;
    *)
      echo "conformance: unknown suite '$suite'" >&2
      failed=$((failed + 1))
      results+=("FAIL $suite (unknown suite)")
      FAILED_ANY=1
      ;;
  esac
done

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "conformance: the server died during the run" >&2
  FAILED_ANY=1
  failed=$((failed + 1))
  results+=("FAIL server stayed up")
fi

echo
for r in "${results[@]}"; do echo "  $r"; done
if [[ "$TLS" == 1 ]]; then echo "  (over TLS: $URL)"; fi
if [[ "$POSTGRES" == 1 ]]; then echo "  (store: PostgreSQL)"; fi
echo "conformance: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
