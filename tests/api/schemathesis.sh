#!/usr/bin/env bash
# Schemathesis (property-based fuzzing of the OpenAPI document) against a
# freshly started `entrada serve --demo`, once with an admin token and once
# with a customer session's token. Every check (`--checks all`): no 5xx, every
# status and body documented, invalid input refused, valid input accepted.
#   bash tests/api/schemathesis.sh [ENTRADA_BINARY]
# Without an argument the binary is built with `cargo build -p entrada`.
# The venv (tests/api/.venv, pinned schemathesis from PyPI) is made on first
# use. Reports go to $ARTIFACTS_DIR/schemathesis when ARTIFACTS_DIR is set.
# SCHEMATHESIS_MAX_EXAMPLES (default 10) bounds the cases per operation and
# phase; the seed is fixed so a run can be repeated.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCHEMATHESIS_VERSION=4.32.5
SEED="${SCHEMATHESIS_SEED:-20261130}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-10}"

if [[ $# -ge 1 ]]; then
  BIN="$1"
else
  (cd "$ROOT" && cargo build -q -p entrada)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/entrada"
fi
[[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
[[ -x "$BIN" ]] || { echo "schemathesis.sh: no executable entrada at $BIN" >&2; exit 2; }

VENV="$HERE/.venv"
ST="$VENV/bin/schemathesis"
if [[ ! -x "$ST" ]] || ! "$ST" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/entrada-schemathesis.XXXXXX")"
if [[ -n "${ARTIFACTS_DIR:-}" ]]; then
  REPORTS="$ARTIFACTS_DIR/schemathesis"
else
  REPORTS="$WORK/reports"
fi
mkdir -p "$REPORTS"
REPORTS="$(cd "$REPORTS" && pwd)"

SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -z "${KEEP_WORK:-}" && "${STATUS:-1}" == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
BASE_URL="http://127.0.0.1:$PORT"
DB="$WORK/schemathesis.db"
# No lookup limit: the fuzzer sends thousands of look-ups from one address.
ENTRADA_LOG=warn "$BIN" serve --demo --db "$DB" --listen "127.0.0.1:$PORT" \
  --lookups-per-minute 0 --ui-dir "$WORK/no-ui" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 1 300); do
  if curl -fsS -o /dev/null "$BASE_URL/api/health" 2>/dev/null; then ready=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.2
done
if [[ $ready != 1 ]]; then
  echo "schemathesis.sh: entrada serve did not become ready; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi

ADMIN_TOKEN="$("$BIN" token create --db "$DB" --orq 1 --role admin)"
CUSTOMER_TOKEN="$(curl -fsS -X POST "$BASE_URL/api/customer/session" \
  -H 'Content-Type: application/json' \
  -d '{"ticket_code":"DEMO-ACTIVE","email":"visitor@example.com"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"

# run NAME TOKEN [extra schemathesis options...]
run() {
  local name="$1" token="$2"
  shift 2
  echo "schemathesis.sh: --- $name token ---"
  set +e
  PYTHONPATH="$HERE" SCHEMATHESIS_HOOKS=schemathesis_hooks "$ST" --config-file "$HERE/schemathesis.toml" run "$BASE_URL/api/openapi.json" \
    -H "Authorization: Bearer $token" \
    --checks all --seed "$SEED" --max-examples "$MAX_EXAMPLES" \
    --no-shrink --workers 2 --request-timeout 30 --no-color \
    --suppress-health-check all --warnings off \
    --report junit,ndjson --report-dir "$REPORTS" \
    --report-junit-path "$REPORTS/$name.junit.xml" \
    --report-ndjson-path "$REPORTS/$name.ndjson" \
    "$@" 2>&1 | tee "$WORK/$name.out"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

# Schemathesis keeps a cache in its working directory: not in the repository.
cd "$WORK"
STARTED=$(date +%s)
ADMIN_RC=0
CUSTOMER_RC=0
# The admin run leaves out the dashboard's event stream: a 200 is a stream that
# runs for 10 minutes (its statuses and refusals are checked by api_openapi and
# Newman; its shutdown by backend/tests/dashboard_shutdown.rs).
run admin "$ADMIN_TOKEN" --exclude-name "GET /api/admin/dashboard/stream" || ADMIN_RC=$?
# The customer run leaves out signing out (it would end its own session).
run customer "$CUSTOMER_TOKEN" --exclude-name "DELETE /api/customer/session" || CUSTOMER_RC=$?

if grep -qE 'panicked|request failed' "$WORK/server.log"; then
  echo "schemathesis.sh: the server logged errors:" >&2
  grep -E 'panicked|request failed' "$WORK/server.log" | head -20 >&2
  SERVER_ERRORS=1
else
  SERVER_ERRORS=0
fi

STATUS=0
[[ $ADMIN_RC == 0 && $CUSTOMER_RC == 0 && $SERVER_ERRORS == 0 ]] || STATUS=1
[[ $STATUS == 0 ]] || echo "schemathesis.sh: database, server log and outputs kept in $WORK" >&2
echo "schemathesis.sh: $(( $(date +%s) - STARTED )) s; schemathesis $SCHEMATHESIS_VERSION, seed $SEED, at most $MAX_EXAMPLES examples per operation and phase"
python3 - "$WORK/admin.out" "$WORK/customer.out" <<'EOF'
import re, sys
# Each run's summary: "API Operations: ... Tested: N" and "Test cases: N generated,
# N passed" or "N generated, N found M unique failures, K skipped".
ops = cases = failing = failures = 0
for out in sys.argv[1:]:
    text = open(out, encoding="utf-8", errors="replace").read()
    m = re.search(r"API Operations:.*?Tested: (\d+)", text, re.S)
    ops += int(m.group(1)) if m else 0
    m = re.search(r"Test cases:\s*(\d+) generated(.*)", text)
    if not m:
        failing += 1  # no summary: the run itself failed
        continue
    cases += int(m.group(1))
    f = re.search(r"(\d+) found (\d+) unique failures", m.group(2))
    if f:
        failing += int(f.group(1))
        failures += int(f.group(2))
    e = re.search(r"(\d+) errored", m.group(2))
    if e:
        failing += int(e.group(1))
print(f"schemathesis.sh: {ops} operations tested, {cases} test cases generated, {failures} unique failures")
print(f"schemathesis: {cases - failing} passed, {failing} failed")
EOF
exit $STATUS
