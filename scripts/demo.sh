#!/usr/bin/env bash
# `make demo`: see e2e/demo.py. Uses the binary built by `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
export TAILOR_BIN="$PWD/build/controller/tailor"
export TAILOR_BUILD_DIR="$PWD/build"
exec python3 e2e/demo.py
