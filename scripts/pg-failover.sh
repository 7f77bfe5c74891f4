#!/usr/bin/env bash
# The failover test (issue 13): a primary and a synchronous streaming standby
# on 127.0.0.1 (initdb via scripts/pg.sh, pg_basebackup), two `entrada serve`
# instances on one multi-host URL (target_session_attrs=read-write), under
# reservation + verification load (tests/failover/load.py); the primary is
# killed with SIGKILL, the standby promoted, and the instances must reconnect
# by themselves. Then every reservation and verification answered 2xx must be
# on the new primary. Prints the numbers; exits 1 if an acknowledged write
# was lost or service did not come back.
#
#   scripts/pg-failover.sh            (ENTRADA_BIN: the binary, default $CARGO_TARGET_DIR or target, debug)
#
# FAILOVER_SECONDS (load, default 20), FAILOVER_KILL_AT (default 6),
# FAILOVER_PROMOTE_AFTER (seconds between the kill and the promotion, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

bin_entrada=${ENTRADA_BIN:-${CARGO_TARGET_DIR:-target}/debug/entrada}
load_s=${FAILOVER_SECONDS:-20}
kill_at=${FAILOVER_KILL_AT:-6}
promote_after=${FAILOVER_PROMOTE_AFTER:-1}
[[ -x "$bin_entrada" ]] || { echo "pg-failover: no $bin_entrada (cargo build -p entrada)" >&2; exit 1; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_pg() {
  if [[ $(id -u) == 0 ]]; then su postgres -s /bin/bash -c "$(printf '%q ' "$@")"; else "$@"; fi
}
log() { echo "pg-failover: $*" >&2; }

parent=$(mktemp -d)
chmod 711 "$parent"
primary=$parent/primary
standby=$parent/standby
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  bash scripts/pg.sh destroy "$standby" >/dev/null 2>&1 || true
  bash scripts/pg.sh destroy "$primary" >/dev/null 2>&1 || true
  rm -rf "$parent"
}
trap cleanup EXIT

p1=$(free_port); p2=$(free_port)
bash scripts/pg.sh start "$primary" "$p1" >/dev/null
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pw=$(cat "$primary/entrada-password")
export PGPASSWORD=$pw
psql1() { "$pgbin/psql" -h 127.0.0.1 -p "$p1" -U postgres -d entrada -tAqc "$1"; }
psql2() { "$pgbin/psql" -h 127.0.0.1 -p "$p2" -U postgres -d entrada -tAqc "$1"; }

# The standby: a base backup streaming from the primary, synchronous.
mkdir -m 700 "$standby"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$standby"
# The password file (root's, 0600, in the data folder) stays out of the copy.
mv "$primary/entrada-password" "$parent/password"
as_pg env PGPASSWORD="$pw" "$pgbin/pg_basebackup" -h 127.0.0.1 -p "$p1" -U postgres \
  -D "$standby" -X stream -R -c fast 2> >(grep -v 'skipping special file' >&2)
mv "$parent/password" "$primary/entrada-password"
install -m 600 "$primary/entrada-password" "$standby/entrada-password"
conninfo="host=127.0.0.1 port=$p1 user=postgres password=$pw application_name=standby1"
as_pg bash -c "echo \"primary_conninfo = '$conninfo'\" >> '$standby/postgresql.auto.conf'"
bash scripts/pg.sh start "$standby" "$p2" >/dev/null
psql1 "ALTER SYSTEM SET synchronous_standby_names = 'standby1'" >/dev/null
psql1 "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
  [[ $(psql1 "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'") == sync ]] && break
  sleep 0.1
done
[[ $(psql1 "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'") == sync ]] \
  || { log "the standby is not synchronous"; exit 1; }
log "primary :$p1, synchronous standby :$p2"

url="postgres://postgres:$pw@127.0.0.1:$p1,127.0.0.1:$p2/entrada?target_session_attrs=read-write&connect_timeout=2"
export RUST_LOG=${RUST_LOG:-warn} RUST_BACKTRACE=0
"$bin_entrada" migrate --db "$url" 2>/dev/null
venue=$("$bin_entrada" venue add --db "$url" --orq 1 --name Failover --timezone UTC)
admin=$("$bin_entrada" operator add --db "$url" --orq 1 --role admin --name Desk)
token=$("$bin_entrada" token create --db "$url" --orq 1 --role admin --user-id "$admin")

bases=()
for _ in 1 2; do
  port=$(free_port)
  ENTRADA_LOOKUPS_PER_MINUTE=0 "$bin_entrada" serve --db "$url" --pool-size 4 \
    --listen "127.0.0.1:$port" --ui-dir "$parent" >"$parent/serve-$port.log" 2>&1 &
  pids+=($!)
  bases+=("http://127.0.0.1:$port")
done
for base in "${bases[@]}"; do
  for _ in $(seq 100); do curl -sf "$base/api/health" >/dev/null && break; sleep 0.1; done
done

auth=(-H "Authorization: Bearer $token" -H "Content-Type: application/json")
today=$(date -u +%Y-%m-%d)
slot=$(curl -sf "${auth[@]}" "${bases[0]}/api/operator/slots/create" \
  -d "{\"venue_id\": $venue, \"date\": \"$today\", \"start_time\": \"00:00\", \"end_time\": \"23:59\", \"total_capacity\": 100000}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tickets=6000
for batch in $(seq 0 1000 $((tickets - 1))); do
  python3 -c "import json; print(json.dumps([{'ticket_code': 'F-%05d' % i, 'activation_mode': 'immediate'} for i in range($batch, $batch + 1000)]))" \
    | curl -sf "${auth[@]}" "${bases[0]}/api/admin/tickets" -d @- >/dev/null
done
python3 - "$parent/setup.json" "$token" "$slot" "$tickets" "${bases[@]}" <<'PY'
import json, sys
out, token, slot, n, *bases = sys.argv[1:]
json.dump({"bases": bases, "token": token, "slot_id": slot, "workers": 8,
           "codes": ["F-%05d" % i for i in range(int(n))]}, open(out, "w"))
PY

log "load for ${load_s}s on ${bases[*]}; SIGKILL of the primary at ${kill_at}s, promotion ${promote_after}s later"
python3 tests/failover/load.py "$parent/setup.json" "$load_s" "$parent/answers.jsonl" &
load_pid=$!
sleep "$kill_at"
postmaster=$(head -1 "$primary/postmaster.pid")
kill_w=$(date +%s.%N)
kill -9 "$postmaster"
sleep "$promote_after"
as_pg "$pgbin/pg_ctl" -D "$standby" -w promote >/dev/null
promoted_w=$(date +%s.%N)
wait "$load_pid"

psql2 "SELECT ticket_id FROM ticket_reservations" >"$parent/reserved.txt"
psql2 "SELECT ticket_code FROM tickets WHERE verified_at IS NOT NULL" >"$parent/verified.txt"
python3 - "$parent" "$kill_w" "$promoted_w" <<'PY'
import collections, json, sys
d, kill_w, promoted_w = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = [json.loads(l) for l in open(f"{d}/answers.jsonl")]
reserved = set(open(f"{d}/reserved.txt").read().split())
verified = set(open(f"{d}/verified.txt").read().split())
ok = [r for r in rows if 200 <= r["status"] < 300]
acked = {op: {r["code"] for r in ok if r["op"] == op} for op in ("reserve", "verify")}
lost_r = acked["reserve"] - reserved
lost_v = acked["verify"] - verified
after = [r["w"] for r in ok if r["sent"] >= kill_w]
# From the kill to the first 2xx answer to a request sent after it.
outage = (min(after) - kill_w) if after else float("nan")
errors = collections.Counter(f'{r["op"]} {r["status"]} {r["error"]}' for r in rows if not 200 <= r["status"] < 300)
print(f"answered 2xx: {len(acked['reserve'])} reservations, {len(acked['verify'])} verifications "
      f"({len(after)} to requests sent after the kill)")
print(f"acknowledged writes lost: {len(lost_r)} reservations, {len(lost_v)} verifications")
print(f"without service: {outage:.2f} s (the kill to the first 2xx answer to a request sent after it; "
      f"promotion {promoted_w - kill_w:.2f} s after the kill)")
print("errors clients saw: " + (", ".join(f"{k}: {n}" for k, n in sorted(errors.items())) or "none"))
sys.exit(1 if lost_r or lost_v or not after else 0)
PY
