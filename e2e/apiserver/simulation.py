"""The cluster simulation: the controllers, scheduler and kubelet a real
cluster runs, reduced to what clients observe (docs/apiserver.md,
"Controllers it emulates").

One daemon thread does all the work. A store listener (called under the
store lock, so it only queues) feeds it every change of pods, nodes,
Deployments, ReplicaSets, StatefulSets, DaemonSets and PodDisruptionBudgets;
the thread turns changes into "dirty" objects and reconciles them, fires
timers (a pod that becomes Running or Ready, a crash-loop back-off that
ends, a resize that completes, a progress deadline) and, every tick, runs
the OOM check over the containers whose memory limit their usage profile
can reach. Every write goes through the API layer, so it is versioned,
recorded in managedFields and sent to watchers like any client's write.
Each reconcile holds the store lock only for its own read-modify-write:
request handling is never blocked for long.

Pieces: sim_workloads.py (Deployment, ReplicaSet, StatefulSet, DaemonSet
and disruption controllers), sim_kubelet.py (pod lifecycle, OOM kills and
crash loops, in-place resize), sim_util.py (helpers). Usage profiles come
from the scenario (scenario.py) through Profiles below.
"""
import collections
import hashlib
import heapq
import itertools
import sys
import threading
import time
import traceback

from . import api as apimod
from . import errors
from . import sim_util as U
from .selection import from_label_selector_object

KCM = apimod.Context(field_manager="kube-controller-manager")
KUBELET = apimod.Context(field_manager="kubelet")
SCHEDULER = apimod.Context(field_manager="kube-scheduler")


class Options:
    def __init__(self, ready_delay=1.0, tick=1.0, time_scale=1.0, crash_backoff=10.0,
                 resize_delay=0.5):
        self.ready_delay = max(0.0, float(ready_delay))     # create -> Ready
        self.tick = max(0.01, float(tick))                   # OOM check period
        self.time_scale = max(1e-6, float(time_scale))       # profile seconds per second
        self.crash_backoff = max(0.0, float(crash_backoff))  # first CrashLoopBackOff delay
        self.resize_delay = max(0.0, float(resize_delay))    # accepted -> actuated


class Clock:
    """Profile time: tau(now) = t0 + (now - t0) * scale, so at scale 1 the
    profiles run on the wall clock and at scale 3600 a day passes in 24 s."""

    def __init__(self, scale=1.0, start=None):
        self.scale = scale
        self.t0 = time.time() if start is None else start

    def tau(self, wall=None):
        wall = time.time() if wall is None else wall
        return self.t0 + (wall - self.t0) * self.scale


class NodeInfo:
    __slots__ = ("name", "labels", "taints", "unschedulable", "cpu", "mem", "pods", "ip")

    def __init__(self, node):
        md, spec, st = node["metadata"], node.get("spec") or {}, node.get("status") or {}
        self.name = md["name"]
        self.labels = md.get("labels") or {}
        self.taints = list(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        alloc = st.get("allocatable") or st.get("capacity") or {}
        self.cpu = U.cpu_milli(str(alloc.get("cpu", "0")))
        self.mem = U.mem_bytes(str(alloc.get("memory", "0")))
        self.pods = int(U.parse_quantity(alloc.get("pods", "110"))) if alloc.get("pods") else 110
        self.ip = next((a.get("address") for a in st.get("addresses") or ()
                        if a.get("type") == "InternalIP"), "")


class Profiles:
    """Usage profiles of the scenario's workloads, keyed by namespace, workload
    kind and name and container (so pods the simulation creates find the profile
    of their workload), and the per-pod model instances (scenario._Instance:
    replica skew, leak phase, noise keys) built with the pod's *current* memory
    and CPU limits, so a raised limit stops OOM kills and metrics are capped by
    the limits really in force."""

    def __init__(self, scenario_module, sc):
        self.S = scenario_module
        self.sc = sc
        self.by_workload = {}     # (ns, kind, name) -> {container: profile}
        self.scenario_pods = {}   # (ns, pod) -> PodInfo
        self._eff = {}
        if sc is None:
            return
        for ns in sc["namespaces"]:
            for wl in ns["workloads"]:
                profs = {c["name"]: c["usage"] for c in wl["initContainers"] + wl["containers"]
                         if c.get("usage") is not None}
                if profs:
                    self.by_workload[(ns["name"], wl["kind"], wl["name"])] = profs
        for p in scenario_module.pods(sc):
            self.scenario_pods[(p.namespace, p.name)] = p

    def __bool__(self):
        return bool(self.by_workload)

    def pod_key(self, ns, name):
        p = self.scenario_pods.get((ns, name))
        if p is not None:
            return p.key
        seed = self.sc["seed"] if self.sc else 0
        data = "\x1f".join(map(str, (seed, "simpod", ns, name))).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")

    def effective(self, prof, mem_limit, cpu_limit):
        """The profile with the OOM threshold and CPU cap of the given limits."""
        if mem_limit == prof.get("memoryLimit"):
            thr = prof["oomThreshold"]
        else:
            oom_at = prof["memory"].get("oomAt")
            thr = min(oom_at, mem_limit) if (oom_at and mem_limit) else (oom_at or mem_limit)
        key = (id(prof), thr, cpu_limit)
        eff = self._eff.get(key)
        if eff is None:
            eff = dict(prof)
            eff["oomThreshold"] = thr
            eff["cpuLimit"] = cpu_limit
            self._eff[key] = eff
        return eff

    def instance(self, eff, pod_key, cname):
        # scenario._Instance is the model's per-pod state; it is the only way to
        # evaluate a profile for a pod the scenario does not list.
        return self.S._Instance(eff, pod_key, cname)

    @staticmethod
    def bound(inst):
        """Upper bound of the noise-free memory demand of one instance."""
        m = inst.prof["memory"]
        level = inst.r * m["base"] * (1.0 + m["daily"])
        if inst.cycle is not None:
            level += m["growthPerDay"] / U_DAY * inst.cycle
        if m.get("peaks"):
            level *= m["peaks"]["height"]
        return level

    @staticmethod
    def workload_bound(prof):
        """The same bound over every replica (largest replica skew)."""
        m = prof["memory"]
        level = (1.0 + prof["replicaSkew"]) * m["base"] * (1.0 + m["daily"])
        if m["growthPerDay"] > 0:
            level += m["growthPerDay"] / U_DAY * float(m["resetEvery"] or 7 * U_DAY)
        if m.get("peaks"):
            level *= m["peaks"]["height"]
        return level


U_DAY = 86400.0


class Simulation:
    def __init__(self, api, options=None, scenario_module=None, sc=None):
        from . import sim_kubelet, sim_workloads
        self.api = api
        self.store = api.store
        self.opts = options or Options()
        self.clock = Clock(self.opts.time_scale)
        self.profiles = Profiles(scenario_module, sc)
        self.rt = {gr: api.registry.get(*gr) for gr in
                   (U.PODS, U.NODES, U.DEPLOYMENTS, U.REPLICASETS, U.STATEFULSETS,
                    U.DAEMONSETS, U.PDBS)}
        self._events = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._timers = []
        self._seq = itertools.count()
        self.dirty = {k: set() for k in ("schedule", "start", "resize", "rs", "deploy", "sts",
                                         "ds", "pdb")}
        # scheduler view
        self.nodes = {}                        # name -> NodeInfo
        self.usage = collections.defaultdict(lambda: [0, 0, 0])   # node -> [cpu, mem, pods]
        self.charges = {}                      # (ns, pod) -> (node, cpu, mem)
        self.unschedulable = set()
        self._capacity_freed = False
        self._pod_ip = itertools.count(10)
        # disruption controller index
        self.pdbs = collections.defaultdict(dict)  # ns -> {name: LabelSelector}
        self.workloads = sim_workloads.Workloads(self)
        self.kubelet = sim_kubelet.Kubelet(self)
        self.stats = {"ticks": 0, "lastTickMs": 0.0, "maxTickMs": 0.0, "meanTickMs": 0.0,
                      "passes": 0, "lastPassMs": 0.0, "maxPassMs": 0.0, "reconciles": 0,
                      "writes": 0, "failedWrites": 0, "oomKills": 0,
                      "startupMs": 0.0}
        self._thread = None
        self.started = False

    # --- life cycle ------------------------------------------------------------------------
    def start(self):
        t0 = time.perf_counter()
        with self.store.lock:
            self._scan()
            self.store.listeners.append(self._on_change)
        self.kubelet.adopt_at_risk()
        self.stats["startupMs"] = round((time.perf_counter() - t0) * 1000, 1)
        if self.profiles:
            self.api.usage = self.usage_of
        self.api.simulation = self
        self._thread = threading.Thread(target=self._run, name="simulation", daemon=True)
        self._thread.start()
        self.started = True
        return self

    def stop(self):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        with self.store.lock:
            if self._on_change in self.store.listeners:
                self.store.listeners.remove(self._on_change)

    def _scan(self):
        for e in self.store.entries(U.NODES):
            self.nodes[e.obj["metadata"]["name"]] = NodeInfo(e.obj)
        for e in self.store.entries(U.PDBS):
            md = e.obj["metadata"]
            self.pdbs[md["namespace"]][md["name"]] = self._pdb_selector(e.obj)
        for e in self.store.entries(U.PODS):
            pod = e.obj
            md = pod["metadata"]
            key = (md["namespace"], md["name"])
            self._set_charge(key, pod)
            if self._wants_scheduling(pod):
                self.unschedulable.add(key)
            elif self._wants_start(pod):
                self.dirty["start"].add(key)

    # --- store listener (runs under the store lock: only queue) --------------------------
    _WATCHED = {U.PODS, U.NODES, U.DEPLOYMENTS, U.REPLICASETS, U.STATEFULSETS, U.DAEMONSETS,
                U.PDBS}

    def _on_change(self, gr, type_, entry, prev):
        if gr in self._WATCHED:
            self._events.append((gr, type_, entry, prev))
            self._wake.set()

    # --- timers ------------------------------------------------------------------------------
    def at(self, when, kind, *args):
        heapq.heappush(self._timers, (when, next(self._seq), kind, args))
        self._wake.set()

    # --- the worker --------------------------------------------------------------------------
    def _run(self):
        next_tick = time.time() + self.opts.tick
        self._tau = self.clock.tau()
        while not self._stop.is_set():
            now = time.time()
            wait = next_tick - now
            if self._timers:
                wait = min(wait, self._timers[0][0] - now)
            if wait > 0 and not self._events and not self._any_dirty():
                self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                now = time.time()
                if now >= next_tick:      # an overdue OOM check goes before later timers
                    self._tick()
                    next_tick = max(next_tick + self.opts.tick, now + self.opts.tick / 2)
                self._pass()
            except Exception:   # keep simulating whatever one object did wrong
                traceback.print_exc(file=sys.stderr)
                time.sleep(0.05)

    def _any_dirty(self):
        return any(self.dirty.values()) or \
            (self._capacity_freed and bool(self.unschedulable or self.kubelet.deferred))

    def _pass(self):
        t0 = time.perf_counter()
        for _ in range(50):
            self._drain()
            self._fire_timers()
            if self._capacity_freed:
                self._capacity_freed = False
                self.dirty["schedule"] |= self.unschedulable
                self.unschedulable = set()
                self.dirty["resize"] |= self.kubelet.deferred
            if not self._any_dirty():
                break
            self._reconcile_dirty()
        ms = (time.perf_counter() - t0) * 1000
        self.stats["passes"] += 1
        self.stats["lastPassMs"] = round(ms, 2)
        self.stats["maxPassMs"] = round(max(self.stats["maxPassMs"], ms), 2)

    def _reconcile_dirty(self):
        order = (("schedule", self.schedule), ("start", self.kubelet.start_pod),
                 ("resize", self.kubelet.resize), ("rs", self.workloads.sync_replicaset),
                 ("deploy", self.workloads.sync_deployment),
                 ("sts", self.workloads.sync_statefulset),
                 ("ds", self.workloads.sync_daemonset), ("pdb", self.workloads.sync_pdb))
        for name, fn in order:
            keys = self.dirty[name]
            if not keys:
                continue
            self.dirty[name] = set()
            for key in sorted(keys):
                self.stats["reconciles"] += 1
                try:
                    fn(key)
                except Exception:
                    traceback.print_exc(file=sys.stderr)
            self._drain()

    def _fire_timers(self):
        now = time.time()
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, args = heapq.heappop(self._timers)
            try:
                if kind == "sync":
                    self.dirty[args[0]].add(args[1])
                else:
                    self.kubelet.on_timer(kind, *args)
            except Exception:
                traceback.print_exc(file=sys.stderr)

    def _tick(self):
        t0 = time.perf_counter()
        tau = self.clock.tau()
        self.kubelet.oom_tick(self._tau, tau)
        self._tau = tau
        ms = (time.perf_counter() - t0) * 1000
        s = self.stats
        s["ticks"] += 1
        s["lastTickMs"] = round(ms, 3)
        s["maxTickMs"] = round(max(s["maxTickMs"], ms), 3)
        s["meanTickMs"] = round(s["meanTickMs"] + (ms - s["meanTickMs"]) / s["ticks"], 3)

    # --- change dispatch (worker thread) -------------------------------------------------------
    def _drain(self):
        while self._events:
            gr, type_, entry, prev = self._events.popleft()
            try:
                self._dispatch(gr, type_, entry, prev)
            except Exception:
                traceback.print_exc(file=sys.stderr)

    def _dispatch(self, gr, type_, entry, prev):
        obj = entry.obj
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        if gr == U.PODS:
            self._pod_changed(key, type_, obj, prev.obj if prev is not None else None)
        elif gr == U.REPLICASETS:
            if type_ != "DELETED":
                self.dirty["rs"].add(key)
            ref = U.controller_ref(obj)
            if ref and ref.get("kind") == "Deployment":
                self.dirty["deploy"].add((key[0], ref["name"]))
        elif gr == U.DEPLOYMENTS:
            if type_ != "DELETED" and self._spec_changed(obj, prev, type_):
                self.dirty["deploy"].add(key)
        elif gr == U.STATEFULSETS:
            self.workloads.note_statefulset(type_, obj, prev.obj if prev is not None else None)
            if type_ != "DELETED" and self._spec_changed(obj, prev, type_):
                self.dirty["sts"].add(key)
        elif gr == U.DAEMONSETS:
            if type_ != "DELETED" and self._spec_changed(obj, prev, type_):
                self.dirty["ds"].add(key)
        elif gr == U.PDBS:
            if type_ == "DELETED":
                self.pdbs[key[0]].pop(key[1], None)
            else:
                self.pdbs[key[0]][key[1]] = self._pdb_selector(obj)
                if self._spec_changed(obj, prev, type_):
                    self.dirty["pdb"].add(key)
        elif gr == U.NODES:
            if type_ == "DELETED":
                self.nodes.pop(key[1], None)
                self.kubelet.node_gone(key[1])
            else:
                self.nodes[key[1]] = NodeInfo(obj)
                self._capacity_freed = True
            if prev is None or type_ == "DELETED" or \
                    (prev.obj["metadata"].get("labels") != md.get("labels") or
                     (prev.obj.get("spec") or {}) != (obj.get("spec") or {})):
                with self.store.lock:
                    self.dirty["ds"].update(e.key for e in self.store.entries(U.DAEMONSETS))

    @staticmethod
    def _spec_changed(obj, prev, type_):
        """Anything but a status-only write (the controllers' own status writes
        would otherwise wake them again)."""
        if type_ == "ADDED" or prev is None:
            return True
        p = prev.obj
        return obj.get("spec") != p.get("spec") or \
            obj["metadata"].get("generation") != p["metadata"].get("generation") or \
            obj["metadata"].get("deletionTimestamp") != p["metadata"].get("deletionTimestamp") \
            or obj["metadata"].get("labels") != p["metadata"].get("labels") or \
            obj["metadata"].get("annotations") != p["metadata"].get("annotations")

    def _pod_changed(self, key, type_, pod, prev):
        ns = key[0]
        if type_ == "DELETED":
            self._set_charge(key, None)
            self.unschedulable.discard(key)
            self.kubelet.forget(key, pod)
        else:
            self._set_charge(key, pod)
            if self._wants_scheduling(pod):
                if key not in self.unschedulable:
                    self.dirty["schedule"].add(key)
            elif self._wants_start(pod) and key not in self.kubelet.pods:
                self.dirty["start"].add(key)
            elif prev is not None and pod["spec"].get("nodeName") and \
                    _container_resources(pod) != _container_resources(prev):
                self.dirty["resize"].add(key)
        ref = U.controller_ref(pod)
        if ref is not None:
            kind = ref.get("kind")
            owner = (ns, ref.get("name"))
            if kind == "ReplicaSet":
                self.dirty["rs"].add(owner)
            elif kind == "StatefulSet":
                self.dirty["sts"].add(owner)
            elif kind == "DaemonSet":
                self.dirty["ds"].add(owner)
        if self.pdbs.get(ns):
            labels = pod["metadata"].get("labels") or {}
            old = (prev["metadata"].get("labels") or {}) if prev is not None else None
            for name, sel in self.pdbs[ns].items():
                if sel.matches(labels) or (old is not None and sel.matches(old)):
                    self.dirty["pdb"].add((ns, name))

    @staticmethod
    def _pdb_selector(pdb):
        try:
            return from_label_selector_object((pdb.get("spec") or {}).get("selector"))
        except Exception:
            from .selection import LabelSelector
            return LabelSelector(nothing=True)

    @staticmethod
    def _wants_scheduling(pod):
        spec = pod.get("spec") or {}
        return not spec.get("nodeName") and U.is_active(pod) and \
            (pod.get("status") or {}).get("phase", "Pending") == "Pending" and \
            spec.get("schedulerName", "default-scheduler") == "default-scheduler" and \
            not spec.get("schedulingGates")

    @staticmethod
    def _wants_start(pod):
        st = pod.get("status") or {}
        return bool((pod.get("spec") or {}).get("nodeName")) and U.is_active(pod) and \
            st.get("phase", "Pending") == "Pending" and not st.get("containerStatuses")

    # --- scheduler ----------------------------------------------------------------------------
    def _set_charge(self, key, pod):
        old = self.charges.pop(key, None)
        if old is not None:
            u = self.usage[old[0]]
            u[0] -= old[1]
            u[1] -= old[2]
            u[2] -= 1
        node = (pod.get("spec") or {}).get("nodeName") if pod is not None else None
        if node and not U.is_terminal(pod):
            cpu, mem = U.pod_requests(pod)
            self.charges[key] = (node, cpu, mem)
            u = self.usage[node]
            u[0] += cpu
            u[1] += mem
            u[2] += 1
            if old is not None and (old[0] != node or old[1] > cpu or old[2] > mem):
                self._capacity_freed = True
        elif old is not None:
            self._capacity_freed = True

    def node_free(self, name, exclude=None):
        """(cpu, mem, pods) still free on a node (without exclude's charge)."""
        n = self.nodes[name]
        u = self.usage.get(name) or (0, 0, 0)
        cpu, mem, pods = n.cpu - u[0], n.mem - u[1], n.pods - u[2]
        if exclude is not None:
            c = self.charges.get(exclude)
            if c is not None and c[0] == name:
                cpu, mem, pods = cpu + c[1], mem + c[2], pods + 1
        return cpu, mem, pods

    def schedule(self, key):
        with self.store.lock:
            entry = self.store.get(U.PODS, *key)
            if entry is None or not self._wants_scheduling(entry.obj):
                return
            pod = entry.obj
            spec = pod["spec"]
            cpu, mem = U.pod_requests(pod, use_allocated=False)
            tolerations = spec.get("tolerations") or ()
            reasons = collections.Counter()
            feasible = []
            for name, n in self.nodes.items():
                if not U.node_matches(spec, name, n.labels):
                    reasons["node(s) didn't match Pod's node affinity/selector"] += 1
                    continue
                taints = list(n.taints)
                if n.unschedulable:
                    taints.append({"key": "node.kubernetes.io/unschedulable",
                                   "effect": "NoSchedule"})
                bad = next((t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")
                            and not U.tolerates(tolerations, t)), None)
                if bad is not None:
                    if bad.get("key") == "node.kubernetes.io/unschedulable":
                        reasons["node(s) were unschedulable"] += 1
                    else:
                        kv = bad["key"] + (": " + bad["value"] if bad.get("value") else "")
                        reasons["node(s) had untolerated taint {%s}" % kv] += 1
                    continue
                fcpu, fmem, fpods = self.node_free(name)
                short = False
                if fpods < 1:
                    reasons["Too many pods"] += 1
                    short = True
                if fcpu < cpu:
                    reasons["Insufficient cpu"] += 1
                    short = True
                if fmem < mem:
                    reasons["Insufficient memory"] += 1
                    short = True
                if not short:
                    feasible.append((name, fcpu, fmem))
            now = U.rfc3339()
            if not feasible:
                detail = ", ".join("%d %s" % (n, r) for r, n in sorted(reasons.items()))
                msg = "0/%d nodes are available%s." % (len(self.nodes),
                                                       ": " + detail if detail else "")
                new = entry.copy()
                conds = new.setdefault("status", {}).setdefault("conditions", [])
                if U.set_condition(conds, "PodScheduled", "False", "Unschedulable", msg, now):
                    self.write_status(U.PODS, entry, new["status"], SCHEDULER)
                self.unschedulable.add(key)
                return
            siblings = collections.Counter()
            ref = U.controller_ref(pod)
            if ref is not None:
                for gr, ns, name in list(self.api.gc.dependents.get(ref.get("uid"), ())):
                    if gr == U.PODS and (ns, name) != key:
                        c = self.charges.get((ns, name))
                        if c is not None:
                            siblings[c[0]] += 1

            def score(f):
                name, fcpu, fmem = f
                n = self.nodes[name]
                used = (1.0 - (fcpu - cpu) / n.cpu if n.cpu else 1.0) + \
                    (1.0 - (fmem - mem) / n.mem if n.mem else 1.0)
                return (siblings[name], round(used, 6), name)
            node = min(feasible, key=score)[0]
            new = entry.copy()
            new["spec"]["nodeName"] = node
            conds = new.setdefault("status", {}).setdefault("conditions", [])
            U.set_condition(conds, "PodScheduled", "True", None, None, now)
            stored = self.store.put(U.PODS, new)
            self.stats["writes"] += 1
            self._set_charge(key, stored.obj)

    def next_pod_ip(self, node_name):
        k = next(self._pod_ip)
        return "100.%d.%d.%d" % (112 + (k >> 16) % 16, (k >> 8) & 255, k & 255)

    # --- writes (all under the store lock) -----------------------------------------------------
    # A refused write (a namespace being terminated, an object a client made invalid) is
    # what a real controller would report as an event and retry; here it is counted
    # under failedWrites and retried at the object's next change.
    def _guarded(self, fn, *args):
        self.stats["writes"] += 1
        try:
            return fn(*args)
        except errors.StatusError:
            self.stats["failedWrites"] += 1
            return None

    def write_status(self, gr, entry, status, ctx):
        new = {"apiVersion": entry.obj.get("apiVersion"), "kind": entry.obj.get("kind"),
               "metadata": {"name": entry.obj["metadata"]["name"],
                            "namespace": entry.obj["metadata"].get("namespace")},
               "status": status}
        if not new["metadata"]["namespace"]:
            del new["metadata"]["namespace"]
        return self._guarded(self.api._update, self.rt[gr], entry, new, ctx, "status")

    def write(self, gr, entry, obj, ctx=KCM):
        return self._guarded(self.api._update, self.rt[gr], entry, obj, ctx, "")

    def create(self, gr, ns, obj, ctx=KCM):
        return self._guarded(self.api.create, self.rt[gr], ns, obj, ctx)

    def delete(self, gr, ns, name, ctx=KCM):
        return self._guarded(self.api.delete, self.rt[gr], ns, name, ctx, "Background")

    # --- pods of an owner -------------------------------------------------------------------
    def owned(self, uid, gr):
        """Entries of gr whose controller reference is uid (store lock held)."""
        out = []
        for g, ns, name in list(self.api.gc.dependents.get(uid, ())):
            if g != gr:
                continue
            e = self.store.get(g, ns, name)
            if e is None:
                continue
            ref = U.controller_ref(e.obj)
            if ref is not None and ref.get("uid") == uid:
                out.append(e)
        return out

    # --- metrics.k8s.io ----------------------------------------------------------------------
    def usage_of(self, ns, pod, container, t):
        """(cpu cores, working-set bytes) of one container at wall time t, from its
        workload's profile at profile time tau(t), capped by its current limits."""
        return self.kubelet.usage(ns, pod, container, self.clock.tau(t))

    def debug_state(self):
        s = dict(self.stats)
        s.update({"timeScale": self.opts.time_scale, "readyDelay": self.opts.ready_delay,
                  "tick": self.opts.tick, "profileTime": U.rfc3339(self.clock.tau()),
                  "trackedPods": len(self.kubelet.pods), "atRiskContainers":
                  len(self.kubelet.at_risk), "pendingKills": len(self.kubelet._due),
                  "timers": len(self._timers),
                  "unschedulable": len(self.unschedulable)})
        return s


def _container_resources(pod):
    spec = pod.get("spec") or {}
    return [(c.get("name"), c.get("resources")) for c in
            (spec.get("containers") or []) + (spec.get("initContainers") or [])]
