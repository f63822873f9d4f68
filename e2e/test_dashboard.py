#!/usr/bin/env python3
"""The dashboard in a real headless Chromium on the demo cluster (the same setup as
test_api.py): the table lists the demo's Recommendations, filters and sorts, a workload's chart
is drawn from Prometheus history with its current and recommended requests, a NodePool plan
is listed, an approval made
with kubectl shows without a reload (over the WebSocket), and an allowed user approves one
through the token dialog. The browser is driven by e2e/browser/dashboard.js with playwright-core
(pinned in dashboard/package-lock.json; `make deps` installs it). Screenshots go to
$TAILOR_BUILD_DIR/screenshots/ (docs/dashboard.md shows them).

Skips only when there is no Chromium (scripts/deps.sh installs Debian's `chromium`)."""
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from test_api import NODEPOOL_REC, NODEPOOL_STATUS, Demo  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT = os.path.join(harness.ROOT, "dashboard", "node_modules", "playwright-core")
LIVE_REC = "shop/deployment-cart"
APPROVE_REC = "shop/deployment-storefront"


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK),
                     "no Chromium at %s: install Debian's chromium (scripts/deps.sh does)" %
                     CHROMIUM)
class DashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("node"):
            raise AssertionError("node is not installed: run `make deps`")
        if not os.path.isdir(PLAYWRIGHT):
            raise AssertionError("playwright-core is missing from dashboard/node_modules: run "
                                 "`make deps` (npm ci in dashboard/)")
        cls.demo = Demo()
        cls.demo.server.kubectl("apply", "-f", "-", input=NODEPOOL_REC)
        cls.demo.server.kubectl("patch", "rec", "-n", "tailor-system", "nodepool-general",
                                "--subresource=status", "--type", "merge", "-p",
                                json.dumps(NODEPOOL_STATUS))
        cls.recs = cls.demo.wait_analyzed()

    @classmethod
    def tearDownClass(cls):
        cls.demo.stop()

    def test_dashboard_in_chromium(self):
        shots = os.path.join(os.environ.get("TAILOR_BUILD_DIR") or
                             os.path.join(harness.ROOT, "build"), "screenshots")
        env = dict(self.demo.server.env, TAILOR_URL=self.demo.url, CHROMIUM=CHROMIUM,
                   APPROVER_TOKEN=self.demo.token("shop/approver"), LIVE_REC=LIVE_REC,
                   APPROVE_REC=APPROVE_REC, EXPECTED_RECS=",".join(sorted(self.recs)),
                   SCREENSHOT_DIR=shots)
        res = subprocess.run(["node", os.path.join(HERE, "browser", "dashboard.js")], env=env,
                             capture_output=True, text=True, timeout=120)
        lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
        self.assertTrue(lines, "no result from the browser: %s %s" % (res.stdout, res.stderr))
        report = json.loads(lines[-1])
        for check in report["checks"]:
            print("  ok:", check)
        self.assertEqual(report["failures"], [], res.stderr[-2000:])
        self.assertEqual(res.returncode, 0)
        for name in ("overview", "recommendations", "approve-dialog", "workload", "nodepools"):
            self.assertTrue(os.path.getsize(os.path.join(shots, name + ".png")) > 10000, name)
        # The approval went through the operator, as the approver.
        ns, name = APPROVE_REC.split("/")
        rec = self.demo.server.get_json("rec", "-n", ns, name)
        self.assertEqual(rec["spec"]["approval"]["approvedRevision"], rec["status"]["revision"])
        self.assertEqual(rec["metadata"]["annotations"]["tailor.dev/approved-by"],
                         "system:serviceaccount:shop:approver")


if __name__ == "__main__":
    unittest.main(verbosity=2)
