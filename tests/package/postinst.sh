#!/usr/bin/env bash
# The packages' postinst scripts, run with every command they call stubbed
# (nothing on this machine changes): a first install sets the config file's
# group and mode; an upgrade ("configure <old version>") leaves both as the
# administrator set them. Run: bash tests/package/postinst.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
for cmd in getent groupadd useradd usermod install chgrp chmod systemctl; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\nexit 0\n' "$cmd" "$work" > "$work/bin/$cmd"
  chmod +x "$work/bin/$cmd"
done
passed=0 failed=0
check() {
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "postinst: FAILED: ${label}" >&2; fi
}
for pkg in server:/etc/entrada/entrada.toml gate:/etc/entrada/gate.env; do
  dir=${pkg%%:*} conf=${pkg#*:}
  : > "$work/calls"
  PATH="$work/bin:/usr/bin:/bin" sh "$here/packaging/$dir/postinst" configure
  label="$dir first install sets the mode of $conf"
  check grep -q "^chmod 0640 $conf\$" "$work/calls"
  : > "$work/calls"
  PATH="$work/bin:/usr/bin:/bin" sh "$here/packaging/$dir/postinst" configure 0.1.0
  label="$dir upgrade keeps the mode and group of $conf"
  check bash -c "! grep -Eq '^(chmod|chgrp) .*$conf' '$work/calls'"
done
echo "postinst: $passed passed, $failed failed"
((failed == 0))
