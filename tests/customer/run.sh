#!/usr/bin/env bash
# Browser tests of the customer page against a real `entrada serve`.
#
#   tests/customer/run.sh [ENTRADA_BINARY]
#
# Builds the page (npm ci if needed, npm run build in ui/), starts the server
# on a fresh database and a free port, seeds an admin token (CLI) and a venue
# (admin API; each test adds its own slots and tickets through the admin API),
# runs the Playwright tests (playwright-core + Debian's Chromium) with
# `node --test`, and stops the server. Screenshots and perf.json go to
# ${ARTIFACTS_DIR:-/tmp/entrada-artifacts}/customer/.
# CUSTOMER_TEST_PATTERN=regex runs only the tests whose names match.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

# --- the server binary
BIN=${1:-}
if [ -z "$BIN" ]; then
  TARGET=${CARGO_TARGET_DIR:-target}
  case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
  BIN="$TARGET/debug/entrada"
  if [ ! -x "$BIN" ]; then
    echo "== building entrada (cargo build -p entrada)"
    cargo build -p entrada
  fi
fi
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
[ -x "$BIN" ] || { echo "no entrada binary at $BIN" >&2; exit 1; }

# --- Chromium (Debian's; Playwright cannot download browsers here)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
  echo "== installing chromium (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
export CHROMIUM

# --- the page
echo "== building ui/"
(
  cd ui
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/vite ] ||
    [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  npm run build --silent >/dev/null
)
# Everything the page downloads before the month view: index.html (the JS and
# CSS are inlined into it when self-contained) plus any separate JS/CSS files.
RAW=0
GZ=0
for f in ui/dist/index.html ui/dist/assets/*.js ui/dist/assets/*.css; do
  [ -e "$f" ] || continue
  RAW=$((RAW + $(wc -c <"$f")))
  GZ=$((GZ + $(gzip -9c "$f" | wc -c)))
done
echo "# customer page bundle (HTML + JS + CSS): ${RAW} B raw, ${GZ} B gzipped = $((GZ / 1024)) KB (target < 100 KB)"

# --- the server
ART="${ARTIFACTS_DIR:-/tmp/entrada-artifacts}/customer"
mkdir -p "$ART"
rm -f "$ART"/*.png
WORK=$(mktemp -d)
DB="$WORK/customer.db"
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
ADMIN=$("$BIN" token create --db "$DB" --orq 1 --role admin)
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
curl -fsS "$URL/" | grep -q '<main id="app"' || { echo "the server does not serve ui/dist at /" >&2; exit 1; }

VENUE_ID=$(curl -fsS -X POST "$URL/api/admin/venues" -H "Authorization: Bearer $ADMIN" \
  -H 'Content-Type: application/json' -d '{"name":"Test Museum","timezone":"Europe/Madrid"}' |
  node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s).id))")

echo "== customer page tests against $URL (screenshots: $ART)"
ENTRADA_URL="$URL" ENTRADA_ADMIN_TOKEN="$ADMIN" ENTRADA_VENUE_ID="$VENUE_ID" CUSTOMER_ARTIFACTS="$ART" \
  node --test --test-concurrency=1 --test-reporter=spec \
  ${CUSTOMER_TEST_PATTERN:+--test-name-pattern="$CUSTOMER_TEST_PATTERN"} tests/customer/customer.test.mjs
