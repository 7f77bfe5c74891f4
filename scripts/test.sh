#!/usr/bin/env bash
# Runs every test of Entrada, installing what it needs first:
# format and lints, unit / property / concurrency / multi-process tests
# (cargo), the API contract suite (newman), API fuzzing (schemathesis), the customer page in Chromium
# (Playwright), the desktop app under Xvfb (WebDriver), and a smoke run of
# each benchmark binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
target="${CARGO_TARGET_DIR:-$PWD/target}"
export ARTIFACTS_DIR="${ARTIFACTS_DIR:-$PWD/artifacts}"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() { printf '\n==> %s\n' "$*" >&2; }

step "front ends (the desktop app embeds ui/dist/kiosk)"
bash scripts/build-ui.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "PostgreSQL: a private cluster for the PostgreSQL engine's tests (scripts/pg.sh)"
# The conformance suite runs on both engines; entrada-store-pg's tests read
# ENTRADA_TEST_PG and, under CI, fail without it. Removed again at exit.
# A fresh private folder (mktemp: no predictable path in /tmp; the cluster's
# owner may cross it, not list it) and a free port (several runs may share a machine).
pg_parent=$(mktemp -d)
chmod 711 "$pg_parent"
pg_dir="$pg_parent/pg"
trap 'rm -f "$log"; bash scripts/pg.sh destroy "$pg_dir" || true; rmdir "$pg_parent" 2>/dev/null || true' EXIT
pg_port=${ENTRADA_TEST_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
ENTRADA_TEST_PG=$(bash scripts/pg.sh start "$pg_dir" "$pg_port")
export ENTRADA_TEST_PG

step "cargo test (workspace)"
cargo test --workspace --locked 2>&1 | tee "$log"

step "vendored rqrr: its own tests and the patched Reed-Solomon's (vendor/rqrr/VENDORED.md; not a workspace member)"
cargo test --locked --manifest-path vendor/rqrr/Cargo.toml --target-dir "$target" --lib 2>&1 | tee -a "$log"

step "LAN exchange across network namespaces: mDNS discovery, uplink cut, A/B partition, kill -9 (root; says SKIP otherwise)"
cargo test -p entrada --locked --test lan_netns -- --ignored --nocapture 2>&1 | tee -a "$log"

step "PostgreSQL failover: SIGKILL of the primary under load, standby promoted, no acknowledged write lost (scripts/pg-failover.sh)"
FAILOVER_SECONDS=14 ENTRADA_BIN="$target/debug/entrada" bash scripts/pg-failover.sh 2>&1 | tee -a "$log"

step "kiosk unit tests: node's test runner (the keyboard-wedge detector)"
# (node_modules from before @types/node was a dev dependency: install again)
(cd ui && { [[ -d node_modules/@types/node ]] || npm ci --no-audit --no-fund --loglevel=error; } \
  && npm test --silent) 2>&1 | tee -a "$log"

step "TypeScript bindings are what the Rust types say"
# `cargo test` above regenerated both: the kiosk's (entrada-desktop) and the
# customer page's (entrada, api::bindings). New files count as a difference too.
for dir in ui/kiosk/bindings ui/customer/bindings ui/admin/bindings; do
  git diff --exit-code -- "$dir" || { echo "$dir changed: commit the regenerated files" >&2; exit 1; }
  untracked=$(git ls-files --others --exclude-standard -- "$dir")
  [ -z "$untracked" ] || { echo "$dir has new files: commit them: $untracked" >&2; exit 1; }
done

step "API contract suite: newman against a fresh entrada serve"
bash tests/api/run.sh "$target/debug/entrada" 2>&1 | tee -a "$log"

step "API contract suite on PostgreSQL: the same newman collection against entrada serve on the private cluster (issue 13)"
NEWMAN_PG="$ENTRADA_TEST_PG" ARTIFACTS_DIR="$ARTIFACTS_DIR/pg" bash tests/api/run.sh "$target/debug/entrada" 2>&1 | tee -a "$log"

step "API fuzzing: schemathesis (--checks all) against a fresh entrada serve --demo, admin and customer tokens"
bash tests/api/schemathesis.sh "$target/debug/entrada" 2>&1 | tee -a "$log"

step "customer page: Chromium via Playwright against a fresh entrada serve"
bash tests/customer/run.sh "$target/debug/entrada" 2>&1 | tee -a "$log"

step "admin console: Chromium via Playwright and axe-core against a fresh entrada serve"
bash tests/admin/run.sh "$target/debug/entrada" 2>&1 | tee -a "$log"

if [[ -f tests/desktop/run.sh ]]; then
  step "desktop app: WebDriver under Xvfb against a fresh entrada serve"
  bash tests/desktop/run.sh 2>&1 | tee -a "$log"
  step "desktop app: a fleet update of the kiosk (entrada-desktop --app-dir) under Xvfb"
  bash tests/desktop/kiosk-update.sh "$target/debug/entrada" "$target/debug/entrada-desktop" 2>&1 | tee -a "$log"
fi

step "packages: scripts/package.sh (release build, stripped), their size and contents, installed into a fresh Debian root"
# The release build of both binaries is the cost here (cold: see BENCHMARKS.md,
# "Packages"; CI keeps CARGO_TARGET_DIR, so usually only our crates rebuild).
# The Debian root and its apt archives are cached in /var/cache/entrada/debroot.
packages=$(ENTRADA_ALLOW_DEV_RELEASE_KEY=1 bash scripts/package.sh)
gate_deb=$(grep '/entrada-gate_' <<<"$packages")
server_deb=$(grep '/entrada_' <<<"$packages")
bash scripts/check-packages.sh "$gate_deb" "$server_deb" 2>&1 | tee -a "$log"
bash tests/package/postinst.sh 2>&1 | tee -a "$log"
bash tests/package/install.sh "$gate_deb" "$server_deb" 2>&1 | tee -a "$log"

step "benchmark smoke runs (numbers in BENCHMARKS.md come from full runs)"
cargo bench -p entrada --locked --bench store_throughput -- --quick
cargo bench -p entrada --locked --bench http_load -- --quick
ENTRADA_TEST_PG="$ENTRADA_TEST_PG" cargo bench -p entrada --locked --bench pg_http -- --quick

# cargo's "test result: ok. N passed; M failed", newman's "newman: N passed, M failed",
# schemathesis.sh's "schemathesis: N passed, M failed" (test cases),
# tests/package/install.sh's "install: N passed, M failed",
# node's "ℹ pass N" / "ℹ fail M".
count() {
  awk -v word="$1" -v node="$2" '
    /^test result:|^newman:|^schemathesis:|^install:|^postinst:|^kiosk-update:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ "^" word) s += $i }
    $1 == "ℹ" && $2 == node { s += $3 }
    END { print s + 0 }' "$log"
}
passed=$(count passed pass)
failed=$(count failed fail)
echo
echo "tests: $passed passed, $failed failed"
