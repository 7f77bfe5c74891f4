#!/usr/bin/env bash
# Installs both packages into a fresh Debian root and runs them as their
# systemd units say:
#
#   tests/package/install.sh GATE.deb SERVER.deb
#
# 1. A fresh root: debootstrap --variant=minbase of this machine's Debian
#    release from this machine's apt sources, kept as a tarball in
#    ${ENTRADA_DEBROOT_CACHE:-/var/cache/entrada/debroot} and unpacked anew
#    for every run (the apt archives are cached there too).
# 2. `apt-get install ./entrada_*.deb ./entrada-gate_*.deb` inside it: the
#    packages' Depends bring everything else from Debian; their postinst
#    scripts make the entrada and entrada-kiosk users.
# 3. The server: the ExecStart, User and Group of entrada.service, run inside
#    the root as that user with the unit's sandbox re-made by hand (systemd
#    cannot run as PID 1 here): a private mount namespace in which the whole
#    root is read-only but the StateDirectory (ProtectSystem=strict), /home,
#    /root and /tmp are empty tmpfs (ProtectHome, PrivateTmp), no new
#    privileges and no capabilities (NoNewPrivileges, CapabilityBoundingSet=),
#    umask 0077. Data: a venue, operator, device, slot and reserved ticket.
# 4. The gate: the ExecStart of entrada-gate.service (kiosk-session) as
#    entrada-kiosk with the unit's Environment and /etc/entrada/gate.env
#    (server, device token, a folder camera holding the ticket's QR) and a
#    drop-in's DISPLAY (Xvfb on this machine): no --db. It pairs, the camera
#    scans, and the test finds /var/lib/entrada-gate/gate.db with the
#    verification and the server answering ALREADY_VERIFIED. The unit's process
#    is the launcher (--app-dir): its child, the app, reports healthy after a
#    sync round, and the server lists the gate's version.
# 5. The app as an ordinary user from a menu: no --db, no service: its
#    database appears in ~/.local/share/entrada/gate.db.
# 6. SIGTERM to the server: it finishes and exits 0.
#
# Needs root (chroot, mounts), debootstrap (installed with apt if missing),
# Xvfb, curl, python3. Prints "install: N passed, M failed".
set -euo pipefail
gate_deb=$(realpath "${1:?usage: install.sh GATE.deb SERVER.deb}")
pkg_version=$(dpkg-deb -f "$gate_deb" Version)
server_deb=$(realpath "${2:?usage: install.sh GATE.deb SERVER.deb}")
cache=${ENTRADA_DEBROOT_CACHE:-/var/cache/entrada/debroot}
. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
arch=$(dpkg --print-architecture)
base=$cache/$suite-$arch-minbase.tar

passed=0
failed=0
check() { # check "what" command...
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
    passed=$((passed + 1))
  else
    echo "FAILED: $what" >&2
    failed=$((failed + 1))
  fi
}
log() { echo "== $*"; }

for tool in debootstrap Xvfb curl python3; do
  if ! command -v "$tool" >/dev/null; then
    log "installing ${tool} (apt-get)"
    pkg=$tool
    [[ $tool == Xvfb ]] && pkg=xvfb
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o DPkg::Lock::Timeout=600 "$pkg" >/dev/null
  fi
done

# ---- 1. a fresh Debian root --------------------------------------------------
mkdir -p "$cache/archives/partial"
if [[ ! -f $base ]]; then
  # This machine's own Debian mirror (its apt sources), nothing else.
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2; exit}')
  [[ -n $mirror ]] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  log "debootstrap --variant=minbase $suite from $mirror (once; cached in $base)"
  fresh=$(mktemp -d)
  # mktemp's 0700 would become the new root's own mode (tar keeps `.`):
  # then nobody but root may enter / and every other user's program fails
  # to load its libraries.
  chmod 755 "$fresh"
  debootstrap --variant=minbase "$suite" "$fresh" "$mirror" >/dev/null
  tar -C "$fresh" -cf "$base.tmp" .
  mv "$base.tmp" "$base"
  rm -rf "$fresh"
fi
work=$(mktemp -d)
chmod 755 "$work"
root=$work/root
mkdir "$root"
pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  for m in var/cache/apt/archives dev/shm dev/pts dev sys proc; do
    mountpoint -q "$root/$m" && umount -l "$root/$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT
tar -C "$root" -xf "$base"
chmod 755 "$root" # (a root cached with 0700 by an earlier version of this script)
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount --bind "$cache/archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# ---- 2. install both packages -----------------------------------------------
cp "$gate_deb" "$server_deb" "$root/tmp/"
log "apt-get install $(basename "$server_deb") $(basename "$gate_deb") (and their Depends) into the fresh root"
started=$(date +%s)
in_root apt-get update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "/tmp/$(basename "$server_deb")" "/tmp/$(basename "$gate_deb")" \
  > "$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; exit 1; }
log "installed in $(($(date +%s) - started)) s"
check "dpkg says both are installed" in_root dpkg-query -W -f='${Status}\n' entrada entrada-gate
in_root dpkg -L entrada-gate > "$work/gate.files"
check "no entrada-decode was installed" bash -c "! grep -q entrada-decode '$work/gate.files'"
check "the server's user exists" in_root getent passwd entrada
# stat inside the root: its users are not this machine's
owner() { in_root stat -c "$1" "$2"; }
kiosk_groups=" $(in_root id -nG entrada-kiosk) "
check "the kiosk user is in video (cameras) and input (scanners):$kiosk_groups" \
  test "${kiosk_groups/* video */v}${kiosk_groups/* input */i}" = vi
check "/var/lib/entrada belongs to entrada" test "$(owner %U /var/lib/entrada)" = entrada
check "/etc/entrada/gate.env: root and the kiosk user only" test "$(owner '%U:%G %a' /etc/entrada/gate.env)" = "root:entrada-kiosk 640"
check "/etc/entrada/entrada.toml: root and the server only" test "$(owner '%U:%G %a' /etc/entrada/entrada.toml)" = "root:entrada 640"

unit_value() { # unit_value FILE KEY: the last KEY= line's value
  awk -F= -v k="$2" '$1 == k {sub(/^[^=]*=/, ""); v = $0} END {print v}' "$1"
}

# ---- 3. the server, as entrada.service runs it ------------------------------
sunit=$root/lib/systemd/system/entrada.service
exec_start=$(unit_value "$sunit" ExecStart)
suser=$(unit_value "$sunit" User)
sgroup=$(unit_value "$sunit" Group)
state=/var/lib/$(unit_value "$sunit" StateDirectory)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The admin edits the conffile (a free port: other runs may share this machine).
sed -i "s/^listen = .*/listen = \"127.0.0.1:$port\"/" "$root/etc/entrada/entrada.toml"
URL=http://127.0.0.1:$port
as_server() { in_root setpriv --reuid="$suser" --regid="$sgroup" --init-groups "$@"; }
DB=$state/entrada.db

sandbox=$(dirname "$(realpath "$0")")/sandbox.sh
log "starting the server: $exec_start (as $suser, sandboxed)"
# shellcheck disable=SC2086
bash "$sandbox" strict "$root" "$state" "$suser" -- $exec_start > "$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 100); do curl -fs "$URL/api/health" >/dev/null && break; sleep 0.2; done
check "the server answers on $URL as the service runs it" curl -fs "$URL/api/health" -o /dev/null
check "it made its database in $state, owned by $suser, not readable by others" \
  test "$(owner '%U %a' "$DB")" = "$suser 600"
touch "$root/home/someones-file"
probe=$(bash "$sandbox" strict "$root" "$state" "$suser" -- \
  sh -c 'touch /etc/entrada/x; touch /usr/x; touch /var/lib/x; ls -A /home | wc -l' 2>&1 || true)
check "under that sandbox /etc, /usr and /var are read-only and /home is empty" \
  test "$(echo "$probe" | grep -c 'Read-only file system'):$(echo "$probe" | tail -1)" = 3:0

ADMIN=$(as_server entrada token create --db "$DB" --orq 1 --role admin)
VENUE=$(as_server entrada venue add --db "$DB" --orq 1 --name "Museo" --timezone UTC)
ANA=$(as_server entrada operator add --db "$DB" --orq 1 --role operator --name Ana --pin 1234)
DEVICE_TOKEN=$(as_server entrada device add --db "$DB" --orq 1 --venue "$VENUE" --name "Gate 1")
OP=$(as_server entrada token create --db "$DB" --orq 1 --role operator --user-id "$ANA" --venue "$VENUE")
api() { # api METHOD PATH TOKEN [JSON]
  curl -fsS -X "$1" -H "Authorization: Bearer $3" ${4:+-H 'content-type: application/json' -d "$4"} "$URL$2"
}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
today=$(date -u +%F)
slot=$(api POST /api/operator/slots/create "$ADMIN" \
  "{\"venue_id\":$VENUE,\"date\":\"$today\",\"start_time\":\"00:00:00\",\"end_time\":\"23:59:59\",\"total_capacity\":40}" | json "['id']")
code=TKT-PKG-001
api POST /api/admin/tickets "$ADMIN" \
  "{\"ticket_code\":\"$code\",\"purchase_email\":\"v@example.com\",\"activation_mode\":\"immediate\"}" >/dev/null
cust=$(curl -fsS -H 'content-type: application/json' -d "{\"ticket_code\":\"$code\",\"email\":\"v@example.com\"}" \
  "$URL/api/customer/session" | json "['token']")
api POST /api/reservations/create "$cust" \
  "{\"ticket_id\":\"$code\",\"slot_id\":\"$slot\",\"customer_email\":\"v@example.com\",\"customer_phone\":\"+34600111222\"}" >/dev/null
verdict=$(api POST /api/operator/validate-ticket "$OP" "{\"ticket_code\":\"$code\"}" | json "['verdict']")
check "the server has a reserved ticket for today ($code: $verdict)" test "$verdict" = ADMIT
mkdir -p "$root/srv/camera"
as_server entrada ticket qr "$code" --db "$DB" --out /tmp/ticket.png 2>/dev/null ||
  in_root entrada ticket qr "$code" --db "$DB" --out /tmp/ticket.png
cp "$root/tmp/ticket.png" "$root/srv/camera/ticket.png"
chmod -R a+rX "$root/srv/camera"

# ---- 4. the gate, as entrada-gate.service runs it ----------------------------
gunit=$root/lib/systemd/system/entrada-gate.service
gexec=$(unit_value "$gunit" ExecStart)
guser=$(unit_value "$gunit" User)
ggroup=$(unit_value "$gunit" Group)
gstate=/var/lib/$(unit_value "$gunit" StateDirectory)
genv=$(unit_value "$gunit" Environment)
# What the venue's admin writes into /etc/entrada/gate.env.
cat >> "$root/etc/entrada/gate.env" <<EOF
ENTRADA_SERVER=$URL
ENTRADA_TOKEN=$DEVICE_TOKEN
ENTRADA_CAMERA=folder:/srv/camera
ENTRADA_OPERATOR=$ANA
EOF
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3> "$work/display" > "$work/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -s $work/display ]] && break; sleep 0.1; done
display=$(cat "$work/display")
log "starting the gate: $gexec (as $guser; $genv; DISPLAY=:$display)"
# The unit's ExecStart with its Environment=, its EnvironmentFile= and a
# drop-in's DISPLAY (the X server's abstract socket crosses the chroot).
mapfile -t envfile < <(grep -E '^[A-Z_]+=' "$root/etc/entrada/gate.env")
bash "$sandbox" strict "$root" "$gstate" "$guser" "$genv" "${envfile[@]}" DISPLAY=":$display" -- \
  "$gexec" > "$work/gate.log" 2>&1 &
gate_pid=$!
pids+=("$gate_pid")
gdb=$root$gstate/gate.db
for _ in $(seq 150); do
  v=$(api POST /api/operator/validate-ticket "$OP" "{\"ticket_code\":\"$code\"}" | json "['verdict']" || true)
  [[ $v == ALREADY_VERIFIED ]] && break
  kill -0 "$gate_pid" 2>/dev/null || break
  sleep 0.2
done
check "the gate's database is $gstate/gate.db (no --db; the service's folder)" test -s "$gdb"
check "it belongs to $guser" test "$(owner %U "$gstate/gate.db" 2>&1)" = "$guser"
check "nothing was written to the gate's working folder (/)" bash -c "! ls \"$root\"/*.db 2>/dev/null | grep -q ."
check "the gate paired, scanned $code from its folder camera and the server has the admission ($v)" \
  test "$v" = ALREADY_VERIFIED
by=$(api POST /api/operator/validate-ticket "$OP" "{\"ticket_code\":\"$code\"}" | json ".get('verified_by')" || true)
check "verified by operator $ANA on the server (got $by)" test "$by" = "$ANA"
# Under its launcher (kiosk-session gives --app-dir): the process the unit
# started is the launcher; its child, the app, has ENTRADA_APP_VERSION set,
# reported healthy to it after its first sync round, and reported its
# version to the server (fleet updates).
app_pid=$(pgrep -P "$gate_pid" | head -1 || true)
app_env=$(tr '\0' '\n' < "/proc/${app_pid:-0}/environ" 2>/dev/null || true)
check "the kiosk runs under its launcher: $(tr '\0' ' ' < /proc/"$gate_pid"/cmdline 2>/dev/null | cut -c1-60) → pid ${app_pid:-none}" \
  grep -q "^ENTRADA_APP_VERSION=$pkg_version\$" <<<"$app_env"
for _ in $(seq 50); do [[ -s $root$gstate/app/healthy ]] && break; sleep 0.2; done
check "the app told its launcher it is healthy (after a sync round)" \
  test "$(cat "$root$gstate/app/healthy" 2>/dev/null)" = "$pkg_version"
for _ in $(seq 50); do
  reported=$(api GET /api/admin/devices "$ADMIN" | json "[0].get('app_version')" || true)
  [[ $reported == "$pkg_version" ]] && break
  sleep 0.2
done
check "the server lists the gate's version ($reported)" test "$reported" = "$pkg_version"
kill "$app_pid" "$gate_pid" 2>/dev/null || true
wait "$gate_pid" 2>/dev/null || true

# ---- 5. the app from a menu: the user's XDG data folder ----------------------
in_root useradd --create-home --shell /bin/bash ana
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/home/ana LANG=C.UTF-8 DISPLAY=":$display" \
  setpriv --reuid=ana --regid=ana --init-groups entrada-desktop > "$work/desktop.log" 2>&1 &
user_pid=$!
pids+=("$user_pid")
udb=$root/home/ana/.local/share/entrada/gate.db
for _ in $(seq 100); do [[ -s $udb ]] && break; sleep 0.2; done
check "started as a user with no --db: ~/.local/share/entrada/gate.db" test -s "$udb"
check "its folder is the user's own (0700)" test "$(owner '%U %a' /home/ana/.local/share/entrada 2>&1)" = "ana 700"
kill "$user_pid" 2>/dev/null || true
wait "$user_pid" 2>/dev/null || true

# ---- 6. SIGTERM stops the server gracefully ----------------------------------
# (sandbox.sh: the process started is the server itself)
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
check "SIGTERM: the server exits 0 (status $status)" test "$status" = 0

if ((failed > 0)); then
  for f in server gate desktop; do echo "--- $f.log" >&2; tail -20 "$work/$f.log" >&2; done
fi
echo "install: $passed passed, $failed failed"
((failed == 0))
