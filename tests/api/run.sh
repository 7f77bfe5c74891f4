#!/usr/bin/env bash
# Newman contract suite against a freshly started `entrada serve`.
#   bash tests/api/run.sh [ENTRADA_BINARY]
# With NEWMAN_PG=postgres://USER:PW@HOST:PORT/DB the server runs on fresh
# PostgreSQL databases made (and dropped) on that server instead of SQLite files.
# Without an argument the binary is built with `cargo build -p entrada`
# (into $CARGO_TARGET_DIR when set). Reports go to $ARTIFACTS_DIR/newman when
# ARTIFACTS_DIR is set, otherwise to a temporary directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [[ $# -ge 1 ]]; then
  BIN="$1"
else
  (cd "$ROOT" && cargo build -q -p entrada)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/entrada"
fi
[[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
[[ -x "$BIN" ]] || { echo "run.sh: no executable entrada at $BIN" >&2; exit 2; }

if [[ ! -x "$HERE/node_modules/.bin/newman" ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi
NEWMAN="$HERE/node_modules/.bin/newman"

# The committed collections must match their generator.
node "$HERE/gen-collection.js" --check

WORK="$(mktemp -d "${TMPDIR:-/tmp}/entrada-newman.XXXXXX")"
if [[ -n "${ARTIFACTS_DIR:-}" ]]; then
  REPORTS="$ARTIFACTS_DIR/newman"
else
  REPORTS="$(mktemp -d "${TMPDIR:-/tmp}/entrada-newman-reports.XXXXXX")"
fi
mkdir -p "$REPORTS"

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  # Kept, like the files, when something failed.
  if [[ -n "${NEWMAN_PG:-}" && -z "${KEEP_WORK:-}" && "${STATUS:-1}" == 0 ]]; then drop_pg_dbs; fi
  # The databases and server logs are kept only when something failed.
  if [[ -z "${KEEP_WORK:-}" && "${STATUS:-1}" == 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# start_server DB LOOKUPS_PER_MINUTE -> sets SERVER_PID, BASE_URL
start_server() {
  local db="$1" lpm="$2" port log
  port="$(free_port)"
  log="$WORK/server-$(basename "${db%%\?*}" .db).log"
  ENTRADA_LOG=warn "$BIN" serve --db "$db" --listen "127.0.0.1:$port" \
    --lookups-per-minute "$lpm" --ui-dir "$WORK/no-ui" >"$log" 2>&1 &
  SERVER_PID=$!
  BASE_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$BASE_URL/api/health" 2>/dev/null; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "run.sh: entrada serve did not become ready; its log:" >&2
  cat "$log" >&2
  exit 1
}

token() { "$BIN" token create --db "$1" "${@:2}"; }

# The databases: SQLite files, or with NEWMAN_PG=postgres://…/any (issue 13)
# fresh PostgreSQL databases on that server, dropped again at exit.
new_db() {
  if [[ -z "${NEWMAN_PG:-}" ]]; then
    echo "$WORK/$1.db"
    return
  fi
  local name="newman_$1_$$"
  psql -X -q -v ON_ERROR_STOP=1 "$NEWMAN_PG" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null ||
    { echo "run.sh: cannot make database $name on NEWMAN_PG" >&2; exit 1; }
  echo "${NEWMAN_PG%/*}/$name"
}
drop_pg_dbs() {
  for name in newman_contract_$$ newman_ratelimit_$$; do
    psql -q "$NEWMAN_PG" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  done
}

# ---------------------------------------------------------------- phase 1
DB1="$(new_db contract)" || exit 1
GATE_VENUE="$("$BIN" venue add --db "$DB1" --orq 1 --name "Gate venue (UTC)" --timezone UTC)"
GATE_OP="$("$BIN" operator add --db "$DB1" --orq 1 --role operator --name "Gate 1" --pin 1357)"
ENV_ARGS=(
  --env-var "gate_venue_id=$GATE_VENUE"
  --env-var "gate_operator_id=$GATE_OP"
  --env-var "tok_admin1=$(token "$DB1" --orq 1 --role admin)"
  --env-var "tok_sup1=$(token "$DB1" --orq 1 --role supervisor)"
  --env-var "tok_op1=$(token "$DB1" --orq 1 --role operator --user-id "$GATE_OP" --venue "$GATE_VENUE")"
  --env-var "tok_cust1=$(token "$DB1" --orq 1 --role customer --user-id 1)"
  --env-var "tok_cust2=$(token "$DB1" --orq 1 --role customer --user-id 2)"
  --env-var "tok_admin2=$(token "$DB1" --orq 2 --role admin)"
  --env-var "tok_o2cust=$(token "$DB1" --orq 2 --role customer --user-id 1)"
)
REVOKED="$(token "$DB1" --orq 1 --role customer --user-id 1)"
"$BIN" token revoke --db "$DB1" "$REVOKED" 2>/dev/null
ENV_ARGS+=(--env-var "tok_revoked=$REVOKED")
ENV_ARGS+=(--env-var "console_link=$("$BIN" admin link --db "$DB1" --orq 1 2>/dev/null | sed 's/.*link=//')")
start_server "$DB1" 0
STARTED=$(date +%s)
set +e
"$NEWMAN" run "$HERE/entrada.postman_collection.json" \
  --env-var "baseUrl=$BASE_URL" "${ENV_ARGS[@]}" \
  --reporters cli,junit,json \
  --reporter-junit-export "$REPORTS/contract.junit.xml" \
  --reporter-json-export "$REPORTS/contract.json" \
  --reporter-cli-no-console --color off
PHASE1=$?
set -e
stop_server

# ---------------------------------------------------------------- phase 2
DB2="$(new_db ratelimit)" || exit 1
RL_VENUE="$("$BIN" venue add --db "$DB2" --orq 1 --name "Rate venue" --timezone UTC)"
RL_OP="$("$BIN" operator add --db "$DB2" --orq 1 --role operator --name "Gate RL" --pin 2468)"
RL_ARGS=(
  --env-var "gate_operator_id=$RL_OP"
  --env-var "tok_op1=$(token "$DB2" --orq 1 --role operator --user-id "$RL_OP" --venue "$RL_VENUE")"
  --env-var "tok_sup1=$(token "$DB2" --orq 1 --role supervisor)"
)
start_server "$DB2" 5
set +e
"$NEWMAN" run "$HERE/rate-limit.postman_collection.json" \
  --env-var "baseUrl=$BASE_URL" "${RL_ARGS[@]}" \
  --reporters cli,junit,json \
  --reporter-junit-export "$REPORTS/rate-limit.junit.xml" \
  --reporter-json-export "$REPORTS/rate-limit.json" \
  --reporter-cli-no-console --color off
PHASE2=$?
set -e
stop_server

STATUS=0
[[ $PHASE1 == 0 && $PHASE2 == 0 ]] || STATUS=1
if [[ $STATUS != 0 ]]; then
  echo "run.sh: databases and server logs kept in $WORK${NEWMAN_PG:+ (and newman_contract_$$, newman_ratelimit_$$ on NEWMAN_PG)}" >&2
fi
echo "run.sh: $(( $(date +%s) - STARTED )) s against the servers; reports in $REPORTS"
node -e '
  let passed = 0, failed = 0, requests = 0;
  for (const f of process.argv.slice(1)) {
    try {
      const s = require(f).run.stats;
      passed += s.assertions.total - s.assertions.failed;
      failed += s.assertions.failed;
      requests += s.requests.total;
    } catch (e) { failed += 1; console.error(`no report ${f}: ${e.message}`); }
  }
  console.log(`run.sh: ${requests} requests in both phases`);
  console.log(`newman: ${passed} passed, ${failed} failed`);
' "$REPORTS/contract.json" "$REPORTS/rate-limit.json"
exit $STATUS
