"""Decoding of Kubernetes protobuf request bodies into JSON-shaped dicts.

kubectl's typed clients (auth can-i, create role/rolebinding/namespace/
configmap/secret/serviceaccount, auth whoami, drain's evictions) send
`application/vnd.kubernetes.protobuf`.  We decode the runtime.Unknown
envelope and the message for the types listed in SCHEMAS (field numbers as
in the upstream generated.proto files); any other type is answered 415.
Responses are always JSON, which those clients accept.
"""
import base64
import datetime

MAGIC = b"k8s\x00"

# field number -> (json name, type); types: s string, i int, b bool, y bytes,
# m map<string,string>, my map<string,bytes>, [X repeated X, or a message name
SCHEMAS = {
    "ObjectMeta": {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"),
                   4: ("selfLink", "s"), 5: ("uid", "s"), 6: ("resourceVersion", "s"),
                   7: ("generation", "i"), 8: ("creationTimestamp", "Time"),
                   9: ("deletionTimestamp", "Time"), 10: ("deletionGracePeriodSeconds", "i"),
                   11: ("labels", "m"), 12: ("annotations", "m"),
                   13: ("ownerReferences", "[OwnerReference"), 14: ("finalizers", "[s")},
    "OwnerReference": {1: ("kind", "s"), 3: ("name", "s"), 4: ("uid", "s"),
                       5: ("apiVersion", "s"), 6: ("controller", "b"),
                       7: ("blockOwnerDeletion", "b")},
    "LabelSelector": {1: ("matchLabels", "m"), 2: ("matchExpressions", "[LabelSelectorReq")},
    "LabelSelectorReq": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "[s")},
    "ResourceAttributes": {1: ("namespace", "s"), 2: ("verb", "s"), 3: ("group", "s"),
                           4: ("version", "s"), 5: ("resource", "s"), 6: ("subresource", "s"),
                           7: ("name", "s")},
    "NonResourceAttributes": {1: ("path", "s"), 2: ("verb", "s")},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                    2: ("nonResourceAttributes", "NonResourceAttributes")},
    "SubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                2: ("nonResourceAttributes", "NonResourceAttributes"),
                                3: ("user", "s"), 4: ("groups", "[s"), 6: ("uid", "s")},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "s")},
    "TokenReviewSpec": {1: ("token", "s"), 2: ("audiences", "[s")},
    "PolicyRule": {1: ("verbs", "[s"), 2: ("apiGroups", "[s"), 3: ("resources", "[s"),
                   4: ("resourceNames", "[s"), 5: ("nonResourceURLs", "[s")},
    "AggregationRule": {1: ("clusterRoleSelectors", "[LabelSelector")},
    "Subject": {1: ("kind", "s"), 2: ("apiGroup", "s"), 3: ("name", "s"), 4: ("namespace", "s")},
    "RoleRef": {1: ("apiGroup", "s"), 2: ("kind", "s"), 3: ("name", "s")},
    "NamespaceSpec": {1: ("finalizers", "[s")},
    "ObjectReference": {1: ("kind", "s"), 2: ("namespace", "s"), 3: ("name", "s"),
                        4: ("uid", "s"), 5: ("apiVersion", "s"), 6: ("resourceVersion", "s"),
                        7: ("fieldPath", "s")},
    "LocalObjectReference": {1: ("name", "s")},
    "Preconditions": {1: ("uid", "s"), 2: ("resourceVersion", "s")},
    "DeleteOptions": {1: ("gracePeriodSeconds", "i"), 2: ("preconditions", "Preconditions"),
                      3: ("orphanDependents", "b"), 4: ("propagationPolicy", "s"),
                      5: ("dryRun", "[s")},
    # top-level kinds
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta"),
                                2: ("spec", "SelfSubjectAccessReviewSpec")},
    "LocalSubjectAccessReview": {1: ("metadata", "ObjectMeta"),
                                 2: ("spec", "SubjectAccessReviewSpec")},
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SubjectAccessReviewSpec")},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta"),
                               2: ("spec", "SelfSubjectRulesReviewSpec")},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta")},
    "TokenReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenReviewSpec")},
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[PolicyRule"),
                    3: ("aggregationRule", "AggregationRule")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[Subject"),
                    3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[Subject"),
                           3: ("roleRef", "RoleRef")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "m"), 3: ("binaryData", "my"),
                  4: ("immutable", "b")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "my"), 3: ("type", "s"),
               4: ("stringData", "m"), 5: ("immutable", "b")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "[ObjectReference"),
                       3: ("imagePullSecrets", "[LocalObjectReference"),
                       4: ("automountServiceAccountToken", "b")},
    "Eviction": {1: ("metadata", "ObjectMeta"), 2: ("deleteOptions", "DeleteOptions")},
}


class ProtobufError(ValueError):
    pass


def _varint(buf, i):
    result = shift = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        c = buf[i]
        i += 1
        result |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return result, i


def _fields(buf):
    """Yield (field number, wire type, value) from a message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value = buf[i:i + n]
            i += n
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _time(buf):
    seconds = nanos = 0
    for number, _, value in _fields(buf):
        if number == 1:
            seconds = value
        elif number == 2:
            nanos = value
    if not seconds and not nanos:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _scalar(kind, wire, value):
    if kind == "s":
        return bytes(value).decode()
    if kind == "y":
        return base64.b64encode(bytes(value)).decode()
    if kind == "b":
        return bool(value)
    if kind == "i":
        return value - (1 << 64) if value >= 1 << 63 else value
    raise ProtobufError(f"bad scalar kind {kind}")


def decode_message(name, buf):
    schema = SCHEMAS[name]
    out = {}
    for number, wire, value in _fields(buf):
        if number not in schema:
            continue   # a field we do not model; JSON clients would not send it either
        field, kind = schema[number]
        if kind in ("m", "my"):
            entry = {n: v for n, _, v in _fields(value)}
            key = bytes(entry.get(1, b"")).decode()
            val = entry.get(2, b"")
            out.setdefault(field, {})[key] = _scalar("y" if kind == "my" else "s", 2, val)
        elif kind.startswith("["):
            item = kind[1:]
            v = decode_message(item, value) if item in SCHEMAS else _scalar(item, wire, value)
            out.setdefault(field, []).append(v)
        elif kind == "Time":
            t = _time(value)
            if t:
                out[field] = t
        elif kind in SCHEMAS:
            out[field] = decode_message(kind, value)
        else:
            out[field] = _scalar(kind, wire, value)
    # drop the zero values JSON encoders omit (omitempty)
    return {k: v for k, v in out.items() if v not in ("", 0, False, {}, []) or
            (isinstance(v, bool) and k in ("immutable", "automountServiceAccountToken",
                                           "controller", "blockOwnerDeletion",
                                           "orphanDependents"))}


def decode(body):
    """Decode a Kubernetes protobuf body into a JSON-shaped dict.
    Raises ProtobufError for anything we cannot represent."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing k8s protobuf magic prefix")
    api_version = kind = ""
    raw = b""
    for number, _, value in _fields(body[len(MAGIC):]):
        if number == 1:
            for n, _, v in _fields(value):
                if n == 1:
                    api_version = bytes(v).decode()
                elif n == 2:
                    kind = bytes(v).decode()
        elif number == 2:
            raw = value
    if kind not in SCHEMAS:
        raise ProtobufError(f"protobuf bodies of kind {kind!r} are not supported")
    obj = decode_message(kind, raw)
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj
