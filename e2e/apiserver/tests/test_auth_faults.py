"""Authentication, RBAC (allow/deny and the 403 message), access reviews,
impersonation, protobuf request bodies, discovery/OpenAPI, fault injection
and the debug endpoints."""
import time
import ssl
import threading
import unittest

from e2e.apiserver import certs, protobuf
from e2e.apiserver.api import APIServer
from e2e.apiserver.server import App, APIHTTPServer

from .helpers import Client, ServerTestCase, deployment


class RBACTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.client
        c.post("/api/v1/namespaces", {"metadata": {"name": "shop"}})
        c.post("/apis/apps/v1/namespaces/shop/deployments", deployment("web"))
        c.post("/apis/rbac.authorization.k8s.io/v1/namespaces/shop/roles", {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"],
                       "verbs": ["get", "list", "watch"]},
                      {"apiGroups": ["apps"], "resources": ["deployments/scale"],
                       "verbs": ["update"], "resourceNames": ["web"]}]})
        c.post("/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings", {
            "metadata": {"name": "tailor-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                        "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "tailor",
                          "namespace": "tailor-system"}]})

    def test_unauthenticated_is_401(self):
        status, body, _ = self.client.get("/api/v1/namespaces", token="")
        self.assertEqual((status, body["reason"]), (401, "Unauthorized"))
        status, _, _ = self.client.get("/api/v1/namespaces", token="bogus")
        self.assertEqual(status, 401)
        status, _, _ = self.client.get("/version", token="")
        self.assertEqual(status, 200)

    def test_rbac_allow_and_deny(self):
        sa = self.sa_client("tailor-system", "tailor")
        self.assertEqual(sa.get("/apis/apps/v1/namespaces/shop/deployments/web")[0], 200)
        self.assertEqual(sa.get("/apis")[0], 200)          # system:discovery
        status, err, _ = sa.patch("/apis/apps/v1/namespaces/shop/deployments/web",
                                  {"spec": {"replicas": 2}})
        self.assertEqual((status, err["reason"]), (403, "Forbidden"))
        self.assertEqual(err["message"],
                         'deployments.apps "web" is forbidden: User '
                         '"system:serviceaccount:tailor-system:tailor" cannot patch resource '
                         '"deployments" in API group "apps" in the namespace "shop"')
        status, err, _ = sa.get("/api/v1/namespaces/shop/pods")
        self.assertEqual(err["message"],
                         'pods is forbidden: User "system:serviceaccount:tailor-system:tailor" '
                         'cannot list resource "pods" in API group "" in the namespace "shop"')
        status, err, _ = sa.get("/api/v1/nodes")
        self.assertTrue(err["message"].endswith("at the cluster scope"))
        # subresource + resourceNames
        _, scale, _ = self.client.get("/apis/apps/v1/namespaces/shop/deployments/web/scale")
        self.assertEqual(sa.put("/apis/apps/v1/namespaces/shop/deployments/web/scale",
                                scale)[0], 200)
        self.assertEqual(sa.get("/apis/apps/v1/namespaces/default/deployments")[0], 403)

    def test_access_reviews(self):
        sa = self.sa_client("tailor-system", "tailor")

        def ssar(verb, resource="deployments", group="apps", ns="shop"):
            body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": {"verb": verb, "group": group,
                                                    "resource": resource, "namespace": ns}}}
            status, out, _ = sa.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                     body)
            self.assertEqual(status, 201)
            return out["status"]["allowed"]
        self.assertTrue(ssar("list"))
        self.assertFalse(ssar("delete"))
        status, out, _ = self.client.post(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"spec": {"user": "system:serviceaccount:tailor-system:tailor",
                      "groups": ["system:serviceaccounts"],
                      "resourceAttributes": {"verb": "watch", "group": "apps",
                                             "resource": "deployments", "namespace": "shop"}}})
        self.assertTrue(out["status"]["allowed"])
        status, out, _ = sa.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                                 {"spec": {"namespace": "shop"}})
        verbs = [r["verbs"] for r in out["status"]["resourceRules"]
                 if "deployments" in r["resources"]]
        self.assertIn(["get", "list", "watch"], verbs)
        status, out, _ = self.client.post("/apis/authentication.k8s.io/v1/tokenreviews",
                                          {"spec": {"token": sa.token}})
        self.assertEqual(out["status"]["user"]["username"],
                         "system:serviceaccount:tailor-system:tailor")
        self.assertIn("system:serviceaccounts:tailor-system", out["status"]["user"]["groups"])

    def test_impersonation(self):
        status, err, _ = self.client.patch(
            "/apis/apps/v1/namespaces/shop/deployments/web", {"spec": {"replicas": 2}},
            headers={"Impersonate-User": "system:serviceaccount:tailor-system:tailor"})
        self.assertEqual(status, 403)
        sa = self.sa_client("tailor-system", "tailor")
        status, _, _ = sa.get("/api/v1/namespaces",
                              headers={"Impersonate-User": "admin"})
        self.assertEqual(status, 403)

    def test_protobuf_bodies(self):
        def field(n, payload):
            return bytes([(n << 3) | 2, len(payload)]) + payload
        attrs = field(2, b"list") + field(3, b"apps") + field(5, b"deployments") + \
            field(1, b"shop")
        raw = field(2, field(1, attrs))
        body = protobuf.MAGIC + field(1, field(1, b"authorization.k8s.io/v1") +
                                      field(2, b"SelfSubjectAccessReview")) + field(2, raw)
        sa = self.sa_client("tailor-system", "tailor")
        status, out, _ = sa.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                 body, content_type="application/vnd.kubernetes.protobuf")
        self.assertEqual(status, 201, out)
        self.assertTrue(out["status"]["allowed"])
        self.assertEqual(out["spec"]["resourceAttributes"]["resource"], "deployments")


class DiscoveryTest(ServerTestCase):
    def test_legacy_and_aggregated_discovery(self):
        c = self.client
        _, v, _ = c.get("/version")
        self.assertEqual((v["major"], v["minor"]), ("1", "32"))
        _, api, _ = c.get("/api")
        self.assertEqual(api["versions"], ["v1"])
        _, core, _ = c.get("/api/v1")
        names = {r["name"]: r for r in core["resources"]}
        for n in ("pods", "pods/status", "pods/resize", "nodes", "namespaces", "events",
                  "configmaps", "secrets", "serviceaccounts", "services"):
            self.assertIn(n, names)
        self.assertEqual(names["pods"]["shortNames"], ["po"])
        _, apps, _ = c.get("/apis/apps/v1")
        names = {r["name"]: r for r in apps["resources"]}
        self.assertEqual(names["deployments/scale"]["kind"], "Scale")
        self.assertEqual(names["deployments/scale"]["group"], "autoscaling")
        status, agg, resp = c.get("/apis", headers={
            "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                      "application/json"})
        self.assertEqual(agg["kind"], "APIGroupDiscoveryList")
        self.assertIn("as=APIGroupDiscoveryList", resp.getheader("Content-Type"))
        groups = [g["metadata"]["name"] for g in agg["items"]]
        for g in ("apps", "autoscaling", "policy", "coordination.k8s.io", "events.k8s.io",
                  "rbac.authorization.k8s.io", "apiextensions.k8s.io", "metrics.k8s.io",
                  "authentication.k8s.io", "authorization.k8s.io", "karpenter.sh"):
            self.assertIn(g, groups)
        _, root, _ = c.get("/openapi/v3")
        self.assertIn("apis/apps/v1", root["paths"])
        _, doc, _ = c.get(root["paths"]["apis/apps/v1"]["serverRelativeURL"])
        patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
        self.assertIn("fieldValidation", [p["name"] for p in patch["parameters"]])

    def test_method_not_allowed(self):
        c = self.client
        status, err, _ = c.post("/api/v1/namespaces/default/configmaps/x", {})
        self.assertEqual((status, err["reason"]), (405, "MethodNotAllowed"))
        status, _, _ = c.delete("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/x")
        self.assertEqual(status, 405)
        status, _, _ = c.get("/apis/apps/v1/namespaces/default/nonsense")
        self.assertEqual(status, 404)

    def test_events_share_storage_between_api_groups(self):
        c = self.client
        c.post("/apis/events.k8s.io/v1/namespaces/default/events", {
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Resized", "note": "cpu 100m -> 200m", "type": "Normal",
            "reportingController": "tailor", "reportingInstance": "tailor-0",
            "action": "Resize", "eventTime": "2024-01-01T00:00:00.000000Z"})
        status, ev, _ = c.get("/api/v1/namespaces/default/events/e1")
        self.assertEqual(status, 200)
        self.assertEqual((ev["message"], ev["involvedObject"]["name"]),
                         ("cpu 100m -> 200m", "p"))
        _, lst, _ = c.get("/api/v1/namespaces/default/events?fieldSelector="
                          "involvedObject.name%3Dp")
        self.assertEqual(len(lst["items"]), 1)
        _, ev2, _ = c.get("/apis/events.k8s.io/v1/namespaces/default/events/e1")
        self.assertEqual((ev2["note"], ev2["apiVersion"]), ("cpu 100m -> 200m",
                                                            "events.k8s.io/v1"))


class FaultsAndDebugTest(ServerTestCase):
    def tearDown(self):
        self.client.post("/debug/faults?replace=true", {})

    def test_error_injection_with_retry_after(self):
        c = self.client
        status, cur, _ = c.post("/debug/faults", {"error-rate": 1, "error-codes": "429"})
        self.assertEqual(status, 200, cur)
        status, err, resp = c.get("/api/v1/namespaces")
        self.assertEqual((status, err["reason"]), (429, "TooManyRequests"))
        self.assertEqual(resp.getheader("Retry-After"), "1")
        self.assertEqual(c.get("/apis")[0], 200)              # discovery never fails
        c.post("/debug/faults", {"error-rate": 1, "error-codes": [500, 503],
                                 "error-scope": "writes"})
        self.assertEqual(c.get("/api/v1/namespaces")[0], 200)
        self.assertIn(c.post("/api/v1/namespaces", {"metadata": {"name": "f"}})[0], (500, 503))

    def test_bad_fault_spec_and_non_admin(self):
        self.assertEqual(self.client.post("/debug/faults", {"nope": 1})[0], 400)
        sa = self.sa_client("default", "someone")
        self.assertEqual(sa.post("/debug/faults", {"error-rate": 1})[0], 403)
        self.assertEqual(sa.get("/debug/requests")[0], 403)

    def test_request_log(self):
        c = self.client
        c.post("/debug/requests/reset", {})
        c.get("/api/v1/namespaces/default/configmaps?limit=1",
              headers={"User-Agent": "tailor/0.1"})
        c.get("/api/v1/namespaces/default/configmaps/missing")
        # A request is logged once its answer is on its way: under load the list's record may
        # land just after the next request's, so wait for both.
        deadline = time.time() + 5
        while True:
            _, log, _ = c.get("/debug/requests")
            if len(log) >= 2 or time.time() > deadline:
                break
            time.sleep(0.05)
        log.sort(key=lambda r: r["verb"] != "list")  # the list first, whatever landed first
        self.assertEqual([(r["verb"], r["resource"], r["namespace"], r["code"]) for r in log],
                         [("list", "configmaps", "default", 200),
                          ("get", "configmaps", "default", 404)])
        self.assertEqual(log[0]["user"], "admin")
        self.assertEqual(log[0]["userAgent"], "tailor/0.1")
        self.assertEqual(log[1]["name"], "missing")
        for key in ("time", "subresource"):
            self.assertIn(key, log[0])

    def test_close_watch_fault(self):
        c = self.client
        c.post("/debug/faults", {"close-watch": 0.3})
        w = c.watch("/api/v1/namespaces?watch=true&resourceVersion=" + str(self.api.store.rv))
        self.assertIsNone(w.next())     # closed by the server, no events
        w.close()


class TLSTest(unittest.TestCase):
    def test_https_with_generated_ca(self):
        tls, ca, _ = certs.generate()
        api = APIServer()
        server = APIHTTPServer(App(api), 0, tls)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            ctx = ssl.create_default_context(cadata=ca.decode())
            c = Client(server.port, api.authn.admin_token(), ctx)
            status, body, _ = c.get("/api/v1/namespaces/default")
            self.assertEqual((status, body["metadata"]["name"]), (200, "default"))
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    unittest.main()
