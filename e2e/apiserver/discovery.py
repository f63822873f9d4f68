"""Discovery documents: /version, /api, /apis, /api/v1, /apis/G/V in the legacy
format, and the aggregated apidiscovery.k8s.io/v2 format kubectl >= 1.30
prefers (both generated from the Registry).
"""
import base64
import hashlib

VERSION_INFO = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "tailor-local-apiserver",
    "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3",
    "compiler": "gc", "platform": "linux/amd64",
}

SUBRESOURCES = {  # subresource -> (kind, group, version, verbs); None = parent's
    "status": (None, None, None, ["get", "patch", "update"]),
    "scale": ("Scale", "autoscaling", "v1", ["get", "patch", "update"]),
    "resize": (None, None, None, ["get", "patch", "update"]),
    "binding": ("Binding", "", "v1", ["create"]),
    "eviction": ("Eviction", "policy", "v1", ["create"]),
    "finalize": (None, None, None, ["update"]),
}


def _hash(text):
    return base64.b64encode(hashlib.sha256(text.encode()).digest()[:8]).decode()


def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def api_group_list(registry):
    groups = []
    for name, versions, preferred in registry.groups():
        groups.append({
            "name": name,
            "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
            "preferredVersion": {"groupVersion": f"{name}/{preferred}", "version": preferred},
        })
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry, group):
    for name, versions, preferred in registry.groups():
        if name == group:
            return {"kind": "APIGroup", "apiVersion": "v1", "name": name,
                    "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
                    "preferredVersion": {"groupVersion": f"{name}/{preferred}",
                                         "version": preferred}}
    return None


def _resource_entries(rt):
    main = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": list(rt.verbs)}
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    if not rt.virtual:
        main["storageVersionHash"] = _hash(f"{rt.group}/{rt.version}/{rt.kind}")
    out = [main]
    for sub in rt.subresources:
        kind, group, version, verbs = SUBRESOURCES.get(sub, (None, None, None, ["get"]))
        entry = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                 "kind": kind or rt.kind, "verbs": verbs}
        if group is not None:
            entry["group"] = group
            entry["version"] = version
        out.append(entry)
    return out


def resource_list(registry, group, version):
    rts = registry.in_group_version(group, version)
    if not rts:
        return None
    resources = []
    for rt in rts:
        resources.extend(_resource_entries(rt))
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


# --- aggregated discovery (apidiscovery.k8s.io/v2) -------------------------------------------
def _aggregated_resource(rt):
    res = {"resource": rt.plural, "responseKind": {"group": rt.group, "version": "",
                                                   "kind": rt.kind},
           "scope": "Namespaced" if rt.namespaced else "Cluster", "singularResource": rt.singular,
           "verbs": list(rt.verbs)}
    if rt.short_names:
        res["shortNames"] = list(rt.short_names)
    if rt.categories:
        res["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        kind, group, version, verbs = SUBRESOURCES.get(sub, (None, None, None, ["get"]))
        subs.append({"subresource": sub,
                     "responseKind": {"group": rt.group if group is None else group,
                                      "version": "" if version is None else version,
                                      "kind": kind or rt.kind},
                     "verbs": verbs})
    if subs:
        res["subresources"] = subs
    return res


def _aggregated_group(registry, group, versions):
    out_versions = []
    for v in versions:
        rts = registry.in_group_version(group, v)
        resources = []
        for rt in rts:
            r = _aggregated_resource(rt)
            r["responseKind"]["version"] = v
            for s in r.get("subresources", []):
                if not s["responseKind"]["version"]:
                    s["responseKind"]["version"] = v
            resources.append(r)
        out_versions.append({"version": v, "resources": resources, "freshness": "Current"})
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": out_versions}


def aggregated(registry, core):
    """APIGroupDiscoveryList for /api (core=True) or /apis."""
    if core:
        items = [_aggregated_group(registry, "", ["v1"])]
    else:
        items = [_aggregated_group(registry, name, versions)
                 for name, versions, _ in registry.groups()]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}
