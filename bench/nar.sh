#!/usr/bin/env bash
# NAR hashing benchmark (issue 2): in one run, hash the same trees with
# `cargohash nar-hash` and `nix hash path`, and measure the physical limit
# (one core's SHA-256 over the same number of bytes as the NAR stream).
#   (a) ~1 GB of realistic crate sources: copies of Debian's /usr/share/cargo/registry
#   (b) a few large files
# Prints times, ratios and cargohash's peak memory. Needs nix-bin and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/tmp/cargohash-bench-nar}
size_mb=${BENCH_SIZE_MB:-1000}
mkdir -p "$work"
go build -o "$work/cargohash" ./cmd/cargohash
go build -o "$work/sha256rate" ./bench/sha256rate

src=/usr/share/cargo/registry
[ -d "$src" ] || { echo "need Debian librust-*-dev packages in $src" >&2; exit 1; }
if [ ! -d "$work/a" ]; then
  mkdir -p "$work/a"
  per=$(du -sm "$src" | cut -f1); n=$(( (size_mb + per - 1) / per ))
  for i in $(seq 1 "$n"); do cp -a "$src" "$work/a/copy-$i"; done
fi
if [ ! -d "$work/b" ]; then
  mkdir -p "$work/b"
  for i in 1 2 3 4; do head -c $((256 << 20)) /dev/urandom > "$work/b/big-$i"; done
fi

nix() { command nix --extra-experimental-features nix-command "$@"; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }

for tree in a b; do
  dir="$work/$tree"
  files=$(find "$dir" -type f | wc -l)
  narbytes=$("$work/cargohash" nar-dump "$dir" | wc -c)
  tar cf - "$dir" > /dev/null # warm the page cache
  want=$(nix hash path "$dir"); got=$("$work/cargohash" nar-hash "$dir")
  [ "$want" = "$got" ] || { echo "hash differs on $tree: nix $want, cargohash $got" >&2; exit 1; }
  best_nix=999; best_ch=999
  for _ in 1 2 3; do
    t=$(secs nix hash path "$dir"); best_nix=$(echo "if ($t < $best_nix) $t else $best_nix" | bc)
    t=$(secs "$work/cargohash" nar-hash "$dir"); best_ch=$(echo "if ($t < $best_ch) $t else $best_ch" | bc)
  done
  rate=$("$work/sha256rate") # bytes/s of one core's crypto/sha256
  floor=$(echo "scale=3; $narbytes / $rate" | bc)
  mem=$( { /usr/bin/time -f '%M' "$work/cargohash" nar-hash "$dir" > /dev/null; } 2>&1 | tail -1)
  printf '(%s) %s files, NAR %d MB: nix hash path %.2fs, cargohash %.2fs (%.2fx faster), sha256 floor %.2fs (cargohash at %.0f%% of the limit), peak RSS %d MB\n' \
    "$tree" "$files" $((narbytes / 1000000)) "$best_nix" "$best_ch" "$(echo "scale=3; $best_nix / $best_ch" | bc)" \
    "$floor" "$(echo "scale=1; 100 * $floor / $best_ch" | bc)" $((mem / 1024))
done
