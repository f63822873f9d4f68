"""Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for.

Built-in types get the same columns as the real server's printers (the
important ones); custom resources get their CRD's additionalPrinterColumns
(with JSONPath evaluation), defaulting to NAME + AGE.
"""
import datetime

from . import jsonpath

_NAME_COL = {"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace. Is required when creating "
                            "resources, although some resources may allow a client to request the "
                            "generation of an appropriate name automatically."}


def _parse_time(ts):
    try:
        return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        return None


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(obj):
    t = _parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    if t is None:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def _g(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and p < len(obj):
            obj = obj[p]
        else:
            return default
    return default if obj is None else obj


def _col(name, type_="string", priority=0, description=""):
    return {"name": name, "type": type_, "format": "", "description": description or name,
            "priority": priority}


def _pod_status(pod):
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    reason = _g(pod, "status", "reason") or _g(pod, "status", "phase", default="Pending")
    for cs in _g(pod, "status", "containerStatuses", default=[]):
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            return state["waiting"]["reason"]
        if state.get("terminated", {}).get("reason"):
            return state["terminated"]["reason"]
    return reason


def _pod_ready(pod):
    """Ready/total containers, native sidecars (restartable init containers) included."""
    sidecars = {c.get("name") for c in _g(pod, "spec", "initContainers", default=[])
                if c.get("restartPolicy") == "Always"}
    total = len(_g(pod, "spec", "containers", default=[])) + len(sidecars)
    ready = sum(1 for cs in _g(pod, "status", "containerStatuses", default=[]) if cs.get("ready"))
    ready += sum(1 for cs in _g(pod, "status", "initContainerStatuses", default=[])
                 if cs.get("name") in sidecars and cs.get("ready") and cs.get("started"))
    return f"{ready}/{total}"


def _restarts(pod):
    return sum(int(cs.get("restartCount") or 0)
               for cs in _g(pod, "status", "containerStatuses", default=[]))


def _restarts_column(pod):
    """"3 (42s ago)" like the real printer: the latest lastState.terminated.finishedAt."""
    n = _restarts(pod)
    last = None
    for cs in _g(pod, "status", "containerStatuses", default=[]):
        t = _parse_time(_g(cs, "lastState", "terminated", "finishedAt"))
        if t is not None and (last is None or t > last):
            last = t
    if n and last is not None:
        ago = (datetime.datetime.now(datetime.timezone.utc) - last).total_seconds()
        return f"{n} ({human_duration(ago)} ago)"
    return str(n)


def _node_status(node):
    ready = "Unknown"
    for c in _g(node, "status", "conditions", default=[]):
        if c.get("type") == "Ready":
            ready = "Ready" if c.get("status") == "True" else "NotReady"
    if _g(node, "spec", "unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _node_roles(node):
    roles = sorted(k.split("/", 1)[1] for k in (node["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/") and "/" in k)
    return ",".join(r for r in roles if r) or "<none>"


def _images(obj, field):
    cs = _g(obj, "spec", "template", "spec", "containers", default=[])
    return ",".join(str(c.get(field, "")) for c in cs)


def _selector(obj):
    from .selection import selector_object_to_string
    return selector_object_to_string(_g(obj, "spec", "selector")) or "<none>"


def _ports(svc):
    out = []
    for p in _g(svc, "spec", "ports", default=[]):
        text = str(p.get("port"))
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        out.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _hpa_targets(hpa):
    parts = []
    current = _g(hpa, "status", "currentMetrics", default=[])
    for i, m in enumerate(_g(hpa, "spec", "metrics", default=[])):
        if m.get("type") == "Resource":
            target = _g(m, "resource", "target", default={})
            cur = _g(current, i, "resource", "current", default={})
            if "averageUtilization" in target:
                c = cur.get("averageUtilization")
                parts.append(f"{m['resource'].get('name')}: "
                             f"{'<unknown>' if c is None else str(c) + '%'}/"
                             f"{target['averageUtilization']}%")
            else:
                parts.append(f"{cur.get('averageValue', '<unknown>')}/"
                             f"{target.get('averageValue', target.get('value'))}")
        else:
            parts.append(f"<{m.get('type', 'unknown')}>")
    return ", ".join(parts) or "<none>"


def _event_object(ev):
    io = ev.get("involvedObject") or {}
    return f"{str(io.get('kind', '')).lower()}/{io.get('name', '')}"


def _event_last_seen(ev):
    ts = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    t = _parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())


def _pdb_field(pdb, field):
    v = _g(pdb, "spec", field)
    return "N/A" if v is None else str(v)


# (group, plural) -> [(column, getter)]; age is appended where listed with "AGE"
AGE = "AGE"
BUILTIN = {
    ("", "pods"): [
        (_col("Ready"), _pod_ready), (_col("Status"), _pod_status),
        (_col("Restarts", "string"), _restarts_column), AGE,
        (_col("IP", priority=1), lambda p: _g(p, "status", "podIP", default="<none>")),
        (_col("Node", priority=1), lambda p: _g(p, "spec", "nodeName", default="<none>")),
        (_col("Nominated Node", priority=1),
         lambda p: _g(p, "status", "nominatedNodeName", default="<none>")),
        (_col("Readiness Gates", priority=1), lambda p: "<none>"),
    ],
    ("apps", "deployments"): [
        (_col("Ready"), lambda d: f"{_g(d, 'status', 'readyReplicas', default=0)}/"
                                  f"{_g(d, 'spec', 'replicas', default=0)}"),
        (_col("Up-to-date", "integer"), lambda d: _g(d, "status", "updatedReplicas", default=0)),
        (_col("Available", "integer"), lambda d: _g(d, "status", "availableReplicas", default=0)),
        AGE,
        (_col("Containers", priority=1), lambda d: _images(d, "name")),
        (_col("Images", priority=1), lambda d: _images(d, "image")),
        (_col("Selector", priority=1), _selector),
    ],
    ("apps", "replicasets"): [
        (_col("Desired", "integer"), lambda r: _g(r, "spec", "replicas", default=0)),
        (_col("Current", "integer"), lambda r: _g(r, "status", "replicas", default=0)),
        (_col("Ready", "integer"), lambda r: _g(r, "status", "readyReplicas", default=0)),
        AGE,
        (_col("Containers", priority=1), lambda d: _images(d, "name")),
        (_col("Images", priority=1), lambda d: _images(d, "image")),
        (_col("Selector", priority=1), _selector),
    ],
    ("apps", "statefulsets"): [
        (_col("Ready"), lambda s: f"{_g(s, 'status', 'readyReplicas', default=0)}/"
                                  f"{_g(s, 'spec', 'replicas', default=0)}"),
        AGE,
        (_col("Containers", priority=1), lambda d: _images(d, "name")),
        (_col("Images", priority=1), lambda d: _images(d, "image")),
    ],
    ("apps", "daemonsets"): [
        (_col("Desired", "integer"), lambda d: _g(d, "status", "desiredNumberScheduled", default=0)),
        (_col("Current", "integer"), lambda d: _g(d, "status", "currentNumberScheduled", default=0)),
        (_col("Ready", "integer"), lambda d: _g(d, "status", "numberReady", default=0)),
        (_col("Up-to-date", "integer"), lambda d: _g(d, "status", "updatedNumberScheduled",
                                                     default=0)),
        (_col("Available", "integer"), lambda d: _g(d, "status", "numberAvailable", default=0)),
        (_col("Node Selector"), lambda d: ",".join(
            f"{k}={v}" for k, v in sorted(_g(d, "spec", "template", "spec", "nodeSelector",
                                             default={}).items())) or "<none>"),
        AGE,
    ],
    ("", "nodes"): [
        (_col("Status"), _node_status), (_col("Roles"), _node_roles), AGE,
        (_col("Version"), lambda n: _g(n, "status", "nodeInfo", "kubeletVersion", default="")),
    ],
    ("", "namespaces"): [(_col("Status"), lambda n: _g(n, "status", "phase", default="Active")),
                         AGE],
    ("", "services"): [
        (_col("Type"), lambda s: _g(s, "spec", "type", default="ClusterIP")),
        (_col("Cluster-IP"), lambda s: _g(s, "spec", "clusterIP", default="<none>")),
        (_col("External-IP"), lambda s: ",".join(_g(s, "spec", "externalIPs", default=[]))
         or "<none>"),
        (_col("Port(s)"), _ports), AGE,
    ],
    ("", "configmaps"): [(_col("Data", "integer"), lambda c: len(c.get("data") or {})
                          + len(c.get("binaryData") or {})), AGE],
    ("", "secrets"): [(_col("Type"), lambda s: s.get("type", "Opaque")),
                      (_col("Data", "integer"), lambda s: len(s.get("data") or {})), AGE],
    ("", "serviceaccounts"): [(_col("Secrets", "integer"), lambda s: len(s.get("secrets") or [])),
                              AGE],
    ("", "events"): [
        (_col("Last Seen"), _event_last_seen), (_col("Type"), lambda e: e.get("type", "")),
        (_col("Reason"), lambda e: e.get("reason", "")), (_col("Object"), _event_object),
        (_col("Message"), lambda e: e.get("message", "")),
    ],
    ("autoscaling", "horizontalpodautoscalers"): [
        (_col("Reference"), lambda h: f"{_g(h, 'spec', 'scaleTargetRef', 'kind', default='')}/"
                                      f"{_g(h, 'spec', 'scaleTargetRef', 'name', default='')}"),
        (_col("Targets"), _hpa_targets),
        (_col("MinPods", "integer"), lambda h: _g(h, "spec", "minReplicas", default=1)),
        (_col("MaxPods", "integer"), lambda h: _g(h, "spec", "maxReplicas", default=0)),
        (_col("Replicas", "integer"), lambda h: _g(h, "status", "currentReplicas", default=0)),
        AGE,
    ],
    ("policy", "poddisruptionbudgets"): [
        (_col("Min Available"), lambda p: _pdb_field(p, "minAvailable")),
        (_col("Max Unavailable"), lambda p: _pdb_field(p, "maxUnavailable")),
        (_col("Allowed Disruptions", "integer"),
         lambda p: _g(p, "status", "disruptionsAllowed", default=0)),
        AGE,
    ],
    ("coordination.k8s.io", "leases"): [
        (_col("Holder"), lambda l: _g(l, "spec", "holderIdentity", default="")), AGE],
    ("rbac.authorization.k8s.io", "rolebindings"): [
        (_col("Role"), lambda b: f"{_g(b, 'roleRef', 'kind', default='')}/"
                                 f"{_g(b, 'roleRef', 'name', default='')}"), AGE],
    ("rbac.authorization.k8s.io", "clusterrolebindings"): [
        (_col("Role"), lambda b: f"{_g(b, 'roleRef', 'kind', default='')}/"
                                 f"{_g(b, 'roleRef', 'name', default='')}"), AGE],
    ("rbac.authorization.k8s.io", "clusterroles"): [
        (_col("Created At", "date"), lambda o: o["metadata"].get("creationTimestamp"))],
    ("rbac.authorization.k8s.io", "roles"): [
        (_col("Created At", "date"), lambda o: o["metadata"].get("creationTimestamp"))],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        (_col("Created At", "date"), lambda o: o["metadata"].get("creationTimestamp"))],
}

_AGE_COL = {"name": "Age", "type": "string", "format": "", "priority": 0,
            "description": "CreationTimestamp is a timestamp representing the server time when "
                           "this object was created."}


def _crd_columns(rt, version):
    cols = rt.columns.get(version or rt.version)
    if not cols:
        cols = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    out = []
    for c in cols:
        try:
            steps = jsonpath.compile_path(c.get("jsonPath", ""))
        except ValueError:
            steps = None
        defn = {"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                "description": c.get("description") or
                f"Custom resource definition column (in JSONPath format): {c.get('jsonPath')}",
                "priority": int(c.get("priority", 0))}
        out.append((defn, _crd_getter(steps, defn["type"])))
    return out


def _crd_getter(steps, type_):
    def get(obj):
        if steps is None:
            return None
        found = jsonpath.find(obj, steps)
        if not found:
            return None
        value = found[0]
        if type_ == "integer":
            return int(value) if isinstance(value, (int, float)) and \
                not isinstance(value, bool) else None
        if type_ == "number":
            return value if isinstance(value, (int, float)) else None
        if type_ == "boolean":
            return value if isinstance(value, bool) else None
        if type_ == "date":
            # the real CR table convertor renders dates as ages (ConvertToHumanReadableDateType)
            t = _parse_time(value) if isinstance(value, str) else None
            if t is None:
                return "<invalid>" if isinstance(value, str) else None
            return human_duration((datetime.datetime.now(datetime.timezone.utc) - t)
                                  .total_seconds())
        if isinstance(value, (dict, list)):
            import json
            return json.dumps(value, separators=(",", ":"))
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return get


def columns_for(rt, version=None):
    if rt.crd:
        return _crd_columns(rt, version)
    cols = BUILTIN.get(rt.gr, [AGE])
    return [(_AGE_COL, age) if c == AGE else c for c in cols]


def partial_metadata(obj):
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(rt, objs, version=None, include_object="Metadata", list_meta=None, headers=True):
    cols = columns_for(rt, version)
    rows = []
    for obj in objs:
        cells = [obj["metadata"]["name"]] + [_safe(getter, obj) for _, getter in cols]
        row = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    result = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {},
              "columnDefinitions": [_NAME_COL] + [c for c, _ in cols] if headers else [],
              "rows": rows}
    return result


def _safe(getter, obj):
    try:
        return getter(obj)
    except Exception:   # a printer must never fail the request
        return None
