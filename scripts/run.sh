#!/usr/bin/env bash
# The main job: builds Entrada and runs the server on a demo database at
# http://127.0.0.1:8080 (API under /api, OpenAPI at /api/openapi.json).
# Installs what it needs first. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release -p entrada --locked
db="${ENTRADA_DB:-$PWD/demo.db}"
listen="${ENTRADA_LISTEN:-127.0.0.1:8080}"
bin=target/release/entrada
[[ -n "${CARGO_TARGET_DIR:-}" ]] && bin="$CARGO_TARGET_DIR/release/entrada"

admin=$("$bin" token create --db "$db" --orq 1 --role admin)
operator=$("$bin" token create --db "$db" --orq 1 --role operator --user-id 1 --venue 1)
cat <<MSG
Demo tokens for org 1 (also valid after a restart):
  admin:    $admin
  operator: $operator   (operator 1 at venue 1)
Try:
  curl -s -H "Authorization: Bearer $operator" -H 'content-type: application/json' \\
       -d '{"ticket_code":"DEMO-ADMIT"}' http://$listen/api/operator/validate-ticket
MSG
exec "$bin" serve --db "$db" --listen "$listen" --demo
