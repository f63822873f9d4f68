#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time (default 20 s).
# Skipped, with a message, where clang is not installed.
set -euo pipefail
seconds=${1:-20}
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not found; skipping the fuzz targets"
    exit 0
fi
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DTL_FUZZ=ON -DTL_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" >/dev/null
shopt -s nullglob
for target in build-fuzz/fuzz/fuzz_*; do
    [[ -x "$target" ]] || continue
    name=$(basename "$target")
    corpus="fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    seeds=()
    [[ -d "$corpus" ]] && seeds=("$corpus")
    echo "fuzz: $name for ${seconds}s"
    if ! "$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
        -artifact_prefix="$work/" "$work" "${seeds[@]}" >"$work/log" 2>&1; then
        tail -n 40 "$work/log"
        echo "fuzz: $name found a failure; the input is in $work" >&2
        exit 1
    fi
    grep -E '^(Done|#[0-9]+.*DONE)' "$work/log" | tail -n 1 || true
    rm -rf "$work"
done
