"""pods/eviction: delete a pod unless a PodDisruptionBudget forbids it.

The budget is computed at eviction time from the pods the PDB selects
(healthy = Running with Ready=True, not being deleted) with pdb_numbers(),
the same function the simulated disruption controller (sim_workloads.py)
publishes in the PDB's status, so both always agree.
"""
import math

from . import errors
from .selection import from_label_selector_object


def _healthy(pod):
    st = pod.get("status") or {}
    if st.get("phase") != "Running" or pod["metadata"].get("deletionTimestamp"):
        return False
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return True


def _scaled(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        frac = float(value[:-1]) / 100.0 * total
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(value)


def _controller(pod):
    for ref in pod["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def expected_scale(store, pods):
    """Sum of the scale of the pods' controllers, as the disruption controller's
    getExpectedScale: a ReplicaSet owned by a Deployment counts the Deployment's
    replicas, each controller once. A pod without a scalable controller (no
    owner, a DaemonSet) counts as one (upstream reports an error there)."""
    seen, total = set(), 0
    for pod in pods:
        ns = pod["metadata"].get("namespace", "")
        ref = _controller(pod)
        if ref is None:
            total += 1
            continue
        kind, name = ref.get("kind"), ref.get("name")
        owner = None
        if kind == "ReplicaSet":
            rs = store.get(("apps", "replicasets"), ns, name)
            if rs is not None:
                dref = _controller(rs.obj)
                if dref is not None and dref.get("kind") == "Deployment":
                    d = store.get(("apps", "deployments"), ns, dref.get("name"))
                    if d is not None:
                        owner = d.obj
                if owner is None:
                    owner = rs.obj
        elif kind == "StatefulSet":
            s = store.get(("apps", "statefulsets"), ns, name)
            owner = s.obj if s is not None else None
        if owner is None:
            total += 1
            continue
        uid = owner["metadata"].get("uid")
        if uid in seen:
            continue
        seen.add(uid)
        replicas = (owner.get("spec") or {}).get("replicas")
        total += 1 if replicas is None else int(replicas)
    return total


def pdb_numbers(store, pdb, pods):
    """{expected, desired, healthy, allowed} for a PDB and the pods it selects,
    computed like the disruption controller (healthy = Ready and not being
    deleted; integer minAvailable expects the pods that exist, percentages and
    maxUnavailable the controllers' scale; percentages rounded up)."""
    spec = pdb.get("spec") or {}
    healthy = sum(1 for p in pods if _healthy(p))
    if spec.get("maxUnavailable") is not None:
        expected = expected_scale(store, pods)
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
    elif spec.get("minAvailable") is not None:
        if isinstance(spec["minAvailable"], str) and spec["minAvailable"].endswith("%"):
            expected = expected_scale(store, pods)
            desired = _scaled(spec["minAvailable"], expected, True)
        else:
            expected = len(pods)
            desired = _scaled(spec["minAvailable"], expected, True)
    else:
        expected = len(pods)
        desired = expected
    return {"expected": expected, "desired": desired, "healthy": healthy,
            "allowed": max(0, healthy - desired)}


def budget(pdb, pods, store=None):
    """(disruptions allowed, desired healthy, current healthy) for a PDB."""
    sel = from_label_selector_object((pdb.get("spec") or {}).get("selector"))
    matching = [p for p in pods if sel.matches(p["metadata"].get("labels"))]
    if store is None:
        from .store import Store
        store = Store()
    n = pdb_numbers(store, pdb, matching)
    return n["allowed"], n["desired"], n["healthy"]


def evict(api, ns, name, body, ctx):
    store = api.store
    pods_rt = api.registry.get("", "pods")
    with store.lock:
        entry = api.get(pods_rt, ns, name)
        pod = entry.obj
        pods = [e.obj for e in store.entries(("", "pods"), ns)]
        pdbs = [e.obj for e in store.entries(("policy", "poddisruptionbudgets"), ns)]
        matching = [p for p in pdbs if from_label_selector_object(
            (p.get("spec") or {}).get("selector")).matches(pod["metadata"].get("labels"))]
        if len(matching) > 1:
            raise errors.internal("This pod has more than one PodDisruptionBudget, which the "
                                  "eviction subresource does not support.")
        # pods that are not running do not count against a budget
        if matching and _healthy(pod):
            allowed, desired, healthy = budget(matching[0], pods, store)
            if allowed <= 0:
                pdb_name = matching[0]["metadata"]["name"]
                raise errors.StatusError(
                    429, "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {"causes": [{"reason": "DisruptionBudget",
                                 "message": f"The disruption budget {pdb_name} needs {desired} "
                                            f"healthy pods and has {healthy} currently"}]})
        opts = (body or {}).get("deleteOptions") or {}
        api.delete(pods_rt, ns, name, ctx, opts.get("propagationPolicy"),
                   opts.get("preconditions"))
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}
