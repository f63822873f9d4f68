#!/usr/bin/env python3
"""The operator's REST API (docs/api-http.md) on the demo cluster: the local API server with
the demo scenario and sample policies, a real Prometheus with 7 days of history, and `tailor
run` serving HTTP. Every endpoint is hit: the list and each filter, one Recommendation,
policies, the summary (with a NodePool plan), usage history, the OpenAPI document, the
WebSocket, and approvals as the cluster's RBAC allows them (TokenReview + SubjectAccessReview
on the local API server). A second operator with --api-auth=reads checks that reads then need a
token too."""
import base64
import json
import os
import socket
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "apiserver"))
import harness  # noqa: E402
import promlib  # noqa: E402
import yaml  # noqa: E402

SCENARIO = "e2e/scenarios/demo.yaml"
USERS = ("shop/approver", "shop/viewer", "shop/outsider")

# The approver may patch Recommendations in shop only; the viewer may read them everywhere
# (the aggregated tailor-view role); the outsider may do nothing.
RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: approver, namespace: shop}
rules:
- apiGroups: [tailor.dev]
  resources: [recommendations]
  verbs: [get, list, watch, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: approver, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: approver}
subjects: [{kind: ServiceAccount, name: approver, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tailor-e2e-viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tailor-view}
subjects: [{kind: ServiceAccount, name: viewer, namespace: shop}]
"""

# A NodePool Recommendation as the NodePool planner writes one (the controller leaves
# Recommendations of other targets alone), so the summary has a plan to show.
NODEPOOL_REC = """
apiVersion: tailor.dev/v1alpha1
kind: Recommendation
metadata: {name: nodepool-general, namespace: tailor-system}
spec:
  targetRef: {apiVersion: karpenter.sh/v1, kind: NodePool, name: general}
  policyRef: {name: cluster-nodepools, namespace: tailor-system}
"""
NODEPOOL_STATUS = {"status": {
    "revision": 1, "phase": "Pending", "savings": {"monthlyUSD": "120.50"},
    "nodePool": {"nodes": {"current": 6, "proposed": 4},
                 "monthlyCost": {"current": "900.00", "proposed": "779.50"},
                 "current": {"instanceTypes": ["m5.2xlarge"], "capacityTypes": ["on-demand"]},
                 "proposed": {"instanceTypes": ["m6i.xlarge", "m6a.xlarge"],
                              "capacityTypes": ["on-demand", "spot"]}}}}


class Demo:
    """The demo cluster with the sample policies, users with tokens, and tailor serving HTTP.
    Used by this file and by test_dashboard.py."""

    def __init__(self, prometheus=True, tailor_args=()):
        self.prom = None
        if prometheus:
            self.prom = promlib.Prometheus(os.path.join(harness.ROOT, SCENARIO), history="7d",
                                           step="1m")
            self.prom.__enter__()
        self.keys = tempfile.mkdtemp(prefix="tailor-e2e-users-")
        extra = []
        for user in USERS:
            extra += ["--sa-kubeconfig", "%s=%s" % (user, self.kubeconfig(user))]
        self.server = harness.ApiServer(scenario=SCENARIO, extra=extra)
        self.server.install()
        self.server.kubectl("apply", "-k", os.path.join(harness.ROOT, "config/samples"))
        self.server.kubectl("apply", "-f", "-", input=RBAC)
        args = list(tailor_args)
        if self.prom:
            args += ["--prometheus-url", self.prom.url]
        self.tailor = harness.Tailor(self.server, *args, http=True)
        self.url = self.tailor.api_url

    def kubeconfig(self, user):
        return os.path.join(self.keys, user.replace("/", "-") + ".kubeconfig")

    def token(self, user):
        with open(self.kubeconfig(user)) as f:
            return yaml.safe_load(f)["users"][0]["user"]["token"]

    def wait_analyzed(self, count=35):
        """Waits until every Recommendation has usage advice; returns them by ns/name."""
        def ready():
            items = self.server.get_json("rec", "-A")["items"]
            if len(items) < count:
                return None
            if any(r.get("status", {}).get("confidence") in (None, "None") for r in items
                   if r["spec"]["targetRef"]["kind"] != "NodePool"):
                return None
            return {r["metadata"]["namespace"] + "/" + r["metadata"]["name"]: r for r in items}
        return harness.wait_for(ready, timeout=120, interval=1, what="every Recommendation analyzed")

    def stop(self):
        self.tailor.stop()
        self.server.stop()
        if self.prom:
            self.prom.__exit__(None, None, None)


def answers(url, token=None):
    """The status of a GET, or None while nothing listens yet."""
    try:
        return call(url, token=token)[0]
    except urllib.error.URLError:
        return None


def call(url, method="GET", body=None, token=None, raw=None):
    """(status, headers, parsed JSON body) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, res.headers, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, e.headers, json.loads(text) if text else None


class WebSocket:
    """A minimal RFC 6455 client: enough to read the server's text messages."""

    def __init__(self, url, path, token=None):
        host, port = url.replace("http://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        head = ("GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, host, port, key))
        if token:
            head += "Authorization: Bearer %s\r\n" % token
        self.sock.sendall((head + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        response, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(response.split()[1])

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("WebSocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def message(self):
        """The next text message, parsed as JSON."""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            payload = self._read(n)
            if b0 & 0x0F == 1:
                return json.loads(payload)

    def close(self):
        self.sock.close()


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.demo = Demo()
        cls.demo.server.kubectl("apply", "-f", "-", input=NODEPOOL_REC)
        cls.demo.server.kubectl("patch", "rec", "-n", "tailor-system", "nodepool-general",
                                "--subresource=status", "--type", "merge", "-p",
                                json.dumps(NODEPOOL_STATUS))
        cls.recs = cls.demo.wait_analyzed()
        cls.url = cls.demo.url
        harness.wait_for(lambda: call(cls.url + "/api/v1/summary")[2]["recommendations"] ==
                         len(cls.kubectl_recs()), what="the API to see every Recommendation")

    @classmethod
    def tearDownClass(cls):
        cls.demo.stop()

    @classmethod
    def kubectl_recs(cls):
        items = cls.demo.server.get_json("rec", "-A")["items"]
        return {r["metadata"]["namespace"] + "/" + r["metadata"]["name"]: r for r in items}

    def get(self, path, status=200):
        code, _, body = call(self.url + path)
        self.assertEqual(code, status, "%s: %s" % (path, body))
        return body

    def names(self, body):
        return {i["namespace"] + "/" + i["name"] for i in body["items"]}

    # ---- reads ----

    def test_list_has_every_recommendation_sorted_by_savings(self):
        body = self.get("/api/v1/recommendations")
        self.assertEqual(self.names(body), set(self.kubectl_recs()))
        self.assertEqual(body["count"], len(body["items"]))
        savings = [i["savings"] for i in body["items"]]
        self.assertEqual(savings, sorted(savings, reverse=True))
        web = next(i for i in body["items"] if i["name"] == "deployment-web")
        rec = self.recs["shop/deployment-web"]
        self.assertEqual(web["target"], {"kind": "Deployment", "name": "web"})
        self.assertEqual(web["policy"], "shop/web-rightsizing")
        self.assertEqual(web["revision"], rec["status"]["revision"])
        self.assertEqual(web["confidence"], rec["status"]["confidence"])
        self.assertEqual(web["explanation"], rec["status"]["explanation"])
        self.assertEqual(web["display"]["cpu"], rec["status"]["display"]["cpu"])
        self.assertEqual(web["display"]["memory"], rec["status"]["display"]["memory"])
        self.assertAlmostEqual(web["savings"], float(rec["status"]["savings"]["monthlyUSD"]))
        for key in ("phase", "approvedRevision"):
            self.assertIn(key, web)

    def test_list_filters(self):
        recs = self.kubectl_recs()
        shop = self.get("/api/v1/recommendations?namespace=shop")
        self.assertEqual(self.names(shop), {k for k in recs if k.startswith("shop/")})
        pending = self.get("/api/v1/recommendations?phase=pending")
        self.assertTrue(pending["items"])
        self.assertTrue(all(i["phase"] == "Pending" for i in pending["items"]))
        self.assertEqual(self.names(pending), {k for k, r in recs.items()
                                               if r.get("status", {}).get("phase") == "Pending"})
        by_policy = self.get("/api/v1/recommendations?policy=shop/web-rightsizing")
        self.assertEqual(self.names(by_policy), {k for k, r in recs.items()
                                                 if r["spec"]["policyRef"]["name"] ==
                                                 "web-rightsizing"})
        self.assertEqual(self.names(self.get("/api/v1/recommendations?policy=web-rightsizing")),
                         self.names(by_policy))
        rich = self.get("/api/v1/recommendations?minSavings=20")
        self.assertEqual(self.names(rich), {
            k for k, r in recs.items()
            if float(r.get("status", {}).get("savings", {}).get("monthlyUSD", "0")) >= 20})
        self.assertTrue(0 < rich["count"] < len(recs))
        both = self.get("/api/v1/recommendations?namespace=shop&minSavings=20")
        self.assertEqual(self.names(both), self.names(shop) & self.names(rich))
        self.assertIn("minSavings", self.get("/api/v1/recommendations?minSavings=lots",
                                             400)["message"])

    def test_one_recommendation_has_the_whole_status(self):
        body = self.get("/api/v1/recommendations/data/statefulset-zookeeper")
        rec = self.kubectl_recs()["data/statefulset-zookeeper"]
        self.assertEqual(body["status"]["containers"], rec["status"]["containers"])
        self.assertEqual(body["status"]["revision"], rec["status"]["revision"])
        self.assertEqual(body["target"]["kind"], "StatefulSet")
        missing = self.get("/api/v1/recommendations/data/nothing-here", 404)
        self.assertIn("nothing-here", missing["message"])

    def test_policies(self):
        body = self.get("/api/v1/policies")
        pols = self.demo.server.get_json("optpol", "-A")["items"]
        self.assertEqual({(p["namespace"], p["name"]) for p in body["items"]},
                         {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pols})
        web = next(p for p in body["items"] if p["name"] == "web-rightsizing")
        self.assertTrue(web["valid"])
        self.assertEqual(web["approvalMode"], "Manual")
        self.assertEqual(web["recommendations"], sum(
            1 for r in self.kubectl_recs().values()
            if r["spec"]["policyRef"]["name"] == "web-rightsizing"))
        self.assertIn("conditions", web["status"])

    def test_summary(self):
        body = self.get("/api/v1/summary")
        recs = self.kubectl_recs()
        savings = {k: float(r.get("status", {}).get("savings", {}).get("monthlyUSD", "0"))
                   for k, r in recs.items()}
        self.assertEqual(body["recommendations"], len(recs))
        self.assertAlmostEqual(body["monthlySavingsUSD"], sum(savings.values()), places=1)
        self.assertEqual(sum(body["byPhase"].values()), len(recs))
        shop = next(n for n in body["byNamespace"] if n["namespace"] == "shop")
        self.assertAlmostEqual(shop["monthlySavingsUSD"],
                               sum(v for k, v in savings.items() if k.startswith("shop/")),
                               places=1)
        ns_savings = [n["monthlySavingsUSD"] for n in body["byNamespace"]]
        self.assertEqual(ns_savings, sorted(ns_savings, reverse=True))
        self.assertIn("tailor-system/cluster-advise-only", [p["policy"] for p in body["byPolicy"]])
        # One entry per NodePool Recommendation (the injected one, and any the planner made),
        # with its plan as status.nodePool says.
        def pools_match():
            pools = {p["namespace"] + "/" + p["name"]: p
                     for p in self.get("/api/v1/summary")["nodePools"]}
            want = {k: r for k, r in self.kubectl_recs().items()
                    if r["spec"]["targetRef"]["kind"] == "NodePool"}
            if set(pools) != set(want):
                return None
            for k, r in want.items():
                self.assertEqual(pools[k]["target"]["kind"], "NodePool")
                self.assertEqual(pools[k]["plan"], r.get("status", {}).get("nodePool"))
            return pools
        pools = harness.wait_for(pools_match, what="the NodePool plans")
        self.assertIn("tailor-system/nodepool-general", pools)
        if pools["tailor-system/nodepool-general"]["plan"] == NODEPOOL_STATUS["status"]["nodePool"]:
            self.assertAlmostEqual(pools["tailor-system/nodepool-general"]["savings"], 120.5)

    def test_usage_history_is_downsampled_with_requests(self):
        body = self.get("/api/v1/workloads/shop/Deployment/web/usage?range=7d")
        self.assertLessEqual(body["points"], 500)
        self.assertGreater(body["points"], 400)
        self.assertEqual(len(body["timestamps"]), body["points"])
        self.assertEqual(body["timestamps"][1] - body["timestamps"][0], body["step"])
        self.assertGreaterEqual(body["step"], 7 * 86400 / 499)
        self.assertEqual(body["pods"], 3)
        nginx = next(c for c in body["containers"] if c["name"] == "nginx")
        for resource in ("cpu", "memory"):
            for column in ("max", "avg"):
                values = nginx[resource][column]
                self.assertEqual(len(values), body["points"])
                self.assertGreater(sum(v is not None for v in values), body["points"] * 0.9,
                                   (resource, column))
            peak = [v for v in nginx[resource]["max"] if v is not None]
            mean = [v for v in nginx[resource]["avg"] if v is not None]
            self.assertGreaterEqual(max(peak), max(mean))
        self.assertEqual(nginx["current"]["requests"]["cpu"], 1)
        rec = self.recs["shop/deployment-web"]["status"]["containers"][0]
        self.assertEqual(rec["name"], "nginx")
        self.assertGreater(nginx["recommended"]["requests"]["memory"], 0)
        self.assertLess(nginx["recommended"]["requests"]["cpu"], 1)
        # A day at the finest step that still fits in 500 points.
        day = self.get("/api/v1/workloads/shop/deployments/web/usage?range=1d")
        self.assertLessEqual(day["points"], 500)
        self.assertEqual(day["step"], 180)
        self.assertIn("range", self.get("/api/v1/workloads/shop/Deployment/web/usage?range=x",
                                         400)["message"])
        self.get("/api/v1/workloads/shop/Deployment/nothing/usage", 404)
        self.get("/api/v1/workloads/shop/CronJob/web/usage", 404)

    def test_openapi_lists_every_endpoint(self):
        doc = self.get("/api/v1/openapi.json")
        self.assertTrue(doc["openapi"].startswith("3."))
        self.assertEqual(set(doc["paths"]), {
            "/api/v1/recommendations", "/api/v1/recommendations/{namespace}/{name}",
            "/api/v1/recommendations/{namespace}/{name}/approve", "/api/v1/policies",
            "/api/v1/summary", "/api/v1/workloads/{namespace}/{kind}/{name}/usage",
            "/api/v1/openapi.json", "/api/v1/watch"})
        approve = doc["paths"]["/api/v1/recommendations/{namespace}/{name}/approve"]["post"]
        self.assertEqual(set(approve["responses"]),
                         {"200", "400", "401", "403", "404", "409", "502"})

    def test_dashboard_is_served(self):
        with urllib.request.urlopen(self.url + "/", timeout=10) as res:
            page = res.read().decode()
            csp = res.headers["Content-Security-Policy"]
        self.assertIn('<script src="/app.js"', page)
        self.assertIn("script-src 'self'", csp)
        for path in ("/app.js", "/style.css", "/vendor/uPlot.iife.min.js"):
            with urllib.request.urlopen(self.url + path, timeout=10) as res:
                self.assertGreater(len(res.read()), 1000, path)

    def test_watch_pushes_a_change(self):
        ws = WebSocket(self.url, "/api/v1/watch")
        try:
            self.assertEqual(ws.status, 101)
            self.demo.server.kubectl("patch", "rec", "-n", "search", "deployment-crawler",
                                     "--type", "merge", "-p",
                                     '{"metadata":{"annotations":{"e2e.tailor.dev/poke":"1"}}}')
            while True:
                msg = ws.message()
                if msg["name"] == "deployment-crawler":
                    break
            self.assertEqual(msg["type"], "changed")
            self.assertEqual(msg["namespace"], "search")
            for key in ("phase", "revision", "savings", "display", "approvedRevision"):
                self.assertIn(key, msg)
        finally:
            ws.close()

    # ---- approvals ----

    def approve(self, ns, name, body=None, token=None, raw=None):
        return call("%s/api/v1/recommendations/%s/%s/approve" % (self.url, ns, name), "POST",
                    body=body, token=token, raw=raw)

    def test_approve_needs_a_valid_token(self):
        code, headers, body = self.approve("shop", "deployment-catalog", {"revision": 1})
        self.assertEqual(code, 401, body)
        self.assertIn("Bearer", headers["WWW-Authenticate"])
        code, _, body = self.approve("shop", "deployment-catalog", {"revision": 1},
                                     token="not-a-token")
        self.assertEqual(code, 401, body)

    def test_approve_is_forbidden_without_patch_rights(self):
        rev = self.kubectl_recs()["shop/deployment-catalog"]["status"]["revision"]
        code, _, body = self.approve("shop", "deployment-catalog", {"revision": rev},
                                     token=self.demo.token("shop/viewer"))
        self.assertEqual(code, 403, body)
        self.assertIn("system:serviceaccount:shop:viewer", body["message"])
        # The approver's rights end at its namespace.
        rev = self.kubectl_recs()["data/statefulset-zookeeper"]["status"]["revision"]
        code, _, body = self.approve("data", "statefulset-zookeeper", {"revision": rev},
                                     token=self.demo.token("shop/approver"))
        self.assertEqual(code, 403, body)
        self.assertIn("system:serviceaccount:shop:approver", body["message"])
        spec = self.kubectl_recs()["shop/deployment-catalog"]["spec"]
        self.assertNotIn("approval", spec)

    def test_approve_rejects_bad_input(self):
        token = self.demo.token("shop/approver")
        rev = self.kubectl_recs()["shop/deployment-catalog"]["status"]["revision"]
        for raw in (b"{", b"[]", b"{}", b'{"revision":"2"}', b'{"revision":1.5}',
                    b'{"revision":0}', b""):
            code, _, body = self.approve("shop", "deployment-catalog", token=token, raw=raw)
            self.assertEqual(code, 400, (raw, body))
            self.assertIn("revision", body["message"], raw)
        code, _, body = self.approve("shop", "deployment-catalog", {"revision": rev - 1},
                                     token=token)
        self.assertEqual(code, 409, body)
        self.assertIn("current revision is %d" % rev, body["message"])
        code, _, body = self.approve("shop", "deployment-gone", {"revision": rev}, token=token)
        self.assertEqual(code, 404, body)
        self.assertNotIn("approval", self.kubectl_recs()["shop/deployment-catalog"]["spec"])

    def test_approve_as_an_allowed_user(self):
        rev = self.kubectl_recs()["shop/deployment-email-sender"]["status"]["revision"]
        code, _, body = self.approve("shop", "deployment-email-sender", {"revision": rev},
                                     token=self.demo.token("shop/approver"))
        self.assertEqual(code, 200, body)
        self.assertEqual(body["approvedRevision"], rev)
        self.assertEqual(body["approvedBy"], "system:serviceaccount:shop:approver")
        rec = self.kubectl_recs()["shop/deployment-email-sender"]
        self.assertEqual(rec["spec"]["approval"]["approvedRevision"], rev)
        self.assertEqual(rec["metadata"]["annotations"]["tailor.dev/approved-by"],
                         "system:serviceaccount:shop:approver")
        # The API's own view follows through the informer.
        harness.wait_for(lambda: self.get("/api/v1/recommendations/shop/deployment-email-sender")
                         ["approvedRevision"] == rev, what="the cache to see the approval")


class ReadAuthTest(unittest.TestCase):
    """--api-auth=reads: every read needs a token allowed to list Recommendations."""

    @classmethod
    def setUpClass(cls):
        cls.demo = Demo(prometheus=False, tailor_args=("--api-auth=reads",))
        cls.url = cls.demo.url
        harness.wait_for(lambda: answers(cls.url + "/api/v1/summary",
                                         token=cls.demo.token("shop/viewer")) == 200,
                         what="the API to answer")

    @classmethod
    def tearDownClass(cls):
        cls.demo.stop()

    def test_reads_need_an_allowed_token(self):
        for path in ("/api/v1/summary", "/api/v1/recommendations", "/api/v1/policies",
                     "/api/v1/recommendations/shop/deployment-web"):
            self.assertEqual(call(self.url + path)[0], 401, path)
            self.assertEqual(call(self.url + path, token="bogus")[0], 401, path)
            code, _, body = call(self.url + path, token=self.demo.token("shop/outsider"))
            self.assertEqual(code, 403, (path, body))
            self.assertIn("system:serviceaccount:shop:outsider", body["message"])
            code, _, body = call(self.url + path, token=self.demo.token("shop/viewer"))
            self.assertEqual(code, 200, (path, body))
        # The dashboard's files and the API description stay open.
        self.assertEqual(call(self.url + "/api/v1/openapi.json")[0], 200)

    def test_watch_needs_a_token_that_may_list(self):
        ws = WebSocket(self.url, "/api/v1/watch")
        self.assertEqual(ws.status, 401)
        ws.close()
        token = self.demo.token("shop/viewer")
        self.assertEqual(call(self.url + "/api/v1/recommendations", token=token)[0], 200)
        ws = WebSocket(self.url, "/api/v1/watch", token=token)
        self.assertEqual(ws.status, 101)
        ws.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
