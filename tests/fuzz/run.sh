#!/usr/bin/env bash
# Run every libFuzzer target for N seconds on its seed corpus.
# usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]   (BUILD_DIR from the fuzz preset)
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [SECONDS]}
secs=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
found=0
for bin in "$build"/tests/fuzz_*; do
  [ -x "$bin" ] || continue
  found=1
  name=$(basename "$bin")
  what=${name#fuzz_}
  mkdir -p "$work/$what"
  seeds=()
  [ -d "$src/corpus/$what" ] && seeds=("$src/corpus/$what")
  echo "-- $name for ${secs}s"
  "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/$what/" \
    "$work/$what" "${seeds[@]}" 2>&1 | tail -n 3
done
[ "$found" -eq 1 ] || { echo "no fuzz targets in $build/tests" >&2; exit 1; }
