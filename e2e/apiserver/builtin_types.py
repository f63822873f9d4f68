"""Per-type behaviour of built-in resources: defaulting (the subset of the
real defaulters that clients commonly observe), light validation, status
reset on create, pod QoS and pod update rules.
"""
import re

from . import errors
from .errors import FieldError

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_LABEL_NAMED = {("", "namespaces"), ("", "services")}
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                  "characters, '-' or '.', and must start and end with an alphanumeric character "
                  "(e.g. 'example.com', regex used for validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
              "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
              "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")

# types whose metadata.generation is maintained (spec changes bump it); pods
# since Kubernetes 1.33 (KEP-5067: an in-place resize bumps it too)
GENERATION_TYPES = {("", "pods"), ("apps", "deployments"), ("apps", "replicasets"),
                    ("apps", "statefulsets"),
                    ("apps", "daemonsets"), ("autoscaling", "horizontalpodautoscalers"),
                    ("policy", "poddisruptionbudgets"),
                    ("apiextensions.k8s.io", "customresourcedefinitions")}
# types whose status may be set at creation time (everything else is reset)
STATUS_ON_CREATE = {("", "nodes"), ("", "events")}


def validate_name(rt, name):
    """FieldErrors for metadata.name (RBAC names are path segments, so lenient)."""
    if rt.group == "rbac.authorization.k8s.io":
        if "/" in name or "%" in name or name in (".", ".."):
            return [FieldError("FieldValueInvalid", "metadata.name", name,
                               'may not contain "/" or "%"')]
        return []
    if rt.gr in _LABEL_NAMED:
        if len(name) > 63 or not DNS1123_LABEL.match(name):
            detail = "must be no more than 63 characters" if len(name) > 63 else _LABEL_MSG
            return [FieldError("FieldValueInvalid", "metadata.name", name, detail)]
        return []
    if rt.crd or rt.group == "apiextensions.k8s.io" or rt.gr == ("", "events"):
        if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            return [FieldError("FieldValueInvalid", "metadata.name", name, _SUBDOMAIN_MSG)]
        return []
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        return [FieldError("FieldValueInvalid", "metadata.name", name, _SUBDOMAIN_MSG)]
    return []


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def validate_labels(obj):
    errs = []
    for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items():
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            errs.append(FieldError("FieldValueInvalid", f"metadata.labels", v,
                                   "a valid label must be an empty string or consist of "
                                   "alphanumeric characters, '-', '_' or '.', and must start and "
                                   "end with an alphanumeric character (e.g. 'MyValue',  or "
                                   "'my_value',  or '12345', regex used for validation is "
                                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"))
    return errs


# --- defaulting --------------------------------------------------------------------------
def _default_container(c):
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = str(c.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    if "imagePullPolicy" not in c:
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    c.setdefault("resources", {})
    res = c["resources"]
    if isinstance(res, dict) and res.get("limits") and "requests" not in res:
        # requests default to limits (real defaulter)
        res["requests"] = dict(res["limits"])
    elif isinstance(res, dict) and res.get("limits") and isinstance(res.get("requests"), dict):
        for k, v in res["limits"].items():
            res["requests"].setdefault(k, v)
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def default_pod_spec(spec):
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _default_container(c)


def _default_template(obj):
    tmpl = (obj.get("spec") or {}).get("template")
    if isinstance(tmpl, dict):
        tmpl.setdefault("metadata", {})
        default_pod_spec(tmpl.get("spec"))


def apply_defaults(rt, obj):
    gr = rt.gr
    spec = obj.get("spec")
    if gr == ("", "pods"):
        default_pod_spec(spec)
        if isinstance(spec, dict):
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    elif gr == ("apps", "deployments") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxSurge", "25%")
            ru.setdefault("maxUnavailable", "25%")
        _default_template(obj)
    elif gr == ("apps", "replicasets") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        _default_template(obj)
    elif gr == ("apps", "statefulsets") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        us = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if us.get("type") == "RollingUpdate":
            us.setdefault("rollingUpdate", {"partition": 0})
        _default_template(obj)
    elif gr == ("apps", "daemonsets") and isinstance(spec, dict):
        spec.setdefault("revisionHistoryLimit", 10)
        us = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if us.get("type") == "RollingUpdate":
            us.setdefault("rollingUpdate", {"maxUnavailable": 1, "maxSurge": 0})
        _default_template(obj)
    elif gr == ("autoscaling", "horizontalpodautoscalers") and isinstance(spec, dict):
        spec.setdefault("minReplicas", 1)
    elif gr == ("", "services") and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                p.setdefault("targetPort", p.get("port"))
    elif gr == ("", "secrets"):
        obj.setdefault("type", "Opaque")
    elif gr == ("", "namespaces"):
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = \
            obj["metadata"]["name"]


def reset_status_on_create(rt, obj):
    """Mirror PrepareForCreate: most types ignore status given at creation."""
    if rt.gr in STATUS_ON_CREATE or not rt.has_status:
        return
    if rt.gr == ("", "pods"):
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj)}
    elif rt.gr == ("", "namespaces"):
        obj["status"] = {"phase": "Active"}
    else:
        obj.pop("status", None)


# --- pods ----------------------------------------------------------------------------------
def qos_class(pod):
    containers = list((pod.get("spec") or {}).get("containers") or []) + \
        list((pod.get("spec") or {}).get("initContainers") or [])
    any_set, guaranteed = False, True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim[r])) != str(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def validate(rt, obj, old=None):
    """Light structural validation for built-ins; returns FieldErrors."""
    errs = []
    gr = rt.gr
    spec = obj.get("spec") or {}
    if gr == ("", "pods"):
        errs += _validate_pod_spec(spec, "spec")
    elif gr in {("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"),
                ("apps", "daemonsets")}:
        tmpl = spec.get("template") or {}
        sel = spec.get("selector")
        if sel is None:
            errs.append(FieldError("FieldValueRequired", "spec.selector", None, ""))
        else:
            from .selection import from_label_selector_object
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            try:
                if not from_label_selector_object(sel).matches(labels):
                    errs.append(FieldError("FieldValueInvalid", "spec.template.metadata.labels",
                                           labels, "`selector` does not match template `labels`"))
            except errors.StatusError:
                pass
        errs += _validate_pod_spec(tmpl.get("spec") or {}, "spec.template.spec")
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            errs.append(FieldError("FieldValueInvalid", "spec.replicas", replicas,
                                   "must be greater than or equal to 0"))
        if old is not None and gr != ("apps", "daemonsets") and \
                (old.get("spec") or {}).get("selector") != sel and sel is not None:
            errs.append(FieldError("FieldValueInvalid", "spec.selector", sel,
                                   "field is immutable"))
    elif gr == ("autoscaling", "horizontalpodautoscalers"):
        if not spec.get("maxReplicas"):
            errs.append(FieldError("FieldValueRequired", "spec.maxReplicas", None, ""))
        if not (spec.get("scaleTargetRef") or {}).get("name"):
            errs.append(FieldError("FieldValueRequired", "spec.scaleTargetRef.name", None, ""))
    return errs


def _validate_pod_spec(spec, path):
    errs = []
    containers = spec.get("containers")
    if not containers:
        errs.append(FieldError("FieldValueRequired", f"{path}.containers", None, ""))
        return errs
    seen = set()
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        cp = f"{path}.containers[{i}]"
        if not c.get("name"):
            errs.append(FieldError("FieldValueRequired", f"{cp}.name", None, ""))
        elif c["name"] in seen:
            errs.append(FieldError("FieldValueDuplicate", f"{cp}.name", c["name"], ""))
        seen.add(c.get("name"))
        if not c.get("image"):
            errs.append(FieldError("FieldValueRequired", f"{cp}.image", None, ""))
        res = c.get("resources") or {}
        for r, lim in (res.get("limits") or {}).items():
            req = (res.get("requests") or {}).get(r)
            if req is not None and parse_quantity(req) > parse_quantity(lim):
                errs.append(FieldError("FieldValueInvalid", f"{cp}.resources.requests", req,
                                       f"must be less than or equal to {r} limit of {lim}"))
        for kind in ("requests", "limits"):
            for r, q in (res.get(kind) or {}).items():
                try:
                    parse_quantity(q)
                except ValueError:
                    errs.append(FieldError("FieldValueInvalid", f"{cp}.resources.{kind}[{r}]", q,
                                           "must match the regex "
                                           "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"))
    return errs


_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
           "Ei": 2**60}


def parse_quantity(q):
    """resource.Quantity -> float (cores / bytes)."""
    if isinstance(q, (int, float)) and not isinstance(q, bool):
        return float(q)
    m = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?",
                     str(q).strip())
    if not m:
        raise ValueError(f"quantities must match the regular expression: {q!r}")
    value = float(m.group(1))
    if m.group(2):
        return value * 10 ** int(m.group(2)[1:])
    return value * _SUFFIX[m.group(3) or ""]


# fields of a pod spec that a main-resource update may change (ValidatePodUpdate)
def pod_update_errors(old, new):
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}

    def scrub(spec):
        spec = dict(spec)
        for key in ("containers", "initContainers"):
            spec[key] = [{k: v for k, v in c.items() if k != "image"}
                         for c in spec.get(key) or [] if isinstance(c, dict)]
        for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds",
                    "schedulingGates"):
            spec.pop(key, None)
        if not os_.get("nodeName"):
            spec.pop("nodeName", None)
        return spec
    if scrub(os_) != scrub(ns_):
        return [FieldError("FieldValueForbidden", "spec", None,
                           "pod updates may not change fields other than "
                           "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                           "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                           "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                           "to be set to 1 if it was previously negative)")]
    return []


def pod_resize_errors(old, new):
    """pods/resize may only change container resources/resizePolicy, keeping QoS."""
    def other_resources(c):
        # resources other than cpu and memory may not change either
        res = c.get("resources") or {}
        return {kind: {r: q for r, q in (res.get(kind) or {}).items()
                       if r not in ("cpu", "memory")} for kind in ("requests", "limits")}

    def scrub(spec):
        spec = dict(spec)
        spec["containers"] = [dict({k: v for k, v in c.items()
                                    if k not in ("resources", "resizePolicy")},
                                   resources=other_resources(c))
                              for c in spec.get("containers") or []]
        return spec
    errs = []
    if scrub(old.get("spec") or {}) != scrub(new.get("spec") or {}):
        errs.append(FieldError("FieldValueForbidden", "spec", None,
                               "only cpu and memory resources are mutable"))
    if qos_class(old) != qos_class(new):
        errs.append(FieldError("FieldValueInvalid", "spec", qos_class(new),
                               "Pod QoS is immutable"))
    return errs
