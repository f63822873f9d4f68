"""OpenAPI documents: /openapi/v3 (root index + one document per
group-version) and /openapi/v2 (JSON).

kubectl uses OpenAPI v3 to decide that the server supports server-side
field validation (the PATCH operation of a GVK lists `fieldValidation`),
and for `kubectl explain`.  Custom resources carry their CRD schema;
built-in kinds get an open object schema (their strategic-merge metadata
is left to kubectl's compiled-in types, which it falls back to).
"""
import hashlib
import json
import threading

_COMMON_QUERY = ["dryRun", "fieldManager", "fieldValidation", "pretty"]


def _schema_name(rt):
    if rt.crd:
        rev = ".".join(reversed(rt.group.split(".")))
        return f"{rev}.{rt.version}.{rt.kind}"
    group = rt.group.split(".")[0] if rt.group else "core"
    return f"io.k8s.api.{group}.{rt.version}.{rt.kind}"


def _gvk(rt, version):
    return {"group": rt.group, "version": version, "kind": rt.kind}


def _param(name, where="query", required=False):
    return {"name": name, "in": where, "required": required, "schema": {"type": "string",
                                                                         "uniqueItems": True}}


def _op(rt, version, action, params, body_types=None, ref=None):
    op = {"operationId": f"{action}{rt.kind}", "tags": [rt.group or "core"],
          "parameters": [_param(p) for p in params],
          "responses": {"200": {"description": "OK", "content": {
              "application/json": {"schema": {"$ref": ref}} if ref else {}}}},
          "x-kubernetes-action": action,
          "x-kubernetes-group-version-kind": _gvk(rt, version)}
    if body_types:
        op["requestBody"] = {"content": {t: {"schema": {"$ref": ref} if ref else
                                             {"type": "object"}} for t in body_types},
                             "required": True}
    return op


def _paths(rt, version):
    prefix = f"/apis/{rt.group}/{version}" if rt.group else f"/api/{version}"
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    ref = f"#/components/schemas/{_schema_name(rt)}"
    collection = f"{prefix}{ns}/{rt.plural}"
    item = f"{collection}/{{name}}"
    paths = {}
    col = {}
    verbs = set(rt.verbs)
    if "list" in verbs:
        col["get"] = _op(rt, version, "list", ["labelSelector", "fieldSelector", "limit",
                                               "continue", "resourceVersion",
                                               "resourceVersionMatch", "watch",
                                               "allowWatchBookmarks", "timeoutSeconds"])
    if "create" in verbs:
        col["post"] = _op(rt, version, "post", _COMMON_QUERY, ["*/*"], ref)
    if "deletecollection" in verbs:
        col["delete"] = _op(rt, version, "deletecollection", ["labelSelector", "fieldSelector"])
    if col:
        paths[collection] = col
    it = {}
    if "get" in verbs:
        it["get"] = _op(rt, version, "get", ["pretty"], None, ref)
    if "update" in verbs:
        it["put"] = _op(rt, version, "put", _COMMON_QUERY, ["*/*"], ref)
    if "patch" in verbs:
        it["patch"] = _op(rt, version, "patch", _COMMON_QUERY + ["force"],
                          ["application/apply-patch+yaml", "application/json-patch+json",
                           "application/merge-patch+json"], ref)
    if "delete" in verbs:
        it["delete"] = _op(rt, version, "delete", ["dryRun", "gracePeriodSeconds",
                                                  "propagationPolicy"])
    if it:
        paths[item] = it
    for sub in rt.subresources:
        if sub in ("status", "scale", "resize"):
            paths[f"{item}/{sub}"] = {
                "get": _op(rt, version, "get", ["pretty"], None, ref),
                "put": _op(rt, version, "put", _COMMON_QUERY, ["*/*"], ref),
                "patch": _op(rt, version, "patch", _COMMON_QUERY + ["force"],
                             ["application/apply-patch+yaml", "application/json-patch+json",
                              "application/merge-patch+json"], ref),
            }
    return paths


def _component(rt, version):
    if rt.crd:
        schema = json.loads(json.dumps(rt.schema(version) or {"type": "object"}))
        props = schema.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props["metadata"] = {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1."
                                     "ObjectMeta"}
    else:
        schema = {"type": "object", "description": f"{rt.kind} (built-in)",
                  "properties": {
                      "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                      "metadata": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis."
                                           "meta.v1.ObjectMeta"},
                      "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                      "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    schema["x-kubernetes-group-version-kind"] = [_gvk(rt, version)]
    return schema


_OBJECT_META = {
    "type": "object",
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "properties": {
        "name": {"type": "string"}, "namespace": {"type": "string"},
        "generateName": {"type": "string"}, "uid": {"type": "string"},
        "resourceVersion": {"type": "string"}, "generation": {"type": "integer",
                                                              "format": "int64"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object",
                                                       "x-kubernetes-preserve-unknown-fields":
                                                           True}},
        "managedFields": {"type": "array", "items": {"type": "object",
                                                     "x-kubernetes-preserve-unknown-fields":
                                                         True}},
    },
}


def _pb_field(number, payload):
    """A length-delimited protobuf field (wire type 2); payloads here are < 128 bytes."""
    return bytes([(number << 3) | 2, len(payload)]) + payload


# A minimal gnostic openapi_v2.Document in protobuf form (swagger="2.0", info):
# kubectl only reads /openapi/v2 as protobuf, and with no definitions in it
# every kind is simply skipped by its client-side schema validation.
V2_PROTOBUF = _pb_field(1, b"2.0") + _pb_field(2, _pb_field(1, b"Kubernetes") +
                                               _pb_field(2, b"v1.32.0"))
V2_PROTOBUF_TYPE = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


class OpenAPI:
    """Builds and caches the documents; rebuilt when the registry changes."""

    def __init__(self, registry):
        self.registry = registry
        self._lock = threading.Lock()
        self._gen = None
        self._docs = {}      # "apis/apps/v1" -> bytes
        self._hashes = {}

    def _rebuild(self):
        with self._lock:
            if self._gen == self.registry.generation:
                return
            docs = {}
            gvs = {("", "v1")}
            for name, versions, _ in self.registry.groups():
                for v in versions:
                    gvs.add((name, v))
            for group, version in gvs:
                rts = [rt for rt in self.registry.in_group_version(group, version)]
                paths, schemas = {}, {"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta":
                                      _OBJECT_META}
                for rt in rts:
                    paths.update(_paths(rt, version))
                    schemas[_schema_name(rt)] = _component(rt, version)
                key = f"apis/{group}/{version}" if group else f"api/{version}"
                doc = {"openapi": "3.0.0",
                       "info": {"title": "Kubernetes", "version": "v1.32.0"},
                       "paths": paths, "components": {"schemas": schemas}}
                docs[key] = json.dumps(doc, separators=(",", ":")).encode()
            self._docs = docs
            self._hashes = {k: hashlib.sha512(v).hexdigest()[:64].upper()
                            for k, v in docs.items()}
            self._gen = self.registry.generation

    def root(self):
        self._rebuild()
        return {"paths": {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={self._hashes[k]}"}
                          for k in sorted(self._docs)}}

    def document(self, key):
        self._rebuild()
        return self._docs.get(key)

    def v2(self):
        self._rebuild()
        definitions, paths = {}, {}
        for rt in self.registry.all():
            for v in rt.versions:
                comp = _component(rt, v)
                comp = json.loads(json.dumps(comp).replace("#/components/schemas/",
                                                           "#/definitions/"))
                definitions[_schema_name(rt)] = comp
        definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"] = _OBJECT_META
        return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths, "definitions": definitions}
