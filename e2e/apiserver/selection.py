"""Label and field selectors: parsing the query-string syntax and the
metav1.LabelSelector object form, and matching objects against them.
"""
import re

from . import errors

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"


class Requirement:
    def __init__(self, key, op, values=()):
        self.key, self.op, self.values = key, op, list(values)

    def matches(self, labels):
        has = self.key in labels
        val = labels.get(self.key)
        if self.op in ("=", "==", "in"):
            return has and val in self.values
        if self.op in ("!=", "notin"):
            return not has or val not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in (">", "<"):
            try:
                n, limit = int(val), int(self.values[0])
            except (TypeError, ValueError):
                return False
            return n > limit if self.op == ">" else n < limit
        return False


class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything."""

    def __init__(self, requirements=(), nothing=False):
        self.requirements = list(requirements)
        self.nothing = nothing  # a nil selector object in some APIs matches nothing

    def matches(self, labels):
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self):
        return not self.requirements and not self.nothing


def _split_top(text):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    if not text:
        return LabelSelector()
    reqs = []
    for part in _split_top(text):
        m = re.match(r"^(\S+?)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            reqs.append(Requirement(m.group(1), m.group(2), values))
            continue
        m = re.match(r"^([^=!<>\s]+)\s*(==|!=|=|>|<)\s*(\S*)$", part)
        if m:
            reqs.append(Requirement(m.group(1), m.group(2), [m.group(3)]))
            continue
        m = re.match(r"^!\s*(\S+)$", part)
        if m:
            reqs.append(Requirement(m.group(1), "!"))
            continue
        if re.match(f"^{_KEY}$", part):
            reqs.append(Requirement(part, "exists"))
            continue
        raise errors.bad_request(f"unable to parse requirement: {part!r}")
    return LabelSelector(reqs)


def from_label_selector_object(sel):
    """metav1.LabelSelector {matchLabels, matchExpressions}; None matches nothing."""
    if sel is None:
        return LabelSelector(nothing=True)
    reqs = [Requirement(k, "=", [v]) for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists",
              "DoesNotExist": "!"}.get(expr.get("operator"))
        if op is None:
            raise errors.bad_request(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(expr.get("key"), op, expr.get("values") or []))
    return LabelSelector(reqs)


def selector_object_to_string(sel):
    """Render a metav1.LabelSelector in the query-string syntax (scale.status.selector)."""
    if not sel:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op, key, vals = expr.get("operator"), expr.get("key"), sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(vals)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(vals)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append("!" + key)
    return ",".join(parts)


# --- field selectors ----------------------------------------------------------

def _dig(obj, *path):
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def _str(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# Extra selectable fields per (group, plural), beyond metadata.name/namespace.
FIELD_GETTERS = {
    ("", "pods"): {
        "spec.nodeName": lambda o: _dig(o, "spec", "nodeName"),
        "spec.restartPolicy": lambda o: _dig(o, "spec", "restartPolicy"),
        "spec.schedulerName": lambda o: _dig(o, "spec", "schedulerName"),
        "spec.serviceAccountName": lambda o: _dig(o, "spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: bool(_dig(o, "spec", "hostNetwork")),
        "status.phase": lambda o: _dig(o, "status", "phase"),
        "status.podIP": lambda o: _dig(o, "status", "podIP"),
        "status.nominatedNodeName": lambda o: _dig(o, "status", "nominatedNodeName"),
    },
    ("", "events"): {
        **{f"involvedObject.{f}": (lambda f: lambda o: _dig(o, "involvedObject", f))(f)
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                     "fieldPath")},
        "reason": lambda o: o.get("reason"),
        "reportingComponent": lambda o: o.get("reportingComponent"),
        "source": lambda o: _dig(o, "source", "component"),
        "type": lambda o: o.get("type"),
    },
    ("", "nodes"): {"spec.unschedulable": lambda o: bool(_dig(o, "spec", "unschedulable"))},
    ("", "namespaces"): {"status.phase": lambda o: _dig(o, "status", "phase")},
    ("", "secrets"): {"type": lambda o: o.get("type")},
    ("apps", "replicasets"): {"status.replicas": lambda o: _dig(o, "status", "replicas") or 0},
}
FIELD_GETTERS[("events.k8s.io", "events")] = FIELD_GETTERS[("", "events")]


class FieldSelector:
    def __init__(self, reqs=()):
        self.reqs = list(reqs)   # (getter, op, value)

    def matches(self, obj):
        for getter, op, value in self.reqs:
            actual = _str(getter(obj))
            if (actual == value) != (op != "!="):
                return False
        return True

    def empty(self):
        return not self.reqs

    def exact_name(self):
        """The name if the selector pins metadata.name=X (lets lists short-cut)."""
        for getter, op, value in self.reqs:
            if getter is _name and op != "!=":
                return value
        return None


def _name(o):
    return _dig(o, "metadata", "name")


def _namespace(o):
    return _dig(o, "metadata", "namespace")


def parse_field_selector(text, gr):
    if not text:
        return FieldSelector()
    getters = {"metadata.name": _name, "metadata.namespace": _namespace}
    getters.update(FIELD_GETTERS.get(gr, {}))
    reqs = []
    for part in _split_top(text):
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not m:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        getter = getters.get(field)
        if getter is None:
            raise errors.bad_request(f'field label not supported: {field}')
        reqs.append((getter, op, value))
    return FieldSelector(reqs)
