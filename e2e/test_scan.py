#!/usr/bin/env python3
"""`tailor scan` on the demo cluster: no CRDs installed, a ServiceAccount that may only get and
list workloads, a real Prometheus with the scenario's history. Every output format is checked,
and so are the exit codes and messages for a broken kubeconfig, an unreachable API server or
Prometheus, and bad flags."""
import csv
import io
import json
import os
import socket
import subprocess
import sys
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import promlib  # noqa: E402

SCENARIO = "e2e/scenarios/demo.yaml"
SA = "scan-test/reader"
WIDTH = 120
UNITS = {"m": 1e-3, "": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
# Deployments, StatefulSets and DaemonSets of the demo (shop/legacy-admin is annotated
# tailor.dev/ignore and left out).
SOME_WORKLOADS = ("Deployment/web", "Deployment/cart", "StatefulSet/zookeeper",
                  "StatefulSet/ledger-db", "DaemonSet/fluent-bit", "Deployment/search-api")

READ_ONLY_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: tailor-scan-reader}
rules:
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tailor-scan-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tailor-scan-reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: scan-test}
"""


def quantity(text):
    for suffix in ("Ki", "Mi", "Gi", "m", "k", "M", "G"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * UNITS[suffix]
    return float(text)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScanTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.binary = os.environ.get("TAILOR_BIN") or os.path.join(harness.ROOT,
                                                                  "build/controller/tailor")
        cls.prom = promlib.Prometheus(os.path.join(harness.ROOT, SCENARIO), history="7d",
                                      step="1m")
        cls.prom.__enter__()
        cls.server = harness.ApiServer(scenario=SCENARIO, sa=SA)
        cls.server.kubectl("apply", "-f", "-", input=READ_ONLY_ROLE)
        cls.json_report = json.loads(cls.scan("-o", "json").stdout)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.prom.__exit__(None, None, None)

    @classmethod
    def scan(cls, *args, kubeconfig=None, prometheus=None, check=True):
        cmd = [cls.binary, "scan", "--kubeconfig", kubeconfig or cls.server.sa,
               "--prometheus-url", prometheus or cls.prom.url, "--history", "7d"] + list(args)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, HOME=cls.server.dir))
        if check and res.returncode != 0:
            raise AssertionError("tailor scan %s exited %d: %s" % (" ".join(args), res.returncode,
                                                                   res.stderr))
        return res

    def workload(self, ns, kind, name):
        for w in self.json_report["workloads"]:
            if (w["namespace"], w["kind"], w["name"]) == (ns, kind, name):
                return w
        self.fail("%s %s/%s not in the report" % (kind, ns, name))

    def test_table_fits_120_columns_and_lists_the_demo(self):
        res = self.scan()
        lines = res.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAMESPACE", "KIND/NAME", "CONTAINER", "CPU", "MEMORY",
                                            "SAVINGS/MO", "CONFIDENCE"])
        for line in lines:
            self.assertLessEqual(len(line), WIDTH, line)
        for name in SOME_WORKLOADS:
            self.assertIn(name, res.stdout)
        self.assertNotIn("legacy-admin", res.stdout)
        self.assertIn("annotated tailor.dev/ignore", res.stderr)
        # The role may not list HPAs: the scan says so and goes on.
        self.assertIn("HorizontalPodAutoscalers", res.stderr)
        total = [line for line in lines if line.startswith("TOTAL")]
        self.assertEqual(len(total), 1, res.stdout)
        self.assertIn("%d workloads" % len(self.json_report["workloads"]), total[0])
        web = [line for line in lines if "Deployment/web " in line and line.startswith("shop")]
        self.assertEqual(len(web), 1)
        self.assertRegex(web[0], r"\$[0-9]+\.[0-9]{2}\s+(High|Medium|Low)$")

    def test_json_report(self):
        report = self.json_report
        self.assertEqual(report["kind"], "ScanReport")
        self.assertEqual(report["metadata"]["prometheus"], self.prom.url)
        self.assertEqual(report["metadata"]["history"], "7d")
        self.assertEqual(report["summary"]["workloads"], len(report["workloads"]))
        self.assertEqual(report["summary"]["containers"],
                         sum(len(w["containers"]) for w in report["workloads"]))
        self.assertEqual(report["summary"]["namespaces"], 5)
        # web is over-provisioned 6-8x (the scenario's comment): less CPU, money saved.
        web = self.workload("shop", "Deployment", "web")
        nginx = web["containers"][0]
        self.assertLess(quantity(nginx["recommended"]["requests"]["cpu"]),
                        quantity(nginx["current"]["requests"]["cpu"]))
        self.assertIn(web["confidence"], ("Low", "Medium", "High"))
        self.assertGreater(float(web["savings"]["monthlyUSD"]), 0)
        self.assertIn("CPU", web["explanation"])
        self.assertGreater(nginx["usage"]["samples"], 0)
        # query-suggest uses about twice its CPU request: it grows.
        suggest = self.workload("search", "Deployment", "query-suggest")["containers"][0]
        self.assertGreater(quantity(suggest["recommended"]["requests"]["cpu"]),
                           quantity(suggest["current"]["requests"]["cpu"]))
        total = sum(float(w["savings"]["monthlyUSD"]) for w in report["workloads"])
        self.assertAlmostEqual(float(report["summary"]["monthlySavingsUSD"]), total, delta=0.01 *
                               len(report["workloads"]))
        # Init containers are listed and do not count for savings.
        ledger = self.workload("payments", "StatefulSet", "ledger-db")
        init = [c for c in ledger["containers"] if c["type"] == "Init"]
        self.assertEqual([c["name"] for c in init], ["init-permissions"])
        self.assertNotIn("savings", init[0])

    def test_csv_has_one_row_per_container(self):
        res = self.scan("-o", "csv", "-n", "shop,payments")
        rows = list(csv.DictReader(io.StringIO(res.stdout)))
        containers = [(w["namespace"], w["name"], c["name"]) for w in self.json_report["workloads"]
                      if w["namespace"] in ("shop", "payments") for c in w["containers"]]
        self.assertEqual(len(rows), len(containers))
        self.assertEqual(sorted((r["namespace"], r["name"], r["container"]) for r in rows),
                         sorted(containers))
        web = [r for r in rows if r["name"] == "web"][0]
        self.assertEqual(web["kind"], "Deployment")
        self.assertLess(float(web["cpu_request_recommended_cores"]),
                        float(web["cpu_request_cores"]))
        # Explanations hold commas, so the CSV quoting matters.
        self.assertTrue(any("," in r["explanation"] for r in rows))

    def test_yaml_parses_like_the_json(self):
        res = self.scan("-o", "yaml", "-n", "shop")
        doc = yaml.safe_load(res.stdout)
        self.assertEqual(doc["kind"], "ScanReport")
        expected = [w for w in self.json_report["workloads"] if w["namespace"] == "shop"]
        self.assertEqual([(w["kind"], w["name"]) for w in doc["workloads"]],
                         [(w["kind"], w["name"]) for w in expected])
        for got, want in zip(doc["workloads"], expected):
            # Strings stay strings: quantities, money and the timestamp are not re-typed.
            self.assertIsInstance(got["savings"]["monthlyUSD"], str)
            self.assertIsInstance(got["savings"]["memoryBytes"], str)
            for c_got, c_want in zip(got["containers"], want["containers"]):
                self.assertEqual(c_got["current"], c_want["current"])
                self.assertEqual(c_got["name"], c_want["name"])
        self.assertIsInstance(doc["metadata"]["generatedAt"], str)

    def test_html_is_standalone_and_escaped(self):
        # A context name with markup in it, to see the page escape it.
        kubeconfig = os.path.join(self.server.dir, "html.kubeconfig")
        with open(self.server.sa) as f:
            cfg = yaml.safe_load(f)
        cfg["contexts"][0]["name"] = "ctx<b>&\"x'"
        cfg["current-context"] = "ctx<b>&\"x'"
        with open(kubeconfig, "w") as f:
            yaml.safe_dump(cfg, f)
        res = self.scan("-o", "html", "-n", "shop", kubeconfig=kubeconfig)
        page = res.stdout
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        self.assertIn("<table>", page)
        self.assertIn("</html>", page)
        self.assertNotIn("<script", page)
        self.assertNotIn("http://", page.replace(self.prom.url, ""))  # no external asset
        self.assertIn("ctx&lt;b&gt;&amp;&quot;x&#39;", page)
        self.assertNotIn("<b>&", page)
        for name in ("Deployment/web", "Deployment/cart", "StatefulSet/session-cache"):
            self.assertIn(name, page)

    def test_selector_and_kinds(self):
        res = self.scan("-o", "json", "-l", "tier in (web),app!=storefront")
        names = [(w["namespace"], w["name"]) for w in json.loads(res.stdout)["workloads"]]
        self.assertIn(("shop", "web"), names)
        self.assertNotIn(("shop", "storefront"), names)
        self.assertNotIn(("shop", "cart"), names)
        res = self.scan("-o", "json", "--kinds", "StatefulSet", "-n", "data")
        kinds = {w["kind"] for w in json.loads(res.stdout)["workloads"]}
        self.assertEqual(kinds, {"StatefulSet"})

    def test_scan_only_reads(self):
        self.scan("-n", "shop")
        mine = [r for r in self.server.requests()
                if r["user"] == "system:serviceaccount:" + SA.replace("/", ":")]
        self.assertTrue(mine)
        self.assertEqual({r["verb"] for r in mine} - {"get", "list"}, set(), mine)

    def test_broken_kubeconfig_exits_1_naming_the_file(self):
        missing = os.path.join(self.server.dir, "missing.kubeconfig")
        res = self.scan(kubeconfig=missing, check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn(missing, res.stderr)
        broken = os.path.join(self.server.dir, "broken.kubeconfig")
        with open(broken, "w") as f:
            f.write("clusters: [\n")
        res = self.scan(kubeconfig=broken, check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn(broken, res.stderr)
        self.assertEqual(res.stdout, "")

    def test_unreachable_api_server_exits_1_naming_it(self):
        kubeconfig = os.path.join(self.server.dir, "dead.kubeconfig")
        with open(self.server.sa) as f:
            cfg = yaml.safe_load(f)
        dead = "https://127.0.0.1:%d" % closed_port()
        cfg["clusters"][0]["cluster"]["server"] = dead
        with open(kubeconfig, "w") as f:
            yaml.safe_dump(cfg, f)
        res = self.scan(kubeconfig=kubeconfig, check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("API server at " + dead, res.stderr)

    def test_unreachable_prometheus_exits_1_naming_the_url(self):
        url = "http://127.0.0.1:%d" % closed_port()
        res = self.scan("-n", "shop", prometheus=url, check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("Prometheus at " + url, res.stderr)
        # Credentials in the URL are never printed.
        res = self.scan("-n", "shop", prometheus=url.replace("//", "//user:s3cret@"), check=False)
        self.assertEqual(res.returncode, 1)
        self.assertNotIn("s3cret", res.stderr)

    def test_bad_flags_exit_2(self):
        for args, message in ((["--output", "xml"], "--output"),
                              (["--bogus"], "--bogus"),
                              (["-l", "tier in ()"], "--selector"),
                              (["--history", "soon"], "--history"),
                              (["--metrics-server"], "not supported"),
                              (["-n", "shop", "-A"], "cannot be used together")):
            res = self.scan(*args, check=False)
            self.assertEqual(res.returncode, 2, args)
            self.assertIn(message, res.stderr, args)
        res = subprocess.run([self.binary, "scan", "--kubeconfig", self.server.sa],
                             capture_output=True, text=True)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--prometheus-url is required", res.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
