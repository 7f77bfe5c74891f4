#!/usr/bin/env bash
# Installs what building, running and testing Entrada needs on a fresh
# Debian/Ubuntu machine. Idempotent and quick when everything is there.
#   scripts/setup.sh          build + run (server, desktop app)
#   scripts/setup.sh --test   + what the test suites need (Xvfb, WebDriver, Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

# Build: a C toolchain for SQLite, Tauri 2's WebKitGTK 4.1 stack, libclang for nokhwa's V4L bindings.
apt_packages=(build-essential pkg-config curl ca-certificates file libssl-dev
  libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev libclang-dev clang)
if [[ $want_test == 1 ]]; then
  # Desktop end-to-end tests (Xvfb + WebKitWebDriver) and browser tests (Chromium).
  apt_packages+=(xvfb xauth webkit2gtk-driver dbus-x11 at-spi2-core fonts-dejavu-core chromium)
  # API fuzzing: schemathesis from PyPI in a venv (tests/api/schemathesis.sh).
  apt_packages+=(python3 python3-venv)
  # The PostgreSQL engine's tests: a private cluster (scripts/pg.sh) needs the server binaries.
  apt_packages+=(postgresql postgresql-client)
fi
# Node: keep an existing one (nvm, NodeSource, the image's); else Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_packages+=(nodejs npm)
fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  echo "setup: no Rust toolchain found; install one with rustup (https://rustup.rs), Rust >= 1.85" >&2
  exit 1
fi
if [[ $want_test == 1 ]]; then
  rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt
  command -v tauri-driver >/dev/null || cargo install tauri-driver --locked --quiet
fi

# The front ends (customer page, kiosk): npm packages from the lockfile.
if [[ ! -d ui/node_modules ]]; then
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi
