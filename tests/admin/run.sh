#!/usr/bin/env bash
# Browser tests of the admin console against a real `entrada serve`.
#
#   tests/admin/run.sh [ENTRADA_BINARY]
#
# Builds ui/ (npm ci if needed), starts the server on a fresh database and a
# free port, and runs the Playwright tests (playwright-core + Debian's
# Chromium) with `node --test`. Each test prints its own one-time sign-in
# link with `entrada admin link` (ENTRADA_BIN, ENTRADA_DB). Screenshots go to
# ${ARTIFACTS_DIR:-/tmp/entrada-artifacts}/admin/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

BIN=${1:-}
if [ -z "$BIN" ]; then
  TARGET=${CARGO_TARGET_DIR:-target}
  case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
  BIN="$TARGET/debug/entrada"
  [ -x "$BIN" ] || cargo build -p entrada
fi
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
[ -x "$BIN" ] || { echo "no entrada binary at $BIN" >&2; exit 1; }

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "no Chromium at $CHROMIUM (apt-get install chromium)" >&2; exit 1; }
export CHROMIUM

echo "== building ui/"
(
  cd ui
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ] ||
    [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  npm run build --silent >/dev/null
)

ART="${ARTIFACTS_DIR:-/tmp/entrada-artifacts}/admin"
mkdir -p "$ART"
WORK=$(mktemp -d)
DB="$WORK/admin.db"
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
"$BIN" migrate --db "$DB" >/dev/null 2>&1
"$BIN" serve --db "$DB" --listen "127.0.0.1:$PORT" --ui-dir "$ROOT/ui/dist" >"$ART/server.log" 2>&1 &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fsS "$URL/api/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:" >&2; cat "$ART/server.log" >&2; exit 1; }
  sleep 0.1
done

echo "== admin console tests against $URL (screenshots: $ART)"
ENTRADA_URL="$URL" ENTRADA_BIN="$BIN" ENTRADA_DB="$DB" ADMIN_ARTIFACTS="$ART" \
  node --test --test-concurrency=1 --test-reporter=spec \
  ${ADMIN_TEST_PATTERN:+--test-name-pattern="$ADMIN_TEST_PATTERN"} tests/admin/admin.test.mjs \
  tests/admin/tickets.test.mjs tests/admin/staff.test.mjs tests/admin/gates.test.mjs \
  tests/admin/slots.test.mjs tests/admin/dashboard.test.mjs
