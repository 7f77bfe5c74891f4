#!/usr/bin/env bash
# The kiosk (entrada-desktop) in a fleet update, real processes on 127.0.0.1
# under Xvfb (issue 20):
#
#   tests/desktop/kiosk-update.sh [ENTRADA_BIN] [DESKTOP_BIN]
#
# An `entrada serve --updates-dir`, a paired entrada-desktop started with
# --app-dir (so it is its own launcher) and no operator signed in (the screen
# is locked: a quiet moment). Checks: the app reports healthy to its launcher
# after its first sync round and its version to the server; a newer version
# (N+1, signed with the development key; its payload a script that runs this
# build, padded past 2 MiB) is downloaded, installed at once (locked screen),
# the launcher restarts into it, and the server lists N+1 as installed.
# Prints "kiosk-update: N passed, M failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
BIN=$(realpath "${1:-$target/debug/entrada}")
APP=$(realpath "${2:-$target/debug/entrada-desktop}")
work=$(mktemp -d "${TMPDIR:-/tmp}/kiosk-update.XXXXXX")
pids=()
# Each started in its own session (setsid): the group holds xvfb-run, Xvfb,
# the launcher and the app, all stopped by their group's id.
cleanup() { for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
passed=0 failed=0
check() { local what=$1; shift; if "$@"; then echo "ok: $what"; passed=$((passed + 1)); else echo "FAILED: $what" >&2; failed=$((failed + 1)); fi; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

SDB=$work/server.db
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$port
ADMIN=$("$BIN" token create --db "$SDB" --orq 1 --role admin)
VENUE=$("$BIN" venue add --db "$SDB" --orq 1 --name Museo --timezone UTC)
"$BIN" operator add --db "$SDB" --orq 1 --role operator --name Ana --pin 1234 >/dev/null
TOKEN=$("$BIN" device add --db "$SDB" --orq 1 --venue "$VENUE" --name "Kiosk 1")
mkdir -p "$work/updates" "$work/no-ui"
setsid "$BIN" serve --db "$SDB" --listen "127.0.0.1:$port" --ui-dir "$work/no-ui" --updates-dir "$work/updates" \
  > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "$URL/api/health" >/dev/null && break; sleep 0.2; done
n=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -1)
IFS=. read -r ma mi pa <<<"$n"
next="$ma.$mi.$((pa + 1))"
device() { curl -fsS -H "Authorization: Bearer $ADMIN" "$URL/api/admin/devices" | json "[0]$1"; }

app_dir=$work/app
setsid xvfb-run -a env ENTRADA_LOG=info "$APP" --db "$work/gate.db" --server "$URL" --token "$TOKEN" --allow-http \
  --camera "folder:$work/no-ui" --app-dir "$app_dir" --update-every 0.5 --health-timeout 60 \
  > "$work/kiosk.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [[ -s $app_dir/healthy ]] && break; sleep 0.2; done
check "the kiosk told its launcher it is healthy (after a sync round): $(cat "$app_dir/healthy" 2>/dev/null)" \
  test "$(cat "$app_dir/healthy" 2>/dev/null)" = "$n"
for _ in $(seq 100); do [[ $(device ".get('app_version')" 2>/dev/null) == "$n" ]] && break; sleep 0.2; done
check "the server lists the kiosk's version $n" test "$(device ".get('app_version')")" = "$n"

{ printf '#!/bin/sh\nexec %q "$@"\n# ' "$APP"; head -c $((3 * 1024 * 1024)) /dev/zero | tr '\0' x; echo; } > "$work/payload"
"$BIN" update sign --key "$root/tests/fixtures/update/dev-release.key" --version "$next" --out "$work/b.entupd" "$work/payload"
"$BIN" update publish --dir "$work/updates" "$work/b.entupd" >/dev/null
for _ in $(seq 300); do
  [[ $(device ".get('app_version')" 2>/dev/null) == "$next" && $(device "['last_update']['state']" 2>/dev/null) == installed ]] && break
  sleep 0.2
done
check "the kiosk installed $next (screen locked), restarted into it and reported it installed" \
  test "$(device ".get('app_version')"):$(device "['last_update']['state']" 2>/dev/null)" = "$next:installed"
check "current -> versions/$next, the payload whole" \
  cmp -s "$app_dir/current/entrada-desktop" "$work/payload"
if ((failed > 0)); then tail -30 "$work/kiosk.log" >&2; fi
echo "kiosk-update: $passed passed, $failed failed"
((failed == 0))
