"""Tests for the cluster simulation (e2e/apiserver/simulation.py, sim_workloads.py,
sim_kubelet.py): rollouts, StatefulSet and DaemonSet updates, OOM kills and crash
loops, PodDisruptionBudget status, in-place resize, metrics and watch events.

Each class runs its own server over HTTP with a small scenario, short ready
delays and a fast tick. Run from the repository root:
    python3 -m unittest discover -s e2e/apiserver/tests -t . -p test_simulation.py
"""
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import unittest

from e2e.apiserver import scenario as S
from e2e.apiserver import scenario_loader
from e2e.apiserver.api import APIServer
from e2e.apiserver.server import App, APIHTTPServer
from e2e.apiserver.simulation import Options, Simulation
from e2e.apiserver.tests.helpers import Client

SCENARIO = """
name: simtest
seed: 3
start: "2026-11-02T00:00:00Z"
history: 1d
nodePools:
- name: general
  requirements:
  - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
  nodes: [{instanceType: m6i.xlarge, count: 3}]
namespaces:
- name: sim
  workloads:
  - kind: Deployment
    name: web
    replicas: 4
    containers:
    - name: nginx
      image: nginx:1.27.3
      requests: {cpu: 100m, memory: 128Mi}
      limits: {memory: 256Mi}
      usage: {cpu: {base: 0.05}, memory: {base: 64Mi}}
  - kind: Deployment
    name: batch
    replicas: 3
    containers:
    - name: job
      image: example/batch:1
      requests: {cpu: 100m, memory: 128Mi}
      usage: {cpu: {base: 0.05}, memory: {base: 64Mi}}
  - kind: Deployment
    name: hungry
    replicas: 1
    containers:
    - name: app
      image: example/hungry:1
      requests: {cpu: 100m, memory: 256Mi}
      limits: {memory: 768Mi}
      usage: {cpu: {base: 0.05}, memory: {base: 400Mi}}
  - kind: Deployment
    name: resizer
    replicas: 1
    containers:
    - name: app
      image: example/resizer:1
      requests: {cpu: 100m, memory: 128Mi}
      limits: {memory: 512Mi}
      usage: {cpu: {base: 0.05}, memory: {base: 200Mi}}
  - kind: Deployment
    name: guarded
    replicas: 4
    pdb: {minAvailable: 3}
    containers:
    - name: app
      image: example/guarded:1
      requests: {cpu: 50m, memory: 64Mi}
      usage: {cpu: {base: 0.01}, memory: {base: 32Mi}}
  - kind: StatefulSet
    name: db
    replicas: 3
    pdb: {maxUnavailable: 1}
    containers:
    - name: pg
      image: postgres:16.6
      requests: {cpu: 100m, memory: 256Mi}
      limits: {memory: 512Mi}
      usage: {cpu: {base: 0.05}, memory: {base: 200Mi}}
  - kind: DaemonSet
    name: agent
    containers:
    - name: agent
      image: fluent/fluent-bit:3.2
      requests: {cpu: 50m, memory: 64Mi}
      limits: {memory: 128Mi}
      usage: {cpu: {base: 0.01}, memory: {base: 32Mi}}
"""

# a workload whose memory peaks (x2 for 10 minutes every hour) cross its limit
PEAKY = """
name: peaky
seed: 5
start: "2026-11-02T00:00:00Z"
history: 1d
nodePools:
- name: general
  requirements:
  - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
  nodes: [{instanceType: m6i.xlarge, count: 1}]
namespaces:
- name: sim
  workloads:
  - kind: Deployment
    name: peaky
    replicas: 1
    containers:
    - name: app
      image: example/peaky:1
      requests: {cpu: 100m, memory: 256Mi}
      limits: {memory: 512Mi}
      usage:
        cpu: {base: 0.05}
        memory: {base: 300Mi, peaks: {every: 1h, duration: 10m, height: 2}}
"""

APPLY = "application/apply-patch+yaml"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


def wait_for(predicate, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def ready(pod):
    if pod["metadata"].get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") != "Running":
        return False
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions") or ())


def cond(obj, ctype):
    return next((c for c in (obj.get("status") or {}).get("conditions") or ()
                 if c["type"] == ctype), None)


class Watch:
    """Reads a watch stream on a thread; events are (type, object) tuples."""

    def __init__(self, client, path, rv):
        sep = "&" if "?" in path else "?"
        self.stream = client.watch("%s%swatch=1&resourceVersion=%s&timeoutSeconds=60"
                                   % (path, sep, rv), timeout=60)
        self.events = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                ev = self.stream.next()
                if ev is None:
                    return
                with self.lock:
                    self.events.append((ev["type"], ev["object"]))
        except (OSError, ValueError, AttributeError):
            return

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def close(self):
        # unblock the reader first: closing the connection waits for its lock
        sock = self.stream.conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)
        self.stream.close()


class SimulationCase(unittest.TestCase):
    scenario = SCENARIO
    options = dict(ready_delay=0.2, tick=0.05, time_scale=1.0, crash_backoff=0.3,
                   resize_delay=0.1)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sim-test-")
        path = os.path.join(cls.tmp, "scenario.yaml")
        with open(path, "w") as f:
            f.write(cls.scenario or "")
        cls.api = APIServer()
        if cls.scenario:
            cls.sc, _ = scenario_loader.load(cls.api, path)
            cls.loaded_rv = cls.api.store.rv
            cls.sim = Simulation(cls.api, Options(**cls.options), S, cls.sc).start()
        else:
            cls.sim = Simulation(cls.api, Options(**cls.options)).start()
        cls.app = App(cls.api, bookmark_interval=1.0)
        cls.server = APIHTTPServer(cls.app, 0, None)
        cls.thread = threading.Thread(target=cls.server.serve_forever,
                                      kwargs={"poll_interval": 0.05}, daemon=True)
        cls.thread.start()
        cls.client = Client(cls.server.port, cls.api.authn.admin_token())

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        cls.server.shutdown()
        cls.server.server_close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------------
    def get(self, path):
        status, body, _ = self.client.get(path)
        self.assertEqual(status, 200, body)
        return body

    def patch(self, path, body, ptype=APPLY, manager="tailor", expect=200):
        if ptype == APPLY:
            path += "?fieldManager=%s&force=true" % manager
            body = json.dumps(body)
        status, obj, _ = self.client.patch(path, body, ptype=ptype)
        self.assertEqual(status, expect, obj)
        return obj

    def pods(self, selector):
        return self.get("/api/v1/namespaces/sim/pods?labelSelector=" + selector)

    def deployment(self, name):
        return self.get("/apis/apps/v1/namespaces/sim/deployments/" + name)

    def set_resources(self, kind, name, container, resources, extra_spec=None):
        body = {"apiVersion": "apps/v1", "kind": kind,
                "metadata": {"name": name, "namespace": "sim"},
                "spec": {"template": {"spec": {"containers": [
                    {"name": container, "resources": resources}]}}}}
        body["spec"].update(extra_spec or {})
        return self.patch("/apis/apps/v1/namespaces/sim/%ss/%s" % (kind.lower(), name), body)

    def rollout_done(self, name, replicas):
        d = self.deployment(name)
        st = d.get("status") or {}
        prog = cond(d, "Progressing") or {}
        if st.get("observedGeneration") == d["metadata"]["generation"] and \
                st.get("updatedReplicas") == replicas and st.get("replicas") == replicas and \
                st.get("availableReplicas") == replicas and \
                st.get("readyReplicas") == replicas and \
                prog.get("reason") == "NewReplicaSetAvailable":
            return d
        return None


class TestDeploymentRollout(SimulationCase):

    def test_0_loaded_scenario_is_left_alone(self):
        # the scenario's objects are consistent: no rollout, no status churn
        time.sleep(0.5)
        self.assertEqual(self.api.store.rv, self.loaded_rv)
        rs = self.get("/apis/apps/v1/namespaces/sim/replicasets")["items"]
        self.assertEqual(sorted(r["metadata"]["name"].rsplit("-", 1)[0] for r in rs),
                         ["batch", "guarded", "hungry", "resizer", "web"])

    def test_rolling_update_after_resources_patch(self):
        before = self.pods("app=web")
        old_names = {p["metadata"]["name"] for p in before["items"]}
        old_rs = self.get("/apis/apps/v1/namespaces/sim/replicasets?labelSelector=app=web")
        self.assertEqual(len(old_rs["items"]), 1)
        watch = Watch(self.client, "/api/v1/namespaces/sim/pods?labelSelector=app%3Dweb",
                      before["metadata"]["resourceVersion"])
        try:
            d = self.set_resources("Deployment", "web", "nginx",
                                   {"requests": {"cpu": "200m", "memory": "192Mi"},
                                    "limits": {"memory": "384Mi"}})
            self.assertEqual(d["metadata"]["generation"], 2)
            done = wait_for(lambda: self.rollout_done("web", 4), what="web rolled out")
            time.sleep(0.3)
            events = watch.snapshot()
        finally:
            watch.close()
        # every observed state kept >= replicas - maxUnavailable (4 - 1) pods Ready and
        # never more than replicas + maxSurge (4 + 1) pods
        state = {p["metadata"]["name"]: p for p in before["items"]}
        min_ready, max_total = 4, 4
        for type_, obj in events:
            if type_ == "DELETED":
                state.pop(obj["metadata"]["name"], None)
            else:
                state[obj["metadata"]["name"]] = obj
            min_ready = min(min_ready, sum(1 for p in state.values() if ready(p)))
            max_total = max(max_total, len(state))
        self.assertGreaterEqual(min_ready, 3)
        self.assertLessEqual(max_total, 5)
        types = {t for t, _ in events}
        self.assertEqual(types, {"ADDED", "MODIFIED", "DELETED"})
        # status
        st = done["status"]
        self.assertEqual(st["observedGeneration"], 2)
        self.assertNotIn("unavailableReplicas", st)
        self.assertEqual(cond(done, "Available")["status"], "True")
        self.assertEqual(cond(done, "Available")["reason"], "MinimumReplicasAvailable")
        self.assertEqual(done["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                         "2")
        # a new ReplicaSet named after the template hash; the old one scaled to 0
        rss = {r["metadata"]["name"]: r for r in self.get(
            "/apis/apps/v1/namespaces/sim/replicasets?labelSelector=app=web")["items"]}
        self.assertEqual(len(rss), 2)
        old = rss.pop(old_rs["items"][0]["metadata"]["name"])
        self.assertEqual(old["spec"]["replicas"], 0)
        self.assertEqual(old["status"]["replicas"], 0)
        (new_name, new), = rss.items()
        h = new["metadata"]["labels"]["pod-template-hash"]
        self.assertEqual(new_name, "web-" + h)
        self.assertEqual(new["spec"]["selector"]["matchLabels"]["pod-template-hash"], h)
        ref = new["metadata"]["ownerReferences"][0]
        self.assertEqual((ref["kind"], ref["name"], ref["uid"], ref["controller"]),
                         ("Deployment", "web", done["metadata"]["uid"], True))
        self.assertEqual(new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                         "2")
        self.assertEqual(new["status"]["availableReplicas"], 4)
        self.assertIn('ReplicaSet "%s" has successfully progressed.' % new_name,
                      cond(done, "Progressing")["message"])
        # the new pods
        pods = self.pods("app=web")["items"]
        self.assertEqual(len(pods), 4)
        nodes = {n["metadata"]["name"] for n in self.get("/api/v1/nodes")["items"]}
        for p in pods:
            self.assertNotIn(p["metadata"]["name"], old_names)
            self.assertTrue(p["metadata"]["name"].startswith(new_name + "-"))
            self.assertEqual(p["metadata"]["labels"]["pod-template-hash"], h)
            self.assertEqual(p["metadata"]["ownerReferences"][0]["name"], new_name)
            self.assertTrue(p["metadata"]["ownerReferences"][0]["controller"])
            self.assertIn(p["spec"]["nodeName"], nodes)
            c = p["spec"]["containers"][0]
            self.assertEqual(c["resources"], {"requests": {"cpu": "200m", "memory": "192Mi"},
                                              "limits": {"memory": "384Mi"}})
            st = p["status"]
            self.assertEqual(st["phase"], "Running")
            self.assertEqual(st["qosClass"], "Burstable")
            self.assertTrue(st["podIP"])
            self.assertEqual({c["type"]: c["status"] for c in st["conditions"]},
                             {"PodReadyToStartContainers": "True", "Initialized": "True",
                              "Ready": "True", "ContainersReady": "True",
                              "PodScheduled": "True"})
            cs = st["containerStatuses"][0]
            self.assertEqual((cs["name"], cs["ready"], cs["started"], cs["restartCount"]),
                             ("nginx", True, True, 0))
            self.assertIn("running", cs["state"])
            self.assertEqual(cs["resources"], c["resources"])
            self.assertEqual(cs["allocatedResources"], c["resources"]["requests"])

    def test_recreate_strategy(self):
        before = self.pods("app=batch")
        old = {p["metadata"]["name"] for p in before["items"]}
        watch = Watch(self.client, "/api/v1/namespaces/sim/pods?labelSelector=app%3Dbatch",
                      before["metadata"]["resourceVersion"])
        try:
            self.patch("/apis/apps/v1/namespaces/sim/deployments/batch", {"spec": {
                "strategy": {"type": "Recreate", "rollingUpdate": None},
                "template": {"spec": {"containers": [
                    {"name": "job", "image": "example/batch:2"}]}}}}, ptype=SMP)
            wait_for(lambda: self.rollout_done("batch", 3), what="batch rolled out")
            events = watch.snapshot()
        finally:
            watch.close()
        # every old pod was gone before the first new one was created
        alive_old = set(old)
        for type_, obj in events:
            name = obj["metadata"]["name"]
            if type_ == "DELETED":
                alive_old.discard(name)
            elif type_ == "ADDED" and name not in old:
                self.assertEqual(alive_old, set(), "a new pod while old ones still ran")
        pods = self.pods("app=batch")["items"]
        self.assertEqual(len(pods), 3)
        self.assertTrue(all(p["spec"]["containers"][0]["image"] == "example/batch:2"
                            for p in pods))
        d = self.deployment("batch")
        self.assertEqual(d["spec"]["strategy"], {"type": "Recreate"})

    def test_scale_uses_current_replicaset(self):
        rs_before = {r["metadata"]["name"] for r in self.get(
            "/apis/apps/v1/namespaces/sim/replicasets?labelSelector=app=guarded")["items"]}
        self.patch("/apis/apps/v1/namespaces/sim/deployments/guarded/scale",
                   {"spec": {"replicas": 6}}, ptype=MERGE)
        wait_for(lambda: self.rollout_done("guarded", 6), what="scaled to 6")
        rs_after = self.get(
            "/apis/apps/v1/namespaces/sim/replicasets?labelSelector=app=guarded")["items"]
        self.assertEqual({r["metadata"]["name"] for r in rs_after}, rs_before)
        self.assertEqual(rs_after[0]["spec"]["replicas"], 6)
        self.patch("/apis/apps/v1/namespaces/sim/deployments/guarded/scale",
                   {"spec": {"replicas": 4}}, ptype=MERGE)
        wait_for(lambda: self.rollout_done("guarded", 4), what="scaled back to 4")
        self.assertEqual(len(self.pods("app=guarded")["items"]), 4)

    def test_progress_deadline_and_rollback(self):
        # an image that never gets Ready is not modelled; a crash-looping limit is
        self.set_resources("Deployment", "hungry", "app",
                           {"requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "128Mi"}},
                           {"progressDeadlineSeconds": 1})

        def timed_out():
            c = cond(self.deployment("hungry"), "Progressing")
            return c if c and c["reason"] == "ProgressDeadlineExceeded" else None
        c = wait_for(timed_out, what="ProgressDeadlineExceeded")
        self.assertEqual(c["status"], "False")
        self.assertRegex(c["message"], r'^ReplicaSet "hungry-\w+" has timed out progressing\.$')
        # the old pod kept serving the whole time (maxUnavailable rounds down to 0)
        d = self.deployment("hungry")
        self.assertEqual(d["status"]["availableReplicas"], 1)
        self.assertEqual(d["status"]["updatedReplicas"], 1)
        self.assertEqual(d["status"]["replicas"], 2)
        # rolling back to the old template reuses the old ReplicaSet, as a new revision
        self.set_resources("Deployment", "hungry", "app",
                           {"requests": {"cpu": "100m", "memory": "256Mi"},
                            "limits": {"memory": "768Mi"}})
        d = wait_for(lambda: self.rollout_done("hungry", 1), what="hungry rolled back")
        self.assertEqual(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                         "3")
        rss = self.get("/apis/apps/v1/namespaces/sim/replicasets?labelSelector=app=hungry")
        self.assertEqual(sorted((r["spec"]["replicas"], r["metadata"]["annotations"][
            "deployment.kubernetes.io/revision"]) for r in rss["items"]), [(0, "2"), (1, "3")])


class TestStatefulSetAndDaemonSet(SimulationCase):

    def test_statefulset_updates_in_reverse_ordinal_order(self):
        before = self.pods("app=db")
        self.assertEqual(sorted(p["metadata"]["name"] for p in before["items"]),
                         ["db-0", "db-1", "db-2"])
        old_rev = self.get("/apis/apps/v1/namespaces/sim/statefulsets/db")["status"][
            "updateRevision"]
        watch = Watch(self.client, "/api/v1/namespaces/sim/pods?labelSelector=app%3Ddb",
                      before["metadata"]["resourceVersion"])
        try:
            self.set_resources("StatefulSet", "db", "pg",
                               {"requests": {"cpu": "200m", "memory": "256Mi"},
                                "limits": {"memory": "640Mi"}})

            def done():
                s = self.get("/apis/apps/v1/namespaces/sim/statefulsets/db")
                st = s["status"]
                return s if st["observedGeneration"] == s["metadata"]["generation"] and \
                    st.get("updatedReplicas") == 3 and st.get("readyReplicas") == 3 and \
                    st["currentRevision"] == st["updateRevision"] else None
            sts = wait_for(done, what="db updated")
            events = watch.snapshot()
        finally:
            watch.close()
        deleted = [o["metadata"]["name"] for t, o in events if t == "DELETED"]
        self.assertEqual(deleted, ["db-2", "db-1", "db-0"])
        state = {p["metadata"]["name"]: p for p in before["items"]}
        for type_, obj in events:        # one pod at a time: never fewer than 2 Ready
            if type_ == "DELETED":
                state.pop(obj["metadata"]["name"], None)
            else:
                state[obj["metadata"]["name"]] = obj
            self.assertGreaterEqual(sum(1 for p in state.values() if ready(p)), 2)
        st = sts["status"]
        self.assertNotEqual(st["updateRevision"], old_rev)
        self.assertEqual((st["replicas"], st["currentReplicas"], st["availableReplicas"]),
                         (3, 3, 3))
        for p in self.pods("app=db")["items"]:
            self.assertEqual(p["metadata"]["labels"]["controller-revision-hash"],
                             st["updateRevision"])
            self.assertEqual(p["spec"]["containers"][0]["resources"]["limits"]["memory"],
                             "640Mi")
            self.assertEqual(p["spec"]["hostname"], p["metadata"]["name"])
            self.assertTrue(ready(p))

    def test_daemonset_one_pod_per_node_and_rolling_update(self):
        nodes = sorted(n["metadata"]["name"] for n in self.get("/api/v1/nodes")["items"])

        def by_node():
            out = {}
            for p in self.pods("app=agent")["items"]:
                out.setdefault(p["spec"].get("nodeName"), []).append(p)
            return out
        self.assertEqual(sorted(by_node()), nodes)
        # a new node gets a pod; a node with a taint the DaemonSet does not tolerate does not
        template = self.get("/api/v1/nodes/" + nodes[0])
        for name, taints in (("ip-10-0-99-1.ec2.internal", []),
                             ("ip-10-0-99-2.ec2.internal",
                              [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])):
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": dict(
                        template["metadata"]["labels"], **{"kubernetes.io/hostname": name})},
                    "spec": {"taints": taints} if taints else {},
                    "status": template["status"]}
            status, body, _ = self.client.post("/api/v1/nodes", node)
            self.assertEqual(status, 201, body)
        expect = sorted(nodes + ["ip-10-0-99-1.ec2.internal"])
        wait_for(lambda: sorted(by_node()) == expect and all(
            ready(ps[0]) for ps in by_node().values()), what="a pod on the new node")

        def ds():
            return self.get("/apis/apps/v1/namespaces/sim/daemonsets/agent")
        wait_for(lambda: ds()["status"].get("numberAvailable") == 4, what="4 available")
        before = self.pods("app=agent")
        watch = Watch(self.client, "/api/v1/namespaces/sim/pods?labelSelector=app%3Dagent",
                      before["metadata"]["resourceVersion"])
        try:
            self.set_resources("DaemonSet", "agent", "agent",
                               {"requests": {"cpu": "60m", "memory": "64Mi"},
                                "limits": {"memory": "160Mi"}})

            def done():
                d = ds()
                st = d["status"]
                return d if st["observedGeneration"] == d["metadata"]["generation"] and \
                    st["desiredNumberScheduled"] == 4 and \
                    st.get("updatedNumberScheduled") == 4 and st["numberReady"] == 4 and \
                    st.get("numberAvailable") == 4 else None
            d = wait_for(done, what="agent updated")
            events = watch.snapshot()
        finally:
            watch.close()
        # maxUnavailable 1: at most one node without a Ready agent at any time
        state = {p["metadata"]["name"]: p for p in before["items"]}
        for type_, obj in events:
            if type_ == "DELETED":
                state.pop(obj["metadata"]["name"], None)
            else:
                state[obj["metadata"]["name"]] = obj
            covered = {p["spec"].get("nodeName") for p in state.values() if ready(p)}
            self.assertGreaterEqual(len(covered), 3)
        st = d["status"]
        self.assertEqual((st["currentNumberScheduled"], st["numberMisscheduled"]), (4, 0))
        self.assertNotIn("numberUnavailable", st)
        self.assertEqual(d["metadata"]["annotations"][
            "deprecated.daemonset.template.generation"], "2")
        final = by_node()
        self.assertEqual(sorted(final), expect)
        for node, ps in final.items():
            self.assertEqual(len(ps), 1)
            p = ps[0]
            self.assertEqual(p["metadata"]["labels"]["pod-template-generation"], "2")
            self.assertEqual(p["spec"]["affinity"]["nodeAffinity"][
                "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
                "matchFields"][0]["values"], [node])
            self.assertEqual(p["spec"]["containers"][0]["resources"]["limits"]["memory"],
                             "160Mi")


class TestOOMAndResize(SimulationCase):

    def container_status(self, name):
        return self.get("/api/v1/namespaces/sim/pods/" + name)["status"]["containerStatuses"][0]

    def test_oom_killing_limit_crash_loops_and_raising_it_fixes(self):
        before = self.pods("app=hungry")
        watch = Watch(self.client, "/api/v1/namespaces/sim/pods?labelSelector=app%3Dhungry",
                      before["metadata"]["resourceVersion"])
        try:
            # usage is ~400Mi: a 300Mi limit is OOM-killed
            self.set_resources("Deployment", "hungry", "app",
                               {"requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "300Mi"}})

            def crash_looping():
                for p in self.pods("app=hungry")["items"]:
                    cs = (p["status"].get("containerStatuses") or [{}])[0]
                    if (cs.get("state") or {}).get("waiting", {}).get("reason") == \
                            "CrashLoopBackOff":
                        return p
                return None
            p = wait_for(crash_looping, what="CrashLoopBackOff")
            cs = p["status"]["containerStatuses"][0]
            self.assertGreaterEqual(cs["restartCount"], 2)
            term = cs["lastState"]["terminated"]
            self.assertEqual((term["reason"], term["exitCode"]), ("OOMKilled", 137))
            self.assertTrue(term["startedAt"] and term["finishedAt"])
            self.assertFalse(cs["ready"])
            self.assertFalse(cs["started"])
            self.assertRegex(cs["state"]["waiting"]["message"],
                             r"^back-off \d+m?s restarting failed container=app pod=hungry-")
            self.assertEqual(cond(p, "Ready")["status"], "False")
            self.assertEqual(cond(p, "ContainersReady")["status"], "False")
            self.assertEqual(cond(p, "Ready")["reason"], "ContainersNotReady")
            bad = p["metadata"]["name"]
            # the restart count keeps growing with the back-off
            n = cs["restartCount"]
            wait_for(lambda: self.container_status(bad)["restartCount"] > n,
                     what="another OOM kill")
            # the rollout cannot progress past the crash-looping pod
            d = self.deployment("hungry")
            self.assertEqual(d["status"]["availableReplicas"], 1)
            self.assertEqual(d["status"]["unavailableReplicas"], 1)
            # raising the limit above usage fixes it
            self.set_resources("Deployment", "hungry", "app",
                               {"requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"}})
            wait_for(lambda: self.rollout_done("hungry", 1), what="fixed rollout")
            events = watch.snapshot()
        finally:
            watch.close()
        (good,) = self.pods("app=hungry")["items"]
        self.assertNotEqual(good["metadata"]["name"], bad)
        time.sleep(0.3)
        cs = self.container_status(good["metadata"]["name"])
        self.assertEqual((cs["restartCount"], cs["ready"]), (0, True))
        # watchers saw the kills
        kills = [o for t, o in events if t == "MODIFIED" and o["metadata"]["name"] == bad and
                 ((o["status"].get("containerStatuses") or [{}])[0].get("lastState") or {})
                 .get("terminated", {}).get("reason") == "OOMKilled"]
        self.assertTrue(kills)

    def test_resize_lowering_limit_below_usage_ooms_and_raising_stops_it(self):
        (p,) = self.pods("app=resizer")["items"]
        name = p["metadata"]["name"]
        path = "/api/v1/namespaces/sim/pods/%s/resize" % name
        self.patch(path, {"spec": {"containers": [
            {"name": "app", "resources": {"limits": {"memory": "150Mi"}}}]}}, ptype=SMP)
        wait_for(lambda: self.container_status(name)["restartCount"] >= 2,
                 what="OOM kills after the resize")
        self.assertEqual(self.container_status(name)["lastState"]["terminated"]["reason"],
                         "OOMKilled")
        self.patch(path, {"spec": {"containers": [
            {"name": "app", "resources": {"limits": {"memory": "512Mi"}}}]}}, ptype=SMP)
        wait_for(lambda: self.container_status(name)["ready"], what="running again")
        n = self.container_status(name)["restartCount"]
        time.sleep(0.5)
        cs = self.container_status(name)
        self.assertEqual((cs["restartCount"], cs["ready"]), (n, True))
        self.assertEqual(cs["resources"]["limits"]["memory"], "512Mi")

    def test_resize_feasible_infeasible_deferred(self):
        (p,) = self.pods("app=web")["items"][:1]
        name = p["metadata"]["name"]
        path = "/api/v1/namespaces/sim/pods/%s/resize" % name
        gen = p["metadata"]["generation"]
        watch = Watch(self.client, "/api/v1/namespaces/sim/pods?fieldSelector=metadata.name%3D"
                      + name, p["metadata"]["resourceVersion"])
        try:
            obj = self.patch(path, {"spec": {"containers": [
                {"name": "nginx", "resources": {"requests": {"cpu": "300m"}}}]}}, ptype=SMP)
            self.assertEqual(obj["metadata"]["generation"], gen + 1)

            def actuated():
                q = self.get("/api/v1/namespaces/sim/pods/" + name)
                cs = q["status"]["containerStatuses"][0]
                return q if (cs.get("resources") or {}).get("requests", {}).get("cpu") == \
                    "300m" and not cond(q, "PodResizeInProgress") else None
            q = wait_for(actuated, what="resize actuated")
            events = watch.snapshot()
        finally:
            watch.close()
        self.assertEqual(q["status"]["observedGeneration"], gen + 1)
        self.assertEqual(q["status"]["containerStatuses"][0]["allocatedResources"]["cpu"],
                         "300m")
        self.assertIsNone(cond(q, "PodResizePending"))
        progress = [cond(o, "PodResizeInProgress") for _, o in events]
        self.assertTrue(any(c and c["status"] == "True" and c["observedGeneration"] == gen + 1
                            for c in progress), "PodResizeInProgress was never observed")
        # more memory than the node has: Infeasible
        self.patch(path, {"spec": {"containers": [
            {"name": "nginx", "resources": {"requests": {"memory": "1Ti"},
                                            "limits": {"memory": "1Ti"}}}]}}, ptype=SMP)

        def pending(reason):
            def check():
                q = self.get("/api/v1/namespaces/sim/pods/" + name)
                c = cond(q, "PodResizePending")
                return (q, c) if c and c["reason"] == reason else None
            return check
        allocated = self.container_status(name)["allocatedResources"]["memory"]
        limit = self.container_status(name)["resources"]["limits"]["memory"]
        q, c = wait_for(pending("Infeasible"), what="Infeasible")
        self.assertRegex(c["message"], r"^Node didn't have enough capacity: memory, requested: "
                                       r"1099511627776, capacity: \d+$")
        self.assertEqual(c["observedGeneration"], q["metadata"]["generation"])
        cs = q["status"]["containerStatuses"][0]
        self.assertEqual(cs["allocatedResources"]["memory"], allocated)   # unchanged
        self.assertEqual(cs["resources"]["limits"]["memory"], limit)
        # fits the node, but not next to the pods already on it: Deferred
        node = self.get("/api/v1/nodes/" + q["spec"]["nodeName"])
        alloc = S.parse_memory(node["status"]["allocatable"]["memory"])
        used = 0
        for o in self.get("/api/v1/pods?fieldSelector=spec.nodeName%3D" +
                          q["spec"]["nodeName"])["items"]:
            if o["metadata"]["name"] == name:
                continue
            for ctr in o["spec"]["containers"] + [
                    ic for ic in o["spec"].get("initContainers") or ()
                    if ic.get("restartPolicy") == "Always"]:
                used += S.parse_memory(ctr["resources"].get("requests", {}).get("memory", 0))
        want = alloc - used + (32 << 20)
        self.patch(path, {"spec": {"containers": [
            {"name": "nginx", "resources": {"requests": {"memory": str(want)},
                                            "limits": {"memory": str(want)}}}]}}, ptype=SMP)
        q, c = wait_for(pending("Deferred"), what="Deferred")
        self.assertEqual(c["message"], "Node didn't have enough resource: memory, requested: "
                                       "%d, used: %d, capacity: %d" % (want, used, alloc))
        # a Deferred resize is retried when capacity frees up: the node's agent pod (64Mi)
        # goes, the resize takes its room, and the agent's replacement no longer fits
        node_name = q["spec"]["nodeName"]
        (agent,) = [o for o in self.get("/api/v1/pods?fieldSelector=spec.nodeName%3D" +
                                        node_name)["items"]
                    if o["metadata"]["labels"].get("app") == "agent"]
        status, _, _ = self.client.delete("/api/v1/namespaces/sim/pods/" +
                                          agent["metadata"]["name"])
        self.assertEqual(status, 200)
        wait_for(lambda: self.container_status(name)["allocatedResources"]["memory"] ==
                 str(want), what="deferred resize accepted")
        self.assertIsNone(cond(self.get("/api/v1/namespaces/sim/pods/" + name),
                               "PodResizePending"))

        def agent_pending():
            for o in self.pods("app=agent")["items"]:
                c = cond(o, "PodScheduled")
                if c and c["status"] == "False":
                    return c
            return None
        c = wait_for(agent_pending, what="the agent's replacement Unschedulable")
        self.assertEqual(c["reason"], "Unschedulable")
        self.assertIn("Insufficient memory", c["message"])
        # back to something that fits: the pending condition goes
        self.patch(path, {"spec": {"containers": [
            {"name": "nginx", "resources": {"requests": {"memory": "256Mi"},
                                            "limits": {"memory": "512Mi"}}}]}}, ptype=SMP)
        wait_for(lambda: cond(self.get("/api/v1/namespaces/sim/pods/" + name),
                              "PodResizePending") is None, what="pending cleared")
        wait_for(lambda: self.container_status(name)["resources"]["limits"]["memory"] ==
                 "512Mi", what="actuated")
        # ... and the freed room lets the agent's replacement be scheduled
        wait_for(lambda: len([o for o in self.pods("app=agent")["items"] if ready(o)]) == 3,
                 what="agent scheduled again")
        # validation stays: the QoS class may not change, only cpu and memory may
        err = self.patch(path, {"spec": {"containers": [
            {"name": "nginx", "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                            "limits": {"cpu": "1", "memory": "1Gi"}}}]}},
            ptype=SMP, expect=422)
        self.assertIn("Pod QoS is immutable", err["message"])
        err = self.patch(path, {"spec": {"containers": [
            {"name": "nginx", "resources": {"requests": {"ephemeral-storage": "1Gi"}}}]}},
            ptype=SMP, expect=422)
        self.assertIn("only cpu and memory resources are mutable", err["message"])

    def test_metrics_for_simulated_pods(self):
        # pods the simulation created report their workload's profile
        self.set_resources("Deployment", "web", "nginx",
                           {"requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "200Mi"}})
        wait_for(lambda: self.rollout_done("web", 4), what="web rolled out")
        for p in self.pods("app=web")["items"]:
            self.assertNotIn(p["metadata"]["name"], {i.name for i in S.pods(self.sc)})
            m = self.get("/apis/metrics.k8s.io/v1beta1/namespaces/sim/pods/" +
                         p["metadata"]["name"])
            usage = m["containers"][0]["usage"]
            mem = S.parse_memory(usage["memory"])
            self.assertLess(abs(mem - (64 << 20)), 0.06 * (64 << 20))    # replica skew 5%
            cpu = S.parse_cpu(usage["cpu"])
            self.assertLess(abs(cpu - 0.05), 0.06 * 0.05)
        # scenario pods get exactly the scenario's numbers
        t = time.time()
        for name in ("db-0", "db-1"):
            if name in {p.name for p in S.pods(self.sc)}:
                self.assertEqual(self.api.usage("sim", name, "pg", t),
                                 S.pod_usage(self.sc, "sim", name, "pg", t))


class TestPodDisruptionBudgets(SimulationCase):

    def pdb(self, name):
        return self.get("/apis/policy/v1/namespaces/sim/poddisruptionbudgets/" + name)

    def test_status_follows_pods_and_evictions(self):
        p = self.pdb("guarded")
        watch = Watch(self.client, "/apis/policy/v1/namespaces/sim/poddisruptionbudgets",
                      p["metadata"]["resourceVersion"])
        try:
            st = p["status"]
            self.assertEqual((st["expectedPods"], st["desiredHealthy"], st["currentHealthy"],
                              st["disruptionsAllowed"]), (4, 3, 4, 1))
            pods = self.pods("app=guarded")["items"]
            ev = {"apiVersion": "policy/v1", "kind": "Eviction",
                  "metadata": {"name": pods[0]["metadata"]["name"]}}
            status, body, _ = self.client.post(
                "/api/v1/namespaces/sim/pods/%s/eviction" % pods[0]["metadata"]["name"], ev)
            self.assertEqual(status, 201, body)
            ev["metadata"]["name"] = pods[1]["metadata"]["name"]
            status, body, _ = self.client.post(
                "/api/v1/namespaces/sim/pods/%s/eviction" % pods[1]["metadata"]["name"], ev)
            self.assertEqual(status, 429, body)      # the replacement is not Ready yet

            def healthy_again():
                q = self.pdb("guarded")
                return q if q["status"]["currentHealthy"] == 4 else None
            q = wait_for(healthy_again, what="replacement Ready")
            events = watch.snapshot()
        finally:
            watch.close()
        self.assertEqual(q["status"]["disruptionsAllowed"], 1)
        self.assertEqual(cond(q, "DisruptionAllowed")["reason"], "SufficientPods")
        low = [o["status"] for t, o in events if o["metadata"]["name"] == "guarded" and
               o["status"]["currentHealthy"] == 3]
        self.assertTrue(low, "the dip to 3 healthy pods was never published")
        self.assertEqual(low[0]["disruptionsAllowed"], 0)
        self.assertEqual(next(c for c in low[0]["conditions"]
                              if c["type"] == "DisruptionAllowed")["reason"],
                         "InsufficientPods")
        # a percentage counts the controller's scale
        self.patch("/apis/policy/v1/namespaces/sim/poddisruptionbudgets/guarded",
                   {"spec": {"minAvailable": None, "maxUnavailable": "50%"}}, ptype=MERGE)

        def numbers(gen, want):
            q = self.pdb("guarded")
            st = q["status"]
            got = (st.get("observedGeneration"), st["expectedPods"], st["desiredHealthy"],
                   st["currentHealthy"], st["disruptionsAllowed"])
            return q if got == (gen,) + want else None
        wait_for(lambda: numbers(2, (4, 2, 4, 2)), what="maxUnavailable 50% of 4")
        self.patch("/apis/apps/v1/namespaces/sim/deployments/guarded/scale",
                   {"spec": {"replicas": 6}}, ptype=MERGE)
        wait_for(lambda: numbers(2, (6, 3, 6, 3)), what="maxUnavailable 50% of 6")

    def test_statefulset_pdb(self):
        st = self.pdb("db")["status"]
        self.assertEqual((st["expectedPods"], st["desiredHealthy"], st["currentHealthy"],
                          st["disruptionsAllowed"]), (3, 2, 3, 1))


class TestTimeScale(SimulationCase):
    scenario = PEAKY
    # an hour of profile time per second: the hourly peak comes every second
    options = dict(ready_delay=0.1, tick=0.05, time_scale=3600.0, crash_backoff=0.2,
                   resize_delay=0.1)

    def test_hourly_peaks_oom_kill_quickly(self):
        tau0 = self.sim.clock.tau()
        time.sleep(0.5)
        self.assertGreater(self.sim.clock.tau() - tau0, 0.5 * 3600 * 0.9)
        (p,) = self.pods("app=peaky")["items"]
        name = p["metadata"]["name"]
        # the scenario's history already has one OOM kill per hourly peak (24), and the
        # simulation may have added some while this test got going
        n0 = p["status"]["containerStatuses"][0]["restartCount"]
        self.assertGreaterEqual(n0, 24)

        def killed():
            cs = self.get("/api/v1/namespaces/sim/pods/" + name)["status"][
                "containerStatuses"][0]
            return cs if cs["restartCount"] >= n0 + 2 else None
        cs = wait_for(killed, timeout=10, what="peak OOM kills")
        self.assertEqual(cs["lastState"]["terminated"]["reason"], "OOMKilled")
        # the kubectl RESTARTS column shows the last one
        status, table, _ = self.client.get(
            "/api/v1/namespaces/sim/pods/" + name,
            headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        self.assertRegex(table["rows"][0]["cells"][3], r"^\d+ \(\d+s ago\)$")
        # with twice the peak as limit the kills stop
        self.patch("/api/v1/namespaces/sim/pods/%s/resize" % name, {"spec": {"containers": [
            {"name": "app", "resources": {"limits": {"memory": "1Gi"}}}]}}, ptype=SMP)
        wait_for(lambda: self.get("/api/v1/namespaces/sim/pods/" + name)["status"][
            "containerStatuses"][0]["ready"], what="running again")
        n = self.get("/api/v1/namespaces/sim/pods/" + name)["status"]["containerStatuses"][0][
            "restartCount"]
        time.sleep(2.5)   # 2.5 hours of profile time, two more peaks
        self.assertEqual(self.get("/api/v1/namespaces/sim/pods/" + name)["status"][
            "containerStatuses"][0]["restartCount"], n)


class TestWithoutScenario(SimulationCase):
    """--simulate without a scenario: the cluster is whatever clients create."""
    scenario = None

    def test_client_created_cluster(self):
        status, body, _ = self.client.post("/api/v1/namespaces", {"metadata": {"name": "sim"}})
        self.assertEqual(status, 201, body)
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
                "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"},
                           "addresses": [{"type": "InternalIP", "address": "10.1.0.1"}]}}
        status, body, _ = self.client.post("/api/v1/nodes", node)
        self.assertEqual(status, 201, body)
        for name, cpu in (("small", "500m"), ("huge", "3")):
            d = {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": name},
                 "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                          "template": {"metadata": {"labels": {"app": name}},
                                       "spec": {"containers": [{
                                           "name": "main", "image": "nginx:1.27",
                                           "resources": {"requests": {"cpu": cpu}}}]}}}}
            status, body, _ = self.client.post("/apis/apps/v1/namespaces/sim/deployments", d)
            self.assertEqual(status, 201, body)
        d = wait_for(lambda: self.rollout_done("small", 2), what="small running")
        self.assertEqual(cond(d, "Progressing")["reason"], "NewReplicaSetAvailable")
        for p in self.pods("app=small")["items"]:
            self.assertEqual(p["spec"]["nodeName"], "node-1")
            self.assertEqual(p["status"]["hostIP"], "10.1.0.1")
            # no profile: metrics report nothing
            m = self.get("/apis/metrics.k8s.io/v1beta1/namespaces/sim/pods/" +
                         p["metadata"]["name"])
            self.assertEqual(m["containers"][0]["usage"], {"cpu": "0n", "memory": "0Ki"})

        def unschedulable():
            for p in self.pods("app=huge")["items"]:
                c = cond(p, "PodScheduled")
                if c and c["status"] == "False":
                    return c
            return None
        c = wait_for(unschedulable, what="huge Unschedulable")
        self.assertEqual(c["reason"], "Unschedulable")
        self.assertEqual(c["message"], "0/1 nodes are available: 1 Insufficient cpu.")
        d = self.deployment("huge")
        self.assertEqual(d["status"]["unavailableReplicas"], 2)
        self.assertEqual(cond(d, "Available")["status"], "False")
        # more room: the pending pods are scheduled
        node["metadata"] = {"name": "node-2", "labels": {"kubernetes.io/hostname": "node-2"}}
        node["status"]["allocatable"]["cpu"] = "8"
        status, body, _ = self.client.post("/api/v1/nodes", node)
        self.assertEqual(status, 201, body)
        wait_for(lambda: self.rollout_done("huge", 2), what="huge running")
        self.assertEqual({p["spec"]["nodeName"] for p in self.pods("app=huge")["items"]},
                         {"node-2"})


class TestDebugState(SimulationCase):

    def test_debug_state_reports_the_simulation(self):
        state = self.get("/debug/state")["simulation"]
        for key in ("ticks", "meanTickMs", "atRiskContainers", "trackedPods", "writes",
                    "timeScale", "readyDelay"):
            self.assertIn(key, state)
        self.assertEqual(state["readyDelay"], 0.2)
        self.assertTrue(re.match(r"^\d{4}-\d\d-\d\dT", state["profileTime"]))


if __name__ == "__main__":
    unittest.main()
