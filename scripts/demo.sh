#!/usr/bin/env bash
# `make demo`: runs what exists of the demo today and says plainly what does not exist yet.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/controller/tailor
echo "== tailor: $("$bin" version)"
echo
if [[ -x e2e/apiserver/serve && -f e2e/scenarios/demo.yaml ]]; then
    work=$(mktemp -d)
    trap 'kill "${server_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
    e2e/apiserver/serve --port 0 --scenario e2e/scenarios/demo.yaml \
        --kubeconfig "$work/kubeconfig" >"$work/ready" 2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 1 100); do
        grep -q '^ready ' "$work/ready" 2>/dev/null && break
        sleep 0.2
    done
    if ! grep -q '^ready ' "$work/ready"; then
        echo "the local API server did not start; its log:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    echo "== local API server with the demo scenario: $(cut -d' ' -f2 "$work/ready")"
    KUBECONFIG="$work/kubeconfig" kubectl get nodes -L node.kubernetes.io/instance-type,karpenter.sh/nodepool
    echo
    KUBECONFIG="$work/kubeconfig" kubectl get deployments,statefulsets,daemonsets -A
    echo
fi
cat <<'MSG'
== not there yet:
   - the controller (`tailor run`): policies, Recommendations, remediation
   - Prometheus history and the recommender
   - the dashboard
The demo grows as these land; see README.md for the plan.
MSG
