#!/usr/bin/env bash
# Builds the two Debian packages from staged trees with dpkg-deb:
#   entrada-gate_VERSION_ARCH.deb  the gate app (entrada-desktop), its kiosk
#                                  service (entrada-gate.service) and menu entry
#   entrada_VERSION_ARCH.deb       the server (entrada), its hardened systemd unit
#                                  (entrada.service), /etc/entrada/entrada.toml and
#                                  the customer page
# Binaries come from the `dist` cargo profile (release, no debug info, symbols
# stripped). Dependencies are what dpkg-shlibdeps finds the binaries need.
# Output: ${PKG_OUT:-$CARGO_TARGET_DIR/packages}/ (prints the two paths).
# Then scripts/check-packages.sh checks their metadata, size and contents.
#   ENTRADA_PKG_NO_BUILD=1   package the binaries already built (no cargo, no npm)
#   ENTRADA_MAINTAINER / ENTRADA_HOMEPAGE   the packages' Maintainer / Homepage
#   ENTRADA_RELEASE_PUBLIC_KEY   the release key gates verify update bundles with
#                                (base64, from `entrada update keygen`); without it
#                                the build trusts the development key, whose private
#                                half is in this repository: refused unless
#                                ENTRADA_ALLOW_DEV_RELEASE_KEY=1 (tests, CI)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
target=${CARGO_TARGET_DIR:-$repo/target}
out=${PKG_OUT:-$target/packages}
maintainer=${ENTRADA_MAINTAINER:-Entrada maintainers <packages@entrada.app>}
homepage=${ENTRADA_HOMEPAGE:-https://entrada.app}

if [[ -z ${ENTRADA_RELEASE_PUBLIC_KEY:-} && -z ${ENTRADA_ALLOW_DEV_RELEASE_KEY:-} ]]; then
  echo "package.sh: set ENTRADA_RELEASE_PUBLIC_KEY (entrada update keygen; README, \"Updating a fleet\")," >&2
  echo "  or ENTRADA_ALLOW_DEV_RELEASE_KEY=1 for a test build that trusts the public development key" >&2
  exit 1
fi
if [[ -z ${ENTRADA_PKG_NO_BUILD:-} ]]; then
  bash scripts/build-ui.sh >&2
  cargo build --locked --profile dist -p entrada -p entrada-desktop \
    --bin entrada --bin entrada-desktop >&2
fi
bin=$target/dist
for b in entrada entrada-desktop; do
  [[ -x $bin/$b ]] || { echo "package.sh: $bin/$b is missing (cargo build --profile dist)" >&2; exit 1; }
done
[[ -f ui/dist/index.html ]] || { echo "package.sh: ui/dist is missing (scripts/build-ui.sh)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# dpkg-shlibdeps wants a debian/control beside it; it prints the Depends
# the binary's shared libraries need (package names, minimum versions).
shlibdeps() {
  local dir=$work/shlibdeps
  mkdir -p "$dir/debian"
  printf 'Source: entrada\n\nPackage: entrada\nArchitecture: any\n' > "$dir/debian/control"
  (cd "$dir" && dpkg-shlibdeps -O "$@" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

copyright() {
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: entrada
Source: $homepage

Files: *
Copyright: Entrada contributors
License: MIT
EOF
}

# stage DIR PACKAGE: writes DIR/DEBIAN/control from the variables below.
control() {
  local dir=$1 package=$2 section=$3 depends=$4 recommends=$5 description=$6
  local size
  size=$(du -sk --exclude=DEBIAN "$dir" | cut -f1)
  {
    echo "Package: $package"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    echo "Depends: $depends"
    [[ -n $recommends ]] && echo "Recommends: $recommends"
    echo "Section: $section"
    echo "Priority: optional"
    echo "Homepage: $homepage"
    echo "Description: $description"
  } > "$dir/DEBIAN/control"
}

build() {
  local dir=$1 name=$2
  # Owner root for every file; the packages' users are made by postinst.
  dpkg-deb --root-owner-group -Zxz -z9 --build "$dir" "$out/$name" >/dev/null
  echo "$out/$name"
}

# ---- the gate app -----------------------------------------------------------
g=$work/entrada-gate
install -D -m 0755 "$bin/entrada-desktop" "$g/usr/bin/entrada-desktop"
install -D -m 0755 packaging/gate/kiosk-session "$g/usr/lib/entrada-gate/kiosk-session"
install -D -m 0644 packaging/gate/entrada-gate.service "$g/lib/systemd/system/entrada-gate.service"
install -D -m 0640 packaging/gate/gate.env "$g/etc/entrada/gate.env"
install -D -m 0644 packaging/gate/entrada-gate.desktop "$g/usr/share/applications/entrada-gate.desktop"
install -D -m 0644 src-tauri/icons/icon.png "$g/usr/share/icons/hicolor/256x256/apps/entrada-gate.png"
install -D -m 0644 packaging/gate/README.md "$g/usr/share/doc/entrada-gate/README.md"
copyright > "$g/usr/share/doc/entrada-gate/copyright"
install -d "$g/DEBIAN"
install -m 0755 packaging/gate/postinst packaging/gate/prerm packaging/gate/postrm "$g/DEBIAN/"
echo /etc/entrada/gate.env > "$g/DEBIAN/conffiles"
control "$g" entrada-gate misc "$(shlibdeps "$g/usr/bin/entrada-desktop"), passwd" cage \
  "Entrada gate app: scan tickets, admit or refuse, online or offline
 The gate app of Entrada: scans ticket QR codes with a camera or a USB
 handheld scanner and shows ADMIT or the refusal's reason full-screen. It
 keeps a local replica of its venue, admits offline and sends its scans to
 the Entrada server when it can.
 .
 Run entrada-desktop from the menu (its database is then
 ~/.local/share/entrada/gate.db), or enable entrada-gate.service to start it
 full-screen at boot under the entrada-kiosk user (settings in
 /etc/entrada/gate.env, database in /var/lib/entrada-gate)."
build "$g" "entrada-gate_${version}_${arch}.deb"

# ---- the server -------------------------------------------------------------
s=$work/entrada
install -D -m 0755 "$bin/entrada" "$s/usr/bin/entrada"
install -D -m 0644 packaging/server/entrada.service "$s/lib/systemd/system/entrada.service"
install -D -m 0640 packaging/server/entrada.toml "$s/etc/entrada/entrada.toml"
install -d "$s/usr/share/entrada/ui"
# the customer page; the kiosk page is compiled into the gate app
(cd ui/dist && find . -path ./kiosk -prune -o -type f -print0) | \
  (cd ui/dist && xargs -0 -I{} install -D -m 0644 {} "$s/usr/share/entrada/ui/{}")
install -D -m 0644 packaging/server/README.md "$s/usr/share/doc/entrada/README.md"
copyright > "$s/usr/share/doc/entrada/copyright"
install -d "$s/DEBIAN"
install -m 0755 packaging/server/postinst packaging/server/prerm packaging/server/postrm "$s/DEBIAN/"
echo /etc/entrada/entrada.toml > "$s/DEBIAN/conffiles"
control "$s" entrada net "$(shlibdeps "$s/usr/bin/entrada"), passwd" "" \
  "Entrada server: ticket gates, time-slot reservations, gate sync
 The server of Entrada: the HTTP API for gates, customers and supervisors
 (ticket validation and verification, reservations, slot capacity, device
 pairing and sync) on an embedded SQLite database, and the customer page.
 .
 entrada.service runs it as the entrada user with its database in
 /var/lib/entrada and its settings in /etc/entrada/entrada.toml; the
 entrada command also creates tokens, operators, devices and venues."
build "$s" "entrada_${version}_${arch}.deb"
