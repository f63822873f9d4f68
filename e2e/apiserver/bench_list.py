#!/usr/bin/env python3
"""Load benchmark for the local API server: loads N Deployments and M Pods
(in-process, through the same create path HTTP writes use), then times
lists over HTTP: full pod list, full deployment list, a paginated walk,
a label-selected list and a namespace list.  Prints one line per timing
and the process's peak memory.

    python3 e2e/apiserver/bench_list.py [--deployments 10000] [--pods 50000]
"""
import argparse
import http.client
import json
import os
import resource
import sys
import threading
import time

sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from e2e.apiserver.api import APIServer, Context  # noqa: E402
from e2e.apiserver.server import App, APIHTTPServer  # noqa: E402


def deployment(i, ns):
    name = f"app-{i}"
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "team": f"t{i % 7}"}},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{
                                      "name": "main", "image": "registry.local/app:1.0",
                                      "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                                    "limits": {"memory": "512Mi"}}}]}}}}


def pod(i, ns, owner):
    md = owner["metadata"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{md['name']}-{i}", "namespace": ns,
                         "labels": {"app": md["name"], "team": md["labels"]["team"]},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": md["name"], "uid": md["uid"],
                                              "controller": True}]},
            "spec": {"nodeName": f"node-{i % 200}",
                     "containers": [{"name": "main", "image": "registry.local/app:1.0",
                                     "resources": {"requests": {"cpu": "250m",
                                                                "memory": "256Mi"},
                                                   "limits": {"memory": "512Mi"}}}]}}


def timed_get(conn, path, token):
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}",
                                       "Accept": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    dt = time.perf_counter() - t0
    if resp.status != 200:
        raise SystemExit(f"GET {path}: {resp.status} {body[:200]!r}")
    return dt, body


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--deployments", type=int, default=10000)
    p.add_argument("--pods", type=int, default=50000)
    p.add_argument("--namespaces", type=int, default=20)
    args = p.parse_args()

    api = APIServer()
    ctx = Context(field_manager="bench")
    ns_rt = api.registry.get("", "namespaces")
    dep_rt = api.registry.get("apps", "deployments")
    pod_rt = api.registry.get("", "pods")
    namespaces = [f"bench-{i}" for i in range(args.namespaces)]
    for ns in namespaces:
        api.create(ns_rt, "", {"metadata": {"name": ns}}, ctx)

    t0 = time.perf_counter()
    deps = []
    for i in range(args.deployments):
        ns = namespaces[i % len(namespaces)]
        deps.append(api.create(dep_rt, ns, deployment(i, ns), ctx))
    t_dep = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(args.pods):
        owner = deps[i % len(deps)]
        api.create(pod_rt, owner["metadata"]["namespace"], pod(i, owner["metadata"]["namespace"],
                                                             owner), ctx)
    t_pod = time.perf_counter() - t0
    print(f"load: {args.deployments} deployments in {t_dep:.1f}s, {args.pods} pods in "
          f"{t_pod:.1f}s")

    app = App(api)
    server = APIHTTPServer(app, 0, None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = api.authn.admin_token()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)

    for label, path in [("list all pods", "/api/v1/pods"),
                        ("list all pods (again)", "/api/v1/pods"),
                        ("list all deployments", "/apis/apps/v1/deployments"),
                        ("list pods in one namespace", f"/api/v1/namespaces/{namespaces[0]}/pods"),
                        ("list pods labelSelector team=t3", "/api/v1/pods?labelSelector=team%3Dt3"),
                        ("list pods fieldSelector spec.nodeName=node-7",
                         "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-7")]:
        dt, body = timed_get(conn, path, token)
        items = len(json.loads(body)["items"])
        print(f"{label}: {dt * 1000:.0f} ms, {items} items, {len(body) / 1e6:.1f} MB")

    pages, items, cont, total = 0, 0, "", 0.0
    while True:
        dt, body = timed_get(conn, "/api/v1/pods?limit=500" + (f"&continue={cont}" if cont
                                                               else ""), token)
        total += dt
        # decode only the list header: the client-side JSON decoding of 500 pods is not
        # what this benchmark measures
        head = body[:body.index(b',"items":[')] + b"}"
        meta = json.loads(head)["metadata"]
        pages += 1
        items += body.count(b'"kind":"Pod"')
        cont = meta.get("continue")
        if not cont:
            break
    print(f"paginated pod list (limit=500): {total * 1000:.0f} ms in requests, "
          f"{pages} pages, {items} items")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")
    server.shutdown()


if __name__ == "__main__":
    main()
