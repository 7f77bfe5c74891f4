#!/usr/bin/env bash
# Measures the gate app's CPU while idle / idle with a camera / scanning, and
# its time to verdict (tests/desktop/idle-cpu.mjs), under Xvfb with software
# rendering, as on a kiosk PC or handheld without a GPU driver.
#
#   tests/desktop/idle-cpu.sh                      # the current build
#   DESKTOP_BINS="before=/tmp/old/entrada-desktop,after=$CARGO_TARGET_DIR/debug/entrada-desktop" \
#     SKIP_BUILD=1 tests/desktop/idle-cpu.sh        # two builds, interleaved
#
# REPEATS (3), WINDOW_S (60), SCENARIOS (idle,camera,scanning), THREADS=1 (busiest
# threads per run), FRAMES=bmp (uncompressed folder frames): see idle-cpu.mjs.
# Needs what tests/desktop/run.sh needs, and `convert` (ImageMagick) to read the QR PNGs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/build-ui.sh >/dev/null
  cargo build -q -p entrada -p entrada-desktop
fi
export ENTRADA_BIN="${ENTRADA_BIN:-$TARGET/debug/entrada}"
export DESKTOP_BINS="${DESKTOP_BINS:-app=$TARGET/debug/entrada-desktop}"
export TAURI_DRIVER=${TAURI_DRIVER:-$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")}
# The same software-rendered WebKit as tests/desktop/run.sh.
export WEBKIT_DISABLE_COMPOSITING_MODE=1 NO_AT_BRIDGE=1 LIBGL_ALWAYS_SOFTWARE=1
xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" dbus-run-session -- node tests/desktop/idle-cpu.mjs
