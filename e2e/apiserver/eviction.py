"""pods/eviction: delete a pod unless a PodDisruptionBudget forbids it.

No disruption controller runs here, so the budget is computed at eviction
time from the pods the PDB selects (healthy = Running with Ready=True),
exactly the numbers the real controller would publish in its status.
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


def budget(pdb, pods):
    """(disruptions allowed, desired healthy, current healthy) for a PDB."""
    spec = pdb.get("spec") or {}
    sel = from_label_selector_object(spec.get("selector"))
    matching = [p for p in pods if sel.matches(p["metadata"].get("labels"))]
    expected = len(matching)
    healthy = sum(1 for p in matching if _healthy(p))
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
    elif spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected, True)
    else:
        desired = expected
    return max(0, healthy - desired), desired, healthy


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
            allowed, desired, healthy = budget(matching[0], pods)
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
