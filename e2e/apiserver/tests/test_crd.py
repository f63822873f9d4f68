"""CustomResourceDefinitions: serving on creation, discovery, schema
validation messages (422 with Kubernetes field paths), defaulting, pruning,
strict field validation, printer columns, status subresource, NodePool fixture."""
import unittest

from e2e.apiserver import crdschema, jsonpath

from .helpers import ServerTestCase

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object", "required": ["mode"],
            "properties": {
                "mode": {"type": "string", "enum": ["Off", "Recommend", "Auto"]},
                "name": {"type": "string", "minLength": 2, "maxLength": 5,
                         "pattern": "^[a-z]+$"},
                "targets": {"type": "array", "minItems": 1, "maxItems": 2,
                            "items": {"type": "string"}},
                "resources": {"type": "object", "properties": {"cpu": {"type": "object",
                              "properties": {"percentile": {"type": "integer", "minimum": 1,
                                                            "maximum": 100, "default": 95}}}}},
                "limit": {"x-kubernetes-int-or-string": True,
                          "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "maybe": {"type": "string", "nullable": True},
                "when": {"type": "string", "format": "date-time"},
            }},
        "status": {"type": "object", "properties": {"conditions": {"type": "array", "items": {
            "type": "object", "properties": {"type": {"type": "string"},
                                             "status": {"type": "string"}}}}}},
    },
}

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "policies.tailor.dev"},
    "spec": {"group": "tailor.dev", "scope": "Namespaced",
             "names": {"kind": "Policy", "plural": "policies", "singular": "policy",
                       "shortNames": ["pol"], "categories": ["tailor"]},
             "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "additionalPrinterColumns": [
                               {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                               {"name": "Pct", "type": "integer",
                                "jsonPath": ".spec.resources.cpu.percentile"},
                               {"name": "Ready", "type": "string",
                                "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                               {"name": "Age", "type": "date",
                                "jsonPath": ".metadata.creationTimestamp"}],
                           "schema": {"openAPIV3Schema": SCHEMA}}]}}


class SchemaTest(unittest.TestCase):
    def errors(self, spec):
        obj = {"apiVersion": "tailor.dev/v1alpha1", "kind": "Policy", "metadata": {},
               "spec": spec}
        crdschema.prune(obj, SCHEMA)
        crdschema.apply_defaults(obj, SCHEMA)
        return [str(e) for e in crdschema.validate(obj, SCHEMA)]

    def test_messages_match_kubernetes(self):
        self.assertEqual(self.errors({"mode": "Auto", "resources": {"cpu": {"percentile": 150}}}),
                         ["spec.resources.cpu.percentile: Invalid value: 150: "
                          "spec.resources.cpu.percentile in body should be less than or equal "
                          "to 100"])
        self.assertEqual(self.errors({}), ["spec.mode: Required value"])
        self.assertEqual(self.errors({"mode": "Bad"}),
                         ['spec.mode: Unsupported value: "Bad": supported values: "Off", '
                          '"Recommend", "Auto"'])
        self.assertEqual(self.errors({"mode": 3}),
                         ['spec.mode: Invalid value: "integer": spec.mode in body must be of '
                          'type string: "integer"'])
        self.assertEqual(self.errors({"mode": "Off", "name": "ABCDEFG"}),
                         ["spec.name: Too long: may not be longer than 5",
                          "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match "
                          "'^[a-z]+$'"])
        self.assertEqual(self.errors({"mode": "Off", "name": "a"}),
                         ['spec.name: Invalid value: "a": spec.name in body should be at least 2 '
                          'chars long'])
        self.assertEqual(self.errors({"mode": "Off", "targets": []}),
                         ["spec.targets: Invalid value: 0: spec.targets in body should have at "
                          "least 1 items"])
        self.assertEqual(self.errors({"mode": "Off", "targets": ["a", "b", "c"]}),
                         ["spec.targets: Too many: 3: must have at most 2 items"])
        self.assertEqual(self.errors({"mode": "Off", "when": "yesterday"}),
                         ['spec.when: Invalid value: "yesterday": spec.when in body must be of '
                          'type date-time: "yesterday"'])

    def test_int_or_string_nullable_preserve_defaults_pruning(self):
        self.assertEqual(self.errors({"mode": "Off", "limit": 3, "maybe": None,
                                      "free": {"any": {"thing": 1}}}), [])
        self.assertEqual(self.errors({"mode": "Off", "limit": "3Gi"}), [])
        self.assertEqual(len(self.errors({"mode": "Off", "limit": [1]})), 1)
        obj = {"spec": {"mode": "Off", "resources": {"cpu": {}}, "junk": 1,
                        "free": {"kept": True}}, "extra": 2}
        dropped = crdschema.prune(obj, SCHEMA)
        crdschema.apply_defaults(obj, SCHEMA)
        self.assertEqual(sorted(dropped), ["extra", "spec.junk"])
        self.assertEqual(obj["spec"]["resources"]["cpu"]["percentile"], 95)
        self.assertEqual(obj["spec"]["free"], {"kept": True})

    def test_jsonpath_filters(self):
        obj = {"status": {"conditions": [{"type": "A", "status": "False"},
                                         {"type": "Ready", "status": "True"}]},
               "metadata": {"labels": {"node.kubernetes.io/instance-type": "m5.large"}}}
        self.assertEqual(jsonpath.find(obj, jsonpath.compile_path(
            '.status.conditions[?(@.type=="Ready")].status')), ["True"])
        self.assertEqual(jsonpath.find(obj, jsonpath.compile_path(
            r".metadata.labels.node\.kubernetes\.io/instance-type")), ["m5.large"])
        self.assertEqual(jsonpath.find(obj, jsonpath.compile_path(
            "{.status.conditions[*].type}")), ["A", "Ready"])


class CRDHTTPTest(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.post("/api/v1/namespaces", {"metadata": {"name": "crd"}})
        status, body, _ = cls.client.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
        assert status == 201, body

    base = "/apis/tailor.dev/v1alpha1/namespaces/crd/policies"

    def test_crd_is_served_and_discoverable(self):
        status, crd, _ = self.client.get(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/policies.tailor.dev")
        conds = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        self.assertEqual(conds, {"NamesAccepted": "True", "Established": "True"})
        status, rl, _ = self.client.get("/apis/tailor.dev/v1alpha1")
        self.assertEqual(status, 200)
        res = {r["name"]: r for r in rl["resources"]}
        self.assertEqual(res["policies"]["shortNames"], ["pol"])
        self.assertEqual(res["policies"]["kind"], "Policy")
        self.assertIn("policies/status", res)
        _, groups, _ = self.client.get("/apis")
        self.assertIn("tailor.dev", [g["name"] for g in groups["groups"]])

    def test_validation_error_is_422_with_field_path(self):
        status, err, _ = self.client.post(self.base, {
            "apiVersion": "tailor.dev/v1alpha1", "kind": "Policy", "metadata": {"name": "bad"},
            "spec": {"mode": "Auto", "resources": {"cpu": {"percentile": 150}}}})
        self.assertEqual((status, err["reason"]), (422, "Invalid"))
        self.assertEqual(err["message"],
                         'Policy.tailor.dev "bad" is invalid: spec.resources.cpu.percentile: '
                         'Invalid value: 150: spec.resources.cpu.percentile in body should be '
                         'less than or equal to 100')
        self.assertEqual(err["details"]["causes"], [{
            "reason": "FieldValueInvalid", "field": "spec.resources.cpu.percentile",
            "message": "Invalid value: 150: spec.resources.cpu.percentile in body should be "
                       "less than or equal to 100"}])

    def test_strict_field_validation_and_pruning(self):
        body = {"apiVersion": "tailor.dev/v1alpha1", "kind": "Policy",
                "metadata": {"name": "strict"}, "spec": {"mode": "Off", "bogus": 1}}
        status, err, _ = self.client.post(self.base + "?fieldValidation=Strict", body)
        self.assertEqual(status, 400)
        self.assertIn('strict decoding error: unknown field "spec.bogus"', err["message"])
        status, obj, resp = self.client.post(self.base, body)
        self.assertEqual(status, 201)
        self.assertNotIn("bogus", obj["spec"])
        self.assertIn("unknown field", resp.getheader("Warning") or "")

    def test_printer_columns_and_status(self):
        c = self.client
        c.post(self.base, {"apiVersion": "tailor.dev/v1alpha1", "kind": "Policy",
                           "metadata": {"name": "cols"}, "spec": {"mode": "Auto"},
                           "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        _, obj, _ = c.get(self.base + "/cols")
        self.assertNotIn("status", obj)         # status is ignored on create
        obj["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
        status, obj, _ = c.put(self.base + "/cols/status", obj)
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["metadata"]["generation"], 1)
        status, table, _ = c.get(self.base, headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        self.assertEqual([d["name"] for d in table["columnDefinitions"]],
                         ["Name", "Mode", "Pct", "Ready", "Age"])
        row = next(r for r in table["rows"] if r["cells"][0] == "cols")
        # defaults apply only under an existing parent, so Pct is empty (<none>)
        self.assertEqual(row["cells"][1:4], ["Auto", None, "True"])
        self.assertRegex(row["cells"][4], r"^\d+s$")

    def test_nodepool_fixture_is_served(self):
        np = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "gp"},
              "spec": {"template": {"spec": {
                  "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                   "name": "default"},
                  "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In",
                                    "values": ["spot"], "minValues": 1}]}},
                  "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
                  "limits": {"cpu": "100"}, "weight": 5}}
        status, obj, _ = self.client.post("/apis/karpenter.sh/v1/nodepools", np)
        self.assertEqual(status, 201, obj)
        self.assertEqual(obj["spec"]["template"]["spec"]["expireAfter"], "720h")
        self.assertEqual(obj["spec"]["disruption"]["budgets"], [{"nodes": "10%"}])
        np["metadata"]["name"] = "bad"
        np["spec"]["disruption"]["consolidationPolicy"] = "Sometimes"
        status, err, _ = self.client.post("/apis/karpenter.sh/v1/nodepools", np)
        self.assertEqual(status, 422)
        self.assertIn('spec.disruption.consolidationPolicy: Unsupported value: "Sometimes"',
                      err["message"])
        status, _, _ = self.client.get("/apis/karpenter.sh/v1/nodeclaims")
        self.assertEqual(status, 200)

    def test_deleting_crd_removes_resource_and_objects(self):
        c = self.client
        crd = {**CRD, "metadata": {"name": "temps.tailor.dev"},
               "spec": {**CRD["spec"], "names": {"kind": "Temp", "plural": "temps"}}}
        self.assertEqual(c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                crd)[0], 201)
        c.post("/apis/tailor.dev/v1alpha1/namespaces/crd/temps",
               {"apiVersion": "tailor.dev/v1alpha1", "kind": "Temp", "metadata": {"name": "t"},
                "spec": {"mode": "Off"}})
        c.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/temps.tailor.dev")
        status, _, _ = c.get("/apis/tailor.dev/v1alpha1/namespaces/crd/temps")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
