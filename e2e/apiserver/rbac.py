"""RBAC authorization evaluated from the Role/ClusterRole/RoleBinding/
ClusterRoleBinding objects in the store, plus the bootstrap roles a fresh
cluster has (discovery for every authenticated user, cluster-admin for
system:masters).  ClusterRole aggregation is not implemented.
"""
from .authn import SA_PREFIX

RBAC = "rbac.authorization.k8s.io"
ROLES = (RBAC, "roles")
CLUSTER_ROLES = (RBAC, "clusterroles")
BINDINGS = (RBAC, "rolebindings")
CLUSTER_BINDINGS = (RBAC, "clusterrolebindings")

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = {
    "": ["pods", "pods/status", "pods/log", "services", "configmaps", "secrets",
         "serviceaccounts", "events", "endpoints", "persistentvolumeclaims"],
    "apps": ["deployments", "deployments/scale", "deployments/status", "replicasets",
             "replicasets/scale", "replicasets/status", "statefulsets", "statefulsets/scale",
             "statefulsets/status", "daemonsets", "daemonsets/status"],
    "autoscaling": ["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
    "policy": ["poddisruptionbudgets", "poddisruptionbudgets/status"],
    "coordination.k8s.io": ["leases"],
    "events.k8s.io": ["events"],
}


def _rules(verbs):
    return [{"apiGroups": [g], "resources": r, "verbs": list(verbs)} for g, r in _WORKLOADS.items()]


def bootstrap_objects():
    """ClusterRoles and ClusterRoleBindings every cluster starts with."""
    discovery_urls = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz",
                      "/version", "/version/", "/openapi", "/openapi/*"]
    roles = {
        "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                          {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        "system:discovery": [{"nonResourceURLs": discovery_urls, "verbs": ["get"]}],
        "system:basic-user": [
            {"apiGroups": ["authorization.k8s.io"],
             "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
             "verbs": ["create"]},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"],
             "verbs": ["create"]}],
        "system:public-info-viewer": [
            {"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
             "verbs": ["get"]}],
        "view": _rules(_READ),
        "edit": _rules(_READ + _WRITE),
        "admin": _rules(_READ + _WRITE) + [
            {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"],
             "verbs": _READ + _WRITE}],
    }
    objs = []
    for name, rules in roles.items():
        objs.append((CLUSTER_ROLES, {
            "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules}))
    bindings = {
        "cluster-admin": ("cluster-admin", "system:masters"),
        "system:discovery": ("system:discovery", "system:authenticated"),
        "system:basic-user": ("system:basic-user", "system:authenticated"),
        "system:public-info-viewer": ("system:public-info-viewer", "system:authenticated",
                                      "system:unauthenticated"),
    }
    for name, (role, *groups) in bindings.items():
        objs.append((CLUSTER_BINDINGS, {
            "apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups]}))
    return objs


class Attributes:
    """What a request wants to do (authorizer.Attributes)."""

    def __init__(self, verb, group="", resource="", subresource="", name="", namespace="",
                 path="", resource_request=True):
        self.verb, self.group, self.resource = verb, group, resource
        self.subresource, self.name, self.namespace = subresource, name, namespace
        self.path, self.resource_request = path, resource_request


def _subject_matches(subject, user, binding_ns):
    kind = subject.get("kind")
    name = subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == f"{SA_PREFIX}{ns}:{name}"
    return False


def _has(values, wanted):
    return "*" in values or wanted in values


def rule_allows(rule, attrs):
    if not _has(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs.path or (url.endswith("*") and
                                                    attrs.path.startswith(url[:-1])):
                return True
        return False
    if rule.get("nonResourceURLs") and not rule.get("resources"):
        return False
    if not _has(rule.get("apiGroups") or [], attrs.group):
        return False
    resources = rule.get("resources") or []
    if attrs.subresource:
        wanted = f"{attrs.resource}/{attrs.subresource}"
        ok = "*" in resources or wanted in resources or f"*/{attrs.subresource}" in resources \
            or f"{attrs.resource}/*" in resources
    else:
        ok = "*" in resources or attrs.resource in resources
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


class Authorizer:
    def __init__(self, store):
        self.store = store

    def _role_rules(self, kind, name, namespace):
        if kind == "ClusterRole":
            entry = self.store.get(CLUSTER_ROLES, "", name)
        else:
            entry = self.store.get(ROLES, namespace, name)
        return (entry.obj.get("rules") or []) if entry else []

    def rules_for(self, user, namespace):
        """All rules that apply to user in namespace (cluster-wide ones included)."""
        with self.store.lock:
            rules = []
            for entry in self.store.entries(CLUSTER_BINDINGS):
                b = entry.obj
                if any(_subject_matches(s, user, "") for s in b.get("subjects") or []):
                    ref = b.get("roleRef") or {}
                    rules.extend(self._role_rules("ClusterRole", ref.get("name"), ""))
            if namespace:
                for entry in self.store.entries(BINDINGS, namespace):
                    b = entry.obj
                    if any(_subject_matches(s, user, namespace) for s in b.get("subjects") or []):
                        ref = b.get("roleRef") or {}
                        rules.extend(self._role_rules(ref.get("kind"), ref.get("name"), namespace))
            return rules

    def allowed(self, user, attrs):
        if user.is_admin:
            return True
        ns = attrs.namespace if attrs.resource_request else ""
        return any(rule_allows(r, attrs) for r in self.rules_for(user, ns))
