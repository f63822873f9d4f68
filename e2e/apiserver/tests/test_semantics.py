"""Object semantics: metadata, status separation, generation, optimistic
concurrency, dryRun, finalizers, garbage collection, namespace deletion."""
import time
import unittest

from .helpers import ServerTestCase, deployment, owner_ref, pod

APPS = "/apis/apps/v1/namespaces/sem/deployments"


def wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class SemanticsTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.post("/api/v1/namespaces", {"metadata": {"name": "sem"}})

    def test_create_sets_metadata_and_rejects_duplicates(self):
        c = self.client
        status, obj, _ = c.post(APPS, deployment("meta"))
        self.assertEqual(status, 201, obj)
        md = obj["metadata"]
        self.assertRegex(md["uid"], r"^[0-9a-f-]{36}$")
        self.assertRegex(md["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(md["generation"], 1)
        self.assertEqual(int(md["resourceVersion"]), self.api.store.rv)
        self.assertNotIn("status", obj)
        self.assertEqual(obj["spec"]["strategy"]["type"], "RollingUpdate")   # defaulted
        status, err, _ = c.post(APPS, deployment("meta"))
        self.assertEqual((status, err["reason"]), (409, "AlreadyExists"))
        self.assertEqual(err["message"], 'deployments.apps "meta" already exists')
        self.assertEqual(err["details"], {"name": "meta", "group": "apps", "kind": "deployments"})

    def test_generate_name_and_missing_namespace(self):
        c = self.client
        status, obj, _ = c.post("/api/v1/namespaces/sem/configmaps",
                                {"metadata": {"generateName": "cfg-"}})
        self.assertEqual(status, 201)
        self.assertRegex(obj["metadata"]["name"], r"^cfg-[a-z0-9]{5}$")
        status, err, _ = c.post("/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "x"}})
        self.assertEqual((status, err["message"]), (404, 'namespaces "nope" not found'))
        status, err, _ = c.post("/api/v1/namespaces/sem/configmaps", {"metadata": {}})
        self.assertEqual(status, 422)
        self.assertIn("metadata.name: Required value", err["message"])

    def test_status_subresource_separation_and_generation(self):
        c = self.client
        _, obj, _ = c.post(APPS, deployment("gen"))
        # main resource: status is ignored, spec change bumps generation
        obj["spec"]["replicas"] = 3
        obj["status"] = {"replicas": 99}
        status, obj, _ = c.put(f"{APPS}/gen", obj)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["metadata"]["generation"], 2)
        self.assertNotIn("status", obj)
        # status subresource: only status changes, generation stays
        obj["status"] = {"replicas": 3, "readyReplicas": 2}
        obj["spec"]["replicas"] = 7
        status, obj, _ = c.put(f"{APPS}/gen/status", obj)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["status"]["readyReplicas"], 2)
        self.assertEqual(obj["spec"]["replicas"], 3)
        self.assertEqual(obj["metadata"]["generation"], 2)
        # metadata-only changes do not bump generation
        status, obj, _ = c.patch(f"{APPS}/gen", {"metadata": {"labels": {"x": "y"}}})
        self.assertEqual(obj["metadata"]["generation"], 2)
        # a no-op write keeps the resourceVersion
        rv = obj["metadata"]["resourceVersion"]
        status, obj, _ = c.patch(f"{APPS}/gen", {"metadata": {"labels": {"x": "y"}}})
        self.assertEqual(obj["metadata"]["resourceVersion"], rv)
        # scale subresource
        status, scale, _ = c.get(f"{APPS}/gen/scale")
        self.assertEqual((scale["kind"], scale["spec"]["replicas"]), ("Scale", 3))
        self.assertEqual(scale["status"]["selector"], "app=gen")
        scale["spec"]["replicas"] = 5
        status, scale, _ = c.put(f"{APPS}/gen/scale", scale)
        self.assertEqual(status, 200, scale)
        _, obj, _ = c.get(f"{APPS}/gen")
        self.assertEqual((obj["spec"]["replicas"], obj["metadata"]["generation"]), (5, 3))

    def test_stale_resource_version_conflicts(self):
        c = self.client
        _, obj, _ = c.post(APPS, deployment("occ"))
        stale = dict(obj)
        c.patch(f"{APPS}/occ", {"spec": {"replicas": 2}})
        status, err, _ = c.put(f"{APPS}/occ", stale)
        self.assertEqual((status, err["reason"]), (409, "Conflict"))
        self.assertEqual(err["message"], 'Operation cannot be fulfilled on deployments.apps "occ": '
                                         'the object has been modified; please apply your changes '
                                         'to the latest version and try again')
        del stale["metadata"]["resourceVersion"]     # unconditional update
        status, _, _ = c.put(f"{APPS}/occ", stale)
        self.assertEqual(status, 200)

    def test_dry_run(self):
        c = self.client
        status, obj, _ = c.post(APPS + "?dryRun=All", deployment("dry"))
        self.assertEqual(status, 201)
        self.assertEqual(c.get(f"{APPS}/dry")[0], 404)
        c.post(APPS, deployment("dry"))
        rv = self.api.store.rv
        c.patch(f"{APPS}/dry?dryRun=All", {"spec": {"replicas": 9}})
        c.delete(f"{APPS}/dry?dryRun=All")
        self.assertEqual(self.api.store.rv, rv)
        self.assertEqual(c.get(f"{APPS}/dry")[1]["spec"]["replicas"], 1)

    def test_finalizers_and_deletion_timestamp(self):
        c = self.client
        cm = {"metadata": {"name": "fin", "finalizers": ["example.com/keep"]}}
        c.post("/api/v1/namespaces/sem/configmaps", cm)
        status, obj, _ = c.delete("/api/v1/namespaces/sem/configmaps/fin")
        self.assertEqual(status, 200)
        self.assertIn("deletionTimestamp", obj["metadata"])
        status, obj, _ = c.get("/api/v1/namespaces/sem/configmaps/fin")
        self.assertEqual(status, 200)
        status, obj, _ = c.patch("/api/v1/namespaces/sem/configmaps/fin",
                                 {"metadata": {"finalizers": None}})
        self.assertEqual(status, 200)
        self.assertEqual(c.get("/api/v1/namespaces/sem/configmaps/fin")[0], 404)

    def test_garbage_collection_background_orphan_foreground(self):
        c = self.client
        _, owner, _ = c.post(APPS, deployment("owner"))
        ref = owner_ref(owner)
        for i in range(3):
            c.post("/api/v1/namespaces/sem/pods", pod(f"dep-{i}", owner=ref))
        _, other, _ = c.post("/api/v1/namespaces/sem/configmaps", {"metadata": {"name": "o2"}})
        shared = pod("shared", owner=ref)
        shared["metadata"]["ownerReferences"].append(
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "o2",
             "uid": other["metadata"]["uid"]})
        c.post("/api/v1/namespaces/sem/pods", shared)
        status, _, _ = c.delete(f"{APPS}/owner")
        self.assertEqual(status, 200)
        gone = lambda n: c.get(f"/api/v1/namespaces/sem/pods/{n}")[0] == 404  # noqa: E731
        self.assertTrue(wait_for(lambda: all(gone(f"dep-{i}") for i in range(3))))
        # a dependent with another live owner survives, minus the dangling reference
        self.assertTrue(wait_for(lambda: len(c.get("/api/v1/namespaces/sem/pods/shared")[1]
                                             ["metadata"]["ownerReferences"]) == 1))

        # Orphan: dependents keep living without the owner reference
        _, owner, _ = c.post(APPS, deployment("owner2"))
        c.post("/api/v1/namespaces/sem/pods", pod("orphan", owner=owner_ref(owner)))
        c.delete(f"{APPS}/owner2", {"propagationPolicy": "Orphan"})
        time.sleep(0.4)
        status, orphan, _ = c.get("/api/v1/namespaces/sem/pods/orphan")
        self.assertEqual(status, 200)
        self.assertNotIn("ownerReferences", orphan["metadata"])

        # Foreground: owner waits (deletionTimestamp + finalizer) until dependents are gone
        _, owner, _ = c.post(APPS, deployment("owner3"))
        c.post("/api/v1/namespaces/sem/pods", pod("fg", owner=owner_ref(owner)))
        status, obj, _ = c.delete(f"{APPS}/owner3?propagationPolicy=Foreground")
        self.assertIn("foregroundDeletion", obj["metadata"]["finalizers"])
        self.assertTrue(wait_for(lambda: gone("fg")))
        self.assertTrue(wait_for(lambda: c.get(f"{APPS}/owner3")[0] == 404))

    def test_dangling_owner_reference_is_collected(self):
        c = self.client
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost",
               "uid": "00000000-0000-0000-0000-000000000000"}
        c.post("/api/v1/namespaces/sem/pods", pod("dangling", owner=ref))
        self.assertTrue(wait_for(
            lambda: c.get("/api/v1/namespaces/sem/pods/dangling")[0] == 404))

    def test_namespace_deletion_deletes_contents(self):
        c = self.client
        c.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
        c.post("/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "a"}})
        c.post("/apis/apps/v1/namespaces/doomed/deployments", deployment("d"))
        status, ns, _ = c.delete("/api/v1/namespaces/doomed")
        self.assertEqual(ns["status"]["phase"], "Terminating")
        status, err, _ = c.post("/api/v1/namespaces/doomed/configmaps", {"metadata": {"name": "b"}})
        self.assertEqual(status, 403)
        self.assertIn("because it is being terminated", err["message"])
        self.assertTrue(wait_for(lambda: c.get("/api/v1/namespaces/doomed")[0] == 404))
        self.assertEqual(c.get("/api/v1/namespaces/doomed/configmaps/a")[0], 404)

    def test_pod_update_rules_and_resize(self):
        c = self.client
        p = pod("rs")
        p["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m"}}
        _, obj, _ = c.post("/api/v1/namespaces/sem/pods", p)
        self.assertEqual(obj["status"], {"phase": "Pending", "qosClass": "Burstable"})
        status, err, _ = c.patch("/api/v1/namespaces/sem/pods/rs", {"spec": {"containers": [
            {"name": "main", "resources": {"requests": {"cpu": "200m"}}}]}},
            ptype="application/strategic-merge-patch+json")
        self.assertEqual(status, 422)
        self.assertIn("pod updates may not change fields", err["message"])
        status, obj, _ = c.patch("/api/v1/namespaces/sem/pods/rs/resize", {"spec": {"containers": [
            {"name": "main", "resources": {"requests": {"cpu": "200m"}}}]}},
            ptype="application/strategic-merge-patch+json")
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["spec"]["containers"][0]["resources"]["requests"]["cpu"], "200m")

    def test_eviction_respects_pdb(self):
        c = self.client
        ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        for name in ("ev1", "ev2"):
            c.post("/api/v1/namespaces/sem/pods", pod(name, {"app": "ev"}))
            _, obj, _ = c.get(f"/api/v1/namespaces/sem/pods/{name}")
            obj["status"] = ready
            c.put(f"/api/v1/namespaces/sem/pods/{name}/status", obj)
        c.post("/apis/policy/v1/namespaces/sem/poddisruptionbudgets", {
            "metadata": {"name": "ev"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "ev"}}}})
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "ev1"}}
        status, _, _ = c.post("/api/v1/namespaces/sem/pods/ev1/eviction", eviction)
        self.assertEqual(status, 201)
        eviction["metadata"]["name"] = "ev2"
        status, err, resp = c.post("/api/v1/namespaces/sem/pods/ev2/eviction", eviction)
        self.assertEqual(status, 429)
        self.assertEqual(err["message"],
                         "Cannot evict pod as it would violate the pod's disruption budget.")


if __name__ == "__main__":
    unittest.main()
