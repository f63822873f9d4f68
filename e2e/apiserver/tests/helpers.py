"""Test helpers: an in-process server on 127.0.0.1:0 and a tiny HTTP client."""
import http.client
import json
import threading
import unittest

from e2e.apiserver.api import APIServer, Context
from e2e.apiserver.server import App, APIHTTPServer


class Client:
    def __init__(self, port, token, tls_context=None):
        self.port, self.token, self.tls_context = port, token, tls_context

    def _conn(self, timeout=10):
        if self.tls_context is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.tls_context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, content_type="application/json", headers=None,
                token=None):
        conn = self._conn()
        hdrs = {"Accept": "application/json"}
        tok = self.token if token is None else token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw
        return resp.status, data, resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body, ptype="application/merge-patch+json", **kw):
        return self.request("PATCH", path, body, content_type=ptype, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)

    def watch(self, path, timeout=5):
        """Open a watch; returns an iterator of decoded events and the connection."""
        conn = self._conn(timeout=timeout)
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        resp = conn.getresponse()
        return WatchStream(conn, resp)


class WatchStream:
    def __init__(self, conn, resp):
        self.conn, self.resp = conn, resp
        self.status = resp.status

    def next(self):
        line = self.resp.readline()
        if not line:
            return None
        return json.loads(line)

    def close(self):
        self.conn.close()


class ServerTestCase(unittest.TestCase):
    """Starts one plain-HTTP server per test class."""
    history = 1000
    bookmark_interval = 5.0

    @classmethod
    def setUpClass(cls):
        cls.api = APIServer(history_size=cls.history)
        cls.app = App(cls.api, bookmark_interval=cls.bookmark_interval)
        cls.server = APIHTTPServer(cls.app, 0, None)
        cls.thread = threading.Thread(target=cls.server.serve_forever,
                                      kwargs={"poll_interval": 0.05}, daemon=True)
        cls.thread.start()
        cls.token = cls.api.authn.admin_token()
        cls.client = Client(cls.server.port, cls.token)

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def sa_client(self, ns, name):
        self.api.ensure_service_account(ns, name)
        return Client(self.server.port, self.api.authn.token_for_service_account(ns, name))

    def create_ns(self, name):
        status, body, _ = self.client.post("/api/v1/namespaces", {"metadata": {"name": name}})
        self.assertIn(status, (201, 409), body)


def deployment(name, replicas=1, image="nginx:1.25", labels=None):
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def pod(name, labels=None, node=None, owner=None):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "labels": dict(labels or {})},
         "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}
    if node:
        p["spec"]["nodeName"] = node
    if owner:
        p["metadata"]["ownerReferences"] = [owner]
    return p


def owner_ref(obj, controller=True):
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": True}


def ctx(manager="test"):
    return Context(field_manager=manager)
