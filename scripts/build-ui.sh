#!/usr/bin/env bash
# Builds the customer page and the kiosk into ui/dist (the server serves it;
# the desktop app embeds ui/dist/kiosk when it is compiled).
set -euo pipefail
cd "$(dirname "$0")/../ui"
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
