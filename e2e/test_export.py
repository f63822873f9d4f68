#!/usr/bin/env python3
"""`tailor export` and the kubectl plugin on the demo cluster, with the operator running so the
Recommendations exist. Exported patches go through `kubectl kustomize` over the workloads as the
cluster has them and are applied with `kubectl apply -k`: the workloads then carry the
recommended values. The export itself runs as a ServiceAccount that may only read
Recommendations."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import promlib  # noqa: E402

SCENARIO = "e2e/scenarios/demo.yaml"
UNITS = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
READER = "export-test/reader"
READ_RECS = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: tailor-export-reader}
rules:
- apiGroups: [tailor.dev]
  resources: [recommendations]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tailor-export-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tailor-export-reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: export-test}
"""
# Fields the API server owns: a base made of live objects must not carry them.
SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
                 "selfLink")


def quantity(text):
    text = str(text)
    for suffix in ("Ki", "Mi", "Gi", "m", "k", "M", "G"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * UNITS[suffix]
    return float(text)


def clean(obj):
    obj.pop("status", None)
    meta = obj["metadata"]
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    meta.pop("annotations", None)
    return obj


def containers_of(obj):
    spec = obj["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("containers", []) + spec.get("initContainers", [])}


class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.binary = os.environ.get("TAILOR_BIN") or os.path.join(harness.ROOT,
                                                                  "build/controller/tailor")
        cls.tmp = tempfile.mkdtemp(prefix="tailor-export-")
        cls.reader = os.path.join(cls.tmp, "reader.kubeconfig")
        cls.prom = promlib.Prometheus(os.path.join(harness.ROOT, SCENARIO), history="7d",
                                      step="1m")
        cls.prom.__enter__()
        cls.server = harness.ApiServer(scenario=SCENARIO,
                                       extra=("--sa-kubeconfig", "%s=%s" % (READER, cls.reader)))
        cls.server.install()
        cls.server.kubectl("apply", "-k", os.path.join(harness.ROOT, "config/samples"))
        cls.server.kubectl("apply", "-f", "-", input=READ_RECS)
        cls.tailor = harness.Tailor(cls.server, "--prometheus-url", cls.prom.url)
        harness.wait_for(cls.analyzed, timeout=90, interval=1, what="Recommendations analyzed")
        cls.env = dict(cls.server.env, PATH=os.path.join(harness.ROOT, "scripts") + os.pathsep +
                       os.environ.get("PATH", ""))

    @classmethod
    def tearDownClass(cls):
        cls.tailor.stop()
        cls.server.stop()
        cls.prom.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def analyzed(cls):
        items = cls.server.get_json("rec", "-A")["items"]
        wanted = ("shop", "payments", "search", "platform")
        ready = [r for r in items if r["metadata"]["namespace"] in wanted and
                 r.get("status", {}).get("confidence") not in (None, "None")]
        return len(ready) >= 25

    def recs(self, ns):
        return {r["metadata"]["name"]: r for r in self.server.get_json("rec", "-n", ns)["items"]}

    def export(self, *args, check=True):
        res = subprocess.run([self.binary, "export", "--kubeconfig", self.reader] + list(args),
                             capture_output=True, text=True, timeout=60, env=self.server.env)
        if check and res.returncode != 0:
            raise AssertionError("tailor export %s: %s" % (" ".join(args), res.stderr))
        return res

    def plugin(self, *args, check=True):
        res = subprocess.run(["kubectl", "tailor"] + list(args), capture_output=True, text=True,
                             timeout=60, env=self.env)
        if check and res.returncode != 0:
            raise AssertionError("kubectl tailor %s: %s" % (" ".join(args), res.stderr))
        return res

    def assert_resources(self, container, resources, what):
        """container's resources equal the patch's (a null limit: no such limit)."""
        got = container.get("resources", {})
        for group in ("requests", "limits"):
            for name, value in resources.get(group, {}).items():
                have = got.get(group, {}).get(name)
                if value is None:
                    self.assertIsNone(have, "%s %s.%s" % (what, group, name))
                else:
                    self.assertIsNotNone(have, "%s %s.%s" % (what, group, name))
                    self.assertAlmostEqual(quantity(have), quantity(value), delta=1e-6,
                                           msg="%s %s.%s" % (what, group, name))

    def test_patches_apply_with_kustomize(self):
        recs = self.recs("shop")
        out = os.path.join(self.tmp, "gitops")
        res = self.export("--dir", out, "-n", "shop")
        folder = os.path.join(out, "shop")
        kustomization = os.path.join(folder, "kustomization.yaml")
        self.assertIn(kustomization, res.stdout.splitlines())
        with open(kustomization) as f:
            text = f.read()
        self.assertIn("# resources:", text)   # where to point it
        listed = [p["path"] for p in yaml.safe_load(text)["patches"]]
        exported = sorted(name for name, r in recs.items()
                          if r["status"]["phase"] != "UpToDate")
        self.assertEqual(listed, [name + ".yaml" for name in exported])
        self.assertIn("deployment-web.yaml", listed)

        # The patches carry the Recommendations' values.
        patches = {}
        for name in exported:
            with open(os.path.join(folder, name + ".yaml")) as f:
                patch = yaml.safe_load(f)
            target = recs[name]["spec"]["targetRef"]
            self.assertEqual((patch["kind"], patch["metadata"]["name"],
                              patch["metadata"]["namespace"]),
                             (target["kind"], target["name"], "shop"))
            for c in recs[name]["status"]["containers"]:
                if "usage" not in c:
                    continue
                pc = containers_of(patch)[c["name"]]
                for group in ("requests", "limits"):
                    for res_name, value in c["recommended"][group].items():
                        self.assertEqual(pc["resources"][group][res_name], value)
            patches[(patch["kind"], patch["metadata"]["name"])] = patch

        # A base made of the workloads as the cluster has them, the patches over it.
        live = self.server.get_json("deploy,sts", "-n", "shop")["items"]
        with open(os.path.join(folder, "base.yaml"), "w") as f:
            yaml.safe_dump_all([clean(o) for o in live], f)
        # As a GitOps tool would have: the base applied first, so kubectl knows what it
        # applied and a limit the patches drop is removed, not left behind.
        self.server.kubectl("apply", "-f", os.path.join(folder, "base.yaml"))
        config = yaml.safe_load(text)
        config["resources"] = ["base.yaml"]
        with open(kustomization, "w") as f:
            yaml.safe_dump(config, f)
        rendered = subprocess.run(["kubectl", "kustomize", folder], capture_output=True,
                                  text=True, env=self.server.env)
        self.assertEqual(rendered.returncode, 0, rendered.stderr)
        self.assertEqual(len(list(yaml.safe_load_all(rendered.stdout))), len(live))
        self.server.kubectl("apply", "-k", folder)

        # Now the workloads run the recommended values.
        after = {(o["kind"], o["metadata"]["name"]): o
                 for o in self.server.get_json("deploy,sts", "-n", "shop")["items"]}
        for key, patch in patches.items():
            for name, pc in containers_of(patch).items():
                self.assert_resources(containers_of(after[key])[name], pc["resources"],
                                      "%s/%s %s" % (key[0], key[1], name))
        web = containers_of(after[("Deployment", "web")])["nginx"]["resources"]
        self.assertLess(quantity(web["requests"]["cpu"]), 1)

    def test_rerun_keeps_the_users_fields_and_drops_stale_patches(self):
        out = os.path.join(self.tmp, "rerun")
        self.export("--dir", out, "-n", "search")
        folder = os.path.join(out, "search")
        kustomization = os.path.join(folder, "kustomization.yaml")
        with open(kustomization) as f:
            config = yaml.safe_load(f)
        first = config["patches"]
        config["resources"] = ["../../base/search"]
        config["commonLabels"] = {"team": "search"}
        with open(kustomization, "w") as f:
            yaml.safe_dump(config, f)
        with open(os.path.join(folder, "deployment-gone.yaml"), "w") as f:
            f.write("# Tailor recommendation search/deployment-gone, revision 1.\nkind: x\n")
        with open(os.path.join(folder, "mine.yaml"), "w") as f:
            f.write("# the user's own file\nkind: x\n")
        res = self.export("--dir", out, "-n", "search")
        with open(kustomization) as f:
            config = yaml.safe_load(f)
        self.assertEqual(config["resources"], ["../../base/search"])
        self.assertEqual(config["commonLabels"], {"team": "search"})
        self.assertEqual(config["patches"], first)
        self.assertFalse(os.path.exists(os.path.join(folder, "deployment-gone.yaml")))
        self.assertIn("deployment-gone.yaml", res.stderr)
        self.assertTrue(os.path.exists(os.path.join(folder, "mine.yaml")))

    def test_approved_only(self):
        res = self.plugin("approve", "deployment-payments-api", "-n", "payments")
        rec = self.recs("payments")["deployment-payments-api"]
        out = os.path.join(self.tmp, "approved")
        res = self.export("--dir", out, "-n", "payments", "--approved-only")
        self.assertEqual(sorted(os.listdir(os.path.join(out, "payments"))),
                         ["deployment-payments-api.yaml", "kustomization.yaml"])
        self.assertIn("not approved", res.stderr)
        with open(os.path.join(out, "payments", "deployment-payments-api.yaml")) as f:
            head = f.readline()
        self.assertIn("revision %d" % rec["status"]["revision"], head)

    def test_in_place(self):
        rec = self.recs("search")["deployment-search-api"]
        manifest = os.path.join(self.tmp, "search-api.yaml")
        live = clean(self.server.get_json("deploy", "-n", "search", "search-api"))
        live["metadata"].pop("namespace")
        config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "search-config"},
                      "data": {"enabled": "on", "version": "1.10", "script": "a\nb\n"}}
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "search-api"},
                   "spec": {"ports": [{"port": 80}]}}
        with open(manifest, "w") as f:
            yaml.safe_dump_all([config_map, live, service], f)
        res = self.export("--in-place", "-n", "search", manifest)
        self.assertIn("Deployment search/search-api", res.stdout)
        self.assertIn("comments and formatting are not kept", res.stderr)
        with open(manifest) as f:
            docs = list(yaml.safe_load_all(f))
        self.assertEqual(docs[0], config_map)   # "on" and "1.10" stay strings
        self.assertEqual(docs[2], service)
        for c in rec["status"]["containers"]:
            if "usage" in c:
                self.assert_resources(containers_of(docs[1])[c["name"]], c["recommended"],
                                      c["name"])
        # Nothing else of the Deployment moved.
        for key in ("metadata", "kind", "apiVersion"):
            self.assertEqual(docs[1][key], live[key])

    def test_bad_usage(self):
        for args, message in ((["-n", "shop"], "--dir DIR, or --in-place"),
                              (["--in-place"], "needs the manifest files"),
                              (["--dir", "x", "file.yaml"], "files go with --in-place"),
                              (["--dir", "x", "--bogus"], "--bogus")):
            res = self.export(*args, check=False)
            self.assertEqual(res.returncode, 2, args)
            self.assertIn(message, res.stderr, args)

    def test_plugin_get(self):
        res = self.plugin("get", "-n", "shop")
        header = res.stdout.splitlines()[0].split()
        self.assertEqual(header, ["NAME", "TARGET", "CPU", "MEMORY", "SAVINGS/MO", "PHASE", "AGE"])
        self.assertIn("deployment-web", res.stdout)
        self.assertIn("Deployment/web", res.stdout)
        res = self.plugin("get", "-A", "-o", "wide")
        self.assertIn("CONFIDENCE", res.stdout.splitlines()[0])
        self.assertIn("platform", res.stdout)

    def test_plugin_explain(self):
        rec = self.recs("shop")["deployment-cart"]
        res = self.plugin("explain", "deployment-cart", "-n", "shop")
        out = res.stdout
        self.assertIn("Recommendation shop/deployment-cart", out)
        self.assertIn("Target:      Deployment/cart", out)
        self.assertIn("Confidence: " + rec["status"]["confidence"], out)
        self.assertIn(rec["status"]["explanation"], out)
        c = rec["status"]["containers"][0]
        self.assertIn("requests  cpu %s -> %s" % (c["current"]["requests"]["cpu"],
                                                  c["recommended"]["requests"]["cpu"]), out)
        self.assertIn("usage     cpu p50 %s, p95 %s" % (c["usage"]["cpuP50"], c["usage"]["cpuP95"]),
                      out)
        self.assertIn("%d samples" % c["usage"]["samples"], out)
        self.assertIn("History:", out)
        res = self.plugin("explain", "deployment-nope", "-n", "shop", check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("not found", res.stderr)

    def test_plugin_approve(self):
        rec = self.recs("platform")["deployment-grafana"]
        revision = rec["status"]["revision"]
        res = self.plugin("approve", "deployment-grafana", "-n", "platform", "--revision",
                          str(revision + 1), check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("not the current revision %d" % revision, res.stderr)
        res = self.plugin("approve", "deployment-grafana", "-n", "platform")
        self.assertIn("approved revision %d of platform/deployment-grafana (Deployment/grafana)"
                      % revision, res.stdout)
        self.assertIn(rec["status"]["display"]["cpu"], res.stdout)
        approved = self.recs("platform")["deployment-grafana"]["spec"]["approval"]
        self.assertEqual(approved["approvedRevision"], revision)
        res = self.plugin("approve", "deployment-grafana", "-n", "platform")
        self.assertIn("already approved", res.stdout)
        # A Recommendation without a revision has nothing to approve.
        self.server.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "tailor.dev/v1alpha1", "kind": "Recommendation",
            "metadata": {"name": "hpa-pending", "namespace": "platform"},
            "spec": {"targetRef": {"apiVersion": "autoscaling/v2",
                                   "kind": "HorizontalPodAutoscaler", "name": "pending"},
                     "policyRef": {"name": "none", "namespace": "platform"}}}))
        res = self.plugin("approve", "hpa-pending", "-n", "platform", check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("no status.revision", res.stderr)
        res = self.plugin("approve", check=False)
        self.assertEqual(res.returncode, 2)
        res = self.plugin("frobnicate", check=False)
        self.assertEqual(res.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
