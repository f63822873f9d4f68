#!/usr/bin/env python3
"""Karpenter NodePool advice on the demo cluster (docs/nodepools.md), with a real Prometheus for
the workloads' usage history and the sample NodePool policy (config/samples/nodepools.yaml):

- each NodePool gets one Recommendation, owned by the NodePool, planned from the RECOMMENDED
  requests of the pods on its nodes;
- its current node count and monthly cost match a hand calculation from the scenario's nodes and
  the EC2 price tables; the proposed numbers add up over the planned nodes it names;
- approving it (Manual) writes exactly the NodePool fields the advice names, as the operator's
  ServiceAccount, and records the result (history, Event); nothing else changes;
- a NodePool no policy selects loses its Recommendation.
"""
import csv
import json
import os
import re
import sys
import time
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import promlib  # noqa: E402

SCENARIO = "e2e/scenarios/demo.yaml"
NS = "tailor-system"
SA = "system:serviceaccount:tailor-system:tailor"
HOURS = 730
# The fields each kind of change writes (the Proposal condition's reason names the kinds).
FIELDS = {"Requirements": ("spec", "template", "spec", "requirements"),
          "Limits": ("spec", "limits"),
          "Consolidation": ("spec", "disruption", "consolidationPolicy")}
# Metadata the API server moves on any write.
BOOKKEEPING = {("metadata", "resourceVersion"), ("metadata", "generation"),
               ("metadata", "managedFields")}


def read_csv(name):
    with open(os.path.join(harness.ROOT, "data/ec2", name)) as f:
        return list(csv.DictReader(f))


class Prices:
    """EC2 prices as docs/nodepools.md ("Prices") states them, from the CSV files."""

    def __init__(self, region):
        self.od = {r["instance_type"]: float(r["usd_hour"]) for r in read_csv("prices_ondemand.csv")
                   if r["region"] == region}
        self.saving = {r["instance_type"]: float(r["savings_pct"]) for r in read_csv("spot.csv")
                       if r["region"] == region}
        catalog = {r["instance_type"] for r in read_csv("instances.csv")}
        self.region_saving = [v for t, v in self.saving.items() if t in catalog]

    def hourly(self, type_, capacity):
        if capacity != "spot":
            return self.od[type_]
        pct = self.saving.get(type_)
        if pct is None:
            family = type_.split(".")[0]
            same = [v for t, v in self.saving.items() if t.split(".")[0] == family]
            pct = sum(same) / len(same) if same else (
                sum(self.region_saving) / len(self.region_saving))
        return self.od[type_] * (1 - pct / 100)


def condition(obj, type_):
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return None


def changed_paths(a, b, path=()):
    """The paths where two JSON documents differ, down to the first differing member."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = set()
        for k in set(a) | set(b):
            if k not in a or k not in b:
                out.add(path + (k,))
            else:
                out |= changed_paths(a[k], b[k], path + (k,))
        return out
    return set() if a == b else {path}


class NodePoolsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(harness.ROOT, SCENARIO)) as f:
            cls.scenario = yaml.safe_load(f)
        cls.prices = Prices(cls.scenario["region"])
        cls.prom = promlib.Prometheus(os.path.join(harness.ROOT, SCENARIO), history="7d",
                                      step="1m")
        cls.prom.__enter__()
        cls.server = harness.ApiServer(scenario=SCENARIO)
        cls.server.install()
        cls.server.kubectl("apply", "-k", os.path.join(harness.ROOT, "config/rbac/remediation"))
        # Workload advice (mode Off) for the recommended requests, and the NodePool policy.
        for sample in ("cluster-advise-only.yaml", "nodepools.yaml"):
            cls.server.kubectl("apply", "-f",
                               os.path.join(harness.ROOT, "config/samples", sample))
        cls.tailor = harness.Tailor(cls.server, "--prometheus-url", cls.prom.url)
        cls.recs = cls.wait_planned()

    @classmethod
    def tearDownClass(cls):
        cls.tailor.stop()
        cls.server.stop()
        cls.prom.__exit__(None, None, None)

    @classmethod
    def pool_recs(cls):
        items = cls.server.get_json("rec", "-n", NS)["items"]
        return {r["metadata"]["name"]: r for r in items
                if r["spec"]["targetRef"]["kind"] == "NodePool"}

    @classmethod
    def wait_planned(cls):
        """Every workload analyzed, then the NodePool advice steady for a while: it follows the
        workloads' advice a few seconds behind."""
        def analyzed():
            items = cls.server.get_json("rec", "-A")["items"]
            workloads = [r for r in items if r["spec"]["targetRef"]["kind"] != "NodePool"]
            return len(workloads) >= 35 and all(
                r.get("status", {}).get("confidence") not in (None, "None") for r in workloads)
        harness.wait_for(analyzed, timeout=120, interval=1, what="every workload analyzed")

        def snapshot():
            recs = cls.pool_recs()
            return {n: (r.get("status", {}).get("revision"), r.get("status", {}).get("nodePool"))
                    for n, r in recs.items()}
        last, since = None, time.time()
        deadline = time.time() + 60
        while time.time() < deadline:
            now = snapshot()
            if now != last:
                last, since = now, time.time()
            elif len(now) == 2 and all(v[1] for v in now.values()) and time.time() - since > 8:
                return cls.pool_recs()
            time.sleep(1)
        raise AssertionError("the NodePool advice did not settle: %r" % (last,))

    def pool(self, name):
        return self.server.get_json("nodepool", name, "--show-managed-fields")

    def test_1_one_recommendation_per_nodepool_owned_by_it(self):
        self.assertEqual(sorted(self.recs), ["nodepool-batch", "nodepool-general"])
        for name in ("general", "batch"):
            rec = self.recs["nodepool-" + name]
            self.assertEqual(rec["spec"]["targetRef"],
                             {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "name": name})
            self.assertEqual(rec["spec"]["policyRef"], {"namespace": NS, "name": "nodepools"})
            owner = rec["metadata"]["ownerReferences"][0]
            self.assertEqual((owner["kind"], owner["name"], owner["uid"]),
                             ("NodePool", name, self.pool(name)["metadata"]["uid"]))
            status = rec["status"]
            self.assertEqual(status["display"]["target"], "NodePool/" + name)
            self.assertIn(status["confidence"], ("Low", "Medium", "High"))
            self.assertEqual(condition(rec, "Ready")["status"], "True")
            # Planned from the recommended requests, which the demo's over-provisioned
            # workloads shrink overall.
            cur, recd = status["display"]["cpu"].split("\u2192")
            self.assertNotEqual(cur, recd, name)

    def test_2_current_nodes_and_cost_match_a_hand_calculation(self):
        for pool in self.scenario["nodePools"]:
            capacity = [r["values"][0] for r in pool["requirements"]
                        if r["key"] == "karpenter.sh/capacity-type"][0]
            count = sum(n.get("count", 1) for n in pool["nodes"])
            usd = sum(n.get("count", 1) * self.prices.hourly(n["instanceType"], capacity) * HOURS
                      for n in pool["nodes"])
            np = self.recs["nodepool-" + pool["name"]]["status"]["nodePool"]
            self.assertEqual(np["nodes"]["current"], count, pool["name"])
            self.assertAlmostEqual(float(np["monthlyCost"]["current"]), usd, delta=0.006,
                                   msg=pool["name"])
        # general: 3 m6i.2xlarge, 2 c6i.2xlarge, 3 r6i.2xlarge, 1 m6i.xlarge on-demand.
        general = self.recs["nodepool-general"]["status"]["nodePool"]
        self.assertEqual(general["monthlyCost"]["current"], "2581.28")

    def test_3_proposed_plan_adds_up(self):
        for name, rec in self.recs.items():
            status = rec["status"]
            np = status["nodePool"]
            if status["phase"] not in ("Pending", "Approved"):
                continue
            m = re.search(r"needs (\d+) nodes? \(([^;]+); (on-demand|spot)\)",
                          status["explanation"])
            self.assertIsNotNone(m, status["explanation"])
            lines = [(int(c), t) for c, t in
                     (part.split(" ") for part in m.group(2).split(", "))]
            self.assertEqual(sum(c for c, _ in lines), int(m.group(1)))
            self.assertEqual(np["nodes"]["proposed"], int(m.group(1)), name)
            usd = sum(c * self.prices.hourly(t, m.group(3)) * HOURS for c, t in lines)
            self.assertAlmostEqual(float(np["monthlyCost"]["proposed"]), usd, delta=0.006,
                                   msg=name)
            for _, t in lines:
                self.assertIn(t, np["proposed"]["instanceTypes"], name)
            saved = float(np["monthlyCost"]["current"]) - float(np["monthlyCost"]["proposed"])
            self.assertAlmostEqual(float(status["savings"]["monthlyUSD"]), saved, delta=0.011)
            self.assertEqual(np["proposed"]["capacityTypes"],
                             ["spot"] if name == "nodepool-batch" else ["on-demand"])
            proposal = condition(rec, "Proposal")
            self.assertEqual(proposal["status"], "True")
            self.assertTrue(set(proposal["reason"].split(",")) <= set(FIELDS), proposal)
            self.assertRegex(np["monthlyCost"]["proposed"], r"^[0-9]+\.[0-9]{2}$")
        # The over-provisioned demo packs onto cheaper nodes.
        self.assertEqual(self.recs["nodepool-general"]["status"]["phase"], "Pending")

    def test_4_approval_writes_only_the_advised_fields(self):
        rec = self.pool_recs()["nodepool-general"]
        revision = rec["status"]["revision"]
        kinds = condition(rec, "Proposal")["reason"].split(",")
        before = self.pool("general")
        batch_before = self.pool("batch")
        self.server.kubectl("patch", "rec", "nodepool-general", "-n", NS, "--type", "merge", "-p",
                            json.dumps({"spec": {"approval": {"approvedRevision": revision}}}))
        rec = harness.wait_for(
            lambda: (lambda r: r if r["status"].get("phase") == "Applied" else None)(
                self.pool_recs()["nodepool-general"]),
            timeout=30, what="the approved NodePool advice to be applied")
        after = self.pool("general")

        expected = {FIELDS[k] for k in kinds}
        changed = changed_paths(before, after) - BOOKKEEPING
        self.assertTrue(changed, "the NodePool did not change")
        for path in changed:
            self.assertTrue(any(path[:len(e)] == e for e in expected),
                            "%s changed, the advice names only %s" % (".".join(path), kinds))
        if "Requirements" in kinds:
            self.assertEqual(after["spec"]["template"]["spec"]["requirements"],
                             rec["status"]["nodePool"]["proposed"]["requirements"])
        if "Limits" in kinds:
            for k, v in rec["status"]["nodePool"]["proposed"]["limits"].items():
                self.assertEqual(str(after["spec"]["limits"][k]), v)
        self.assertEqual(self.pool("batch"), batch_before)

        # Written by the operator's ServiceAccount with server-side apply, to that NodePool only.
        writes = [r for r in self.server.requests()
                  if r.get("resource") == "nodepools" and r.get("verb") in
                  ("patch", "update", "create", "delete")]
        self.assertTrue(writes)
        for w in writes:
            self.assertEqual((w["user"], w["verb"], w.get("name")), (SA, "patch", "general"), w)
        managers = {m["manager"] for m in after["metadata"]["managedFields"]
                    if m.get("operation") == "Apply"}
        self.assertIn("tailor", managers)

        status = rec["status"]
        self.assertEqual(status["lastAppliedRevision"], revision)
        entry = status["history"][-1]
        self.assertEqual((entry["revision"], entry["action"], entry["by"], entry["result"]),
                         (revision, "Apply", "manual", "Succeeded"))
        self.assertEqual(condition(rec, "Remediation")["reason"], "Applied")
        events = self.server.get_json("events.events.k8s.io", "-A")["items"]
        about = {(e["regarding"]["kind"], e["regarding"]["name"], e["reason"]) for e in events}
        self.assertIn(("NodePool", "general", "Applied"), about)
        self.assertIn(("Recommendation", "nodepool-general", "Applied"), about)

        # The plan made from the NodePool as applied advises nothing new: the revision stays.
        time.sleep(3)
        rec = self.pool_recs()["nodepool-general"]
        self.assertEqual((rec["status"]["revision"], rec["status"]["phase"]),
                         (revision, "Applied"))
        self.assertEqual(len(rec["status"]["history"]), 1)

    def test_5_a_pool_no_policy_selects_loses_its_recommendation(self):
        self.server.kubectl("label", "nodepool", "batch", "team=data")
        self.server.kubectl("patch", "optpol", "nodepools", "-n", NS, "--type", "merge", "-p",
                            json.dumps({"spec": {"nodePools": {"selector": {
                                "matchLabels": {"team": "data"}}}}}))
        harness.wait_for(lambda: sorted(self.pool_recs()) == ["nodepool-batch"], timeout=30,
                         what="nodepool-general to be removed")
        deletes = [r for r in self.server.requests()
                   if r.get("resource") == "recommendations" and r.get("verb") == "delete"]
        # A second delete may follow before the cache hears of the first (it gets a 404, which
        # counts as done): what matters is that only that Recommendation goes, by the operator.
        self.assertEqual({(d["user"], d.get("name")) for d in deletes},
                         {(SA, "nodepool-general")})


if __name__ == "__main__":
    unittest.main(verbosity=2)
