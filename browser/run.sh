#!/usr/bin/env bash
# Browser tests of infrastream's pages, in Debian's chromium driven by puppeteer-core.
#
# Usage: browser/run.sh path/to/infrastream-binary
#
# Installs what it needs first, idempotently: the npm packages of browser/package-lock.json
# (npm ci, again whenever the lock file changes), and Debian's chromium package with apt-get
# when /usr/bin/chromium is missing (as root, or through sudo). puppeteer-core never downloads
# a browser.
#
# Then runs every browser/*.test.mjs (sorted) with node, one at a time: each is a script given
# the binary as its argument (also in BROWSER_TEST_BINARY) that starts its own server(s) and
# browser with browser/lib.mjs, lets the browser reach nothing but that server, and exits
# non-zero on failure. Its output goes to stderr; stdout gets "ok <name>" or
# "FAIL <name>: <reason>" per file and a last line "browser: N passed, M failed".
# Exit status 0 iff M == 0. Screenshots are in target/browser-screenshots/.
#
# Environment (optional): BROWSER_TESTS="graphiql console" runs only those files (names
# without .test.mjs); BROWSER_TEST_TIMEOUT seconds per file (default 300); CHROMIUM is the
# browser executable (default /usr/bin/chromium); RUST_LOG is passed through to the server.
# A test that overruns is sent SIGTERM (lib.mjs then stops its server and browser), SIGKILL
# 10 s later; the test running when this script is interrupted is stopped the same way.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -ne 1 ]]; then
  echo "usage: $0 path/to/infrastream-binary" >&2
  exit 2
fi
BIN="$1"
if [[ "$BIN" != /* ]]; then BIN="$PWD/$BIN"; fi
if [[ ! -x "$BIN" ]]; then
  echo "browser: $BIN is not an executable file" >&2
  echo "browser: 0 passed, 1 failed"
  exit 1
fi
TIMEOUT="${BROWSER_TEST_TIMEOUT:-300}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { echo "==> $*" >&2; }

# --- dependencies (idempotent) -------------------------------------------------------------
# npm ci whenever node_modules was not installed from the current package-lock.json (a stamp
# in node_modules holds the lock file's hash).
stamp="$HERE/node_modules/.browser-lock-sha256"
want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "npm ci in $HERE"
  (cd "$HERE" && npm ci --no-audit --no-fund --silent)
  echo "$want" >"$stamp"
fi

if [[ ! -x "$CHROMIUM" ]]; then
  if [[ "$CHROMIUM" != /usr/bin/chromium ]]; then
    echo "browser: CHROMIUM=$CHROMIUM is not an executable file" >&2
    echo "browser: 0 passed, 1 failed"
    exit 1
  fi
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then SUDO=(sudo -n); fi
  log "installing Debian's chromium with apt-get"
  "${SUDO[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    chromium >&2
fi
log "$("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"

# --- tests ---------------------------------------------------------------------------------
TEST_PID=""
OUT=""
cleanup() {
  local rc=$?
  if [[ -n "$TEST_PID" ]] && kill -0 "$TEST_PID" 2>/dev/null; then
    kill -TERM "$TEST_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$TEST_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$TEST_PID" 2>/dev/null || true
    wait "$TEST_PID" 2>/dev/null || true
  fi
  if [[ -n "$OUT" ]]; then rm -f "$OUT"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

files=()
if [[ -n "${BROWSER_TESTS:-}" ]]; then
  for name in $BROWSER_TESTS; do files+=("$HERE/$name.test.mjs"); done
else
  shopt -s nullglob
  files=("$HERE"/*.test.mjs)
  shopt -u nullglob
fi

OUT="$(mktemp -t infrastream-browser-out.XXXXXX)"
passed=0
failed=0
for file in "${files[@]}"; do
  name="$(basename "$file" .test.mjs)"
  if [[ ! -f "$file" ]]; then
    echo "FAIL $name: no such test file $file"
    failed=$((failed + 1))
    continue
  fi
  log "test $name"
  : >"$OUT"
  # The test's output goes to stderr as it runs, and to $OUT for the failure reason.
  BROWSER_TEST_BINARY="$BIN" timeout -k 10 "$TIMEOUT" node "$file" "$BIN" \
    > >(tee -a "$OUT" >&2) 2>&1 &
  TEST_PID=$!
  rc=0
  wait "$TEST_PID" || rc=$?
  TEST_PID=""
  sleep 0.1 # let tee flush
  if [[ $rc -eq 0 ]]; then
    echo "ok $name"
    passed=$((passed + 1))
  else
    if [[ $rc -eq 124 ]]; then
      reason="timed out after ${TIMEOUT} s"
    else
      reason="$(grep -E '^\s*(FAIL|Error|AssertionError|TimeoutError)' "$OUT" | head -1 | sed -E 's/^\s+//' || true)"
      if [[ -z "$reason" ]]; then reason="$(grep -v '^\s*$' "$OUT" | tail -1 || true)"; fi
      reason="${reason#FAIL $name: }"
      reason="${reason:-exit status $rc}"
    fi
    echo "FAIL $name: ${reason:0:300}"
    failed=$((failed + 1))
  fi
done

if [[ ${#files[@]} -eq 0 ]]; then log "no browser/*.test.mjs found"; fi
echo "browser: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
