#!/usr/bin/env bash
# The `tailor` command line: version, help, and exit code 2 with a clear message on misuse.
set -euo pipefail
bin=${TAILOR_BIN:?TAILOR_BIN must point at the built tailor binary}
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$bin" version) || fail "tailor version exited non-zero"
[[ "$out" =~ ^tailor\ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "unexpected version output: $out"

out=$("$bin" --help) || fail "tailor --help exited non-zero"
for cmd in run scan version; do
    grep -q "^  $cmd " <<<"$out" || fail "--help does not list '$cmd'"
done

set +e
err=$("$bin" --no-such-flag 2>&1 >/dev/null); rc=$?
set -e
[[ $rc -eq 2 ]] || fail "unknown flag exited $rc, want 2"
grep -q "unknown flag '--no-such-flag'" <<<"$err" || fail "unknown flag message: $err"

set +e
err=$("$bin" frobnicate 2>&1 >/dev/null); rc=$?
set -e
[[ $rc -eq 2 ]] || fail "unknown command exited $rc, want 2"
grep -q "unknown command 'frobnicate'" <<<"$err" || fail "unknown command message: $err"

set +e
"$bin" >/dev/null 2>&1; rc=$?
set -e
[[ $rc -eq 2 ]] || fail "no command exited $rc, want 2"
echo "cli: all checks passed"
