"""Small helpers shared by the simulation modules (simulation.py,
sim_workloads.py, sim_kubelet.py): times, quantities, pod requests and
readiness, conditions, owner references, template hashes.
"""
import calendar
import functools
import hashlib
import json
import math
import time

from .builtin_types import parse_quantity

PODS = ("", "pods")
NODES = ("", "nodes")
DEPLOYMENTS = ("apps", "deployments")
REPLICASETS = ("apps", "replicasets")
STATEFULSETS = ("apps", "statefulsets")
DAEMONSETS = ("apps", "daemonsets")
PDBS = ("policy", "poddisruptionbudgets")

# Kubernetes' generated-name alphabet (k8s.io/apimachinery/pkg/util/rand)
ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(epoch=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None
                                                             else epoch))


def parse_time(text):
    """RFC 3339 (seconds, 'Z') -> epoch seconds; None for anything else."""
    if not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except (ValueError, TypeError):
        return None


@functools.lru_cache(maxsize=8192)
def cpu_milli(q):
    try:
        return int(math.ceil(parse_quantity(q) * 1000 - 1e-9))
    except ValueError:
        return 0


@functools.lru_cache(maxsize=8192)
def mem_bytes(q):
    try:
        return int(parse_quantity(q))
    except ValueError:
        return 0


def fnv32a(data):
    h = 0x811c9dc5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return h


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _semantic(v):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = _semantic(x)
            if x is not None and x != {} and x != []:
                out[k] = x
        return out
    if isinstance(v, list):
        return [_semantic(x) for x in v]
    return v


def semantic(obj):
    """Canonical text of an object for apiequality.Semantic-like comparison: a
    null field, an empty map and an empty list count as absent (so the
    `creationTimestamp: null` kubectl rollout undo writes changes nothing)."""
    return canonical(_semantic(obj))


def template_hash(template, collision_count=0):
    """A pod-template-hash like the Deployment controller's: FNV-32a of the
    template, printed in decimal, each digit mapped into the name alphabet
    (rand.SafeEncodeString)."""
    data = canonical(_semantic(template)).encode()
    if collision_count:
        data += str(collision_count).encode()
    return "".join(ALPHANUMS[ord(ch) % len(ALPHANUMS)] for ch in str(fnv32a(data)))


def random_suffix(n=5):
    import random
    return "".join(random.choice(ALPHANUMS) for _ in range(n))


def scaled_int_or_percent(value, total, round_up):
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, str):
        if value.endswith("%"):
            try:
                frac = float(value[:-1]) / 100.0 * total
            except ValueError:
                return 0
            return int(math.ceil(frac - 1e-9)) if round_up else int(math.floor(frac + 1e-9))
        try:
            return int(value)
        except ValueError:
            return 0
    return int(value)


# --- owners -----------------------------------------------------------------------------
def controller_ref(obj):
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_ref(obj, kind):
    md = obj["metadata"]
    return {"apiVersion": "apps/v1", "kind": kind, "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


# --- pods ---------------------------------------------------------------------------------
def is_terminal(pod):
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_deleting(obj):
    return bool(obj["metadata"].get("deletionTimestamp"))


def is_active(pod):
    return not is_terminal(pod) and not is_deleting(pod)


def condition(obj, ctype):
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def is_ready(pod):
    st = pod.get("status") or {}
    if st.get("phase") != "Running":
        return False
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_available(pod, min_ready_seconds, now):
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time(condition(pod, "Ready").get("lastTransitionTime"))
    return since is None or since + min_ready_seconds <= now


def available_at(pod, min_ready_seconds):
    """When a Ready pod becomes available (None when not ready)."""
    if not is_ready(pod):
        return None
    since = parse_time(condition(pod, "Ready").get("lastTransitionTime")) or 0.0
    return since + (min_ready_seconds or 0)


def restart_count(pod):
    return sum(int(cs.get("restartCount") or 0)
               for cs in (pod.get("status") or {}).get("containerStatuses") or ())


def is_sidecar(c):
    return c.get("restartPolicy") == "Always"


def _requests(c, allocated=None):
    req = (allocated if allocated is not None else
           ((c.get("resources") or {}).get("requests") or {}))
    return cpu_milli(str(req.get("cpu", "0"))), mem_bytes(str(req.get("memory", "0")))


def pod_requests(pod, use_allocated=True):
    """Effective (cpu millicores, memory bytes) a pod asks for, with the sidecar
    rules (KEP-753): containers plus sidecars, or a plain init container plus the
    sidecars started before it, whichever is larger. With use_allocated, what the
    kubelet admitted (containerStatuses[].allocatedResources) wins over the spec."""
    spec = pod.get("spec") or {}
    alloc = {}
    if use_allocated:
        st = pod.get("status") or {}
        for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
            if cs.get("allocatedResources") is not None:
                alloc[cs.get("name")] = cs["allocatedResources"]
    cpu = mem = 0
    for c in spec.get("containers") or ():
        r = _requests(c, alloc.get(c.get("name")))
        cpu += r[0]
        mem += r[1]
    side_cpu = side_mem = init_cpu = init_mem = 0
    for c in spec.get("initContainers") or ():
        r = _requests(c, alloc.get(c.get("name")))
        if is_sidecar(c):
            side_cpu += r[0]
            side_mem += r[1]
        else:
            init_cpu = max(init_cpu, r[0] + side_cpu)
            init_mem = max(init_mem, r[1] + side_mem)
    return max(cpu + side_cpu, init_cpu), max(mem + side_mem, init_mem)


def set_condition(conds, ctype, status, reason=None, message=None, now=None,
                  probe=True, update_time=False, extra=None):
    """Set one condition in a list (in place). lastTransitionTime changes only
    when status changes; returns True when anything changed."""
    now = now or rfc3339()
    for c in conds:
        if c.get("type") == ctype:
            changed = c.get("status") != status
            want = {"type": ctype, "status": status}
            if probe:
                want["lastProbeTime"] = c.get("lastProbeTime")
            if update_time:
                want["lastUpdateTime"] = c.get("lastUpdateTime", now)
            want["lastTransitionTime"] = now if changed else c.get("lastTransitionTime", now)
            if reason is not None:
                want["reason"] = reason
            if message is not None:
                want["message"] = message
            if extra:
                want.update(extra)
            if update_time and (changed or c.get("reason") != reason or
                                c.get("message") != message):
                want["lastUpdateTime"] = now
            if want != c:
                c.clear()
                c.update(want)
                return True
            return False
    c = {"type": ctype, "status": status}
    if probe:
        c["lastProbeTime"] = None
    if update_time:
        c["lastUpdateTime"] = now
    c["lastTransitionTime"] = now
    if reason is not None:
        c["reason"] = reason
    if message is not None:
        c["message"] = message
    if extra:
        c.update(extra)
    conds.append(c)
    return True


def remove_condition(conds, ctype):
    n = len(conds)
    conds[:] = [c for c in conds if c.get("type") != ctype]
    return len(conds) != n


@functools.lru_cache(maxsize=4096)
def image_id(image):
    repo = image.split("@")[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[:len(repo) - len(last[-1]) + last[-1].index(":")]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    elif "." not in repo.split("/")[0] and ":" not in repo.split("/")[0]:
        repo = "docker.io/" + repo
    return "%s@sha256:%s" % (repo, hashlib.sha256(image.encode()).hexdigest())


def container_id():
    import os
    return "containerd://" + os.urandom(32).hex()


# --- node matching (scheduler and DaemonSet controller) ------------------------------------
def tolerates(tolerations, taint):
    for t in tolerations or ():
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if op == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expr_matches(expr, labels):
    key, op = expr.get("key"), expr.get("operator")
    values = [str(v) for v in expr.get("values") or ()]
    has = key in labels
    val = labels.get(key)
    if op == "In":
        return has and val in values
    if op == "NotIn":
        return not has or val not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt"):
        try:
            a, b = int(val), int(values[0])
        except (TypeError, ValueError, IndexError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_matches(pod_spec, node_name, node_labels):
    """nodeSelector and required node affinity (matchExpressions, matchFields)."""
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if node_labels.get(k) != v:
            return False
    req = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        return True
    for term in terms:
        if all(_expr_matches(e, node_labels) for e in term.get("matchExpressions") or ()) and \
                all(_expr_matches(e, {"metadata.name": node_name})
                    for e in term.get("matchFields") or ()):
            return True
    return False


def pinned_node(pod_spec):
    """The node a DaemonSet pod's affinity pins it to (matchFields metadata.name)."""
    req = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or ():
        for e in term.get("matchFields") or ():
            if e.get("key") == "metadata.name" and e.get("operator") == "In" and \
                    len(e.get("values") or ()) == 1:
                return e["values"][0]
    return None
