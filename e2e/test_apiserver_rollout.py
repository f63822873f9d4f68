#!/usr/bin/env python3
"""Remediation as kubectl sees it on the local API server's simulation (docs/apiserver.md,
"Controllers it emulates"): small.yaml loaded, `kubectl set resources` (a strategic merge
patch) and a server-side apply as field manager "tailor" roll Deployments out and
`kubectl rollout status` follows them to the end; a memory limit below the workload's usage
crash-loops with OOMKilled until it is raised; StatefulSet and DaemonSet rollouts, rollback
and `kubectl top` on the new pods."""
import os
import re
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FAST = ["--ready-delay", "0.3", "--crash-backoff", "0.5", "--sim-tick", "0.1",
        "--resize-delay", "0.1"]


class RolloutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.ApiServer(scenario="e2e/scenarios/small.yaml", extra=FAST)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def k(self, *args, check=True, input=None):
        return self.server.kubectl(*args, check=check, input=input)

    def rs(self, app, ns="shop"):
        """{name: (desired, ready)} of an app's ReplicaSets."""
        out = {}
        for r in self.server.get_json("rs", "-n", ns, "-l", "app=" + app)["items"]:
            out[r["metadata"]["name"]] = (r["spec"]["replicas"],
                                          r["status"].get("readyReplicas", 0))
        return out

    def test_1_set_resources_then_rollout_status(self):
        before = self.rs("web")
        self.assertEqual(list(before.values()), [(2, 2)])
        out = self.k("set", "resources", "deployment/web", "-n", "shop", "-c", "nginx",
                     "--requests=cpu=200m,memory=256Mi", "--limits=memory=256Mi").stdout
        self.assertIn("deployment.apps/web resource requirements updated", out)
        out = self.k("rollout", "status", "deployment/web", "-n", "shop",
                     "--timeout=30s").stdout
        self.assertIn('deployment "web" successfully rolled out', out)
        after = self.rs("web")
        (old,) = before
        self.assertEqual(after.pop(old), (0, 0))
        (new, counts), = after.items()
        self.assertEqual(counts, (2, 2))
        pods = self.server.get_json("pods", "-n", "shop", "-l", "app=web")["items"]
        self.assertEqual(len(pods), 2)
        for p in pods:
            self.assertTrue(p["metadata"]["name"].startswith(new + "-"))
            self.assertEqual(p["spec"]["containers"][0]["resources"],
                             {"requests": {"cpu": "200m", "memory": "256Mi"},
                              "limits": {"memory": "256Mi"}})
        history = self.k("rollout", "history", "deployment/web", "-n", "shop").stdout
        self.assertEqual(re.findall(r"^(\d+)\s", history, re.M), ["1", "2"])

    def test_2_server_side_apply_as_tailor(self):
        manifest = textwrap.dedent("""\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: api, namespace: shop}
            spec:
              template:
                spec:
                  containers:
                  - name: api
                    resources:
                      requests: {cpu: 300m, memory: 512Mi}
                      limits: {cpu: 600m, memory: 768Mi}
            """)
        self.k("apply", "--server-side", "--field-manager=tailor", "--force-conflicts",
               "-f", "-", input=manifest)
        out = self.k("rollout", "status", "deployment/api", "-n", "shop",
                     "--timeout=30s").stdout
        self.assertIn('deployment "api" successfully rolled out', out)
        d = self.server.get_json("deployment", "-n", "shop", "api", "--show-managed-fields")
        self.assertIn("tailor", [m["manager"] for m in d["metadata"]["managedFields"]])
        conds = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
        self.assertEqual(conds, {"Available": "MinimumReplicasAvailable",
                                 "Progressing": "NewReplicaSetAvailable"})
        self.assertEqual(d["status"]["observedGeneration"], d["metadata"]["generation"])
        # the native sidecar came along: READY counts it
        rows = self.k("get", "pods", "-n", "shop", "-l", "app=api",
                      "--no-headers").stdout.splitlines()
        self.assertEqual([r.split()[1] for r in rows], ["2/2", "2/2"])

    def test_3_oom_limit_crash_loops_until_raised(self):
        # the worker uses ~400Mi: a 128Mi limit is OOM-killed, over and over
        self.k("set", "resources", "deployment/worker", "-n", "shop",
               "--requests=memory=128Mi", "--limits=memory=128Mi")
        stuck = self.k("rollout", "status", "deployment/worker", "-n", "shop", "--timeout=3s",
                       check=False)
        self.assertNotEqual(stuck.returncode, 0)
        self.assertIn("timed out waiting for the condition", stuck.stderr)

        def crash_looping():
            for row in self.k("get", "pods", "-n", "shop", "-l", "app=worker",
                              "--no-headers").stdout.splitlines():
                cells = row.split()
                if cells[2] == "CrashLoopBackOff":
                    return cells
            return None
        cells = harness.wait_for(crash_looping, timeout=15, what="CrashLoopBackOff")
        self.assertEqual(cells[1], "0/1")
        self.assertRegex(" ".join(cells[3:6]), r"^\d+ \(\d+s ago\)")
        reason = self.k("get", "pod", "-n", "shop", cells[0], "-o",
                        "jsonpath={.status.containerStatuses[0].lastState.terminated.reason}"
                        ).stdout
        self.assertEqual(reason, "OOMKilled")
        # the old pod kept running throughout
        self.assertEqual(self.server.get_json("deployment", "-n", "shop", "worker")["status"]
                         ["availableReplicas"], 1)
        self.k("set", "resources", "deployment/worker", "-n", "shop",
               "--requests=memory=512Mi", "--limits=memory=1Gi")
        out = self.k("rollout", "status", "deployment/worker", "-n", "shop",
                     "--timeout=30s").stdout
        self.assertIn('deployment "worker" successfully rolled out', out)
        (p,) = self.server.get_json("pods", "-n", "shop", "-l", "app=worker")["items"]
        cs = p["status"]["containerStatuses"][0]
        self.assertEqual((cs["ready"], cs["restartCount"]), (True, 0))

    def test_4_statefulset_and_daemonset(self):
        self.k("set", "resources", "statefulset/db", "-n", "shop", "-c", "postgres",
               "--limits=memory=3Gi")
        out = self.k("rollout", "status", "statefulset/db", "-n", "shop",
                     "--timeout=30s").stdout
        self.assertIn("partitioned roll out complete: 1 new pods have been updated", out)
        self.k("set", "resources", "daemonset/log-agent", "-n", "platform",
               "--limits=memory=300Mi")
        out = self.k("rollout", "status", "daemonset/log-agent", "-n", "platform",
                     "--timeout=30s").stdout
        self.assertIn('daemon set "log-agent" successfully rolled out', out)
        ds = self.server.get_json("ds", "-n", "platform", "log-agent")
        self.assertEqual(ds["status"]["updatedNumberScheduled"], 3)

    def test_5_rollout_undo_reuses_the_old_replicaset(self):
        before = set(self.rs("web"))
        self.k("rollout", "undo", "deployment/web", "-n", "shop")
        self.k("rollout", "status", "deployment/web", "-n", "shop", "--timeout=30s")
        after = self.rs("web")
        self.assertEqual(set(after), before)
        self.assertEqual(sorted(after.values()), [(0, 0), (2, 2)])

    def test_6_top_shows_the_new_pods(self):
        rows = self.k("top", "pods", "-n", "shop", "-l", "app=web",
                      "--no-headers").stdout.splitlines()
        self.assertEqual(len(rows), 2)
        for row in rows:
            name, cpu, mem = row.split()
            self.assertRegex(cpu, r"^[1-9]\d*m$")
            self.assertRegex(mem, r"^[1-9]\d*Mi$")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
