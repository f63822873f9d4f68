"""Patch formats (merge, JSON, strategic with merge keys and directives) and
server-side apply (conflicts, force, shared ownership, field removal)."""
import json
import unittest

from e2e.apiserver import managedfields, patches, typeinfo
from e2e.apiserver.resources import Registry

from .helpers import ServerTestCase, deployment

POD_TI = typeinfo.BuiltinTypeInfo(("", "pods"))
SSA = "application/apply-patch+yaml"
SMP = "application/strategic-merge-patch+json"


class PurePatchTest(unittest.TestCase):
    def test_merge_patch(self):
        self.assertEqual(patches.merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]},
                                             {"b": {"c": None, "e": 4}, "l": [3], "a": None}),
                         {"b": {"d": 3, "e": 4}, "l": [3]})

    def test_json_patch_ops_and_test_failure(self):
        doc = {"spec": {"replicas": 1, "list": [1, 2]}}
        out = patches.json_patch(doc, [
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copy"},
            {"op": "move", "from": "/spec/copy", "path": "/spec/moved"},
            {"op": "add", "path": "/metadata", "value": {"labels": {"a~b/c": "x"}}},
        ])
        self.assertEqual(out, {"spec": {"replicas": 2, "list": [2, 3], "moved": 2},
                               "metadata": {"labels": {"a~b/c": "x"}}})
        self.assertEqual(doc["spec"]["replicas"], 1)   # input untouched
        with self.assertRaises(patches.JSONPatchError) as cm:
            patches.json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 5}])
        self.assertIn("test failed", str(cm.exception))

    def test_strategic_merge_keys(self):
        spec = {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"},
                                                   {"name": "Y", "value": "2"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "b", "image": "b:1"}],
            "tolerations": [{"key": "k1"}], "volumes": [{"name": "v1", "emptyDir": {}}]}
        patch = {"containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "3"},
                                                   {"name": "X", "$patch": "delete"}],
             "ports": [{"containerPort": 81}]},
            {"name": "c", "image": "c:1"}],
            "tolerations": [{"key": "k2"}],
            "volumes": [{"name": "v2", "configMap": {"name": "cm"}}]}
        out = patches.strategic_merge_patch({"spec": spec}, {"spec": patch},
                                            typeinfo.BuiltinTypeInfo(("", "pods")))["spec"]
        self.assertEqual([c["name"] for c in out["containers"]], ["a", "b", "c"])
        a = out["containers"][0]
        self.assertEqual(a["image"], "a:2")
        self.assertEqual(a["env"], [{"name": "Y", "value": "3"}])
        self.assertEqual([p["containerPort"] for p in a["ports"]], [80, 81])
        self.assertEqual(out["tolerations"], [{"key": "k2"}])          # no merge key: replaced
        self.assertEqual([v["name"] for v in out["volumes"]], ["v1", "v2"])

    def test_strategic_directives(self):
        orig = {"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                         "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
        ti = typeinfo.BuiltinTypeInfo(("apps", "deployments"))
        out = patches.strategic_merge_patch(orig, {"spec": {
            "containers": [{"name": "z"}, {"$patch": "replace"}]}}, ti)
        self.assertEqual(out["spec"]["containers"], [{"name": "z"}])
        out = patches.strategic_merge_patch(orig, {"spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, ti)
        self.assertEqual(out["spec"]["strategy"], {"type": "Recreate"})
        out = patches.strategic_merge_patch(orig, {"spec": {"strategy": {"$patch": "delete"}}}, ti)
        self.assertNotIn("strategy", out["spec"])
        out = patches.strategic_merge_patch(orig, {"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "a", "image": "x"}]}}, ti)
        self.assertEqual([c["name"] for c in out["spec"]["containers"]], ["b", "a"])
        out = patches.strategic_merge_patch({"metadata": {"finalizers": ["a", "b"]}},
                                            {"metadata": {"$deleteFromPrimitiveList/finalizers":
                                                          ["a"]}}, ti)
        self.assertEqual(out["metadata"]["finalizers"], ["b"])


class FieldSetTest(unittest.TestCase):
    def test_fields_v1_format_round_trip(self):
        rt = Registry().get("apps", "deployments")
        ti = typeinfo.for_resource(rt)
        obj = deployment("web")
        obj["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
        fs = managedfields.field_set(obj, ti, "nostatus")
        v1 = managedfields.to_fields_v1(fs)
        self.assertEqual(v1["f:metadata"], {"f:labels": {".": {}, "f:app": {}}})
        container = v1["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']
        self.assertEqual(container["."], {})
        self.assertIn('k:{"containerPort":80,"protocol":"TCP"}', container["f:ports"])
        self.assertEqual(v1["f:spec"]["f:selector"], {})   # LabelSelector is atomic
        self.assertEqual(managedfields.from_fields_v1(v1), fs)
        path = (("f", "spec"), ("f", "template"), ("f", "spec"), ("f", "containers"),
                ("k", '{"name":"main"}'), ("f", "image"))
        self.assertEqual(managedfields.path_string(path),
                         '.spec.template.spec.containers[name="main"].image')


def apply_body(name, replicas=None, image="nginx:1.25", labels=None, extra_container=False):
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "main", "image": image}]}}}}
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    if labels:
        obj["metadata"]["labels"] = labels
    if extra_container:
        obj["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    return json.dumps(obj)


class HTTPPatchApplyTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.post("/api/v1/namespaces", {"metadata": {"name": "pa"}})

    def path(self, name, mgr, force=False):
        return (f"/apis/apps/v1/namespaces/pa/deployments/{name}?fieldManager={mgr}"
                + ("&force=true" if force else ""))

    def test_json_patch_failed_test_is_422(self):
        c = self.client
        c.post("/apis/apps/v1/namespaces/pa/deployments", json.loads(apply_body("jp", 1)))
        status, err, _ = c.patch("/apis/apps/v1/namespaces/pa/deployments/jp",
                                 [{"op": "test", "path": "/spec/replicas", "value": 9}],
                                 ptype="application/json-patch+json")
        self.assertEqual((status, err["reason"]), (422, "Invalid"))
        self.assertIn("test failed", err["details"]["causes"][0]["message"])
        status, err, _ = c.patch("/apis/apps/v1/namespaces/pa/deployments/jp", b"{not json",
                                 ptype="application/merge-patch+json")
        self.assertEqual(status, 400)
        status, err, _ = c.patch("/apis/apps/v1/namespaces/pa/deployments/jp", {},
                                 ptype="text/plain")
        self.assertEqual(status, 415)

    def test_apply_creates_and_conflicts_name_the_manager(self):
        c = self.client
        status, obj, _ = c.patch(self.path("ssa", "alice"), apply_body("ssa", 2), ptype=SSA)
        self.assertEqual(status, 201, obj)
        mf = obj["metadata"]["managedFields"]
        self.assertEqual([(m["manager"], m["operation"]) for m in mf], [("alice", "Apply")])
        status, err, _ = c.patch(self.path("ssa", "bob"), apply_body("ssa", 3), ptype=SSA)
        self.assertEqual((status, err["reason"]), (409, "Conflict"))
        self.assertEqual(err["message"],
                         'Apply failed with 1 conflict: conflict with "alice": .spec.replicas')
        self.assertEqual(err["details"]["causes"][0],
                         {"reason": "FieldManagerConflict", "message": 'conflict with "alice"',
                          "field": ".spec.replicas"})
        # same value: no conflict, shared ownership
        status, obj, _ = c.patch(self.path("ssa", "bob"), apply_body("ssa", 2), ptype=SSA)
        self.assertEqual(status, 200, obj)
        # force takes ownership away from alice
        status, obj, _ = c.patch(self.path("ssa", "bob", True), apply_body("ssa", 4), ptype=SSA)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["spec"]["replicas"], 4)
        owners = {m["manager"]: m["fieldsV1"] for m in obj["metadata"]["managedFields"]}
        self.assertNotIn("f:replicas", owners["alice"]["f:spec"])
        self.assertIn("f:replicas", owners["bob"]["f:spec"])

    def test_update_manager_conflict_and_multi_conflict_message(self):
        c = self.client
        c.post("/apis/apps/v1/namespaces/pa/deployments?fieldManager=kubectl-client-side-apply",
               json.loads(apply_body("upd", 1)))
        status, err, _ = c.patch(self.path("upd", "kubectl"), apply_body("upd", 5, "nginx:2"),
                                 ptype=SSA)
        self.assertEqual(status, 409)
        self.assertEqual(err["message"],
                         'Apply failed with 2 conflicts: conflicts with '
                         '"kubectl-client-side-apply" using apps/v1:\n- .spec.replicas\n'
                         '- .spec.template.spec.containers[name="main"].image')

    def test_apply_removes_fields_dropped_from_config(self):
        c = self.client
        c.patch(self.path("rm", "ci"), apply_body("rm", 2, labels={"a": "1", "b": "2"},
                                                  extra_container=True), ptype=SSA)
        c.patch(self.path("rm", "other"), json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "rm", "labels": {"b": "2"}}}), ptype=SSA)
        status, obj, _ = c.patch(self.path("rm", "ci"), apply_body("rm", None, labels={"a": "1"}),
                                 ptype=SSA)
        self.assertEqual(status, 200, obj)
        # replicas: owned only by ci, dropped -> removed, then defaulted again (to 1)
        self.assertEqual(obj["spec"]["replicas"], 1)
        # label b is still owned by "other" -> kept; the sidecar was ci's alone -> removed
        self.assertEqual(obj["metadata"]["labels"], {"a": "1", "b": "2"})
        self.assertEqual([x["name"] for x in obj["spec"]["template"]["spec"]["containers"]],
                         ["main"])

    def test_strategic_merge_on_custom_resource_is_415(self):
        c = self.client
        status, err, _ = c.patch("/apis/karpenter.sh/v1/nodepools/none", {"spec": {}}, ptype=SMP)
        self.assertEqual(status, 415)
        self.assertEqual(err["reason"], "UnsupportedMediaType")

    def test_patch_types_over_http(self):
        c = self.client
        c.post("/apis/apps/v1/namespaces/pa/deployments", json.loads(apply_body("pt", 1)))
        base = "/apis/apps/v1/namespaces/pa/deployments/pt"
        c.patch(base, {"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "busybox"}]}}}}, ptype=SMP)
        _, obj, _ = c.get(base)
        self.assertEqual([x["name"] for x in obj["spec"]["template"]["spec"]["containers"]],
                         ["main", "side"])
        c.patch(base, {"metadata": {"labels": {"by": "ua"}}, "spec": {"template": {"spec": {
            "containers": [{"name": "side", "image": "busybox"}]}}}},  # merge: list replaced
                headers={"User-Agent": "tailor-controller/0.1 (linux/amd64)"})
        _, obj, _ = c.get(base)
        self.assertEqual([x["name"] for x in obj["spec"]["template"]["spec"]["containers"]],
                         ["side"])
        # without ?fieldManager the manager is the user agent's product name
        mgrs = [m["manager"] for m in obj["metadata"]["managedFields"]]
        self.assertIn("tailor-controller", mgrs)


if __name__ == "__main__":
    unittest.main()
