"""The simulated kubelets (one logic for every node): pod start-up
(Pending -> Running -> Ready after --ready-delay), container OOM kills from
the usage profiles with restart counts, lastState and CrashLoopBackOff with
the kubelet's doubling back-off, in-place resize as in Kubernetes 1.33
(PodResizePending Infeasible/Deferred, PodResizeInProgress, allocated and
actual resources, observedGeneration), and the usage numbers metrics.k8s.io
reports.

State is kept per pod (PodRT) only for pods the simulation started, pods it
resized and scenario pods whose memory limit their profile can reach; every
other pod costs nothing per tick.
"""
import collections
import time

from . import sim_util as U
from .simulation import KUBELET, Profiles


def fmt_duration(seconds):
    """Go's time.Duration.String() for the back-off message."""
    if seconds < 1:
        return "%dms" % round(seconds * 1000)
    s = int(round(seconds))
    if s < 60:
        return "%ds" % s
    m, s = divmod(s, 60)
    if m < 60:
        return "%dm%ds" % (m, s)
    h, m = divmod(m, 60)
    return "%dh%dm%ds" % (h, m, s)


class CState:
    """One container's runtime state."""
    __slots__ = ("name", "init", "state", "reason", "message", "restarts", "started_at",
                 "crash_count", "ready", "cid", "last", "actual", "allocated", "inst", "thr",
                 "prof")

    def __init__(self, name, init=False):
        self.name = name
        self.init = init
        self.state = "waiting"
        self.reason = "ContainerCreating"
        self.message = ""
        self.restarts = 0
        self.started_at = 0.0
        self.crash_count = 0
        self.ready = False
        self.cid = ""
        self.last = {}
        self.actual = {}
        self.allocated = None
        self.inst = None
        self.thr = None
        self.prof = None


class PodRT:
    __slots__ = ("key", "uid", "node", "phase", "containers", "ip", "start_time", "pod_key",
                 "host_network")

    def __init__(self, key, uid, node):
        self.key = key
        self.uid = uid
        self.node = node
        self.phase = "pending"
        self.containers = collections.OrderedDict()
        self.ip = ""
        self.start_time = None
        self.pod_key = 0
        self.host_network = False


_COND_ORDER = {t: i for i, t in enumerate(
    ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled",
     "PodResizePending", "PodResizeInProgress"))}


def _copy_res(res):
    out = {}
    for k in ("requests", "limits"):
        if (res or {}).get(k):
            out[k] = dict(res[k])
    return out


def _limits(res):
    lim = (res or {}).get("limits") or {}
    mem = U.mem_bytes(str(lim["memory"])) if "memory" in lim else None
    cpu = U.parse_quantity(lim["cpu"]) if "cpu" in lim else None
    return mem, cpu


class Kubelet:
    MAX_KILLS_PER_TICK = 200

    def __init__(self, sim):
        self.sim = sim
        self.store = sim.store
        self.opts = sim.opts
        self.pods = {}              # (ns, name) -> PodRT
        self.at_risk = set()        # (pod key, container) checked every tick
        self.deferred = set()       # pods with a Deferred resize
        self._due = collections.deque()   # (pod key, container, reason) waiting for a kill
        self._due_set = set()
        self._minst = {}            # (ns, pod) -> [rv, uid, {container: (limits, inst)}]
        self._rs_owner = {}         # ReplicaSet uid -> Deployment name

    # --- profiles ---------------------------------------------------------------------------
    def _workload_of(self, pod):
        md = pod["metadata"]
        p = self.sim.profiles.scenario_pods.get((md["namespace"], md["name"]))
        if p is not None:
            return p.workload["kind"], p.workload["name"]
        ref = U.controller_ref(pod)
        if ref is None:
            return None
        kind = ref.get("kind")
        if kind == "ReplicaSet":
            dep = self._rs_owner.get(ref.get("uid"))
            if dep is None:
                rs = self.store.get(U.REPLICASETS, md["namespace"], ref.get("name"))
                dref = U.controller_ref(rs.obj) if rs is not None else None
                dep = dref.get("name") if dref and dref.get("kind") == "Deployment" else ""
                self._rs_owner[ref.get("uid")] = dep
            return ("Deployment", dep) if dep else None
        if kind in ("StatefulSet", "DaemonSet"):
            return kind, ref.get("name")
        return None

    def _profiles_for(self, pod):
        if not self.sim.profiles:
            return {}
        wl = self._workload_of(pod)
        if wl is None:
            return {}
        return self.sim.profiles.by_workload.get((pod["metadata"]["namespace"],) + wl) or {}

    def _refresh(self, rt, cst):
        """(Re)build the container's model instance for its actual limits and
        decide whether the OOM check must look at it."""
        if cst.prof is None:
            return
        mem, cpu = _limits(cst.actual)
        eff = self.sim.profiles.effective(cst.prof, mem, cpu)
        if cst.inst is None or cst.inst.prof is not eff:
            cst.inst = self.sim.profiles.instance(eff, rt.pod_key, cst.name)
            cst.thr = eff["oomThreshold"]
        risky = cst.thr is not None and (Profiles.bound(cst.inst) >= cst.thr * 0.999 or
                                         cst.inst.cycle_restarts)
        if risky:
            self.at_risk.add((rt.key, cst.name))
        else:
            self.at_risk.discard((rt.key, cst.name))

    def _new_rt(self, pod):
        md, spec = pod["metadata"], pod["spec"]
        key = (md["namespace"], md["name"])
        rt = PodRT(key, md.get("uid"), spec.get("nodeName"))
        rt.pod_key = self.sim.profiles.pod_key(*key)
        rt.host_network = bool(spec.get("hostNetwork"))
        return rt

    def _adopt(self, entry):
        """Track a pod that runs already (scenario pods): state from its status."""
        pod = entry.obj
        st = pod.get("status") or {}
        rt = self._new_rt(pod)
        rt.phase = "running" if st.get("phase") == "Running" else "pending"
        rt.ip = st.get("podIP", "")
        rt.start_time = st.get("startTime")
        profs = self._profiles_for(pod)
        statuses = {cs.get("name"): cs for cs in st.get("containerStatuses") or []}
        istatuses = {cs.get("name"): cs for cs in st.get("initContainerStatuses") or []}
        spec = pod["spec"]
        for c, init in [(c, True) for c in spec.get("initContainers") or ()
                        if U.is_sidecar(c)] + [(c, False) for c in spec.get("containers") or ()]:
            cs = (istatuses if init else statuses).get(c["name"]) or {}
            cst = CState(c["name"], init)
            cst.restarts = int(cs.get("restartCount") or 0)
            state = cs.get("state") or {}
            if "running" in state:
                cst.state = "running"
                cst.started_at = U.parse_time(state["running"].get("startedAt")) or time.time()
            elif "waiting" in state:
                cst.state, cst.reason = "waiting", state["waiting"].get("reason", "")
                cst.message = state["waiting"].get("message", "")
            else:
                cst.state = "running" if rt.phase == "running" else "waiting"
                cst.started_at = time.time()
            cst.ready = bool(cs.get("ready"))
            cst.cid = cs.get("containerID", "")
            cst.last = cs.get("lastState") or {}
            cst.actual = _copy_res(cs.get("resources") or c.get("resources"))
            cst.allocated = dict(cs["allocatedResources"]) if cs.get("allocatedResources") \
                else dict(cst.actual.get("requests") or {})
            cst.prof = profs.get(c["name"])
            rt.containers[c["name"]] = cst
            self._refresh(rt, cst)
        self.pods[rt.key] = rt
        return rt

    def adopt_at_risk(self):
        """At start: track the scenario's pods whose memory limit their profile
        can reach (the workload-level bound, computed once per container)."""
        profs = self.sim.profiles
        if not profs:
            return
        risky = set()
        for (ns, kind, name), containers in profs.by_workload.items():
            for cname, prof in containers.items():
                thr = prof["oomThreshold"]
                if thr is not None and (Profiles.workload_bound(prof) >= thr * 0.999 or
                                        prof["memory"]["growthPerDay"] > 0):
                    risky.add((ns, kind, name))
        with self.store.lock:
            for (ns, name), p in profs.scenario_pods.items():
                if (ns, p.workload["kind"], p.workload["name"]) not in risky:
                    continue
                entry = self.store.get(U.PODS, ns, name)
                if entry is None or (entry.obj.get("status") or {}).get("phase") != "Running":
                    continue
                self._adopt(entry)

    # --- pod start-up ------------------------------------------------------------------------
    def start_pod(self, key):
        with self.store.lock:
            entry = self.store.get(U.PODS, *key)
            if entry is None or key in self.pods or not self.sim._wants_start(entry.obj):
                return
            pod = entry.obj
            rt = self._new_rt(pod)
            profs = self._profiles_for(pod)
            spec = pod["spec"]
            for c, init in [(c, True) for c in spec.get("initContainers") or ()
                            if U.is_sidecar(c)] + [(c, False) for c in spec.get("containers")
                                                   or ()]:
                cst = CState(c["name"], init)
                cst.actual = _copy_res(c.get("resources"))
                cst.allocated = dict(cst.actual.get("requests") or {})
                cst.prof = profs.get(c["name"])
                rt.containers[c["name"]] = cst
            self.pods[key] = rt
            now = time.time()
            d = self.opts.ready_delay
            if d <= 0:
                self._run(rt, entry, now, ready=True)
            else:
                self.sim.at(now + d / 2.0, "run", key, rt.uid)

    def _run(self, rt, entry, now, ready=False):
        rt.phase = "running"
        node = self.sim.nodes.get(rt.node)
        rt.ip = (node.ip if node else "") if rt.host_network else self.sim.next_pod_ip(rt.node)
        rt.start_time = U.rfc3339(now)
        for cst in rt.containers.values():
            self._start_container(rt, cst, now, ready)
            self._refresh(rt, cst)
        self._write(rt, entry, now)

    def _start_container(self, rt, cst, now, ready=False):
        cst.state, cst.reason, cst.message = "running", "", ""
        cst.started_at = now
        cst.cid = U.container_id()
        d = self.opts.ready_delay
        cst.ready = ready or d <= 0
        if not cst.ready:
            self.sim.at(now + (d if rt.phase == "running" and cst.restarts else d / 2.0),
                        "cready", rt.key, rt.uid, cst.name, cst.cid)

    # --- timers -----------------------------------------------------------------------------
    def on_timer(self, kind, key, uid, *args):
        with self.store.lock:
            entry = self.store.get(U.PODS, *key)
            rt = self.pods.get(key)
            if entry is None or rt is None or rt.uid != uid or \
                    entry.obj["metadata"].get("uid") != uid or U.is_deleting(entry.obj):
                return
            now = time.time()
            if kind == "run":
                if rt.phase == "pending":
                    self._run(rt, entry, now)
            elif kind == "cready":
                cst = rt.containers.get(args[0])
                if cst is not None and cst.state == "running" and cst.cid == args[1] \
                        and not cst.ready:
                    if cst.thr is not None and cst.inst is not None and \
                            cst.inst.mem_clean(self.sim.clock.tau(now)) > cst.thr:
                        # over its limit already: it dies starting up, never Ready
                        self._kill(rt, cst, "OOMKilled", now, entry.obj)
                        self.sim.stats["oomKills"] += 1
                    else:
                        cst.ready = True
                    self._write(rt, entry, now)
            elif kind == "restart":
                cst = rt.containers.get(args[0])
                if cst is not None and cst.state == "waiting" and cst.restarts == args[1]:
                    self._start_container(rt, cst, now)
                    self._refresh(rt, cst)
                    self._write(rt, entry, now)
            elif kind == "resized":
                self._actuate(rt, entry, args[0], now)

    # --- status ------------------------------------------------------------------------------
    def _fill(self, cs, c, cst):
        cs["image"] = c.get("image", "")
        cs["imageID"] = U.image_id(c.get("image", "")) if cst.cid else ""
        cs["containerID"] = cst.cid
        cs["ready"] = cst.ready
        cs["started"] = cst.state == "running"
        cs["restartCount"] = cst.restarts
        if cst.state == "running":
            cs["state"] = {"running": {"startedAt": U.rfc3339(cst.started_at)}}
        else:
            w = {"reason": cst.reason}
            if cst.message:
                w["message"] = cst.message
            cs["state"] = {"waiting": w}
        cs["lastState"] = cst.last or {}
        if cst.allocated is not None:
            cs["allocatedResources"] = dict(cst.allocated)
        cs["resources"] = _copy_res(cst.actual)
        if not cs["resources"]:
            del cs["resources"]

    def _render(self, rt, pod, now):
        st = pod.setdefault("status", {})
        spec = pod["spec"]
        running = rt.phase == "running"
        nows = U.rfc3339(now)
        st["phase"] = "Running" if running else "Pending"
        old = {cs.get("name"): cs for cs in st.get("containerStatuses") or []}
        old_init = {cs.get("name"): cs for cs in st.get("initContainerStatuses") or []}
        inits = []
        plain_pending = []
        for c in spec.get("initContainers") or ():
            cs = old_init.get(c["name"]) or {"name": c["name"]}
            cst = rt.containers.get(c["name"])
            if cst is not None:
                self._fill(cs, c, cst)
            elif running:
                cid = cs.get("containerID") or U.container_id()
                cs.update({"image": c.get("image", ""), "imageID": U.image_id(c.get("image", "")),
                           "containerID": cid, "ready": True, "started": False,
                           "restartCount": cs.get("restartCount", 0),
                           "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                    "startedAt": rt.start_time or nows,
                                                    "finishedAt": rt.start_time or nows,
                                                    "containerID": cid}},
                           "lastState": cs.get("lastState") or {}})
            else:
                plain_pending.append(c["name"])
                cs.update({"image": c.get("image", ""), "imageID": "", "ready": False,
                           "started": False, "restartCount": 0, "lastState": {},
                           "state": {"waiting": {"reason": "PodInitializing"}}})
            inits.append(cs)
        if inits:
            st["initContainerStatuses"] = inits
        statuses = []
        for c in spec.get("containers") or ():
            cs = old.get(c["name"]) or {"name": c["name"]}
            cst = rt.containers.get(c["name"])
            if cst is not None:
                self._fill(cs, c, cst)
            statuses.append(cs)
        st["containerStatuses"] = statuses
        unready = [n for n, cst in rt.containers.items() if not cst.ready]
        conds = st.setdefault("conditions", [])
        U.set_condition(conds, "PodReadyToStartContainers", "True" if running else "False",
                        now=nows)
        if running or not spec.get("initContainers"):
            U.set_condition(conds, "Initialized", "True", now=nows)
        else:
            U.set_condition(conds, "Initialized", "False", "ContainersNotInitialized",
                            "containers with incomplete status: [%s]" % " ".join(plain_pending),
                            nows)
        if running and not unready:
            U.set_condition(conds, "Ready", "True", now=nows)
            U.set_condition(conds, "ContainersReady", "True", now=nows)
        else:
            msg = "containers with unready status: [%s]" % " ".join(unready)
            U.set_condition(conds, "Ready", "False", "ContainersNotReady", msg, nows)
            U.set_condition(conds, "ContainersReady", "False", "ContainersNotReady", msg, nows)
        U.set_condition(conds, "PodScheduled", "True", now=nows)
        conds.sort(key=lambda c: _COND_ORDER.get(c.get("type"), 99))
        node = self.sim.nodes.get(rt.node)
        if node is not None and node.ip:
            st["hostIP"] = node.ip
            st["hostIPs"] = [{"ip": node.ip}]
        if running and rt.ip:
            st["podIP"] = rt.ip
            st["podIPs"] = [{"ip": rt.ip}]
        if rt.start_time and not st.get("startTime"):
            st["startTime"] = rt.start_time
        if not st.get("qosClass"):
            from .builtin_types import qos_class
            st["qosClass"] = qos_class(pod)
        gen = pod["metadata"].get("generation")
        if gen is not None:
            st["observedGeneration"] = gen

    def _write(self, rt, entry, now, mutate=None):
        pod = entry.copy()
        self._render(rt, pod, now)
        if mutate is not None:
            mutate(pod["status"])
        if pod["status"] != entry.obj.get("status"):
            self.sim.write_status(U.PODS, entry, pod["status"], KUBELET)

    # --- OOM kills and crash loops ---------------------------------------------------------
    def oom_tick(self, tau0, tau1):
        if not self.at_risk and not self._due:
            return
        now = time.time()
        tau_of = self.sim.clock.tau
        for key, name in list(self.at_risk):
            if (key, name) in self._due_set:
                continue
            rt = self.pods.get(key)
            cst = rt.containers.get(name) if rt is not None else None
            if cst is None or cst.state != "running" or rt.phase != "running":
                continue
            inst = cst.inst
            start = max(tau0, tau_of(cst.started_at))
            if start >= tau1:
                continue
            reason = None
            if cst.thr is not None and inst.mem_clean(tau1) > cst.thr:
                reason = "OOMKilled"
            else:
                ev = inst.events(start, tau1)
                if ev:
                    reason = ev[-1][1]
            if reason:
                self._due.append((key, name, reason))
                self._due_set.add((key, name))
        # At most MAX_KILLS_PER_TICK status writes per tick: a cluster-wide wave (thousands
        # of containers over their limits at once) is spread over the next ticks instead of
        # stalling one, and nothing is lost.
        kills = collections.defaultdict(list)
        budget = self.MAX_KILLS_PER_TICK
        while self._due and budget > 0:
            budget -= 1
            key, name, reason = self._due.popleft()
            self._due_set.discard((key, name))
            kills[key].append((name, reason))
        for key, items in kills.items():
            self._apply_kills(key, items, now)

    def _apply_kills(self, key, items, now):
        with self.store.lock:
            entry = self.store.get(U.PODS, *key)
            rt = self.pods.get(key)
            if entry is None or rt is None or entry.obj["metadata"].get("uid") != rt.uid \
                    or U.is_deleting(entry.obj):
                return
            killed = 0
            for name, reason in items:
                cst = rt.containers.get(name)
                if cst is not None and cst.state == "running":
                    self._kill(rt, cst, reason, now, entry.obj)
                    killed += 1
            if killed:
                self.sim.stats["oomKills"] += killed
                self._write(rt, entry, now)

    def _kill(self, rt, cst, reason, now, pod):
        cst.last = {"terminated": {"exitCode": 137, "reason": reason,
                                   "startedAt": U.rfc3339(cst.started_at),
                                   "finishedAt": U.rfc3339(now), "containerID": cst.cid}}
        cst.restarts += 1
        base = self.opts.crash_backoff
        if now - cst.started_at > max(60.0 * base, 1.0):
            cst.crash_count = 0      # it ran long enough: the back-off starts over
        cst.crash_count += 1
        cst.ready = False
        if cst.crash_count >= 2 and base > 0:
            delay = min(base * 2 ** (cst.crash_count - 2), base * 30)
            md = pod["metadata"]
            cst.state, cst.reason = "waiting", "CrashLoopBackOff"
            cst.message = "back-off %s restarting failed container=%s pod=%s_%s(%s)" % (
                fmt_duration(delay), cst.name, md["name"], md["namespace"], md.get("uid"))
            self.sim.at(now + delay, "restart", rt.key, rt.uid, cst.name, cst.restarts)
        else:
            self._start_container(rt, cst, now)

    # --- in-place resize (KEP-1287 as in 1.33) ---------------------------------------------
    def resize(self, key):
        with self.store.lock:
            entry = self.store.get(U.PODS, *key)
            if entry is None or U.is_deleting(entry.obj) or \
                    not entry.obj["spec"].get("nodeName"):
                return
            pod = entry.obj
            rt = self.pods.get(key)
            if rt is None:
                if (pod.get("status") or {}).get("phase") != "Running":
                    return
                rt = self._adopt(entry)
            if rt.phase != "running":
                # not started yet: it will start with the resources of its spec
                for c in pod["spec"].get("containers") or ():
                    cst = rt.containers.get(c["name"])
                    if cst is not None:
                        cst.actual = _copy_res(c.get("resources"))
                        cst.allocated = dict(cst.actual.get("requests") or {})
                return
            spec_res = {c["name"]: _copy_res(c.get("resources")) for c in
                        (pod["spec"].get("initContainers") or []) +
                        (pod["spec"].get("containers") or []) if c["name"] in rt.containers}
            now = time.time()
            nows = U.rfc3339(now)
            gen = pod["metadata"].get("generation")
            extra = {"observedGeneration": gen} if gen is not None else None
            cpu_req, mem_req = U.pod_requests(pod, use_allocated=False)
            node = self.sim.nodes.get(rt.node)
            verdict, msg = None, None
            if node is not None and (mem_req > node.mem or cpu_req > node.cpu):
                verdict = "Infeasible"
                if mem_req > node.mem:
                    msg = "memory, requested: %d, capacity: %d" % (mem_req, node.mem)
                else:
                    msg = "cpu, requested: %d, capacity: %d" % (cpu_req, node.cpu)
                msg = "Node didn't have enough capacity: " + msg
            elif node is not None:
                fcpu, fmem, _ = self.sim.node_free(rt.node, exclude=key)
                if mem_req > fmem or cpu_req > fcpu:
                    verdict = "Deferred"
                    if mem_req > fmem:
                        msg = "memory, requested: %d, used: %d, capacity: %d" % (
                            mem_req, node.mem - fmem, node.mem)
                    else:
                        msg = "cpu, requested: %d, used: %d, capacity: %d" % (
                            cpu_req, node.cpu - fcpu, node.cpu)
                    msg = "Node didn't have enough resource: " + msg
            if verdict is not None:
                if verdict == "Deferred":
                    self.deferred.add(key)
                else:
                    self.deferred.discard(key)

                def pending(st):
                    U.set_condition(st.setdefault("conditions", []), "PodResizePending", "True",
                                    verdict, msg, nows, extra=extra)
                self._write(rt, entry, now, pending)
                return
            self.deferred.discard(key)
            changed = False
            for name, res in spec_res.items():
                cst = rt.containers[name]
                want = dict(res.get("requests") or {})
                if cst.allocated != want or cst.actual != res:
                    changed = True
                cst.allocated = want
            d = self.opts.resize_delay

            def accepted(st):
                conds = st.setdefault("conditions", [])
                U.remove_condition(conds, "PodResizePending")
                if changed and d > 0:
                    U.set_condition(conds, "PodResizeInProgress", "True", now=nows, extra=extra)
            if changed and d <= 0:
                for name, res in spec_res.items():
                    rt.containers[name].actual = res
                    self._refresh(rt, rt.containers[name])
            self._write(rt, entry, now, accepted)
            if changed and d > 0:
                self.sim.at(now + d, "resized", key, rt.uid, gen)

    def _actuate(self, rt, entry, gen, now):
        pod = entry.obj
        if pod["metadata"].get("generation") != gen:
            return     # a newer resize superseded this one; it has its own timer
        for c in (pod["spec"].get("initContainers") or []) + (pod["spec"].get("containers")
                                                                or []):
            cst = rt.containers.get(c["name"])
            if cst is not None:
                cst.actual = _copy_res(c.get("resources"))
                self._refresh(rt, cst)

        def done(st):
            U.remove_condition(st.setdefault("conditions", []), "PodResizeInProgress")
        self._write(rt, entry, now, done)

    # --- bookkeeping ------------------------------------------------------------------------
    def forget(self, key, pod):
        rt = self.pods.pop(key, None)
        if rt is not None:
            for name in rt.containers:
                self.at_risk.discard((key, name))
        self.deferred.discard(key)
        self._minst.pop(key, None)

    def node_gone(self, node):
        """Pod garbage collection: pods bound to a deleted node go."""
        keys = [k for k, c in self.sim.charges.items() if c[0] == node]
        with self.store.lock:
            for ns, name in keys:
                self.sim.delete(U.PODS, ns, name)

    # --- usage (metrics.k8s.io; HTTP threads) -----------------------------------------------
    def usage(self, ns, pod, container, tau):
        rt = self.pods.get((ns, pod))
        cst = rt.containers.get(container) if rt is not None else None
        if cst is not None and cst.inst is not None:
            if cst.state != "running":
                return 0.0, 0
            inst = cst.inst
        else:
            inst = self._metrics_instance(ns, pod, container)
            if inst is None:
                return 0.0, 0
        cpu = inst.cpu_demand(tau)
        lim = inst.prof["cpuLimit"]
        if lim:
            cpu = min(cpu, lim)
        mem = inst.mem_demand(tau)
        thr = inst.prof["oomThreshold"]
        if thr:
            mem = min(mem, thr)
        return cpu, int(mem)

    def _metrics_instance(self, ns, pod_name, container):
        entry = self.store.get(U.PODS, ns, pod_name)
        if entry is None:
            raise KeyError(pod_name)
        pod = entry.obj
        md = pod["metadata"]
        cached = self._minst.get((ns, pod_name))
        if cached is None or cached[1] != md.get("uid"):
            cached = self._minst[(ns, pod_name)] = [None, md.get("uid"), {}]
        per_container = cached[2]
        if cached[0] == md.get("resourceVersion") and container in per_container:
            return per_container[container][1]       # nothing changed since last time
        cached[0] = md.get("resourceVersion")
        c = None
        for cc in (pod["spec"].get("containers") or []) + (pod["spec"].get("initContainers")
                                                           or []):
            if cc.get("name") == container:
                c = cc
                break
        if c is None:
            raise KeyError(container)
        res = c.get("resources")
        for cs in (pod.get("status") or {}).get("containerStatuses") or ():
            if cs.get("name") == container and cs.get("resources"):
                res = cs["resources"]
        limits = _limits(res)
        old = per_container.get(container)
        if old is not None and old[0] == limits:
            return old[1]
        prof = self._profiles_for(pod).get(container)
        inst = None
        if prof is not None:
            eff = self.sim.profiles.effective(prof, limits[0], limits[1])
            inst = self.sim.profiles.instance(eff, self.sim.profiles.pod_key(ns, pod_name),
                                              container)
        per_container[container] = (limits, inst)
        return inst
