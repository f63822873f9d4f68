#!/usr/bin/env python3
"""The operator from a user's side (docs/api.md): config/default applied with kubectl, `tailor
run` as its ServiceAccount under the project's RBAC, the sample policies applied, and then
`kubectl get rec -A` shows one Recommendation per selected workload."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

COLUMNS = ["NAMESPACE", "NAME", "TARGET", "CPU", "MEMORY", "SAVINGS/MO", "PHASE", "AGE"]


class ControllerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ApiServer(scenario="e2e/scenarios/demo.yaml")
        cls.server.install()
        cls.server.kubectl("apply", "-k", os.path.join(harness.ROOT, "config/samples"))
        cls.tailor = harness.Tailor(cls.server, http=True)

    @classmethod
    def tearDownClass(cls):
        cls.tailor.stop()
        cls.server.stop()

    def recs(self):
        """Workload Recommendations (the NodePool ones are test_nodepools.py's)."""
        return {(r["metadata"]["namespace"], r["metadata"]["name"]): r
                for r in self.server.get_json("rec", "-A")["items"]
                if r["spec"]["targetRef"]["kind"] != "NodePool"}

    def expected_workloads(self, namespaces=None):
        """Workloads the samples select: team namespaces, minus the ignored ones."""
        team = {n["metadata"]["name"] for n in self.server.get_json("ns")["items"]
                if "team" in n["metadata"].get("labels", {})}
        found = set()
        for kind in ("deployments", "statefulsets", "daemonsets"):
            for w in self.server.get_json(kind, "-A")["items"]:
                meta = w["metadata"]
                if meta["namespace"] not in team:
                    continue
                if namespaces is not None and meta["namespace"] not in namespaces:
                    continue
                if meta.get("annotations", {}).get("tailor.dev/ignore") == "true":
                    continue
                found.add((meta["namespace"], "%s-%s" % (w["kind"].lower(), meta["name"])))
        return found

    def wait_for_recs(self, expected, what):
        return harness.wait_for(lambda: set(self.recs()) == expected or None, timeout=30,
                                what=what)

    def test_1_one_recommendation_per_selected_workload(self):
        expected = self.expected_workloads()
        self.assertGreater(len(expected), 30)
        self.wait_for_recs(expected, "a Recommendation for every selected workload")
        recs = self.recs()
        for (ns, name), rec in recs.items():
            kind, _, target = name.partition("-")
            self.assertEqual(rec["spec"]["targetRef"]["name"], target)
            self.assertEqual(rec["spec"]["targetRef"]["kind"].lower(), kind)
            owner = rec["metadata"]["ownerReferences"][0]
            self.assertEqual(owner["name"], target)
            status = harness.wait_for(lambda: self.server.get_json("rec", "-n", ns, name)
                                      .get("status"), what="status of %s/%s" % (ns, name))
            self.assertIn(status["phase"], ("UpToDate", "Pending"))
            self.assertTrue(status["containers"], name)
            self.assertIn("\u2192", status["display"]["cpu"])
        # The ignored workload has none.
        self.assertNotIn(("shop", "deployment-legacy-admin"), recs)

    def test_2_printer_columns_are_filled(self):
        out = self.server.kubectl("get", "rec", "-A").stdout.splitlines()
        self.assertEqual(out[0].split(), COLUMNS)
        row = next(line for line in out if " deployment-web " in line).split()
        self.assertEqual(row[:3], ["shop", "deployment-web", "Deployment/web"])
        self.assertRegex(row[3], "^[0-9.]+m?\u2192[0-9.]+m?$")
        self.assertRegex(row[4], "^[0-9.]+[KMG]i\u2192[0-9.]+[KMG]i$")
        self.assertRegex(row[5], r"^-?[0-9]+\.[0-9]{2}$")
        self.assertIn(row[6], ("UpToDate", "Pending"))

    def test_3_deleted_workload_loses_its_recommendation(self):
        self.assertIn(("shop", "deployment-cart"), self.recs())
        self.server.kubectl("delete", "deployment", "cart", "-n", "shop")
        harness.wait_for(lambda: ("shop", "deployment-cart") not in self.recs(),
                         what="deployment-cart to go")

    def test_4_selector_change_moves_the_set(self):
        before = self.expected_workloads()
        self.server.kubectl("patch", "optpol", "cluster-advise-only", "-n", "tailor-system",
                            "--type", "merge", "-p",
                            '{"spec":{"namespaceSelector":{"matchLabels":{"team":"search"}}}}')
        # search stays; data keeps the 4 workers of its own policy; shop keeps web and
        # storefront; everything else goes.
        kept = {r for r in before if r[0] == "search"}
        kept |= {("data", "deployment-" + n) for n in
                 ("etl-runner", "stream-processor", "airflow-scheduler", "airflow-worker")}
        kept |= {("shop", "deployment-web"), ("shop", "deployment-storefront")}
        self.wait_for_recs(kept, "the Recommendations to follow the selector")
        policy = self.server.get_json("optpol", "-n", "tailor-system", "cluster-advise-only")
        harness.wait_for(lambda: self.server.get_json(
            "optpol", "-n", "tailor-system", "cluster-advise-only")["status"]
            ["matchedWorkloads"] == len([r for r in kept if r[0] == "search"]),
            what="matchedWorkloads to follow")
        self.assertEqual(policy["metadata"]["name"], "cluster-advise-only")

    def test_5_invalid_policy_says_which_field(self):
        self.server.kubectl("apply", "-f", "-", input="""
apiVersion: tailor.dev/v1alpha1
kind: OptimizationPolicy
metadata: {name: broken, namespace: payments}
spec:
  approval:
    mode: Manual
    window: {schedule: "0 25 * * *", duration: 1h}
""")

        def ready():
            conds = self.server.get_json("optpol", "-n", "payments", "broken").get(
                "status", {}).get("conditions", [])
            return next((c for c in conds if c["type"] == "Ready"), None)
        cond = harness.wait_for(ready, what="Ready condition on the broken policy")
        self.assertEqual(cond["status"], "False")
        self.assertEqual(cond["reason"], "InvalidSpec")
        self.assertIn("spec.approval.window.schedule", cond["message"])
        self.assertIn("hour", cond["message"])

    def test_6_restart_changes_nothing_already_right(self):
        time.sleep(2)  # let the last writes of earlier tests settle
        before = len(self.server.requests())
        self.tailor.stop()
        type(self).tailor = harness.Tailor(self.server, http=True)
        harness.wait_for(lambda: "caches synced" in self.tailor.output(), what="sync")
        time.sleep(3)
        writes = [r for r in self.server.requests()[before:]
                  if r["verb"] in ("create", "update", "patch", "delete")
                  and "serviceaccount" in r["user"]]
        self.assertEqual(writes, [], "a restart rewrote what was already right")

    def test_6b_probes_and_metrics(self):
        import shutil
        import subprocess
        import urllib.request
        with urllib.request.urlopen(self.tailor.health_url + "/healthz", timeout=5) as r:
            self.assertEqual(r.status, 200)
        harness.wait_for(lambda: urllib.request.urlopen(self.tailor.health_url + "/readyz",
                                                        timeout=5).status == 200,
                         what="readiness")
        with urllib.request.urlopen(self.tailor.api_url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        for name in ("tailor_reconcile_total", "tailor_reconcile_duration_seconds_bucket",
                     "tailor_kube_requests_total", "tailor_workqueue_depth",
                     "tailor_recommendations", "tailor_estimated_monthly_savings_dollars",
                     "tailor_watch_requests", "tailor_leader 1"):
            self.assertIn(name, text)
        self.assertRegex(text, r'tailor_recommendations\{phase="(UpToDate|Pending)"\} [1-9]')
        if shutil.which("promtool"):
            check = subprocess.run(["promtool", "check", "metrics"], input=text,
                                   capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_7_no_errors_and_no_forbidden(self):
        self.assertNotIn(" error ", self.tailor.output())
        forbidden = [r for r in self.server.requests()
                     if r["code"] == 403 and "serviceaccount" in r["user"]]
        self.assertEqual(forbidden, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
