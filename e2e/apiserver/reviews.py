"""Create-only "virtual" resources and read-only metrics:
TokenReview, SelfSubjectReview, SubjectAccessReview, SelfSubjectAccessReview,
LocalSubjectAccessReview, SelfSubjectRulesReview, and metrics.k8s.io
PodMetrics/NodeMetrics computed from the scenario's usage profiles.
"""
import time

from . import errors
from .authn import User
from .rbac import Attributes


def _reply(body, status):
    out = dict(body)
    out.setdefault("metadata", {})
    out["metadata"].setdefault("creationTimestamp", None)
    out["status"] = status
    return out


def token_review(api, body):
    token = ((body.get("spec") or {}).get("token")) or ""
    user = api.authn.review(token)
    if user is None:
        return _reply(body, {"authenticated": False, "user": {},
                             "error": "invalid bearer token"})
    return _reply(body, {"authenticated": True, "user": user.info(),
                         "audiences": ["https://kubernetes.default.svc.cluster.local"]})


def self_subject_review(user, body):
    return _reply(body, {"userInfo": user.info()})


def _attrs(spec, default_ns=""):
    ra = spec.get("resourceAttributes")
    if ra is not None:
        return Attributes(ra.get("verb", ""), ra.get("group", ""), ra.get("resource", ""),
                          ra.get("subresource", ""), ra.get("name", ""),
                          ra.get("namespace", default_ns))
    nra = spec.get("nonResourceAttributes") or {}
    return Attributes(nra.get("verb", ""), path=nra.get("path", ""), resource_request=False)


def _decide(api, user, attrs):
    if api.authz.allowed(user, attrs):
        return {"allowed": True, "reason": "RBAC: allowed"}
    return {"allowed": False}


def subject_access_review(api, body, namespace=""):
    spec = body.get("spec") or {}
    if not spec.get("user") and not spec.get("groups"):
        raise errors.invalid("SubjectAccessReview", "authorization.k8s.io", "", [
            errors.FieldError("FieldValueInvalid", "spec.user", "",
                              "at least one of user or group must be specified")])
    user = User(spec.get("user", ""), spec.get("groups") or [], spec.get("uid", ""))
    attrs = _attrs(spec, namespace)
    if namespace:
        attrs.namespace = namespace
    return _reply(body, _decide(api, user, attrs))


def self_subject_access_review(api, user, body):
    return _reply(body, _decide(api, user, _attrs(body.get("spec") or {})))


def self_subject_rules_review(api, user, body):
    ns = (body.get("spec") or {}).get("namespace", "")
    resource_rules, non_resource_rules = [], []
    rules = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
             {"nonResourceURLs": ["*"], "verbs": ["*"]}] if user.is_admin else \
        api.authz.rules_for(user, ns)
    for r in rules:
        if r.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(r.get("verbs") or []),
                                       "nonResourceURLs": list(r["nonResourceURLs"])})
        else:
            rr = {"verbs": list(r.get("verbs") or []),
                  "apiGroups": list(r.get("apiGroups") or []),
                  "resources": list(r.get("resources") or [])}
            if r.get("resourceNames"):
                rr["resourceNames"] = list(r["resourceNames"])
            resource_rules.append(rr)
    return _reply(body, {"resourceRules": resource_rules,
                         "nonResourceRules": non_resource_rules, "incomplete": False})


# --- metrics.k8s.io -----------------------------------------------------------------------
def _cpu(cores):
    return f"{max(0, int(round(cores * 1e9)))}n"


def _mem(nbytes):
    return f"{max(0, int(nbytes) // 1024)}Ki"


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pod_metrics(api, pod, t=None):
    t = time.time() if t is None else t
    md = pod["metadata"]
    containers = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        cpu, mem = usage(api, md.get("namespace", ""), md["name"], c.get("name"), t)
        containers.append({"name": c.get("name"), "usage": {"cpu": _cpu(cpu), "memory": _mem(mem)}})
    return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": md["name"], "namespace": md.get("namespace"),
                         "creationTimestamp": _now(), "labels": md.get("labels") or {}},
            "timestamp": _now(), "window": "30s", "containers": containers}


def usage(api, ns, pod, container, t):
    if api.usage is None:
        return 0.0, 0
    try:
        cpu, mem = api.usage(ns, pod, container, t)
        return float(cpu), int(mem)
    except (KeyError, ValueError, LookupError):
        return 0.0, 0


def _running(pod):
    return (pod.get("status") or {}).get("phase") == "Running"


def node_metrics(api, node, pods, t=None):
    t = time.time() if t is None else t
    name = node["metadata"]["name"]
    cpu_total, mem_total = 0.0, 0
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != name or not _running(pod):
            continue
        md = pod["metadata"]
        for c in (pod.get("spec") or {}).get("containers") or []:
            cpu, mem = usage(api, md.get("namespace", ""), md["name"], c.get("name"), t)
            cpu_total += cpu
            mem_total += mem
    return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": name, "creationTimestamp": _now(),
                         "labels": node["metadata"].get("labels") or {}},
            "timestamp": _now(), "window": "30s",
            "usage": {"cpu": _cpu(cpu_total), "memory": _mem(mem_total)}}
