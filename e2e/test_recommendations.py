#!/usr/bin/env python3
"""Advice from a real Prometheus: the demo cluster on the local API server, its usage history
backfilled into Prometheus from the scenario's profiles, the sample policies, and `tailor run`.
Every Recommendation gets values, a confidence, an explanation and savings, and the numbers
match what the scenario's profiles imply."""
import math
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "apiserver"))
import harness  # noqa: E402
import promlib  # noqa: E402
import scenario  # noqa: E402

SCENARIO = "e2e/scenarios/demo.yaml"
HISTORY_DAYS = 7
UNITS = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(text):
    for suffix in ("Ki", "Mi", "Gi", "m", "k", "M", "G"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * UNITS[suffix]
    return float(text)


class RecommendationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prom = promlib.Prometheus(os.path.join(harness.ROOT, SCENARIO),
                                      history="%dd" % HISTORY_DAYS, step="1m")
        cls.prom.__enter__()
        cls.server = harness.ApiServer(scenario=SCENARIO)
        cls.server.install()
        cls.server.kubectl("apply", "-k", os.path.join(harness.ROOT, "config/samples"))
        cls.tailor = harness.Tailor(cls.server, "--prometheus-url", cls.prom.url)
        cls.recs = harness.wait_for(cls.analyzed, timeout=120, interval=1,
                                    what="every Recommendation analyzed")

    @classmethod
    def tearDownClass(cls):
        cls.tailor.stop()
        cls.server.stop()
        cls.prom.__exit__(None, None, None)

    @classmethod
    def analyzed(cls):
        items = [r for r in cls.server.get_json("rec", "-A")["items"]
                 if r["spec"]["targetRef"]["kind"] != "NodePool"]  # test_nodepools.py's
        if len(items) < 35:
            return None
        if any(r.get("status", {}).get("confidence") in (None, "None") for r in items):
            return None
        return {r["metadata"]["name"]: r for r in items}

    def container(self, rec_name, index=0):
        return self.recs[rec_name]["status"]["containers"][index]

    def test_every_recommendation_is_complete(self):
        for name, rec in self.recs.items():
            status = rec["status"]
            self.assertIn(status["confidence"], ("Low", "Medium", "High"), name)
            self.assertIn("CPU", status["explanation"], name)
            self.assertRegex(status["savings"]["monthlyUSD"], r"^-?[0-9]+\.[0-9]{2}$", name)
            for c in status["containers"]:
                if c["type"] == "Init":
                    continue
                self.assertIn("cpu", c["recommended"]["requests"], (name, c["name"]))
                self.assertIn("memory", c["recommended"]["requests"], (name, c["name"]))
                self.assertGreater(c["usage"]["samples"], 0, (name, c["name"]))

    def test_over_provisioned_services_shrink(self):
        for name in ("deployment-web", "statefulset-zookeeper", "deployment-metabase",
                     "deployment-catalog"):
            c = self.container(name)
            cur, rec = c["current"]["requests"], c["recommended"]["requests"]
            shrunk = (quantity(rec["cpu"]) < quantity(cur["cpu"]) * 0.8 or
                      quantity(rec["memory"]) < quantity(cur["memory"]) * 0.8)
            self.assertTrue(shrunk, "%s: %s -> %s" % (name, cur, rec))
            self.assertGreater(float(self.recs[name]["status"]["savings"]["monthlyUSD"]), 0)

    def test_under_provisioned_and_oom_killed_services_grow(self):
        # query-suggest uses about twice its CPU request; cart is throttled at its limit.
        for name in ("deployment-query-suggest", "deployment-cart"):
            c = self.container(name)
            self.assertGreater(quantity(c["recommended"]["requests"]["cpu"]),
                               quantity(c["current"]["requests"]["cpu"]), name)
        # recommendations is OOM-killed at its 1Gi limit: memory must end above it, and the
        # explanation must say why.
        rec = self.recs["deployment-recommendations"]
        c = rec["status"]["containers"][0]
        self.assertGreater(quantity(c["recommended"]["requests"]["memory"]), 2**30)
        self.assertIn("OOM kill", rec["status"]["explanation"])
        # indexer leaks until its 2Gi limit kills it.
        c = self.container("deployment-indexer")
        self.assertGreater(quantity(c["recommended"]["limits"].get("memory", "0")), 2 * 2**30)

    def test_spiky_service_without_hpa_gets_hpa_advice(self):
        hpa = self.recs["deployment-image-resizer"]["status"].get("hpa")
        self.assertIsNotNone(hpa, "image-resizer bursts x6 every 30 minutes")
        self.assertEqual(hpa["recommended"]["metric"], "cpu")
        self.assertGreaterEqual(hpa["recommended"]["maxReplicas"],
                                hpa["recommended"]["minReplicas"])
        self.assertIn("spiky", hpa["reason"])

    def test_numbers_match_the_profiles(self):
        """The p95 CPU and peak memory in status are those of the profiles, within the
        histogram's 5% buckets and the decay's tilt towards recent days."""
        sc = scenario.load(os.path.join(harness.ROOT, SCENARIO))
        scenario.anchor(sc, self.prom.end)
        for name, ns, workload, pods in (("deployment-web", "shop", "web", None),
                                         ("statefulset-zookeeper", "data", "zookeeper", None)):
            c = self.container(name)
            container = c["name"]
            cpu, mem = [], []
            pod_names = [p for (n, _, w, p, cname, _) in scenario.container_profiles(sc)
                         if n == ns and w == workload and cname == container]
            for pod in pod_names:
                for t in range(int(self.prom.end - HISTORY_DAYS * 86400), int(self.prom.end),
                               300):
                    u_cpu, u_mem = scenario.pod_usage(sc, ns, pod, container, t)
                    cpu.append(u_cpu)
                    mem.append(u_mem)
            cpu.sort()
            p95 = cpu[int(math.ceil(0.95 * len(cpu))) - 1]
            got_p95 = quantity(c["usage"]["cpuP95"])
            self.assertLess(abs(got_p95 - p95) / p95, 0.15, "%s p95 %s vs %s" % (name, got_p95,
                                                                                 p95))
            got_max = quantity(c["usage"]["memoryMax"])
            self.assertLess(abs(got_max - max(mem)) / max(mem), 0.10,
                            "%s max %s vs %s" % (name, got_max, max(mem)))

    def test_policy_totals_add_up(self):
        policy = self.server.get_json("optpol", "-n", "tailor-system", "cluster-advise-only")
        total = sum(float(r["status"]["savings"]["monthlyUSD"]) for r in self.recs.values()
                    if r["spec"]["policyRef"]["name"] == "cluster-advise-only")
        harness.wait_for(lambda: abs(float(self.server.get_json(
            "optpol", "-n", "tailor-system", "cluster-advise-only")["status"]
            ["estimatedMonthlySavings"]) - total) < 0.05, what="policy savings to add up")
        self.assertGreater(total, 0)
        self.assertEqual(policy["status"]["conditions"][0]["status"], "True")

    def test_prometheus_is_queried_per_namespace_not_per_pod(self):
        out = self.tailor.output()
        self.assertIn("usage collected", out)
        for line in out.splitlines():
            if "usage collected" in line:
                self.assertIn("queries=3", line)


if __name__ == "__main__":
    unittest.main(verbosity=2)
