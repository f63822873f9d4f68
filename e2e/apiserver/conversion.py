"""Conversion between the two views of one stored resource.

events.k8s.io/v1 Events and core/v1 Events are the same objects in a real
cluster; we store the core/v1 form and convert the events.k8s.io view on
the way in and out.  Custom resource versions use the "None" strategy
(only apiVersion changes).
"""

_RENAMES = [  # (core field, events.k8s.io field)
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("source", "deprecatedSource"),
]


def core_event_to_v1(obj):
    out = {k: v for k, v in obj.items()}
    for core, new in _RENAMES:
        if core in out:
            out[new] = out.pop(core)
    out["apiVersion"] = "events.k8s.io/v1"
    if out.get("reportingController") == "":
        out.pop("reportingController")
    return out


def v1_event_to_core(obj):
    out = {k: v for k, v in obj.items()}
    for core, new in _RENAMES:
        if new in out:
            out[core] = out.pop(new)
    out["apiVersion"] = "v1"
    out["kind"] = "Event"
    return out


def to_version(rt, obj, version):
    """The representation of a stored object as served by rt at version."""
    if rt.gr == ("events.k8s.io", "events"):
        return core_event_to_v1(obj)
    api_version = rt.api_version(version)
    if obj.get("apiVersion") != api_version:
        obj = dict(obj)
        obj["apiVersion"] = api_version
    return obj


def from_version(rt, obj):
    """The stored representation of an object written through rt."""
    if rt.gr == ("events.k8s.io", "events"):
        return v1_event_to_core(obj)
    obj["apiVersion"] = rt.api_version()
    return obj


def needs_conversion(rt, version):
    return rt.gr == ("events.k8s.io", "events") or (version and version != rt.version)
