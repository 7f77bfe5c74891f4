#!/usr/bin/env bash
# End-to-end tests of the real gate app (entrada-desktop, Tauri) under Xvfb,
# driven through WebDriver (tauri-driver + WebKitWebDriver), against a real
# `entrada serve` on 127.0.0.1.
#
#   tests/desktop/run.sh
#
# Builds ui/ (the kiosk page is embedded into the app), the server and the
# app, installs tauri-driver if missing, and runs tests/desktop/e2e.mjs under
# `xvfb-run` (or on $DISPLAY when DESKTOP_USE_DISPLAY=1), then tests/desktop/pairing.mjs
# (a gate paired by the console's QR code, in Chromium), then tests/desktop/sizes.mjs
# (every screen at 360×740, 480×854, 800×1280 and 1280×800). Screenshots and logs
# go to ${ARTIFACTS_DIR:-/tmp/entrada-artifacts}/desktop/; with
# UPDATE_SCREENSHOTS=1 they are also copied to docs/screenshots/kiosk-*.png.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
STARTED=$(date +%s)

TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

# --- system tools (Debian package names as in PLATFORM.md)
missing=()
command -v WebKitWebDriver >/dev/null || missing+=(webkit2gtk-driver)
command -v xvfb-run >/dev/null || missing+=(xvfb xauth)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${missing[@]}" dbus-x11 at-spi2-core fonts-dejavu-core >/dev/null
fi
TAURI_DRIVER=${TAURI_DRIVER:-$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")}
if [ ! -x "$TAURI_DRIVER" ]; then
  echo "== installing tauri-driver (cargo install tauri-driver --locked)"
  cargo install tauri-driver --locked
  TAURI_DRIVER="$HOME/.cargo/bin/tauri-driver"
fi

# --- the kiosk page, then the binaries (the app embeds ui/dist/kiosk)
echo "== building ui/"
(
  cd ui
  if [ ! -d node_modules/vite ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  npm run build --silent >/dev/null
)
echo "== cargo build -p entrada -p entrada-desktop"
cargo build -q -p entrada -p entrada-desktop
BIN="$TARGET/debug/entrada"
APP="$TARGET/debug/entrada-desktop"
grep -q 'id="screen-scan"' "$ROOT/ui/dist/kiosk/index.html" || { echo "ui/dist/kiosk is not the kiosk page" >&2; exit 1; }

ART="${ARTIFACTS_DIR:-/tmp/entrada-artifacts}/desktop"
mkdir -p "$ART"
rm -f "$ART"/*.png "$ART"/*.log
SHOTS=
if [ "${UPDATE_SCREENSHOTS:-0}" = 1 ]; then
  SHOTS="$ROOT/docs/screenshots"
  mkdir -p "$SHOTS"
fi

echo "== desktop end-to-end (artifacts: $ART)"
export ENTRADA_BIN="$BIN" DESKTOP_BIN="$APP" TAURI_DRIVER DESKTOP_ARTIFACTS="$ART" SCREENSHOTS_DIR="$SHOTS"
# WebKit under Xvfb: no GPU, no accessibility bus needed.
export WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 LIBGL_ALWAYS_SOFTWARE=1
status=0
if [ "${DESKTOP_USE_DISPLAY:-0}" = 1 ] && [ -n "${DISPLAY:-}" ]; then
  node tests/desktop/e2e.mjs || status=$?
else
  xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" dbus-run-session -- node tests/desktop/e2e.mjs || status=$?
fi
# Pairing by the console's QR code (issue 16): HTTPS with the venue's own CA,
# the console in Chromium, the app's folder camera reading its screenshot.
echo "== desktop pairing by QR code"
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ "${DESKTOP_USE_DISPLAY:-0}" = 1 ] && [ -n "${DISPLAY:-}" ]; then
  node tests/desktop/pairing.mjs || status=$?
else
  xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" dbus-run-session -- node tests/desktop/pairing.mjs || status=$?
fi
# The same app at a handheld's, a tablet's and the kiosk's sizes (sizes.mjs):
# its screen must hold a 800×1280 window upright.
echo "== desktop sizes: 360×740, 480×854, 800×1280, 1280×800, 1920×1080"
if [ "${DESKTOP_USE_DISPLAY:-0}" = 1 ] && [ -n "${DISPLAY:-}" ]; then
  node tests/desktop/sizes.mjs || status=$?
else
  xvfb-run -a -s "-screen 0 1920x1400x24 -nolisten tcp" dbus-run-session -- node tests/desktop/sizes.mjs || status=$?
fi
echo "== desktop end-to-end: $([ $status = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - STARTED)) s"
exit $status
