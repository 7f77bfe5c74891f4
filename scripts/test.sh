#!/usr/bin/env bash
# Runs every test of Entrada: format, lints, unit/property/concurrency tests,
# and a smoke run of each benchmark binary. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() { printf '\n==> %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked 2>&1 | tee "$log"

step "API contract suite: newman against a fresh entrada serve"
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/entrada"
bash tests/api/run.sh "$bin" 2>&1 | tee -a "$log"

step "benchmark smoke runs (numbers in BENCHMARKS.md come from full runs)"
cargo bench -p entrada --bench store_throughput --locked -- --quick

# cargo's "test result: ok. N passed; M failed" and newman's "newman: N passed, M failed"
count() { awk -v word="$1" '/^test result:|^newman:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ "^" word) s += $i } END { print s + 0 }' "$log"; }
passed=$(count passed)
failed=$(count failed)
echo
echo "tests: $passed passed, $failed failed"
