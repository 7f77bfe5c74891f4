#!/usr/bin/env bash
# Builds the gate app's installable packages (.deb, and an AppImage where
# the machine can make one) with the Tauri CLI. Output:
# ${CARGO_TARGET_DIR:-target}/release/bundle/{deb,appimage}/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
cargo tauri --version >/dev/null 2>&1 || cargo install tauri-cli --locked --version "^2"
bash scripts/build-ui.sh
cd src-tauri
# AppImage (BUNDLES=deb,appimage) needs linuxdeploy, which the Tauri CLI downloads:
# not possible on machines without general network access.
cargo tauri build --bundles "${BUNDLES:-deb}" "$@"
