#!/usr/bin/env bash
# Run every libFuzzer target for N seconds on its seed corpus.
# usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]   (BUILD_DIR from the fuzz preset)
# New corpus entries go to a scratch folder; crashers are kept in
# BUILD_DIR/fuzz-artifacts/<target>/ (add them to tests/fuzz/corpus/<target>/
# once fixed, so the replay tests keep them).
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
  artifacts="$build/fuzz-artifacts/$what"
  mkdir -p "$work/$what" "$artifacts"
  seeds=()
  [ -d "$src/corpus/$what" ] && seeds=("$src/corpus/$what")
  echo "-- $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$artifacts/" \
      "$work/$what" "${seeds[@]}" >"$work/$what.log" 2>&1; then
    tail -n 40 "$work/$what.log"
    echo "$name FAILED; artifacts in $artifacts" >&2
    exit 1
  fi
  tail -n 3 "$work/$what.log"
done
[ "$found" -eq 1 ] || { echo "no fuzz targets in $build/tests" >&2; exit 1; }
