#!/usr/bin/env bash
# Runs COMMAND inside the Debian root ROOT as a systemd unit's sandbox would,
# re-made by hand (systemd cannot run as PID 1 here; tests/package/install.sh):
#
#   sandbox.sh strict|full ROOT STATE_DIR USER [VAR=VALUE...] -- COMMAND [ARG...]
#
# both:   User= (and its groups), StateDirectory= writable, ProtectHome=yes
#         (empty /home and /root), PrivateTmp=yes (an empty /tmp),
#         NoNewPrivileges=yes, UMask=0077, a clean environment plus VAR=VALUE
# strict: ProtectSystem=strict (everything read-only but STATE_DIR) and
#         CapabilityBoundingSet= (no capabilities)
# full:   ProtectSystem=full (/usr and /etc read-only)
# unshare, bash, chroot, env, setpriv and sh each exec the next: the process
# this starts is COMMAND itself (its PID is the one to signal).
set -euo pipefail
if [[ ${ENTRADA_SANDBOX_INNER:-} != 1 ]]; then
  export ENTRADA_SANDBOX_INNER=1
  exec unshare --mount --propagation private -- bash "$0" "$@"
fi
unset ENTRADA_SANDBOX_INNER
mode=$1 r=$2 w=$3 u=$4
shift 4
env=()
while [[ $1 != -- ]]; do env+=("$1"); shift; done
shift
mount --rbind "$r" "$r"
mount --bind "$r$w" "$r$w"
case $mode in
  strict) mount -o remount,bind,ro "$r" ;;
  full) for p in usr etc; do mount --bind "$r/$p" "$r/$p"; mount -o remount,bind,ro "$r/$p"; done ;;
  *) echo "sandbox.sh: strict or full, not $mode" >&2; exit 2 ;;
esac
for d in home root; do mount -t tmpfs -o mode=0755 tmpfs "$r/$d"; done
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
uid=$(chroot "$r" id -u "$u")
gid=$(chroot "$r" id -g "$u")
install -d -o "$uid" -g "$gid" -m 0700 "$r/tmp/runtime"
caps=()
[[ $mode == strict ]] && caps=(--inh-caps=-all --bounding-set=-all)
exec chroot "$r" /usr/bin/env -i PATH=/usr/bin:/bin HOME="$w" LANG=C.UTF-8 XDG_RUNTIME_DIR=/tmp/runtime "${env[@]}" \
  setpriv --reuid="$uid" --regid="$gid" --init-groups --no-new-privs "${caps[@]}" \
  /bin/sh -c 'umask 0077; exec "$@"' - "$@"
