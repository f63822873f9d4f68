"""Lists: pagination with consistent snapshots and expiring continue tokens,
label and field selectors, resourceVersion semantics, Table output."""
import unittest

from e2e.apiserver import selection

from .helpers import ServerTestCase, pod


class SelectorTest(unittest.TestCase):
    def test_label_selector_operators(self):
        labels = {"app": "web", "tier": "front", "ver": "3"}
        cases = {
            "app=web": True, "app==web": True, "app!=web": False, "app!=db": True,
            "tier in (front,back)": True, "tier notin (front)": False, "app": True,
            "!app": False, "!missing": True, "missing": False, "app=web,tier=back": False,
            "env notin (prod)": True, "ver>2": True, "ver<2": False, "": True,
        }
        for text, expected in cases.items():
            self.assertEqual(selection.parse_label_selector(text).matches(labels), expected, text)

    def test_label_selector_object_form(self):
        sel = selection.from_label_selector_object(
            {"matchLabels": {"app": "web"},
             "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]},
                                  {"key": "canary", "operator": "DoesNotExist"}]})
        self.assertTrue(sel.matches({"app": "web", "tier": "front"}))
        self.assertFalse(sel.matches({"app": "web", "tier": "front", "canary": "1"}))
        self.assertEqual(selection.selector_object_to_string(
            {"matchLabels": {"b": "2", "a": "1"}}), "a=1,b=2")

    def test_field_selector(self):
        fs = selection.parse_field_selector("spec.nodeName=n1,status.phase!=Failed",
                                            ("", "pods"))
        self.assertTrue(fs.matches({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"},
                                    "status": {"phase": "Running"}}))
        self.assertFalse(fs.matches({"metadata": {"name": "p"}, "spec": {"nodeName": "n2"}}))
        with self.assertRaises(Exception) as cm:
            selection.parse_field_selector("spec.bogus=1", ("", "pods"))
        self.assertEqual(cm.exception.code, 400)


class ListHTTPTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.client
        c.post("/api/v1/namespaces", {"metadata": {"name": "l1"}})
        c.post("/api/v1/namespaces", {"metadata": {"name": "l2"}})
        for i in range(25):
            ns = "l1" if i % 2 else "l2"
            c.post(f"/api/v1/namespaces/{ns}/pods",
                   pod(f"p{i:02d}", {"app": "web" if i % 3 else "db", "idx": str(i)},
                       node=f"n{i % 4}"))

    def _names(self, body):
        return [i["metadata"]["name"] for i in body["items"]]

    def test_pagination_is_a_consistent_snapshot(self):
        c = self.client
        status, page, _ = c.get("/api/v1/namespaces/l1/pods?limit=5")
        self.assertEqual(status, 200)
        self.assertEqual(len(page["items"]), 5)
        self.assertEqual(page["metadata"]["remainingItemCount"], 7)
        seen = self._names(page)
        snapshot_rv = page["metadata"]["resourceVersion"]
        # changes after the first page are not visible in later pages
        c.post("/api/v1/namespaces/l1/pods", pod("p99"))
        _, victim, _ = c.get(f"/api/v1/namespaces/l1/pods/{seen[-1]}")
        c.delete(f"/api/v1/namespaces/l1/pods/{seen[-1]}")
        cont = page["metadata"]["continue"]
        while cont:
            status, page, _ = c.get(f"/api/v1/namespaces/l1/pods?limit=5&continue={cont}")
            self.assertEqual(status, 200, page)
            self.assertEqual(page["metadata"]["resourceVersion"], snapshot_rv)
            seen += self._names(page)
            cont = page["metadata"].get("continue")
        self.assertEqual(len(seen), 12)
        self.assertEqual(len(set(seen)), 12)
        self.assertEqual(seen, sorted(seen))
        self.assertNotIn("p99", seen)
        c.delete("/api/v1/namespaces/l1/pods/p99")
        c.post("/api/v1/namespaces/l1/pods", pod(seen[4], victim["metadata"]["labels"],
                                                 node=victim["spec"]["nodeName"]))

    def test_expired_continue_token_is_410(self):
        c = self.client
        _, page, _ = c.get("/api/v1/pods?limit=3")
        token = page["metadata"]["continue"]
        store = self.api.store
        for _ in range(store.SNAPSHOT_LIMIT + 1):   # push the snapshot out
            store.snapshot(("", "pods"), None)
        status, body, _ = c.get(f"/api/v1/pods?limit=3&continue={token}")
        self.assertEqual(status, 410)
        self.assertEqual(body["reason"], "Expired")

    def test_selectors(self):
        c = self.client
        _, body, _ = c.get("/api/v1/pods?labelSelector=app%3Ddb")
        self.assertEqual(len(body["items"]), 9)
        _, body, _ = c.get("/api/v1/pods?labelSelector=app%20in%20(db),idx%20notin%20(0,3)")
        self.assertEqual(len(body["items"]), 7)
        _, body, _ = c.get("/api/v1/namespaces/l2/pods?fieldSelector=spec.nodeName%3Dn0")
        self.assertTrue(all(i["spec"]["nodeName"] == "n0" for i in body["items"]))
        self.assertEqual(len(body["items"]), 7)
        _, body, _ = c.get("/api/v1/pods?fieldSelector=metadata.name%3Dp03,"
                           "metadata.namespace%3Dl1")
        self.assertEqual(self._names(body), ["p03"])
        status, body, _ = c.get("/api/v1/pods?fieldSelector=spec.nope%3D1")
        self.assertEqual(status, 400)
        self.assertEqual(body["reason"], "BadRequest")

    def test_list_resource_version_semantics(self):
        c = self.client
        _, body, _ = c.get("/api/v1/pods")
        rv = int(body["metadata"]["resourceVersion"])
        self.assertEqual(rv, self.api.store.rv)
        status, body, _ = c.get(f"/api/v1/pods?resourceVersion={rv + 1000}")
        self.assertEqual(status, 504)
        status, _, _ = c.get("/api/v1/pods?resourceVersion=0")
        self.assertEqual(status, 200)
        status, body, _ = c.get(f"/api/v1/pods?resourceVersion=1&resourceVersionMatch=Exact")
        self.assertEqual(status, 410)

    def test_table_output(self):
        status, table, _ = self.client.get(
            "/api/v1/namespaces/l1/pods",
            headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        self.assertEqual(status, 200)
        self.assertEqual(table["kind"], "Table")
        names = [c["name"] for c in table["columnDefinitions"]]
        self.assertEqual(names[:5], ["Name", "Ready", "Status", "Restarts", "Age"])
        row = table["rows"][0]
        self.assertEqual(row["cells"][1], "0/1")
        self.assertEqual(row["cells"][2], "Pending")
        self.assertEqual(row["object"]["kind"], "PartialObjectMetadata")


if __name__ == "__main__":
    unittest.main()
