"""Structural type knowledge used by strategic merge patch and server-side apply.

For each resource it answers, for a field path (field names only, list
positions omitted):
  - list_info(path) -> ("map", [keys]) | ("set", []) | ("atomic", [])
  - map_kind(path)  -> "struct" | "map" | "atomic" for object-valued fields
  - smp(path)       -> (merge_key or None, strategy) for strategic merge patch

Built-in types use a compact table of the real Go struct tags
(patchMergeKey / listType / listMapKey / structType).  Custom resources use
their CRD's OpenAPI v3 schema (x-kubernetes-list-type, -list-map-keys,
-map-type); CRs never get strategic merge metadata (the server answers 415).
"""

# list field name -> (listType, SSA keys, SMP merge key, SMP strategy)
_LISTS = {
    "containers": ("map", ["name"], "name", "merge"),
    "initContainers": ("map", ["name"], "name", "merge"),
    "ephemeralContainers": ("map", ["name"], "name", "merge"),
    "env": ("map", ["name"], "name", "merge"),
    "volumeMounts": ("map", ["mountPath"], "mountPath", "merge"),
    "volumeDevices": ("map", ["devicePath"], "devicePath", "merge"),
    "volumes": ("map", ["name"], "name", "merge,retainKeys"),
    "imagePullSecrets": ("map", ["name"], "name", "merge"),
    "conditions": ("map", ["type"], "type", "merge"),
    "ownerReferences": ("map", ["uid"], "uid", "merge"),
    "finalizers": ("set", [], None, "merge"),
    "hostAliases": ("map", ["ip"], "ip", "merge"),
    "topologySpreadConstraints": ("map", ["topologyKey", "whenUnsatisfiable"], "topologyKey",
                                  "merge"),
    "resourceClaims": ("map", ["name"], "name", "merge,retainKeys"),
    "podIPs": ("map", ["ip"], "ip", "merge"),
    "hostIPs": ("map", ["ip"], "ip", "merge"),
    "addresses": ("map", ["type"], "type", "merge"),
    "resizePolicy": ("atomic", [], None, ""),
    "envFrom": ("atomic", [], None, ""),
}
_CONTAINER_PORTS = ("map", ["containerPort", "protocol"], "containerPort", "merge")
_SERVICE_PORTS = ("map", ["port", "protocol"], "port", "merge")

# object-valued fields that are maps (string keys chosen by the user)
_MAPS = {"labels", "annotations", "nodeSelector", "limits", "requests", "data", "binaryData",
         "stringData", "matchLabels", "capacity", "allocatable", "overhead", "hard", "used",
         "claims", "allocatedResources"}
# LabelSelector-typed fields are atomic structs
_SELECTOR_ATOMIC = {"selector", "podSelector", "namespaceSelector", "labelSelector"}


class BuiltinTypeInfo:
    smp_supported = True

    def __init__(self, gr):
        self.gr = gr

    def _list_entry(self, path):
        name = path[-1] if path else ""
        if name == "ports":
            if self.gr == ("", "services") and path == ("spec", "ports"):
                return _SERVICE_PORTS
            return _CONTAINER_PORTS
        return _LISTS.get(name)

    def list_info(self, path):
        entry = self._list_entry(path)
        if entry is None:
            return ("atomic", [])
        return (entry[0], list(entry[1]))

    def smp(self, path):
        entry = self._list_entry(path)
        if entry is None:
            return (None, "")
        return (entry[2], entry[3])

    def map_kind(self, path):
        if not path:
            return "struct"
        name = path[-1]
        if name == "selector" and self.gr == ("", "services"):
            return "map"
        if name in _SELECTOR_ATOMIC:
            return "atomic"
        if name in _MAPS:
            return "map"
        if len(path) >= 2 and path[-2] in _MAPS:
            return "struct"   # value inside a map (e.g. a quantity) is not an object
        return "struct"


_METADATA = {
    "type": "object",
    "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {"type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["uid"],
                            "items": {"type": "object"}},
    },
}


class SchemaTypeInfo:
    """Type info from a CRD structural schema."""
    smp_supported = False

    def __init__(self, schema):
        self.schema = schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

    def _node(self, path):
        node = self.schema
        for i, name in enumerate(path):
            if node is None:
                return None
            if i == 0 and name == "metadata":
                node = _METADATA
                continue
            # descend through list items transparently (paths omit positions)
            while node.get("type") == "array" or "items" in node:
                node = node.get("items") or {}
            props = node.get("properties")
            if props and name in props:
                node = props[name]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            else:
                return None
        return node

    def list_info(self, path):
        node = self._node(path)
        if not node:
            return ("atomic", [])
        lt = node.get("x-kubernetes-list-type", "atomic")
        if lt == "map":
            return ("map", list(node.get("x-kubernetes-list-map-keys") or []))
        return (lt, [])

    def smp(self, path):
        return (None, "")

    def map_kind(self, path):
        node = self._node(path)
        if node is None:
            return "map"   # unknown / preserved fields are deduced as granular maps
        if node.get("x-kubernetes-map-type") == "atomic":
            return "atomic"
        if node.get("properties"):
            return "struct"
        return "map"


def for_resource(rt, version=None):
    if rt.crd:
        return SchemaTypeInfo(rt.schema(version))
    return BuiltinTypeInfo(rt.gr)
