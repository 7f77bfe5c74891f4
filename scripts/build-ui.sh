#!/usr/bin/env bash
# Builds the customer page and the kiosk into ui/dist (the server serves it;
# the desktop app embeds ui/dist/kiosk when it is compiled).
set -euo pipefail
cd "$(dirname "$0")/../ui"
# Install again when package-lock.json changed since the last install (a new
# dependency, e.g. uPlot for the console's dashboard, in a kept checkout).
if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run build --silent
