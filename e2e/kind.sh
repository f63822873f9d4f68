#!/usr/bin/env bash
# Tailor on a local kind cluster, for anyone with Docker, kind and kubectl: creates the
# cluster, builds the image and loads it into the cluster, installs the CRDs, RBAC and the
# manager (config/default, with the image swapped for the local build), applies a demo
# workload and an advise-only policy, and waits for the first Recommendation.
#
#   e2e/kind.sh            # cluster "tailor"; KIND_CLUSTER=name to choose another
#
# Not run by ctest (it needs Docker and pulls images). Without Prometheus the advice has no
# usage history behind it (confidence None); docs/install.md says how to point Tailor at one.
set -euo pipefail

cluster=${KIND_CLUSTER:-tailor}
image=tailor:dev
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null || { echo "kind.sh: $tool is not on PATH" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$cluster"; then
    kind create cluster --name "$cluster" --wait 120s
fi
kubectl config use-context "kind-$cluster" >/dev/null

docker build -t "$image" "$root"
kind load docker-image "$image" --name "$cluster"

# config/default with the image replaced by the local build.
kubectl kustomize "$root/config/default" |
    sed -E "s#^( *image: )ghcr\.io/tailor-dev/tailor:.*#\1$image#" |
    kubectl apply --server-side -f -
kubectl wait --for=condition=Established --timeout=60s \
    crd/optimizationpolicies.tailor.dev crd/recommendations.tailor.dev
kubectl -n tailor-system rollout status deployment/tailor --timeout=180s

# A demo namespace with one over-provisioned Deployment and a policy that only advises.
kubectl apply --server-side -f - <<'YAML'
apiVersion: v1
kind: Namespace
metadata:
  name: tailor-demo
  labels: {team: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: tailor-demo
  labels: {tier: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
        resources:
          requests: {cpu: 500m, memory: 512Mi}
          limits: {memory: 512Mi}
---
apiVersion: tailor.dev/v1alpha1
kind: OptimizationPolicy
metadata:
  name: demo
  namespace: tailor-demo
spec:
  selector: {matchLabels: {tier: web}}
  workloadKinds: [Deployment]
  approval: {mode: "Off"}
YAML

echo "kind.sh: waiting for the Recommendation tailor-demo/deployment-web"
for _ in $(seq 60); do
    if kubectl -n tailor-demo get rec deployment-web >/dev/null 2>&1; then
        kubectl get optpol,rec -A
        echo "kind.sh: done. Delete the cluster with: kind delete cluster --name $cluster"
        exit 0
    fi
    sleep 5
done
echo "kind.sh: no Recommendation after 5 minutes; the controller says:" >&2
kubectl -n tailor-system logs deployment/tailor --tail=50 >&2 || true
kubectl -n tailor-demo get optpol demo -o yaml >&2 || true
exit 1
