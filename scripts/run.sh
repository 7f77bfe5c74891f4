#!/usr/bin/env bash
# The main job. With a display: the gate app (entrada-desktop) in standalone
# mode on the embedded demo data set. Without one: the server on a demo
# database at http://127.0.0.1:8080 (customer page at /, API under /api).
# Installs what it needs first. ENTRADA_RUN=server|desktop forces one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/build-ui.sh

target="${CARGO_TARGET_DIR:-$PWD/target}"
mode="${ENTRADA_RUN:-}"
if [[ -z "$mode" ]]; then
  if [[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]]; then mode=desktop; else mode=server; fi
fi

if [[ $mode == desktop ]]; then
  cargo build --release -p entrada-desktop --locked
  echo "Gate app on demo data: sign in as Ana (PIN 1234) or Luis, supervisor (PIN 654321);"
  echo "type or scan DEMO-ADMIT. Camera: ENTRADA_CAMERA=auto|0|folder:PATH."
  exec "$target/release/entrada-desktop" --db "${ENTRADA_DB:-$PWD/demo-gate.db}" "$@"
fi

cargo build --release -p entrada --locked
db="${ENTRADA_DB:-$PWD/demo.db}"
listen="${ENTRADA_LISTEN:-127.0.0.1:8080}"
bin="$target/release/entrada"
"$bin" demo --db "$db"        # idempotent: fills a new file, reports on an existing one
admin=$("$bin" token create --db "$db" --orq 1 --role admin)
operator=$("$bin" token create --db "$db" --orq 1 --role operator --user-id 1 --venue 1)
cat <<MSG
Customer page: http://$listen/  (try ticket DEMO-INACTIVE with e-mail visitor@example.com)
Demo tokens for org 1 (valid until revoked):
  admin:    $admin
  operator: $operator   (Ana, operator 1, at venue 1)
Try:
  curl -s -H "Authorization: Bearer $operator" -H 'content-type: application/json' \\
       -d '{"ticket_code":"DEMO-ADMIT"}' http://$listen/api/operator/validate-ticket
MSG
exec "$bin" serve --db "$db" --listen "$listen" "$@"
