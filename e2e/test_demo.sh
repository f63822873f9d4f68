#!/usr/bin/env bash
# `make demo` as README gives it, non-interactively: it must print the Recommendations and stop
# everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
DEMO_ONESHOT=1 TAILOR_BIN="${TAILOR_BIN:?}" TAILOR_BUILD_DIR="${TAILOR_BUILD_DIR:?}" \
    timeout 400 python3 e2e/demo.py >"$out" 2>&1 || { cat "$out"; echo "FAIL: demo exited $?"; exit 1; }
for expect in "deployment-web" "statefulset-zookeeper" "daemonset-fluent-bit" "SAVINGS/MO" \
    "export KUBECONFIG=" "cluster-advise-only"; do
    grep -q -- "$expect" "$out" || { cat "$out"; echo "FAIL: demo output lacks '$expect'"; exit 1; }
done
# Nothing of this run may be left: its API server (by its kubeconfig's directory) and its
# Prometheus (by its port). Other tests may run their own meanwhile.
kube_dir=$(sed -n 's/^  export KUBECONFIG=\(.*\)\/admin.kubeconfig$/\1/p' "$out")
prom_port=$(sed -n 's/^  Prometheus: http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$out")
[[ -n "$kube_dir" && -n "$prom_port" ]] || { cat "$out"; echo "FAIL: cannot read the demo's paths"; exit 1; }
if pgrep -f -- "$kube_dir" >/dev/null || pgrep -f -- "127.0.0.1:$prom_port" >/dev/null; then
    echo "FAIL: the demo left processes running"; exit 1
fi
echo "demo: printed the Recommendations and stopped cleanly"
