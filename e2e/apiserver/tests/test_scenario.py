"""Tests for the scenario format (e2e/apiserver/scenario.py) and its tools
(e2e/scenarios/generate, e2e/scenarios/promhistory).

Run from the repository root:
    python3 -m unittest discover -s e2e/apiserver/tests -t .
"""
import collections
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from e2e.apiserver import scenario as S

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SCENARIOS = os.path.join(ROOT, "e2e", "scenarios")
SMALL = os.path.join(SCENARIOS, "small.yaml")
DEMO = os.path.join(SCENARIOS, "demo.yaml")
NOW = 1795219200          # 2026-11-21T00:00:00Z, a Saturday

MINIMAL = """
name: t
seed: 1
start: "2026-11-02T00:00:00Z"    # a Monday
history: 7d
nodePools:
- name: general
  requirements:
  - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
  nodes: [{instanceType: m6i.2xlarge, count: 1}]
namespaces:
- name: ns
  workloads:
  - kind: Deployment
    name: app
    replicas: 1
    containers:
    - name: c
      image: example/app:1
      requests: {cpu: "1", memory: 1Gi}
      usage:
        cpu: %(cpu)s
        memory: %(mem)s
"""


def minimal(cpu="{base: 1}", mem="{base: 512Mi}"):
    return S.load_text(MINIMAL % {"cpu": cpu, "mem": mem}, "t.yaml")


def percentile(values, q):
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(math.floor(k)), int(math.ceil(k))
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def mem_q(s):
    return S.parse_memory(s)


class TestValidation(unittest.TestCase):

    def expect(self, text, fragment, name="demo.yaml"):
        with self.assertRaises(ValueError) as cm:
            S.load_text(text, name)
        self.assertIn(fragment, str(cm.exception))
        return str(cm.exception)

    def test_field_path_and_file_in_message(self):
        text = MINIMAL % {"cpu": '{base: "abc"}', "mem": "{base: 1Gi}"}
        msg = self.expect(text, "demo.yaml: namespaces[0].workloads[0].containers[0].usage.cpu."
                                "base: expected a number >= 0, got \"abc\"")
        self.assertTrue(msg.startswith("demo.yaml: "))

    def test_unknown_field(self):
        text = MINIMAL.replace("    replicas: 1", "    replica: 1") % {
            "cpu": "{base: 1}", "mem": "{base: 1Gi}"}
        self.expect(text, "namespaces[0].workloads[0].replica: unknown field")

    def test_bad_quantity(self):
        text = (MINIMAL % {"cpu": "{base: 1}", "mem": "{base: 1Gi}"}).replace(
            "memory: 1Gi}", "memory: 1Gb}")
        self.expect(text, "namespaces[0].workloads[0].containers[0].requests.memory: expected")

    def test_unknown_instance_type(self):
        text = (MINIMAL % {"cpu": "{base: 1}", "mem": "{base: 1Gi}"}).replace(
            "m6i.2xlarge", "m6i.huge")
        self.expect(text, "nodePools[0].nodes[0].instanceType: unknown instance type")

    def test_node_must_satisfy_requirements(self):
        text = (MINIMAL % {"cpu": "{base: 1}", "mem": "{base: 1Gi}"}).replace(
            "values: [on-demand]", "values: [spot]").replace(
            "{instanceType: m6i.2xlarge, count: 1}",
            "{instanceType: m6i.2xlarge, capacityType: on-demand}")
        self.expect(text, "nodePools[0].nodes[0]: a on-demand m6i.2xlarge node")

    def test_hpa_range(self):
        text = (MINIMAL % {"cpu": "{base: 1}", "mem": "{base: 1Gi}"}).replace(
            "    replicas: 1", "    replicas: 1\n    hpa: {minReplicas: 2, maxReplicas: 4}")
        self.expect(text, "namespaces[0].workloads[0].replicas: replicas 1 is outside the HPA")

    def test_short_burst_rejected(self):
        self.expect(MINIMAL % {"cpu": "{base: 1, spikes: {every: 1m, duration: 10s, height: 2}}",
                               "mem": "{base: 1Gi}"},
                    "usage.cpu.spikes.duration: expected at least 1m")

    def test_request_above_limit(self):
        text = (MINIMAL % {"cpu": "{base: 1}", "mem": "{base: 1Gi}"}).replace(
            'requests: {cpu: "1", memory: 1Gi}',
            'requests: {cpu: "1", memory: 1Gi}\n      limits: {memory: 512Mi}')
        self.expect(text, "containers[0].requests.memory: request 1Gi is above the limit 512Mi")

    def test_duplicate_workload(self):
        doc = MINIMAL % {"cpu": "{base: 1}", "mem": "{base: 1Gi}"}
        wl = doc[doc.index("  - kind: Deployment"):]
        self.expect(doc + wl, "namespaces[0].workloads[1].name: duplicate workload name")

    def test_yaml_syntax_error_names_line(self):
        self.expect("name: x\nnodePools: [\n", "demo.yaml: invalid YAML (line")

    def test_missing_file(self):
        with self.assertRaises(ValueError) as cm:
            S.load(os.path.join(SCENARIOS, "does-not-exist.yaml"))
        self.assertIn("does-not-exist.yaml: cannot read", str(cm.exception))

    def test_json_is_accepted(self):
        import yaml
        doc = yaml.safe_load(MINIMAL % {"cpu": "{base: 1}", "mem": "{base: 1Gi}"})
        self.assertEqual(S.load_text(json.dumps(doc), "t.json")["name"], "t")

    def test_defaults(self):
        sc = minimal()
        self.assertEqual(sc["region"], "us-east-1")
        prof = sc["namespaces"][0]["workloads"][0]["containers"][0]["usage"]
        self.assertEqual(prof["cpu"]["peakHour"], 14.0)
        self.assertEqual(prof["replicaSkew"], 0.05)
        self.assertIsNone(prof["oomThreshold"])


class TestQuantities(unittest.TestCase):

    def test_parse_and_format(self):
        self.assertEqual(S.parse_cpu("250m"), 0.25)
        self.assertEqual(S.parse_cpu(2), 2.0)
        self.assertEqual(S.parse_memory("1.5Gi"), 1536 << 20)
        self.assertEqual(S.parse_memory("1e3"), 1000)
        self.assertEqual(S.format_cpu(0.25), "250m")
        self.assertEqual(S.format_cpu(2.0), "2")
        self.assertEqual(S.format_memory(1536 << 20), "1536Mi")
        self.assertEqual(S.parse_duration("1h30m"), 5400)
        self.assertEqual(S.parse_duration("14d"), 14 * 86400)
        for bad in ("1x", "", "m5"):
            with self.assertRaises(ValueError):
                S.parse_duration(bad)

    def test_allocatable_formula(self):
        # m6i.xlarge: 4 vCPU, 16 GiB, 58 ENI-limited pods (Karpenter's estimate).
        cap, alloc = S.node_allocatable(4, 16384, 58)
        self.assertEqual(cap["memory"], (16384 - 1229) << 20)        # ceil(7.5%) VM overhead
        self.assertEqual(alloc["cpu"], 4000 - 60 - 10 - 10)           # 60m + 10m + 2x5m
        self.assertEqual(alloc["memory"], (15155 - (11 * 58 + 255) - 100) << 20)
        _, alloc = S.node_allocatable(16, 65536, 234)
        self.assertEqual(alloc["cpu"], 16000 - 60 - 10 - 10 - 30)    # + 12 cores x 2.5m
        _, alloc = S.node_allocatable(2, 8192, 29, arch="arm64")
        self.assertEqual(alloc["memory"],
                         ((8128 - math.ceil(8128 * 0.075)) - (11 * 29 + 255) - 100) << 20)


class TestObjects(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.small = S.load(SMALL)
        cls.demo = S.load(DEMO)
        cls.small_objs = S.objects(cls.small)
        cls.demo_objs = S.objects(cls.demo, now=NOW)

    def each(self):
        return (("small", self.small, self.small_objs), ("demo", self.demo, self.demo_objs))

    def test_counts(self):
        kinds = collections.Counter(o["kind"] for o in self.demo_objs)
        self.assertEqual(kinds["Namespace"], 5)
        self.assertEqual(kinds["NodePool"], 2)
        self.assertEqual(kinds["Node"], 13)
        self.assertEqual(kinds["Deployment"], kinds["ReplicaSet"])
        self.assertEqual(kinds["Deployment"] + kinds["StatefulSet"] + kinds["DaemonSet"], 40)
        self.assertGreaterEqual(kinds["HorizontalPodAutoscaler"], 3)
        self.assertGreaterEqual(kinds["PodDisruptionBudget"], 3)

    def test_server_fields_left_out(self):
        for _, _, objs in self.each():
            for o in objs:
                md = o["metadata"]
                for k in ("uid", "resourceVersion", "creationTimestamp"):
                    self.assertNotIn(k, md, "%s %s" % (o["kind"], md["name"]))
                self.assertIn(S.CREATED_AT_ANNOTATION, md.get("annotations", {}))

    def test_owner_chains(self):
        for label, _, objs in self.each():
            seen = {}
            for o in objs:
                md = o["metadata"]
                for ref in md.get("ownerReferences", []):
                    m = re.match(r"^scenario:(\w+)/([^/]*)/(.+)$", ref["uid"])
                    self.assertIsNotNone(m, ref)
                    kind, ns, name = m.groups()
                    self.assertEqual((kind, name), (ref["kind"], ref["name"]))
                    self.assertTrue(ref["controller"] and ref["blockOwnerDeletion"])
                    self.assertIn((kind, ns, name), seen, "%s: owner after dependent" % label)
                    owner = seen[(kind, ns, name)]
                    self.assertEqual(ref["apiVersion"], owner["apiVersion"])
                    if o["kind"] == "Pod":
                        sel = owner["spec"]["selector"]["matchLabels"]
                        for k, v in sel.items():
                            self.assertEqual(md["labels"].get(k), v)
                seen[(o["kind"], md.get("namespace", ""), md["name"])] = o
            for o in objs:
                if o["kind"] == "Pod":
                    ref = o["metadata"]["ownerReferences"][0]
                    if ref["kind"] == "ReplicaSet":
                        rs = seen[("ReplicaSet", o["metadata"]["namespace"], ref["name"])]
                        dref = rs["metadata"]["ownerReferences"][0]
                        self.assertEqual(dref["kind"], "Deployment")
                        h = o["metadata"]["labels"]["pod-template-hash"]
                        self.assertEqual(rs["metadata"]["name"], dref["name"] + "-" + h)
                        self.assertRegex(h, r"^[bcdfghjklmnpqrstvwxz2456789]{10}$")
                        self.assertRegex(o["metadata"]["name"],
                                         "^%s-[bcdfghjklmnpqrstvwxz2456789]{5}$"
                                         % re.escape(rs["metadata"]["name"]))

    def test_workload_status_consistent(self):
        for _, _, objs in self.each():
            pods = [o for o in objs if o["kind"] == "Pod"]
            owned = collections.Counter(
                (p["metadata"]["namespace"], p["metadata"]["ownerReferences"][0]["kind"],
                 p["metadata"]["ownerReferences"][0]["name"]) for p in pods)
            for o in objs:
                md, st = o["metadata"], o.get("status", {})
                key = (md.get("namespace"), o["kind"], md["name"])
                if o["kind"] in ("ReplicaSet", "StatefulSet"):
                    self.assertEqual(st["replicas"], owned[key])
                    self.assertEqual(st["readyReplicas"], owned[key])
                    self.assertEqual(o["spec"]["replicas"], owned[key])
                    self.assertEqual(st["observedGeneration"], 1)
                if o["kind"] == "Deployment":
                    self.assertEqual(st["replicas"], o["spec"]["replicas"])
                    self.assertEqual(st["availableReplicas"], o["spec"]["replicas"])
                    self.assertEqual(st["updatedReplicas"], o["spec"]["replicas"])
                if o["kind"] == "DaemonSet":
                    self.assertEqual(st["desiredNumberScheduled"], owned[key])
                    self.assertEqual(st["numberReady"], owned[key])
            sts = sorted(p["metadata"]["name"] for p in pods
                         if p["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
                         and p["metadata"]["ownerReferences"][0]["name"] == "kafka")
            if sts:
                self.assertEqual(sts, ["kafka-0", "kafka-1", "kafka-2"])

    def test_pods_fit_nodes_and_respect_selectors(self):
        for label, _, objs in self.each():
            nodes = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Node"}
            used = collections.defaultdict(lambda: [0.0, 0, 0])
            for p in (o for o in objs if o["kind"] == "Pod"):
                self.assertEqual(p["status"]["phase"], "Running", p["metadata"]["name"])
                node = nodes[p["spec"]["nodeName"]]
                for k, v in (p["spec"].get("nodeSelector") or {}).items():
                    self.assertEqual(node["metadata"]["labels"].get(k), v)
                for taint in node["spec"].get("taints", []):
                    ok = any(t.get("operator") == "Exists" and not t.get("key")
                             or t.get("key") == taint["key"] for t in p["spec"]["tolerations"])
                    self.assertTrue(ok, "%s on tainted %s" % (p["metadata"]["name"],
                                                               node["metadata"]["name"]))
                cpu, mem = effective_request(p["spec"])
                u = used[node["metadata"]["name"]]
                u[0] += cpu
                u[1] += mem
                u[2] += 1
            for name, (cpu, mem, n) in used.items():
                alloc = nodes[name]["status"]["allocatable"]
                self.assertLessEqual(cpu, S.parse_cpu(alloc["cpu"]) + 1e-9, (label, name))
                self.assertLessEqual(mem, mem_q(alloc["memory"]), (label, name))
                self.assertLessEqual(n, int(alloc["pods"]), (label, name))

    def test_node_labels_and_capacity(self):
        for o in self.demo_objs:
            if o["kind"] != "Node":
                continue
            labels = o["metadata"]["labels"]
            for k in ("kubernetes.io/hostname", "node.kubernetes.io/instance-type",
                      "karpenter.sh/capacity-type", "karpenter.sh/nodepool",
                      "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
                      "kubernetes.io/arch", "kubernetes.io/os"):
                self.assertIn(k, labels)
            self.assertEqual(labels["kubernetes.io/hostname"], o["metadata"]["name"])
            self.assertIn(labels["karpenter.sh/capacity-type"], ("on-demand", "spot"))
            cap, alloc = o["status"]["capacity"], o["status"]["allocatable"]
            for k in ("cpu", "memory", "pods", "ephemeral-storage"):
                self.assertIn(k, alloc)
            self.assertLess(mem_q(alloc["memory"]), mem_q(cap["memory"]))
            ready = [c for c in o["status"]["conditions"] if c["type"] == "Ready"]
            self.assertEqual(ready[0]["status"], "True")
        pool = [o for o in self.demo_objs if o["kind"] == "NodePool"][1]
        self.assertEqual(pool["apiVersion"], "karpenter.sh/v1")
        self.assertEqual(pool["spec"]["template"]["spec"]["taints"][0]["key"], "workload-type")
        self.assertIn("budgets", pool["spec"]["disruption"])

    def test_qos_classes(self):
        for _, _, objs in self.each():
            for p in (o for o in objs if o["kind"] == "Pod"):
                self.assertEqual(p["status"]["qosClass"], qos(p["spec"]), p["metadata"]["name"])
        by_app = {p["metadata"]["labels"].get("app"): p["status"]["qosClass"]
                  for p in self.demo_objs if p["kind"] == "Pod"}
        self.assertEqual(by_app["payments-api"], "Guaranteed")
        self.assertEqual(by_app["currency-rates"], "BestEffort")
        self.assertEqual(by_app["web"], "Burstable")

    def test_daemonset_pod_per_node(self):
        for label, _, objs in self.each():
            nodes = {o["metadata"]["name"] for o in objs if o["kind"] == "Node"}
            for ds in (o for o in objs if o["kind"] == "DaemonSet"):
                pods = [p for p in objs if p["kind"] == "Pod" and
                        p["metadata"]["ownerReferences"][0]["name"] == ds["metadata"]["name"]
                        and p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"]
                self.assertEqual(sorted(p["spec"]["nodeName"] for p in pods), sorted(nodes),
                                 label)
        hostnet = [p for p in self.demo_objs if p["kind"] == "Pod" and
                   p["metadata"]["labels"].get("app") == "node-exporter"]
        for p in hostnet:
            self.assertEqual(p["status"]["podIP"], p["status"]["hostIP"])

    def test_sidecar_and_init_containers(self):
        pod = next(p for p in self.demo_objs if p["kind"] == "Pod" and
                   p["metadata"]["name"] == "ledger-db-0")
        inits = {c["name"]: c for c in pod["spec"]["initContainers"]}
        self.assertNotIn("restartPolicy", inits["init-permissions"])
        self.assertEqual(inits["postgres-exporter"]["restartPolicy"], "Always")
        st = {c["name"]: c for c in pod["status"]["initContainerStatuses"]}
        self.assertEqual(st["init-permissions"]["state"]["terminated"]["reason"], "Completed")
        self.assertIn("running", st["postgres-exporter"]["state"])

    def test_ignore_annotation_and_oom_status(self):
        legacy = next(o for o in self.demo_objs if o["kind"] == "Deployment" and
                      o["metadata"]["name"] == "legacy-admin")
        self.assertEqual(legacy["metadata"]["annotations"]["tailor.dev/ignore"], "true")
        rec = [p for p in self.demo_objs if p["kind"] == "Pod" and
               p["metadata"]["labels"].get("app") == "recommendations"]
        for p in rec:
            cs = p["status"]["containerStatuses"][0]
            self.assertEqual(cs["lastState"]["terminated"]["reason"], "OOMKilled")
            self.assertEqual(cs["restartCount"], 14 * 6)      # every 4h peak for 14 days

    def test_pdb_status(self):
        for o in self.demo_objs:
            if o["kind"] != "PodDisruptionBudget":
                continue
            st = o["status"]
            self.assertEqual(st["disruptionsAllowed"],
                             max(0, st["currentHealthy"] - st["desiredHealthy"]))

    def test_deterministic(self):
        again = S.objects(S.load(DEMO), now=NOW)
        self.assertEqual(json.dumps(again, sort_keys=True),
                         json.dumps(self.demo_objs, sort_keys=True))
        # A second call on the same scenario dict gives the same objects too.
        self.assertEqual(json.dumps(S.objects(self.demo, now=NOW), sort_keys=True),
                         json.dumps(self.demo_objs, sort_keys=True))


def effective_request(spec):
    def req(c, res):
        v = ((c.get("resources") or {}).get("requests") or {}).get(res)
        if v is None:
            return 0
        return S.parse_cpu(v) if res == "cpu" else mem_q(v)
    out = []
    for res in ("cpu", "memory"):
        total = sum(req(c, res) for c in spec["containers"])
        side = init_max = 0
        for c in spec.get("initContainers", []):
            if c.get("restartPolicy") == "Always":
                side += req(c, res)
            else:
                init_max = max(init_max, req(c, res) + side)
        out.append(max(total + side, init_max))
    return out


def qos(spec):
    any_set, guaranteed = False, True
    for c in spec["containers"] + spec.get("initContainers", []):
        r = c.get("resources") or {}
        req, lim = r.get("requests") or {}, r.get("limits") or {}
        for res in ("cpu", "memory"):
            if res in req or res in lim:
                any_set = True
            if res not in lim or res not in req or \
                    S.parse_quantity(req[res])[0] != S.parse_quantity(lim[res])[0]:
                guaranteed = False
    return "BestEffort" if not any_set else ("Guaranteed" if guaranteed else "Burstable")


class TestUsage(unittest.TestCase):

    def pod(self, sc):
        p = S.pods(sc)[0]
        return p.namespace, p.name

    def samples(self, sc, container, t0, t1, step=60):
        ns, pod = self.pod(sc)
        return [S.pod_usage(sc, ns, pod, container, t) for t in range(t0, t1, step)]

    def test_mean_and_p95_of_noise(self):
        sc = minimal(cpu="{base: 0.5, noise: 0.2}", mem="{base: 1Gi, noise: 0.1}")
        sc["namespaces"][0]["workloads"][0]["containers"][0]["usage"]["replicaSkew"] = 0.0
        t0 = sc["startEpoch"]
        vals = self.samples(sc, "c", t0, t0 + 7 * 86400)
        cpu = [v[0] for v in vals]
        # noise is uniform in +-20%: mean = base, p95 = base * (1 + 0.2 * 0.9)
        self.assertAlmostEqual(sum(cpu) / len(cpu), 0.5, delta=0.002)
        self.assertAlmostEqual(percentile(cpu, 95), 0.5 * 1.18, delta=0.004)
        self.assertAlmostEqual(min(cpu), 0.4, delta=0.002)
        mem = [v[1] for v in vals]
        self.assertAlmostEqual(sum(mem) / len(mem) / (1 << 30), 1.0, delta=0.003)

    def test_daily_peak_and_percentile(self):
        sc = minimal(cpu="{base: 1, daily: 0.5, replicaSkew: 0}".replace(", replicaSkew: 0", ""))
        sc["namespaces"][0]["workloads"][0]["containers"][0]["usage"]["replicaSkew"] = 0.0
        ns, pod = self.pod(sc)
        day = sc["startEpoch"]                       # Monday 00:00 UTC
        self.assertAlmostEqual(S.pod_usage(sc, ns, pod, "c", day + 14 * 3600)[0], 1.5)
        self.assertAlmostEqual(S.pod_usage(sc, ns, pod, "c", day + 2 * 3600)[0], 0.5)
        vals = [v[0] for v in self.samples(sc, "c", day, day + 86400)]
        self.assertAlmostEqual(sum(vals) / len(vals), 1.0, places=6)
        # 1 + 0.5 cos(theta), theta uniform: p95 = 1 + 0.5 cos(0.05 * pi)
        self.assertAlmostEqual(percentile(vals, 95), 1 + 0.5 * math.cos(0.05 * math.pi),
                               delta=0.002)

    def test_weekly_factor(self):
        sc = minimal(cpu="{base: 1, weekly: 0.4}")
        sc["namespaces"][0]["workloads"][0]["containers"][0]["usage"]["replicaSkew"] = 0.0
        ns, pod = self.pod(sc)
        monday = sc["startEpoch"]
        self.assertAlmostEqual(S.pod_usage(sc, ns, pod, "c", monday + 3600)[0], 1.0)
        self.assertAlmostEqual(S.pod_usage(sc, ns, pod, "c", monday + 5 * 86400 + 3600)[0], 0.6)

    def test_spikes_at_their_period(self):
        sc = minimal(cpu="{base: 0.1, spikes: {every: 6h, duration: 15m, height: 4, "
                         "offset: 1h}}")
        sc["namespaces"][0]["workloads"][0]["containers"][0]["usage"]["replicaSkew"] = 0.0
        ns, pod = self.pod(sc)
        t0 = sc["startEpoch"]
        for k in range(8):
            s = t0 + 3600 + k * 6 * 3600
            self.assertAlmostEqual(S.pod_usage(sc, ns, pod, "c", s + 300)[0], 0.4)
            self.assertAlmostEqual(S.pod_usage(sc, ns, pod, "c", s + 16 * 60)[0], 0.1)
            self.assertAlmostEqual(S.pod_usage(sc, ns, pod, "c", s - 60)[0], 0.1)
        vals = [v[0] for v in self.samples(sc, "c", t0, t0 + 2 * 86400)]
        self.assertEqual(sum(1 for v in vals if v > 0.2), 8 * 15)

    def test_cpu_limit_caps_and_throttles(self):
        sc = S.load(SMALL)
        ns, pod = next((p.namespace, p.name) for p in S.pods(sc) if p.workload["name"] == "api")
        t0 = sc["startEpoch"]
        worst = 0.0
        for t in range(t0, t0 + 86400, 300):
            d = S.usage_detail(sc, ns, pod, "api", t)
            self.assertLessEqual(d["cpu"], 0.4 + 1e-12)
            self.assertEqual(d["cpu"], min(d["cpuDemand"], 0.4))
            worst = max(worst, d["throttledFraction"])
        self.assertGreater(worst, 0.5)

    def test_memory_limit_oom(self):
        sc = S.load(SMALL)
        p = next(p for p in S.pods(sc) if p.workload["name"] == "worker")
        t0 = sc["startEpoch"]
        ev = S.restart_events(sc, p.namespace, p.name, "worker", t0, t0 + 14 * 86400)
        self.assertEqual(len(ev), 4 * 14)
        self.assertTrue(all(r == "OOMKilled" for _, r in ev))
        self.assertTrue(all((t % (6 * 3600)) == 0 for t, _ in ev))
        t = ev[3][0] + 300                                # inside a peak
        d = S.usage_detail(sc, p.namespace, p.name, "worker", t)
        self.assertTrue(d["oom"])
        self.assertEqual(d["memory"], 512 << 20)          # capped at the limit
        self.assertGreater(d["memoryDemand"], 512 << 20)

    def test_leak_sawtooth(self):
        sc = S.load(SMALL)
        p = next(p for p in S.pods(sc) if p.workload["name"] == "metrics-proxy")
        t0 = sc["startEpoch"]
        ev = S.restart_events(sc, p.namespace, p.name, "proxy", t0, t0 + 30 * 86400)
        self.assertTrue(ev and all(r == "OOMKilled" for _, r in ev))
        gaps = [b[0] - a[0] for a, b in zip(ev, ev[1:])]
        # (1Gi - replica factor * 600Mi) / 60Mi per day: about 7 days
        self.assertTrue(all(abs(g - gaps[0]) < 1e-6 for g in gaps))
        self.assertAlmostEqual(gaps[0] / 86400, (1024 - 600) / 60.0, delta=0.6)
        def hour_mean(t):        # averages the 1% noise away
            return sum(S.pod_usage(sc, p.namespace, p.name, "proxy", t + 60 * i)[1]
                       for i in range(60)) / 60.0
        a, b = hour_mean(ev[0][0] + 3600), hour_mean(ev[0][0] + 3 * 86400)
        self.assertAlmostEqual((b - a) / (mem_q("60Mi") * (3 - 1 / 24.0)), 1.0, delta=0.01)

    def test_release_does_not_restart(self):
        sc = S.load(DEMO)
        S.anchor(sc, NOW)
        p = next(p for p in S.pods(sc) if p.workload["name"] == "prometheus")
        self.assertEqual(S.restart_events(sc, p.namespace, p.name, "prometheus",
                                          NOW - 86400, NOW), [])

    def test_replicas_differ_slightly(self):
        sc = S.load(SMALL)
        web = [p for p in S.pods(sc) if p.workload["name"] == "web"]
        t0 = sc["startEpoch"]
        means = []
        for p in web:
            vals = [S.pod_usage(sc, p.namespace, p.name, "nginx", t)[0]
                    for t in range(t0, t0 + 7 * 86400, 600)]
            means.append(sum(vals) / len(vals))
        self.assertNotEqual(means[0], means[1])
        expected = 0.08 * (1 - 0.3 * 2 / 7)               # weekly: weekends at 70%
        for m in means:
            self.assertAlmostEqual(m / expected, 1.0, delta=0.06)

    def test_series_matches_pod_usage(self):
        sc = S.load(SMALL)
        t0 = sc["startEpoch"]
        for step in (60, 300, 45):
            n = 0
            for s in S.series(sc, t0, t0 + 6 * 3600, step):
                for i in range(0, len(s.times), 17):
                    t = s.times[i]
                    cpu, mem = S.pod_usage(sc, s.namespace, s.pod, s.container, t)
                    self.assertEqual(s.cpu[i], cpu)
                    self.assertEqual(s.memory[i], mem)
                n += 1
            self.assertEqual(n, sum(1 for _ in S.container_profiles(sc)))

    def test_deterministic_and_order_independent(self):
        a, b = S.load(SMALL), S.load(SMALL)
        pa = [(p.namespace, p.name) for p in S.pods(a)]
        t = a["startEpoch"] + 12345
        first = [S.pod_usage(a, ns, n, "nginx", t) for ns, n in pa if n.startswith("web")]
        for ns, n in reversed(pa):                     # other calls in between
            if n.startswith("api"):
                S.pod_usage(b, ns, n, "api", t + 999)
        second = [S.pod_usage(b, ns, n, "nginx", t) for ns, n in pa if n.startswith("web")]
        self.assertEqual(first, second)

    def test_profiles_walk(self):
        sc = S.load(DEMO)
        rows = list(S.container_profiles(sc))
        self.assertEqual(len(rows), len({(r[0], r[3], r[4]) for r in rows}))
        kinds = {r[1] for r in rows}
        self.assertEqual(kinds, {"Deployment", "StatefulSet", "DaemonSet"})
        self.assertIn(("payments", "StatefulSet", "ledger-db", "ledger-db-0", "postgres-exporter"),
                      {r[:5] for r in rows})


class TestGenerator(unittest.TestCase):

    def run_generate(self, *args):
        out = subprocess.run([sys.executable, os.path.join(SCENARIOS, "generate")] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_yaml_and_json_load_and_schedule(self):
        for fmt in ("yaml", "json"):
            text = self.run_generate("--workloads", "120", "--namespaces", "6", "--nodepools",
                                     "4", "--seed", "5", "--format", fmt)
            sc = S.load_text(text, "gen." + fmt)
            objs = S.objects(sc, now=NOW)
            pods = [o for o in objs if o["kind"] == "Pod"]
            self.assertGreater(len(pods), 120)
            self.assertTrue(all(p["status"]["phase"] == "Running" for p in pods))
            wls = sum(1 for o in objs if o["kind"] in ("Deployment", "StatefulSet",
                                                        "DaemonSet"))
            self.assertEqual(wls, 120)
        self.assertEqual(self.run_generate("--workloads", "30", "--seed", "9"),
                         self.run_generate("--workloads", "30", "--seed", "9"))

    def test_node_target(self):
        text = self.run_generate("--workloads", "200", "--pods-per-workload", "3",
                                 "--namespaces", "10", "--nodes", "40", "--seed", "2")
        sc = S.load_text(text, "gen.yaml")
        self.assertGreaterEqual(len(S._nodes(sc)), 40)
        self.assertTrue(all(p.node is not None for p in S.pods(sc)))


TINY = """
name: tiny
seed: 3
start: "2026-11-20T00:00:00Z"
history: 2h
nodePools:
- name: general
  nodes: [{instanceType: m6i.xlarge}]
namespaces:
- name: app
  workloads:
  - kind: Deployment
    name: api
    replicas: 2
    containers:
    - name: api
      image: example/api:1
      requests: {cpu: 250m, memory: 256Mi}
      limits: {cpu: 300m, memory: 256Mi}
      usage:
        cpu: {base: 0.25, daily: 0.3, noise: 0.2}
        memory: {base: 200Mi, noise: 0.02, peaks: {every: 1h, duration: 5m, height: 1.4}}
  - kind: StatefulSet
    name: db
    containers:
    - name: db
      image: postgres:16
      requests: {cpu: 100m, memory: 128Mi}
      usage: {cpu: {base: 0.05}, memory: {base: 100Mi}}
"""


def parse_openmetrics(path):
    """A light OpenMetrics reader: families, and per series its (ts, value) list.
    Checks the rules promtool relies on while reading."""
    types, series, order = {}, collections.OrderedDict(), []
    last_key = None
    with open(path) as f:
        lines = f.read().split("\n")
    assert lines[-1] == "" and lines[-2] == "# EOF", "file must end with # EOF"
    for line in lines[:-2]:
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ")
            assert fam not in types, "family %s declared twice" % fam
            types[fam] = typ
            continue
        if line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\}) (\S+) (\d+)$', line)
        assert m, "bad sample line: %r" % line
        name, labels, value, ts = m.groups()
        fam = name[:-6] if name.endswith("_total") and name[:-6] in types else name
        assert fam in types, "sample %s before its TYPE" % name
        if types[fam] == "counter":
            assert name.endswith("_total"), name
        key = name + labels
        if key != last_key:
            assert key not in series, "series %s is not contiguous" % key
            series[key] = []
            order.append(fam)
            last_key = key
        series[key].append((int(ts), float(value)))
    return types, series


class TestPromHistory(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="scenario-test-")
        cls.scn = os.path.join(cls.tmp, "tiny.yaml")
        with open(cls.scn, "w") as f:
            f.write(TINY)
        cls.out = os.path.join(cls.tmp, "tiny.om")
        res = subprocess.run([sys.executable, os.path.join(SCENARIOS, "promhistory"), cls.scn,
                              "--out", cls.out], stderr=subprocess.PIPE, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        cls.sc = S.load(cls.scn)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_format_and_values(self):
        types, series = parse_openmetrics(self.out)
        self.assertEqual(types["container_cpu_usage_seconds"], "counter")
        self.assertEqual(types["container_memory_working_set_bytes"], "gauge")
        self.assertEqual(types["kube_pod_container_status_restarts"], "counter")
        end = self.sc["startEpoch"] + 7200
        names = collections.Counter(k.split("{")[0] for k in series)
        self.assertEqual(names["container_memory_working_set_bytes"], 3)
        self.assertEqual(names["container_cpu_cfs_periods_total"], 2)   # only api has a limit
        for key, samples in series.items():
            ts = [t for t, _ in samples]
            self.assertEqual(ts, sorted(set(ts)), key)
            self.assertLessEqual(ts[-1], end)
            labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
            if key.startswith("container_memory_working_set_bytes"):
                self.assertEqual(len(samples), 120)
                for t, v in samples[::7]:
                    self.assertEqual(v, S.pod_usage(self.sc, labels["namespace"],
                                                    labels["pod"], labels["container"], t)[1])
            if key.startswith("container_cpu_usage_seconds_total"):
                # rate over one step = the sample's usage (until a restart resets it)
                for (t1, v1), (t2, v2) in list(zip(samples, samples[1:]))[::11]:
                    if v2 >= v1:
                        cpu = S.pod_usage(self.sc, labels["namespace"], labels["pod"],
                                          labels["container"], t2)[0]
                        self.assertAlmostEqual((v2 - v1) / (t2 - t1), cpu, delta=2e-5)
            if key.startswith("kube_pod_owner") and labels["pod"].startswith("api-"):
                self.assertEqual(labels["owner_kind"], "ReplicaSet")
            if key.startswith("kube_pod_container_resource_limits") and \
                    labels.get("resource") == "memory":
                self.assertEqual(samples[-1][1], 256 * 2 ** 20)
                self.assertEqual(labels["unit"], "byte")
        reasons = [k for k in series if k.startswith("kube_pod_container_status_last_"
                                                     "terminated_reason")]
        self.assertTrue(reasons and all('reason="OOMKilled"' in k for k in reasons))
        restarts = [s for k, s in series.items()
                    if k.startswith("kube_pod_container_status_restarts_total")
                    and 'container="api"' in k]
        self.assertTrue(all(s[-1][1] == 2 for s in restarts))            # 2 hourly peaks
        self.assertTrue(any(k.startswith("kube_replicaset_owner") for k in series))

    def test_promtool_and_prometheus(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not installed")
        data = os.path.join(self.tmp, "data")
        res = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                              "--max-block-duration=4h", self.out, data],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=120)
        self.assertEqual(res.returncode, 0, res.stdout)
        prometheus = shutil.which("prometheus")
        if not prometheus:
            self.skipTest("prometheus not installed (promtool backfill passed)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1m}\nscrape_configs: []\n")
        log = open(os.path.join(self.tmp, "prometheus.log"), "w")
        proc = subprocess.Popen([prometheus, "--config.file=" + cfg,
                                 "--storage.tsdb.path=" + data,
                                 "--storage.tsdb.retention.time=100y",
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=log)
        try:
            end = self.sc["startEpoch"] + 7200
            t = end - 1800
            p = next(p for p in S.pods(self.sc) if p.workload["name"] == "api")
            query = 'container_memory_working_set_bytes{pod="%s",container="api"}' % p.name
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (
                port, urllib.parse.urlencode({"query": query, "time": t}))
            deadline = time.time() + 60
            result = None
            while time.time() < deadline:
                try:
                    body = json.load(urllib.request.urlopen(url, timeout=5))
                    result = body["data"]["result"]
                    if result:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            self.assertTrue(result, "no answer from Prometheus")
            self.assertEqual(int(result[0]["value"][1]),
                             S.pod_usage(self.sc, "app", p.name, "api", t)[1])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


if __name__ == "__main__":
    unittest.main()
