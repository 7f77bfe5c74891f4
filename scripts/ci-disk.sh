#!/usr/bin/env bash
# Keeps the build cache from filling the disk: a linker that runs out of space
# while writing a memory-mapped output dies with SIGBUS, not a clear message.
# Usage: scripts/ci-disk.sh TARGET_DIR [MIN_FREE_GIB]
# Frees space in the cache, oldest kind of data first, until MIN_FREE_GIB
# (default 25) are free on its file system; says what it removed.
set -euo pipefail
target=$1
min_gib=${2:-${ENTRADA_CI_MIN_FREE_GIB:-25}}
free_gib() { df -P -BG "$target" | awk 'NR == 2 { sub("G", "", $4); print $4 }'; }

have=$(free_gib)
echo "build cache $target: $(du -sh "$target" 2>/dev/null | cut -f1) used, ${have} GiB free on its disk (want $min_gib)" >&2
(( have >= min_gib )) && exit 0
# Incremental data, then each profile's folder (each rebuilds from scratch if
# removed), the largest last.
for part in debug/incremental release/incremental doc tmp debug release dist; do
  [[ -e "$target/$part" ]] || continue
  echo "low disk: removing $target/$part ($(du -sh "$target/$part" | cut -f1))" >&2
  rm -rf "${target:?}/$part"
  have=$(free_gib)
  (( have >= min_gib )) && exit 0
done
echo "warning: only ${have} GiB free on the disk of $target after emptying the build cache" >&2
