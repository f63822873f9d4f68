#!/usr/bin/env python3
"""Two operators, one Lease: exactly one leads and writes; when it dies the other takes over
within the lease duration, and a clean stop hands the lease over at once."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FLAGS = ["--leader-elect", "--leader-elect-lease-duration=3s",
         "--leader-elect-renew-deadline=2s", "--leader-elect-retry-period=500ms"]


class LeaderElectionTest(unittest.TestCase):
    def setUp(self):
        self.server = harness.ApiServer(scenario="e2e/scenarios/small.yaml")
        self.server.install()
        self.server.kubectl("apply", "-f", "-", input="""
apiVersion: tailor.dev/v1alpha1
kind: OptimizationPolicy
metadata: {name: all, namespace: shop}
spec: {}
""")

    def tearDown(self):
        self.server.stop()

    def holder(self):
        res = self.server.kubectl("get", "lease", "tailor-leader", "-n", "tailor-system", "-o",
                                  "jsonpath={.spec.holderIdentity}", check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    def leaders(self, *tailors):
        return [t for t in tailors if "became the leader" in t.output()]

    def test_one_leader_and_failover(self):
        a = harness.Tailor(self.server, *FLAGS)
        b = harness.Tailor(self.server, *FLAGS)
        harness.wait_for(lambda: len(self.leaders(a, b)) == 1, what="one leader")
        time.sleep(2)
        self.assertEqual(len(self.leaders(a, b)), 1, "two leaders at once")
        leader, follower = (a, b) if self.leaders(a, b)[0] is a else (b, a)
        harness.wait_for(lambda: self.server.get_json("rec", "-n", "shop")["items"],
                         what="the leader's Recommendations")
        # Only the leader's ServiceAccount session wrote Recommendations: the follower wrote
        # nothing at all (its log says it never led).
        self.assertNotIn("recommendation created", follower.output())

        # A crash: no release, so the follower must wait out the lease, and not much longer.
        leader.proc.kill()
        leader.proc.wait()
        killed = time.time()
        harness.wait_for(lambda: "became the leader" in follower.output(), timeout=15,
                         what="failover")
        # The lease (3 s) must run out first; then one retry period, plus slack for a loaded CI.
        self.assertLess(time.time() - killed, 3 + 0.5 + 5)

        # A clean stop releases the lease: a new candidate takes it at once.
        c = harness.Tailor(self.server, *FLAGS)
        time.sleep(1)
        self.assertEqual(follower.stop(), 0)
        stopped = time.time()
        self.assertIn("lease released", follower.output())
        harness.wait_for(lambda: "became the leader" in c.output(), timeout=10,
                         what="takeover after release")
        self.assertLess(time.time() - stopped, 3.0)  # no waiting for the 3 s lease
        c.stop()
        leader.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
