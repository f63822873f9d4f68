#!/usr/bin/env python3
"""The validating admission webhook over HTTPS, as the API server would call it: a valid
policy is allowed, an invalid one refused with the field named, a policy outside the operator's
namespace that reaches other namespaces refused, and a body that is no AdmissionReview gets a
400."""
import json
import os
import ssl
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PATH = "/validate/tailor.dev/v1alpha1/optimizationpolicies"


def review(ns, spec):
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "CREATE", "namespace": ns,
                        "object": {"apiVersion": "tailor.dev/v1alpha1",
                                   "kind": "OptimizationPolicy",
                                   "metadata": {"name": "p", "namespace": ns}, "spec": spec}}}


class WebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ApiServer()
        cls.server.install()
        d = cls.server.dir
        cls.cert, cls.key = os.path.join(d, "hook.crt"), os.path.join(d, "hook.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=tailor-webhook", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", cls.key, "-out", cls.cert], check=True, capture_output=True)
        cls.addr = "127.0.0.1:%d" % harness.free_port()
        cls.tailor = harness.Tailor(cls.server, "--webhook-bind-address", cls.addr,
                                    "--webhook-cert-file", cls.cert, "--webhook-key-file",
                                    cls.key)
        harness.wait_for(lambda: "serving the admission webhook" in cls.tailor.output(),
                         what="the webhook")

    @classmethod
    def tearDownClass(cls):
        cls.tailor.stop()
        cls.server.stop()

    def post(self, body):
        ctx = ssl.create_default_context(cafile=self.cert)
        req = urllib.request.Request("https://%s%s" % (self.addr, PATH), data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def test_valid_policy_is_allowed(self):
        code, out = self.post(json.dumps(review("shop", {"selector": {}})).encode())
        self.assertEqual(code, 200)
        self.assertEqual(out["response"], {"uid": "u-1", "allowed": True})

    def test_invalid_policy_is_refused_naming_the_field(self):
        code, out = self.post(json.dumps(review(
            "shop", {"resources": {"memory": {"percentile": 20}}})).encode())
        self.assertEqual(code, 200)
        self.assertFalse(out["response"]["allowed"])
        self.assertIn("spec.resources.memory.percentile", out["response"]["status"]["message"])

    def test_scope_is_enforced(self):
        code, out = self.post(json.dumps(review("shop", {"namespaceSelector": {}})).encode())
        self.assertFalse(out["response"]["allowed"])
        self.assertIn("operator's namespace", out["response"]["status"]["message"])

    def test_garbage_is_a_400(self):
        code, _ = self.post(b"{not json")
        self.assertEqual(code, 400)

    def test_webhook_needs_its_certificate(self):
        res = subprocess.run([os.environ.get("TAILOR_BIN", "build/controller/tailor"), "run",
                              "--webhook-bind-address", ":9443"], capture_output=True, text=True)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--webhook-cert-file", res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
