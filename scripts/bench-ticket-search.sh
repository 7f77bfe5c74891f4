#!/usr/bin/env bash
# The console's ticket search (issue 16) on an org with 100,000 tickets, on
# SQLite: the store's query (crates/store/src/ticket_search.rs) by code,
# order id, e-mail and phone, with its query plan, timed with and without the
# order-id index of migration 0020.
#
#   scripts/bench-ticket-search.sh [ENTRADA_BINARY]
#
# Needs sqlite3. Prints the plan and the median of 20 runs per search.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/entrada}
N=${N:-100000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DB="$WORK/bench.db"
"$BIN" migrate --db "$DB" >/dev/null
sqlite3 "$DB" <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO tickets (ticket_code, orq, order_id, purchase_email, customer_email, customer_phone)
SELECT printf('B-%07d', i), 1, i / 3, printf('buyer%d@example.com', i / 3),
       CASE WHEN i % 2 = 0 THEN printf('holder%d@example.com', i) END,
       CASE WHEN i % 2 = 0 THEN printf('+3460%07d', i) END
FROM n;
ANALYZE;
SQL

QUERY="SELECT ticket_code FROM tickets WHERE orq = 1 AND ( \
 ticket_code = :t OR (orq = 1 AND order_id = :o) \
 OR customer_email = :t COLLATE NOCASE OR purchase_email = :t COLLATE NOCASE \
 OR customer_phone = :p) AND (NULL IS NULL OR ticket_code > NULL) ORDER BY ticket_code LIMIT 100"

run() { # label text order phone
  local label=$1 t=$2 o=$3 p=$4
  local sql=".parameter set :t '$t'
.parameter set :o $o
.parameter set :p '$p'"
  if [ "${PLAN:-}" = 1 ]; then
    printf '%s\n%s\nEXPLAIN QUERY PLAN %s;\n' "$sql" "" "$QUERY" | sqlite3 "$DB" | sed 's/^/  plan: /'
  fi
  local times=()
  for _ in $(seq 1 20); do
    local s e
    s=$(date +%s%N)
    printf '%s\n%s;\n' "$sql" "$QUERY" | sqlite3 "$DB" >/dev/null
    e=$(date +%s%N)
    times+=($(((e - s) / 1000)))
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 10p)
  printf '%-28s median %6d µs (sqlite3 process included)\n' "$label" "$median"
}

searches() {
  run "code" "B-0050001" NULL NULL
  run "order id (3 tickets)" "4242" 4242 NULL
  run "e-mail, other case" "BUYER4242@example.com" NULL NULL
  run "phone" "+34600050000" NULL "+34600050000"
  run "no match" "nobody@example.com" NULL NULL
}

echo "== $N tickets, with idx_tickets_order"
PLAN=1 run "order id (plan)" "4242" 4242 NULL >/dev/null || true
PLAN=1 searches | grep -v '^  plan' || true
printf '.parameter set :t 4242\n.parameter set :o 4242\n.parameter set :p NULL\nEXPLAIN QUERY PLAN %s;\n' "$QUERY" | sqlite3 "$DB"
echo "== without idx_tickets_order"
sqlite3 "$DB" "DROP INDEX idx_tickets_order;"
searches
printf '.parameter set :t 4242\n.parameter set :o 4242\n.parameter set :p NULL\nEXPLAIN QUERY PLAN %s;\n' "$QUERY" | sqlite3 "$DB"
