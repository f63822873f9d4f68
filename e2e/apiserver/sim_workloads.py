"""The workload controllers of the simulation, reduced from
kube-controller-manager to what clients observe:

- ReplicaSet: creates/deletes pods to match spec.replicas (not-ready,
  unscheduled and newest pods go first), keeps status counts.
- Deployment: finds or creates the ReplicaSet of the current template
  (`<name>-<pod-template-hash>`), rolls per strategy (RollingUpdate with
  maxSurge/maxUnavailable as the upstream rolling.go does it; Recreate),
  revisions, history cleanup, status with Available/Progressing conditions
  and the progress deadline.
- StatefulSet: ordered creation (OrderedReady or Parallel), RollingUpdate in
  reverse ordinal order one pod at a time above the partition, OnDelete,
  current/update revisions.
- DaemonSet: one pod per eligible node (nodeSelector, node affinity, taints
  and the DaemonSet tolerations), RollingUpdate with maxUnavailable/maxSurge.
- Disruption controller: PodDisruptionBudget status from the pods.
"""
import json
import time

from . import eviction
from . import sim_util as U
from .selection import from_label_selector_object
from .simulation import KCM

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300}]
DS_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
DS_HOSTNET_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                         "effect": "NoSchedule"}
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
MAX_INT32 = 2147483647


def _copy(obj):
    return json.loads(json.dumps(obj))


def _replicas(obj, default=1):
    r = (obj.get("spec") or {}).get("replicas")
    return default if r is None else int(r)


def _drop_zero(status, keys):
    for k in keys:
        if not status.get(k):
            status.pop(k, None)
    return status


def _add_tolerations(spec, extra):
    tols = spec.setdefault("tolerations", [])
    for t in extra:
        if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in tols):
            tols.append(dict(t))
    return spec


def _strip_hash(template):
    t = dict(template)
    md = dict(t.get("metadata") or {})
    labels = dict(md.get("labels") or {})
    labels.pop("pod-template-hash", None)
    md["labels"] = labels
    t["metadata"] = md
    return t


def _created(entry):
    return (entry.obj["metadata"].get("creationTimestamp") or "", entry.obj["metadata"]["name"])


def _delete_rank(p, now):
    """Pods to delete first sort lowest (controller.ActivePods ordering)."""
    pod = p.obj
    st = pod.get("status") or {}
    phase = {"Pending": 0, "Unknown": 1, "Running": 2}.get(st.get("phase"), 0)
    ready = U.is_ready(pod)
    since = U.parse_time((U.condition(pod, "Ready") or {}).get("lastTransitionTime")) or 0.0
    created = U.parse_time(pod["metadata"].get("creationTimestamp")) or 0.0
    return (1 if pod["spec"].get("nodeName") else 0, phase, 1 if ready else 0,
            -since if ready else 0, -U.restart_count(pod), -created)


class Workloads:
    def __init__(self, sim):
        self.sim = sim
        self.store = sim.store
        self.sts_rev = {}          # StatefulSet uid -> (canonical template, revision)
        self.sts_templates = {}    # StatefulSet uid -> {revision: template}
        self._deadlines = {}       # Deployment -> when its progress deadline is checked

    # ==================================================================== ReplicaSet ===
    def sync_replicaset(self, key):
        with self.store.lock:
            e = self.store.get(U.REPLICASETS, *key)
            if e is None:
                return
            rs = e.obj
            uid = rs["metadata"]["uid"]
            pods = self.sim.owned(uid, U.PODS)
            active = [p for p in pods if U.is_active(p.obj)]
            want = _replicas(rs)
            now = time.time()
            if not U.is_deleting(rs):
                if len(active) < want:
                    for _ in range(want - len(active)):
                        self._create_rs_pod(rs)
                elif len(active) > want:
                    for p in sorted(active, key=lambda p: _delete_rank(p, now))[:len(active)
                                                                               - want]:
                        self.sim.delete(U.PODS, key[0], p.obj["metadata"]["name"])
                pods = self.sim.owned(uid, U.PODS)
                active = [p for p in pods if U.is_active(p.obj)]
            e = self.store.get(U.REPLICASETS, *key)
            if e is None:
                return
            rs = e.obj
            mrs = (rs.get("spec") or {}).get("minReadySeconds") or 0
            tmpl_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}) \
                .get("labels") or {}
            status = dict(rs.get("status") or {})
            status.update({
                "replicas": len(active),
                "fullyLabeledReplicas": sum(1 for p in active if all(
                    (p.obj["metadata"].get("labels") or {}).get(k) == v
                    for k, v in tmpl_labels.items())),
                "readyReplicas": sum(1 for p in active if U.is_ready(p.obj)),
                "availableReplicas": sum(1 for p in active if U.is_available(p.obj, mrs, now)),
                "observedGeneration": rs["metadata"].get("generation", 1)})
            _drop_zero(status, ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"))
            if mrs:
                self._recheck_availability(("rs", key), [p.obj for p in active], mrs, now)
            if status != rs.get("status"):
                self.sim.write_status(U.REPLICASETS, e, status, KCM)

    def _recheck_availability(self, what, pods, mrs, now):
        later = [t for t in (U.available_at(p, mrs) for p in pods) if t is not None and t > now]
        if later:
            self.sim.at(min(later) + 0.05, "sync", *what)

    def _create_rs_pod(self, rs):
        tmpl = rs["spec"].get("template") or {}
        md = tmpl.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": rs["metadata"]["name"] + "-",
                            "labels": dict(md.get("labels") or {}),
                            "ownerReferences": [U.owner_ref(rs, "ReplicaSet")]},
               "spec": _add_tolerations(_copy(tmpl.get("spec") or {}), DEFAULT_TOLERATIONS)}
        if md.get("annotations"):
            pod["metadata"]["annotations"] = dict(md["annotations"])
        return self.sim.create(U.PODS, rs["metadata"]["namespace"], pod)

    # ==================================================================== Deployment ===
    @staticmethod
    def _fenceposts(d):
        spec = d.get("spec") or {}
        replicas = _replicas(d)
        strategy = spec.get("strategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return 0, 0
        ru = strategy.get("rollingUpdate") or {}
        surge = U.scaled_int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
        unavail = U.scaled_int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavail == 0:
            unavail = 1
        return surge, min(unavail, replicas)

    def sync_deployment(self, key):
        with self.store.lock:
            e = self.store.get(U.DEPLOYMENTS, *key)
            if e is None or U.is_deleting(e.obj):
                self._deadlines.pop(key, None)
                return
            self._sync_deployment(key, e)

    def _rs_of(self, d):
        rss = self.sim.owned(d["metadata"]["uid"], U.REPLICASETS)
        want = U.semantic((d.get("spec") or {}).get("template") or {})
        new, olds = None, []
        for r in sorted(rss, key=_created):
            if new is None and U.semantic(_strip_hash(r.obj["spec"].get("template") or {})) \
                    == want:
                new = r
            else:
                olds.append(r)
        return new, olds

    @staticmethod
    def _revision(rs_entry):
        try:
            return int((rs_entry.obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
        except ValueError:
            return 0

    def _scale_rs(self, r, count, d):
        obj = r.copy()
        obj["spec"]["replicas"] = count
        surge, _ = self._fenceposts(d)
        ann = obj["metadata"].setdefault("annotations", {})
        ann["deployment.kubernetes.io/desired-replicas"] = str(_replicas(d))
        ann["deployment.kubernetes.io/max-replicas"] = str(_replicas(d) + surge)
        self.sim.write(U.REPLICASETS, r, obj)
        return self.store.get(U.REPLICASETS, r.obj["metadata"]["namespace"],
                              r.obj["metadata"]["name"])

    def _create_new_rs(self, e, olds, count):
        d = e.obj
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        template = (d.get("spec") or {}).get("template") or {}
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        for _ in range(10):
            h = U.template_hash(template, collisions)
            rs_name = "%s-%s" % (name, h)
            existing = self.store.get(U.REPLICASETS, ns, rs_name)
            if existing is None:
                break
            collisions += 1
        else:
            return None, collisions
        tmpl = _copy(template)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
        sel = _copy((d.get("spec") or {}).get("selector") or {})
        sel.setdefault("matchLabels", {})["pod-template-hash"] = h
        surge, _ = self._fenceposts(d)
        rev = max([self._revision(r) for r in olds] or [0]) + 1
        ann = {k: v for k, v in (d["metadata"].get("annotations") or {}).items()
               if k not in ("kubectl.kubernetes.io/last-applied-configuration", REVISION,
                            "deployment.kubernetes.io/revision-history")}
        ann.update({"deployment.kubernetes.io/desired-replicas": str(_replicas(d)),
                    "deployment.kubernetes.io/max-replicas": str(_replicas(d) + surge),
                    REVISION: str(rev)})
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": rs_name, "namespace": ns,
                           "labels": dict(tmpl["metadata"]["labels"]), "annotations": ann,
                           "ownerReferences": [U.owner_ref(d, "Deployment")]},
              "spec": {"replicas": count, "selector": sel, "template": tmpl}}
        mrs = (d.get("spec") or {}).get("minReadySeconds")
        if mrs:
            rs["spec"]["minReadySeconds"] = mrs
        self.sim.create(U.REPLICASETS, ns, rs)
        return self.store.get(U.REPLICASETS, ns, rs_name), collisions

    @staticmethod
    def _avail(r):
        """Available pods of a ReplicaSet as its status says, never more than it
        is scaled to (its status may lag a scale-down by a moment)."""
        st = r.obj.get("status") or {}
        return min(int(st.get("availableReplicas") or 0), _replicas(r.obj, 0))

    def _sync_deployment(self, key, e):
        d = e.obj
        spec = d.get("spec") or {}
        replicas = _replicas(d)
        new, olds = self._rs_of(d)
        strategy = (spec.get("strategy") or {}).get("type") or "RollingUpdate"
        created = None
        collisions = None
        if not spec.get("paused"):
            if strategy == "Recreate":
                active_old = [r for r in olds if _replicas(r.obj, 0) > 0]
                old_pods = any(not U.is_terminal(p.obj) for r in olds
                               for p in self.sim.owned(r.obj["metadata"]["uid"], U.PODS))
                if active_old:
                    for r in active_old:
                        self._scale_rs(r, 0, d)
                elif not old_pods:
                    if new is None:
                        new, collisions = self._create_new_rs(e, olds, replicas)
                        created = new
                    elif _replicas(new.obj, 0) != replicas:
                        new = self._scale_rs(new, replicas, d)
            else:
                surge, unavail = self._fenceposts(d)
                if new is None:
                    total = sum(_replicas(r.obj, 0) for r in olds)
                    count = max(0, min(replicas, replicas + surge - total))
                    new, collisions = self._create_new_rs(e, olds, count)
                    created = new
                elif not self._reconcile_new(d, new, olds, surge):
                    self._reconcile_old(d, new, olds, unavail)
        if new is not None:
            max_old = max([self._revision(r) for r in olds] or [0])
            if self._revision(new) <= max_old:       # a rollback to an old template
                obj = new.copy()
                obj["metadata"].setdefault("annotations", {})[REVISION] = str(max_old + 1)
                self.sim.write(U.REPLICASETS, new, obj)
        # fresh view for the status
        e = self.store.get(U.DEPLOYMENTS, *key)
        if e is None:
            return
        new, olds = self._rs_of(e.obj)
        if new is not None:
            rev = (new.obj["metadata"].get("annotations") or {}).get(REVISION)
            if rev and (e.obj["metadata"].get("annotations") or {}).get(REVISION) != rev:
                obj = e.copy()
                obj["metadata"].setdefault("annotations", {})[REVISION] = rev
                self.sim.write(U.DEPLOYMENTS, e, obj)
                e = self.store.get(U.DEPLOYMENTS, *key)
        complete = self._deployment_status(e, new, olds, created, collisions)
        if complete:
            self._cleanup(e.obj, olds)

    def _reconcile_new(self, d, new, olds, surge):
        replicas = _replicas(d)
        cur = _replicas(new.obj, 0)
        if cur == replicas:
            return False
        if cur > replicas:
            self._scale_rs(new, replicas, d)
            return True
        total = cur + sum(_replicas(r.obj, 0) for r in olds)
        max_total = replicas + surge
        if total >= max_total:
            return False
        self._scale_rs(new, cur + min(max_total - total, replicas - cur), d)
        return True

    def _reconcile_old(self, d, new, olds, unavail):
        replicas = _replicas(d)
        old_count = sum(_replicas(r.obj, 0) for r in olds)
        if old_count == 0:
            return False
        all_count = old_count + _replicas(new.obj, 0)
        min_avail = replicas - unavail
        new_unavail = _replicas(new.obj, 0) - self._avail(new)
        max_down = all_count - min_avail - new_unavail
        if max_down <= 0:
            return False
        counts = {r.obj["metadata"]["name"]: _replicas(r.obj, 0) for r in olds}
        cleaned = 0
        for r in olds:                     # oldest first: unhealthy replicas go first
            if cleaned >= max_down:
                break
            name = r.obj["metadata"]["name"]
            unhealthy = counts[name] - self._avail(r)
            if counts[name] == 0 or unhealthy <= 0:
                continue
            down = min(unhealthy, max_down - cleaned)
            counts[name] -= down
            cleaned += down
        available = self._avail(new) + sum(min(self._avail(r), counts[r.obj["metadata"]["name"]])
                                           for r in olds)
        scaled = 0
        if available > min_avail:
            budget = available - min_avail
            for r in olds:
                if scaled >= budget:
                    break
                name = r.obj["metadata"]["name"]
                if counts[name] == 0:
                    continue
                down = min(counts[name], budget - scaled)
                counts[name] -= down
                scaled += down
        for r in olds:
            name = r.obj["metadata"]["name"]
            if counts[name] != _replicas(r.obj, 0):
                self._scale_rs(r, counts[name], d)
        return cleaned + scaled > 0

    def _deployment_status(self, e, new, olds, created, collisions):
        d = e.obj
        spec = d.get("spec") or {}
        replicas = _replicas(d)
        all_rs = ([new] if new is not None else []) + olds

        def st(r, k):
            return int((r.obj.get("status") or {}).get(k) or 0)
        available = sum(st(r, "availableReplicas") for r in all_rs)
        total = sum(_replicas(r.obj, 0) for r in all_rs)
        old_status = d.get("status") or {}
        status = {"observedGeneration": d["metadata"].get("generation", 1),
                  "replicas": sum(st(r, "replicas") for r in all_rs),
                  "updatedReplicas": st(new, "replicas") if new is not None else 0,
                  "readyReplicas": sum(st(r, "readyReplicas") for r in all_rs),
                  "availableReplicas": available,
                  "unavailableReplicas": max(0, total - available)}
        cc = collisions if collisions is not None else old_status.get("collisionCount")
        if cc:
            status["collisionCount"] = cc
        conds = _copy(old_status.get("conditions") or [])
        now = time.time()
        nows = U.rfc3339(now)
        _, unavail = self._fenceposts(d)
        if available >= replicas - unavail:
            U.set_condition(conds, "Available", "True", "MinimumReplicasAvailable",
                            "Deployment has minimum availability.", nows, probe=False,
                            update_time=True)
        else:
            U.set_condition(conds, "Available", "False", "MinimumReplicasUnavailable",
                            "Deployment does not have minimum availability.", nows, probe=False,
                            update_time=True)
        deadline = spec.get("progressDeadlineSeconds")
        has_deadline = deadline is not None and deadline != MAX_INT32
        rs_name = new.obj["metadata"]["name"] if new is not None else ""
        complete = status["updatedReplicas"] == replicas and status["replicas"] == replicas \
            and available == replicas and status["observedGeneration"] >= \
            d["metadata"].get("generation", 1)
        prog = next((c for c in conds if c.get("type") == "Progressing"), None)
        if spec.get("paused"):
            U.set_condition(conds, "Progressing", "Unknown", "DeploymentPaused",
                            "Deployment is paused", nows, probe=False, update_time=True)
        elif created is not None and has_deadline:
            U.set_condition(conds, "Progressing", "True", "NewReplicaSetCreated",
                            'Created new replica set "%s"' % rs_name, nows, probe=False,
                            update_time=True)
        elif has_deadline:
            if prog is None and new is not None:
                U.set_condition(conds, "Progressing", "True", "FoundNewReplicaSet",
                                'Found new replica set "%s"' % rs_name, nows, probe=False,
                                update_time=True)
                prog = next(c for c in conds if c.get("type") == "Progressing")
            done = status["replicas"] == status["updatedReplicas"] and prog is not None and \
                prog.get("reason") == "NewReplicaSetAvailable"
            if not done:
                old_old = int(old_status.get("replicas") or 0) - \
                    int(old_status.get("updatedReplicas") or 0)
                new_old = status["replicas"] - status["updatedReplicas"]
                if complete:
                    U.set_condition(conds, "Progressing", "True", "NewReplicaSetAvailable",
                                    'ReplicaSet "%s" has successfully progressed.' % rs_name,
                                    nows, probe=False, update_time=True)
                elif (status["updatedReplicas"] > int(old_status.get("updatedReplicas") or 0)
                      or new_old < old_old or
                      status["readyReplicas"] > int(old_status.get("readyReplicas") or 0) or
                      available > int(old_status.get("availableReplicas") or 0)):
                    U.set_condition(conds, "Progressing", "True", "ReplicaSetUpdated",
                                    'ReplicaSet "%s" is progressing.' % rs_name, nows,
                                    probe=False, update_time=True)
                    for c in conds:
                        if c.get("type") == "Progressing":
                            c["lastUpdateTime"] = nows
                elif prog is not None and prog.get("reason") != "ProgressDeadlineExceeded":
                    since = U.parse_time(prog.get("lastUpdateTime")) or now
                    if since + deadline < now:
                        U.set_condition(conds, "Progressing", "False",
                                        "ProgressDeadlineExceeded",
                                        'ReplicaSet "%s" has timed out progressing.' % rs_name,
                                        nows, probe=False, update_time=True)
            prog = next((c for c in conds if c.get("type") == "Progressing"), None)
            if not complete and prog is not None and prog.get("status") == "True":
                # look again when the deadline passes without progress
                since = U.parse_time(prog.get("lastUpdateTime")) or now
                dkey = (d["metadata"]["namespace"], d["metadata"]["name"])
                when = since + deadline + 1.0
                if self._deadlines.get(dkey) != when:
                    self._deadlines[dkey] = when
                    self.sim.at(when, "sync", "deploy", dkey)
        order = {"Available": 0, "Progressing": 1, "ReplicaFailure": 2}
        conds.sort(key=lambda c: order.get(c.get("type"), 9))
        status["conditions"] = conds
        _drop_zero(status, ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                            "unavailableReplicas"))
        if status != old_status:
            self.sim.write_status(U.DEPLOYMENTS, e, status, KCM)
        return complete

    def _cleanup(self, d, olds):
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        idle = [r for r in olds if _replicas(r.obj, 0) == 0 and
                not int((r.obj.get("status") or {}).get("replicas") or 0) and
                not U.is_deleting(r.obj)]
        if len(idle) <= limit:
            return
        idle.sort(key=self._revision)
        for r in idle[:len(idle) - limit]:
            self.sim.delete(U.REPLICASETS, r.obj["metadata"]["namespace"],
                            r.obj["metadata"]["name"])

    # =================================================================== StatefulSet ===
    def note_statefulset(self, type_, obj, prev):
        """Remember which revision a template had before it changed (the store
        keeps no ControllerRevisions)."""
        uid = obj["metadata"].get("uid")
        if type_ == "DELETED":
            self.sts_rev.pop(uid, None)
            self.sts_templates.pop(uid, None)
            return
        if prev is not None and uid not in self.sts_rev:
            pst = prev.get("status") or {}
            if pst.get("updateRevision"):
                tmpl = (prev.get("spec") or {}).get("template") or {}
                self.sts_rev[uid] = (U.semantic(tmpl), pst["updateRevision"])
                self.sts_templates.setdefault(uid, {})[pst["updateRevision"]] = tmpl

    def _sts_revisions(self, sts):
        md = sts["metadata"]
        uid = md["uid"]
        tmpl = (sts.get("spec") or {}).get("template") or {}
        canon = U.semantic(tmpl)
        known = self.sts_rev.get(uid)
        templates = self.sts_templates.setdefault(uid, {})
        if known is None:
            st = sts.get("status") or {}
            if st.get("updateRevision") and st.get("observedGeneration") == md.get("generation"):
                rev = st["updateRevision"]
            else:
                rev = "%s-%s" % (md["name"], U.template_hash(tmpl))
        elif known[0] != canon:
            rev = next((r for r, t in templates.items() if U.semantic(t) == canon), None) \
                or "%s-%s" % (md["name"], U.template_hash(tmpl))
        else:
            rev = known[1]
        self.sts_rev[uid] = (canon, rev)
        templates[rev] = tmpl
        current = (sts.get("status") or {}).get("currentRevision") or rev
        return rev, current, templates

    @staticmethod
    def _ordinal(sts_name, pod_name):
        prefix = sts_name + "-"
        if not pod_name.startswith(prefix):
            return None
        try:
            return int(pod_name[len(prefix):])
        except ValueError:
            return None

    def _create_sts_pod(self, sts, ordinal, rev, template):
        md = sts["metadata"]
        name = "%s-%d" % (md["name"], ordinal)
        tmd = template.get("metadata") or {}
        labels = dict(tmd.get("labels") or {})
        labels.update({"controller-revision-hash": rev,
                       "statefulset.kubernetes.io/pod-name": name,
                       "apps.kubernetes.io/pod-index": str(ordinal)})
        spec = _add_tolerations(_copy(template.get("spec") or {}), DEFAULT_TOLERATIONS)
        spec["hostname"] = name
        if (sts.get("spec") or {}).get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        volumes = spec.setdefault("volumes", [])
        for vct in (sts.get("spec") or {}).get("volumeClaimTemplates") or ():
            vname = (vct.get("metadata") or {}).get("name")
            if vname and not any(v.get("name") == vname for v in volumes):
                volumes.append({"name": vname, "persistentVolumeClaim": {
                    "claimName": "%s-%s" % (vname, name)}})
        if not volumes:
            del spec["volumes"]
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": labels,
                            "ownerReferences": [U.owner_ref(sts, "StatefulSet")]},
               "spec": spec}
        if tmd.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmd["annotations"])
        self.sim.create(U.PODS, md["namespace"], pod)   # refused while the old one terminates

    def sync_statefulset(self, key):
        with self.store.lock:
            e = self.store.get(U.STATEFULSETS, *key)
            if e is None or U.is_deleting(e.obj):
                return
            sts = e.obj
            spec = sts.get("spec") or {}
            md = sts["metadata"]
            update_rev, current_rev, templates = self._sts_revisions(sts)
            replicas = _replicas(sts)
            start = int((spec.get("ordinals") or {}).get("start") or 0)
            ordinals = list(range(start, start + replicas))
            parallel = spec.get("podManagementPolicy") == "Parallel"
            us = spec.get("updateStrategy") or {}
            rolling = (us.get("type") or "RollingUpdate") == "RollingUpdate"
            partition = int((us.get("rollingUpdate") or {}).get("partition") or 0)
            pods = {}
            for p in self.sim.owned(md["uid"], U.PODS):
                o = self._ordinal(md["name"], p.obj["metadata"]["name"])
                if o is not None:
                    pods[o] = p
            now = time.time()
            mrs = spec.get("minReadySeconds") or 0

            def rev_of(p):
                return (p.obj["metadata"].get("labels") or {}).get("controller-revision-hash")
            blocked = False
            for i in ordinals:
                p = pods.get(i)
                if p is not None and U.is_terminal(p.obj):
                    self.sim.delete(U.PODS, key[0], p.obj["metadata"]["name"])
                    p = None
                if p is None:
                    rev = current_rev if (rolling and i < partition and
                                          current_rev in templates) else update_rev
                    self._create_sts_pod(sts, i, rev, templates.get(rev) or
                                         spec.get("template") or {})
                    blocked = True
                    if not parallel:
                        break
                    continue
                if U.is_deleting(p.obj) or not U.is_ready(p.obj):
                    blocked = True
                    if not parallel:
                        break
            condemned = sorted((o for o in pods if o not in set(ordinals)), reverse=True)
            if condemned and (parallel or not blocked):
                for o in condemned:
                    if not U.is_deleting(pods[o].obj):
                        self.sim.delete(U.PODS, key[0], pods[o].obj["metadata"]["name"])
                    if not parallel:
                        break
            elif rolling and not blocked and not condemned:
                for i in reversed(ordinals):
                    if i < partition:
                        break
                    p = pods[i]
                    if rev_of(p) != update_rev:
                        self.sim.delete(U.PODS, key[0], p.obj["metadata"]["name"])
                        break
            # status from a fresh view
            active = [p for p in self.sim.owned(md["uid"], U.PODS) if not U.is_terminal(p.obj)]
            status = {"observedGeneration": md.get("generation", 1),
                      "replicas": len(active),
                      "readyReplicas": sum(1 for p in active if U.is_ready(p.obj)),
                      "currentReplicas": sum(1 for p in active if rev_of(p) == current_rev),
                      "updatedReplicas": sum(1 for p in active if rev_of(p) == update_rev),
                      "availableReplicas": sum(1 for p in active
                                               if U.is_available(p.obj, mrs, now)),
                      "currentRevision": current_rev, "updateRevision": update_rev,
                      "collisionCount": int((sts.get("status") or {}).get("collisionCount")
                                            or 0)}
            if rolling and status["updatedReplicas"] == status["replicas"] == replicas and \
                    status["readyReplicas"] == replicas:
                status["currentReplicas"] = status["updatedReplicas"]
                status["currentRevision"] = update_rev
            if mrs:
                self._recheck_availability(("sts", key), [p.obj for p in active], mrs, now)
            _drop_zero(status, ("readyReplicas", "currentReplicas", "updatedReplicas"))
            if status != sts.get("status"):
                self.sim.write_status(U.STATEFULSETS, e, status, KCM)

    # ===================================================================== DaemonSet ===
    def _ds_should_run(self, tspec, node):
        if not U.node_matches(tspec, node.name, node.labels):
            return False
        tols = list(tspec.get("tolerations") or ()) + DS_TOLERATIONS
        if tspec.get("hostNetwork"):
            tols.append(DS_HOSTNET_TOLERATION)
        taints = list(node.taints)
        for t in taints:
            if t.get("effect") in ("NoSchedule", "NoExecute") and not U.tolerates(tols, t):
                return False
        return True

    def _create_ds_pod(self, ds, node, chash, tgen):
        tmpl = (ds.get("spec") or {}).get("template") or {}
        tmd = tmpl.get("metadata") or {}
        labels = dict(tmd.get("labels") or {})
        labels.update({"controller-revision-hash": chash, "pod-template-generation": tgen})
        spec = _add_tolerations(_copy(tmpl.get("spec") or {}), DS_TOLERATIONS)
        if spec.get("hostNetwork"):
            _add_tolerations(spec, [DS_HOSTNET_TOLERATION])
        affinity = spec.setdefault("affinity", {})
        na = affinity.setdefault("nodeAffinity", {})
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": ds["metadata"]["name"] + "-", "labels": labels,
                            "ownerReferences": [U.owner_ref(ds, "DaemonSet")]},
               "spec": spec}
        if tmd.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmd["annotations"])
        self.sim.create(U.PODS, ds["metadata"]["namespace"], pod)

    def sync_daemonset(self, key):
        with self.store.lock:
            e = self.store.get(U.DAEMONSETS, *key)
            if e is None or U.is_deleting(e.obj):
                return
            self._sync_daemonset(key, e)

    def _ds_view(self, ds):
        by_node = {}
        for p in self.sim.owned(ds["metadata"]["uid"], U.PODS):
            if U.is_terminal(p.obj):
                continue
            node = p.obj["spec"].get("nodeName") or U.pinned_node(p.obj["spec"])
            by_node.setdefault(node, []).append(p)
        return by_node

    def _sync_daemonset(self, key, e):
        ds = e.obj
        md = ds["metadata"]
        spec = ds.get("spec") or {}
        tmpl = spec.get("template") or {}
        tspec = tmpl.get("spec") or {}
        chash = U.template_hash(tmpl)
        tgen = (md.get("annotations") or {}).get(TEMPLATE_GENERATION, "1")
        mrs = spec.get("minReadySeconds") or 0
        now = time.time()

        def updated(p):
            labels = p.obj["metadata"].get("labels") or {}
            return labels.get("pod-template-generation") == tgen or \
                labels.get("controller-revision-hash") == chash

        def available(p):
            return not U.is_deleting(p.obj) and U.is_available(p.obj, mrs, now)
        should = sorted(n.name for n in self.sim.nodes.values() if self._ds_should_run(tspec, n))
        should_set = set(should)
        desired = len(should)
        by_node = self._ds_view(ds)
        ns = key[0]
        for node, ps in by_node.items():
            if node not in should_set:
                for p in ps:
                    if not U.is_deleting(p.obj):
                        self.sim.delete(U.PODS, ns, p.obj["metadata"]["name"])
        us = spec.get("updateStrategy") or {}
        rolling = (us.get("type") or "RollingUpdate") == "RollingUpdate"
        ru = us.get("rollingUpdate") or {}
        max_unavail = U.scaled_int_or_percent(ru.get("maxUnavailable", 1), desired, True)
        max_surge = U.scaled_int_or_percent(ru.get("maxSurge", 0), desired, True)
        if max_unavail == 0 and max_surge == 0:
            max_unavail = 1
        create = []
        unavailable = 0
        for node in should:
            live = [p for p in by_node.get(node, ()) if not U.is_deleting(p.obj)]
            if not any(available(p) for p in by_node.get(node, ())):
                unavailable += 1
            if not live:
                if not by_node.get(node):
                    create.append(node)
                continue
            new = sorted((p for p in live if updated(p)), key=_created)
            old = sorted((p for p in live if not updated(p)), key=_created)
            for p in new[1:] + old[1:]:
                self.sim.delete(U.PODS, ns, p.obj["metadata"]["name"])
        if rolling:
            surged = sum(1 for node in should if any(updated(p) for p in by_node.get(node, ()))
                         and any(not updated(p) for p in by_node.get(node, ())))
            for node in should:
                live = [p for p in by_node.get(node, ()) if not U.is_deleting(p.obj)]
                old = [p for p in live if not updated(p)][:1]
                new = [p for p in live if updated(p)][:1]
                if not old:
                    continue
                p = old[0]
                if new:
                    if available(new[0]) or not available(p):
                        self.sim.delete(U.PODS, ns, p.obj["metadata"]["name"])
                    continue
                if not available(p):
                    self.sim.delete(U.PODS, ns, p.obj["metadata"]["name"])
                elif max_surge > 0:
                    if surged < max_surge:
                        create.append(node)
                        surged += 1
                elif unavailable < max_unavail:
                    self.sim.delete(U.PODS, ns, p.obj["metadata"]["name"])
                    unavailable += 1
        for node in create:
            self._create_ds_pod(ds, node, chash, tgen)
        # status from a fresh view
        e = self.store.get(U.DAEMONSETS, *key)
        if e is None:
            return
        ds = e.obj
        by_node = self._ds_view(ds)
        live = {n: [p for p in ps if not U.is_deleting(p.obj)] for n, ps in by_node.items()}
        status = {"currentNumberScheduled": sum(1 for n in should if live.get(n)),
                  "numberMisscheduled": sum(1 for n, ps in live.items()
                                            if ps and n not in should_set),
                  "desiredNumberScheduled": desired,
                  "numberReady": sum(1 for n in should if any(U.is_ready(p.obj)
                                                              for p in live.get(n, ()))),
                  "observedGeneration": md.get("generation", 1),
                  "updatedNumberScheduled": sum(1 for n in should
                                                if any(updated(p) for p in live.get(n, ()))),
                  "numberAvailable": sum(1 for n in should if any(available(p)
                                                                  for p in live.get(n, ())))}
        status["numberUnavailable"] = desired - status["numberAvailable"]
        _drop_zero(status, ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"))
        if mrs:
            self._recheck_availability(("ds", key), [p.obj for ps in live.values()
                                                     for p in ps], mrs, now)
        if status != ds.get("status"):
            self.sim.write_status(U.DAEMONSETS, e, status, KCM)

    # ========================================================= PodDisruptionBudget ===
    def sync_pdb(self, key):
        with self.store.lock:
            e = self.store.get(U.PDBS, *key)
            if e is None or U.is_deleting(e.obj):
                return
            pdb = e.obj
            try:
                sel = from_label_selector_object((pdb.get("spec") or {}).get("selector"))
            except Exception:
                return
            pods = [p.obj for p in self.store.entries(U.PODS, key[0])
                    if sel.matches(p.obj["metadata"].get("labels"))]
            n = eviction.pdb_numbers(self.store, pdb, pods)
            old = pdb.get("status") or {}
            gen = pdb["metadata"].get("generation", 1)
            conds = _copy(old.get("conditions") or [])
            allowed = n["allowed"] > 0
            U.set_condition(conds, "DisruptionAllowed", "True" if allowed else "False",
                            "SufficientPods" if allowed else "InsufficientPods", "",
                            U.rfc3339(), probe=False, extra={"observedGeneration": gen})
            status = {"observedGeneration": gen, "disruptionsAllowed": n["allowed"],
                      "currentHealthy": n["healthy"], "desiredHealthy": n["desired"],
                      "expectedPods": n["expected"], "conditions": conds}
            if old.get("disruptedPods"):
                live = {p["metadata"]["name"] for p in pods if not U.is_deleting(p)}
                kept = {k: v for k, v in old["disruptedPods"].items() if k in live}
                if kept:
                    status["disruptedPods"] = kept
            if status != old:
                self.sim.write_status(U.PDBS, e, status, KCM)
