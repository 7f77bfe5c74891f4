#!/usr/bin/env bash
# Keeps the build cache from filling the disk: a linker that runs out of space
# while writing a memory-mapped output dies with SIGBUS, not a clear message.
# Usage: scripts/ci-disk.sh TARGET_DIR [MIN_FREE_GIB]
# Frees space in the cache, oldest kind of data first, until MIN_FREE_GIB
# (default 25, whole GiB) are free on its file system; says what it removed.
# Only a folder cargo marked as its target (CACHEDIR.TAG) is ever emptied,
# and the caller holds the cache's lock (.ci/run), so no build is using it.
set -euo pipefail
target=$1
min_gib=${2:-${ENTRADA_CI_MIN_FREE_GIB:-25}}
[[ "$min_gib" =~ ^[0-9]+$ ]] || { echo "ci-disk: MIN_FREE_GIB must be a whole number, not $min_gib" >&2; exit 2; }
free_kib() { df -P -k "$target" | awk 'NR == 2 { print $4 }'; }
want_kib=$((min_gib * 1024 * 1024))

have=$(free_kib)
echo "build cache $target: $(du -sh "$target" 2>/dev/null | cut -f1) used, $((have / 1024 / 1024)) GiB free on its disk (want $min_gib)" >&2
(( have >= want_kib )) && exit 0
real=$(realpath "$target")
if [[ "$real" == / || ! -f "$real/CACHEDIR.TAG" ]]; then
  echo "warning: low disk, but $target is not a cargo target folder (no CACHEDIR.TAG): nothing removed" >&2
  exit 0
fi
# Incremental data, then each profile's folder (each rebuilds from scratch if
# removed), the largest last.
for part in debug/incremental release/incremental doc tmp debug release dist; do
  [[ -e "$real/$part" ]] || continue
  echo "low disk: removing $real/$part ($(du -sh "$real/$part" | cut -f1))" >&2
  rm -rf "${real:?}/$part"
  have=$(free_kib)
  (( have >= want_kib )) && exit 0
done
echo "warning: only $((have / 1024 / 1024)) GiB free on the disk of $target after emptying the build cache" >&2
