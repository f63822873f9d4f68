"""The catalogue of served resource types.

Owns ResourceType (everything the server needs to know about one
group/resource: kind, scope, verbs, subresources, schema, printer columns)
and the Registry that holds the built-in types plus the types added by
CustomResourceDefinitions.  Discovery and routing both read from here.
"""
import threading

RW_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
NS_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]


class ResourceType:
    """One served resource (group + plural), possibly in several versions."""

    def __init__(self, group, version, kind, plural, singular, namespaced, *, short_names=(),
                 categories=(), verbs=RW_VERBS, subresources=(), scale=None, crd=False,
                 schemas=None, columns=None, versions=None, virtual=False, list_kind=None,
                 preserve_unknown=True):
        self.group = group
        self.version = version                   # storage / preferred version
        self.versions = list(versions or [version])
        self.kind = kind
        self.list_kind = list_kind or kind + "List"
        self.plural = plural
        self.singular = singular
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.categories = list(categories)
        self.verbs = list(verbs)
        self.subresources = list(subresources)   # e.g. ["status", "scale"]
        # scale: {"specReplicasPath", "statusReplicasPath", "labelSelectorPath"}
        self.scale = scale
        self.crd = crd
        self.schemas = schemas or {}              # version -> openAPIV3Schema (CRDs)
        self.columns = columns or {}              # version -> additionalPrinterColumns
        self.virtual = virtual                    # create-only review types, never stored
        # built-ins keep unknown fields (we have no full schemas for them)
        self.preserve_unknown = preserve_unknown
        # where objects live; events.k8s.io/v1 Events share core/v1 storage
        self.storage_gr = (group, plural)

    @property
    def gr(self):
        return (self.group, self.plural)

    def api_version(self, version=None):
        version = version or self.version
        return f"{self.group}/{version}" if self.group else version

    @property
    def has_status(self):
        return "status" in self.subresources

    def schema(self, version=None):
        return self.schemas.get(version or self.version)

    def __repr__(self):
        return f"<ResourceType {self.plural}.{self.group or 'core'}>"


def _builtins():
    RT = ResourceType
    scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
             "labelSelectorPath": ".status.selector"}
    ro = ["get", "list"]
    create_only = ["create"]
    return [
        RT("", "v1", "Namespace", "namespaces", "namespace", False, short_names=["ns"],
           verbs=NS_VERBS, subresources=["status", "finalize"]),
        RT("", "v1", "Pod", "pods", "pod", True, short_names=["po"], categories=["all"],
           subresources=["status", "resize", "binding", "eviction"]),
        RT("", "v1", "Node", "nodes", "node", False, short_names=["no"], subresources=["status"]),
        RT("", "v1", "Event", "events", "event", True, short_names=["ev"]),
        RT("", "v1", "ConfigMap", "configmaps", "configmap", True, short_names=["cm"]),
        RT("", "v1", "Secret", "secrets", "secret", True),
        RT("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True,
           short_names=["sa"]),
        RT("", "v1", "Service", "services", "service", True, short_names=["svc"],
           categories=["all"], verbs=NS_VERBS + ["deletecollection"], subresources=["status"]),
        RT("apps", "v1", "Deployment", "deployments", "deployment", True, short_names=["deploy"],
           categories=["all"], subresources=["status", "scale"], scale=scale),
        RT("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, short_names=["rs"],
           categories=["all"], subresources=["status", "scale"], scale=scale),
        RT("apps", "v1", "StatefulSet", "statefulsets", "statefulset", True, short_names=["sts"],
           categories=["all"], subresources=["status", "scale"], scale=scale),
        RT("apps", "v1", "DaemonSet", "daemonsets", "daemonset", True, short_names=["ds"],
           categories=["all"], subresources=["status"]),
        RT("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
           "horizontalpodautoscaler", True, short_names=["hpa"], categories=["all"],
           subresources=["status"]),
        RT("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget",
           True, short_names=["pdb"], subresources=["status"]),
        RT("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
        RT("events.k8s.io", "v1", "Event", "events", "event", True, short_names=["ev"]),
        RT("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True),
        RT("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", False),
        RT("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", True),
        RT("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
           "clusterrolebinding", False),
        RT("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
           "customresourcedefinition", False, short_names=["crd", "crds"],
           categories=["api-extensions"], subresources=["status"]),
        RT("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", False,
           verbs=create_only, virtual=True),
        RT("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
           "selfsubjectreview", False, verbs=create_only, virtual=True),
        RT("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews",
           "subjectaccessreview", False, verbs=create_only, virtual=True),
        RT("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
           "selfsubjectaccessreview", False, verbs=create_only, virtual=True),
        RT("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
           "localsubjectaccessreview", True, verbs=create_only, virtual=True),
        RT("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
           "selfsubjectrulesreview", False, verbs=create_only, virtual=True),
        RT("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", "", True, verbs=ro, virtual=True),
        RT("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", "", False, verbs=ro,
           virtual=True),
    ]


# Group order in /apis mirrors a real cluster so kubectl's resource priority
# (e.g. "events" -> core before events.k8s.io) comes out the same.
GROUP_ORDER = ["", "apiextensions.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
               "authorization.k8s.io", "autoscaling", "policy", "rbac.authorization.k8s.io",
               "coordination.k8s.io", "metrics.k8s.io"]


class Registry:
    """Thread-safe map (group, plural) -> ResourceType, plus lookup helpers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._types = {}
        self.generation = 0      # bumped on every change; caches key on it
        for rt in _builtins():
            self._types[rt.gr] = rt
        self._types[("events.k8s.io", "events")].storage_gr = ("", "events")

    def add(self, rt):
        with self._lock:
            self._types[rt.gr] = rt
            self.generation += 1

    def remove(self, gr):
        with self._lock:
            if self._types.pop(gr, None) is not None:
                self.generation += 1

    def get(self, group, plural):
        return self._types.get((group, plural))

    def lookup(self, group, version, plural):
        rt = self._types.get((group, plural))
        if rt is None or version not in rt.versions:
            return None
        return rt

    def by_kind(self, group, kind):
        for rt in list(self._types.values()):
            if rt.group == group and rt.kind == kind and not rt.virtual:
                return rt
        return None

    def all(self):
        return list(self._types.values())

    def groups(self):
        """[(group, [versions], preferred)] in a stable, real-cluster-like order."""
        found = {}
        for rt in self.all():
            if rt.group == "":
                continue
            versions = found.setdefault(rt.group, [])
            for v in rt.versions:
                if v not in versions:
                    versions.append(v)
        def order(g):
            return (GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER), g)
        result = []
        for g in sorted(found, key=order):
            versions = sorted(found[g], key=version_priority, reverse=True)
            result.append((g, versions, versions[0]))
        return result

    def in_group_version(self, group, version):
        return sorted((rt for rt in self.all() if rt.group == group and version in rt.versions),
                      key=lambda rt: rt.plural)


def version_priority(v):
    """Kubernetes version ordering: GA > beta > alpha, then by number."""
    import re
    m = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?$", v)
    if not m:
        return (-1, 0, 0, v)
    major = int(m.group(1))
    stage = {"alpha": 0, "beta": 1, None: 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, major, minor, "")
