#!/usr/bin/env python3
"""Checks Tailor's declarative half: CRDs, kustomize config, RBAC, samples and docs/api.md.

Renders config/ with `kubectl kustomize` and checks what a cluster admin would otherwise find
out at install time: the objects are there, the manager runs locked down, the default RBAC
cannot change a workload, the CRD schemas are structural and their printer columns point at
real fields, the samples are valid and select workloads of the demo cluster, and docs/api.md
matches the CRDs. When the local API server (e2e/apiserver/serve) is there, the CRDs and
samples are also applied to it with kubectl, and an invalid policy must be refused with a 422
that names the field.

    e2e/test_config_render.py [-v]

Exits non-zero if any check fails; the last line is "N passed, N failed, N skipped".
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import CheckFailed, Checks, Skip, need  # noqa: E402

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OPERATOR_NS = "tailor-system"
SA = ("ServiceAccount", "tailor", OPERATOR_NS)
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind",
               "impersonate"}
# (apiGroup, resource) the default install may write: Tailor's own objects, events, reviews
# and its Lease. Nothing that runs pods or shapes capacity.
DEFAULT_WRITABLE = {
    ("tailor.dev", "optimizationpolicies"),  # people, through the aggregated tailor-edit role
    ("tailor.dev", "optimizationpolicies/status"),
    ("tailor.dev", "recommendations"),
    ("tailor.dev", "recommendations/status"),
    ("", "events"),
    ("events.k8s.io", "events"),
    ("authentication.k8s.io", "tokenreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    ("coordination.k8s.io", "leases"),
}
WORKLOAD_RESOURCES = {
    ("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("apps", "replicasets"), ("", "pods"), ("", "pods/resize"),
    ("autoscaling", "horizontalpodautoscalers"), ("karpenter.sh", "nodepools"),
    ("karpenter.sh", "nodeclaims"), ("", "nodes"),
}
# What the operator must be able to do with the default install, (group, resource): verbs.
OPERATOR_NEEDS = {
    ("", "namespaces"): {"get", "list", "watch"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "nodes"): {"get", "list", "watch"},
    ("apps", "deployments"): {"get", "list", "watch"},
    ("apps", "statefulsets"): {"get", "list", "watch"},
    ("apps", "daemonsets"): {"get", "list", "watch"},
    ("apps", "replicasets"): {"get", "list", "watch"},
    ("autoscaling", "horizontalpodautoscalers"): {"get", "list", "watch"},
    ("policy", "poddisruptionbudgets"): {"get", "list", "watch"},
    ("karpenter.sh", "nodepools"): {"get", "list", "watch"},
    ("karpenter.sh", "nodeclaims"): {"get", "list", "watch"},
    ("metrics.k8s.io", "pods"): {"get", "list"},
    ("metrics.k8s.io", "nodes"): {"get", "list"},
    ("tailor.dev", "optimizationpolicies"): {"get", "list", "watch"},
    ("tailor.dev", "optimizationpolicies/status"): {"update", "patch"},
    ("tailor.dev", "recommendations"): {"get", "list", "watch", "create", "update", "patch",
                                        "delete"},
    ("tailor.dev", "recommendations/status"): {"update", "patch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("authentication.k8s.io", "tokenreviews"): {"create"},
    ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
}
REMEDIATION_NEEDS = {
    ("apps", "deployments"): {"patch"},
    ("apps", "statefulsets"): {"patch"},
    ("apps", "daemonsets"): {"patch"},
    ("", "pods/resize"): {"patch"},
    ("autoscaling", "horizontalpodautoscalers"): {"create", "patch"},
    ("karpenter.sh", "nodepools"): {"patch"},
    ("policy", "poddisruptionbudgets"): {"get", "list"},
}

VERBOSE = "-v" in sys.argv[1:]


# ------------------------------------------------------------------------------ helpers

_rendered = {}


def kustomize(rel):
    """The objects `kubectl kustomize <rel>` renders (cached)."""
    if rel not in _rendered:
        need(shutil.which("kubectl"), "kubectl is not on PATH; it renders config/ (kustomize)")
        proc = subprocess.run(["kubectl", "kustomize", str(ROOT / rel)], capture_output=True,
                              text=True, timeout=60)
        need(proc.returncode == 0, f"kubectl kustomize {rel} failed:\n{proc.stderr.strip()}")
        _rendered[rel] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return _rendered[rel]


def key(obj):
    md = obj.get("metadata", {})
    return (obj.get("kind"), md.get("name"), md.get("namespace"))


def find(objs, kind, name, namespace=None):
    for o in objs:
        if key(o) == (kind, name, namespace):
            return o
    raise CheckFailed(f"{kind} {namespace + '/' if namespace else ''}{name} not rendered")


def crd_schemas():
    """{kind: (crd, openAPIV3Schema)} from crds/*.yaml."""
    out = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                version = next(v for v in doc["spec"]["versions"] if v.get("storage"))
                out[doc["spec"]["names"]["kind"]] = (doc, version["schema"]["openAPIV3Schema"])
    return out


def rules_of(objs):
    """Yields (role object, rule) for every Role and ClusterRole."""
    for o in objs:
        if o.get("kind") in ("Role", "ClusterRole"):
            for rule in o.get("rules") or []:
                yield o, rule


def grants(objs, subject):
    """{(group, resource): verbs} that subject gets through the bindings in objs."""
    roles = {(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")): o
             for o in objs if o.get("kind") in ("Role", "ClusterRole")}
    out = {}
    for b in objs:
        if b.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subs = {(s.get("kind"), s.get("name"), s.get("namespace")) for s in b.get("subjects", [])}
        if subject not in subs:
            continue
        ref = b["roleRef"]
        ns = b["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], ref["name"], ns))
        need(role is not None, f"{b['kind']} {b['metadata']['name']} refers to missing "
                               f"{ref['kind']} {ref['name']}")
        for rule in role.get("rules") or []:
            for g in rule.get("apiGroups", []):
                for r in rule.get("resources", []):
                    out.setdefault((g, r), set()).update(rule.get("verbs", []))
    return out


def crdschema():
    try:
        from e2e.apiserver import crdschema as mod  # the local API server's own validator
    except ImportError as e:
        raise Skip(f"e2e/apiserver/crdschema.py not importable ({e})")
    return mod


def validate_cr(obj, schema):
    """Server-side handling of a custom resource: prune, default, validate. Returns errors."""
    mod = crdschema()
    obj = copy.deepcopy(obj)
    dropped = mod.prune(obj, schema)
    errs = [f'unknown field "{d}"' for d in dropped]
    mod.apply_defaults(obj, schema)
    errs += [str(e) for e in mod.validate(obj, schema)]
    return errs, obj


def selector_matches(sel, labels):
    if sel is None:
        return True
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


# ------------------------------------------------------------------------------ checks

check = Checks()


@check
def default_renders_the_install():
    objs = kustomize("config/default")
    want = [
        ("Namespace", OPERATOR_NS, None),
        ("CustomResourceDefinition", "optimizationpolicies.tailor.dev", None),
        ("CustomResourceDefinition", "recommendations.tailor.dev", None),
        ("ServiceAccount", "tailor", OPERATOR_NS),
        ("ClusterRole", "tailor", None),
        ("ClusterRoleBinding", "tailor", None),
        ("Role", "tailor", OPERATOR_NS),
        ("RoleBinding", "tailor", OPERATOR_NS),
        ("ClusterRole", "tailor-view", None),
        ("ClusterRole", "tailor-edit", None),
        ("Deployment", "tailor", OPERATOR_NS),
        ("Service", "tailor", OPERATOR_NS),
    ]
    have = {key(o) for o in objs}
    missing = [w for w in want if w not in have]
    need(not missing, f"config/default lacks {missing}")
    extra = sorted(str(k) for k in have - set(want))
    need(not extra, f"config/default renders unexpected objects {extra}")
    names = [k[1] for k in have]
    need(not any("remediation" in n for n in names), "config/default includes remediation")
    need(not any(o["kind"] == "ServiceMonitor" for o in objs),
         "config/default includes the optional ServiceMonitor")


@check
def manager_runs_locked_down():
    objs = kustomize("config/default")
    dep = find(objs, "Deployment", "tailor", OPERATOR_NS)
    pod = dep["spec"]["template"]["spec"]
    need(pod.get("serviceAccountName") == "tailor", "serviceAccountName is not tailor")
    need(pod.get("automountServiceAccountToken") is True, "automountServiceAccountToken not true")
    psc = pod.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True, "pod runAsNonRoot is not true")
    need(psc.get("runAsUser") == 65532, "pod runAsUser is not 65532")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
         "pod seccompProfile is not RuntimeDefault")
    (c,) = [c for c in pod["containers"] if c["name"] == "tailor"]
    sc = c.get("securityContext", {})
    need(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    need(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    need(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities do not drop ALL")
    need(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, "container may run as root")
    need(c["args"] == ["run", "--leader-elect", "--metrics-bind-address=:8080",
                       "--health-probe-bind-address=:8081"], f"unexpected args {c['args']}")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        port = ports.get(get.get("port"), get.get("port"))
        need(get.get("path") == path and port == 8081, f"{probe} is not GET {path} on :8081")
    res = c.get("resources", {})
    need(res.get("requests") == {"cpu": "50m", "memory": "64Mi"}, f"requests {res.get('requests')}")
    need(res.get("limits") == {"memory": "256Mi"}, f"limits {res.get('limits')}")
    env = {e["name"]: e for e in c.get("env", [])}
    need(env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
         == "metadata.namespace", "POD_NAMESPACE does not come from the downward API")
    need(":" in c["image"] and not c["image"].endswith(":latest"),
         f"image {c['image']} has no fixed tag")
    svc = find(objs, "Service", "tailor", OPERATOR_NS)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    need(selector_matches({"matchLabels": svc["spec"]["selector"]}, labels),
         "the Service does not select the manager's pods")
    sp = {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]}
    need(ports.get(sp.get(8080), sp.get(8080)) == 8080, "Service port 8080 does not reach :8080")
    ns = find(objs, "Namespace", OPERATOR_NS)
    need(ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted",
         "the namespace does not enforce the restricted Pod Security Standard")


@check
def rbac_has_no_wildcards():
    for rel in ("config/default", "config/rbac/remediation"):
        for role, rule in rules_of(kustomize(rel)):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                need("*" not in (rule.get(field) or []),
                     f"{rel}: {role['kind']} {role['metadata']['name']} has * in {field}")


@check
def default_rbac_cannot_change_workloads():
    objs = kustomize("config/default")
    for role, rule in rules_of(objs):
        writes = WRITE_VERBS & set(rule.get("verbs", []))
        if not writes:
            continue
        for g in rule.get("apiGroups", []):
            for r in rule.get("resources", []):
                need((g, r) in DEFAULT_WRITABLE,
                     f"{role['kind']} {role['metadata']['name']} grants {sorted(writes)} on "
                     f"{g or 'core'}/{r}")
                need((g, r) not in WORKLOAD_RESOURCES, f"write on workload {g}/{r}")
    have = grants(objs, SA)
    for (g, r), verbs in have.items():
        if (g, r) in WORKLOAD_RESOURCES:
            need(not verbs & WRITE_VERBS, f"the operator may {sorted(verbs)} {g}/{r}")
    need(not have.get(("tailor.dev", "optimizationpolicies"), set()) & WRITE_VERBS,
         "the operator may write OptimizationPolicy specs, which belong to users")
    for (g, r), verbs in OPERATOR_NEEDS.items():
        need(verbs <= have.get((g, r), set()),
             f"the operator lacks {sorted(verbs - have.get((g, r), set()))} on {g or 'core'}/{r}")
    secrets = [(role, rule) for role, rule in rules_of(objs) if "secrets" in rule["resources"]]
    for role, rule in secrets:
        need(role["kind"] == "Role" and role["metadata"]["namespace"] == OPERATOR_NS
             and rule["verbs"] == ["get"],
             f"{role['kind']} {role['metadata']['name']} grants {rule['verbs']} on secrets")
    leases = [r for _, r in rules_of(objs) if "leases" in r["resources"]]
    need(any(r.get("resourceNames") for r in leases), "lease access is not limited by name")
    need(all(r.get("resourceNames") or r["verbs"] == ["create"] for r in leases),
         "lease verbs other than create are not limited by resourceNames")


@check
def remediation_is_separate_and_bound():
    objs = kustomize("config/rbac/remediation")
    need(find(objs, "ClusterRole", "tailor-remediation"), "")
    have = grants(objs, SA)
    for (g, r), verbs in REMEDIATION_NEEDS.items():
        need(verbs <= have.get((g, r), set()),
             f"tailor-remediation lacks {sorted(verbs - have.get((g, r), set()))} on "
             f"{g or 'core'}/{r}")
    for (g, r), verbs in have.items():
        need(not {"delete", "deletecollection", "update"} & verbs,
             f"tailor-remediation may {sorted(verbs)} {g}/{r}; changes are patches only")


@check
def optional_components_render():
    sm = kustomize("config/prometheus")
    need([key(o) for o in sm] == [("ServiceMonitor", "tailor", OPERATOR_NS)],
         "config/prometheus does not render just the ServiceMonitor")
    port = sm[0]["spec"]["endpoints"][0]["port"]
    svc = find(kustomize("config/default"), "Service", "tailor", OPERATOR_NS)
    need(port in [p["name"] for p in svc["spec"]["ports"]], f"ServiceMonitor port {port} unknown")
    adm = kustomize("config/admission")
    kinds = sorted(o["kind"] for o in adm)
    need(kinds == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"],
         f"config/admission renders {kinds}")


def walk(node, path, visit):
    """Calls visit(node, path) for every schema node under node."""
    visit(node, path)
    for name, child in (node.get("properties") or {}).items():
        walk(child, f"{path}.{name}", visit)
    if isinstance(node.get("items"), dict):
        walk(node["items"], f"{path}[]", visit)
    if isinstance(node.get("additionalProperties"), dict):
        walk(node["additionalProperties"], f"{path}{{}}", visit)


INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]
CEL_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[A-Za-z_][A-Za-z0-9_]*")
CEL_ROOTS = {"self", "oldSelf", "has", "size", "string", "int", "quantity", "true", "false",
             "in", "null"}


@check
def crd_schemas_are_structural():
    crds = crd_schemas()
    need(set(crds) == {"OptimizationPolicy", "Recommendation"}, f"CRDs found: {sorted(crds)}")
    problems = []

    def visit(node, path):
        ios = node.get("x-kubernetes-int-or-string")
        if not node.get("type") and not ios and not node.get("x-kubernetes-preserve-unknown-fields"):
            problems.append(f"{path}: no type")
        if node.get("type") not in (None, "object", "array", "string", "integer", "number",
                                    "boolean"):
            problems.append(f"{path}: unknown type {node['type']!r}")
        if "enum" in node and any(not isinstance(v, str) for v in node["enum"]):
            problems.append(f"{path}: enum values must be strings")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: both properties and additionalProperties")
        if node.get("type") == "array" and not isinstance(node.get("items"), dict):
            problems.append(f"{path}: array without items")
        if "properties" in node and node.get("type") != "object":
            problems.append(f"{path}: properties on a non-object")
        for junctor in ("allOf", "oneOf", "not"):
            if junctor in node:
                problems.append(f"{path}: {junctor} is not used by Tailor's schemas")
        if "anyOf" in node and not (ios and node["anyOf"] == INT_OR_STRING_ANYOF):
            problems.append(f"{path}: anyOf other than int-or-string")
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for k in node.get("x-kubernetes-list-map-keys") or []:
                sub = item.get("properties", {}).get(k)
                if sub is None or sub.get("type") not in ("string", "integer", "boolean"):
                    problems.append(f"{path}: list-map key {k} is not a scalar field")
                elif k not in item.get("required", []) and "default" not in sub:
                    problems.append(f"{path}: list-map key {k} is neither required nor defaulted")
        for req in node.get("required", []):
            if req not in (node.get("properties") or {}):
                problems.append(f"{path}: required field {req} is not a property")
        for rule in node.get("x-kubernetes-validations", []):
            text = rule.get("rule", "")
            if not rule.get("message"):
                problems.append(f"{path}: validation rule without a message: {text}")
            stripped = CEL_TOKEN.sub(lambda m: "" if m.group(0)[0] in "'\"" else m.group(0), text)
            if stripped.count("(") != stripped.count(")") or \
                    stripped.count("[") != stripped.count("]"):
                problems.append(f"{path}: unbalanced brackets in rule {text}")
            words = {w for w in re.findall(r"(?<![.\w])[A-Za-z_]\w*", stripped)}
            if words - CEL_ROOTS:
                problems.append(f"{path}: rule uses unknown names {sorted(words - CEL_ROOTS)}")

    def described(node, path):
        for name, child in (node.get("properties") or {}).items():
            if path.endswith("openAPIV3Schema") and name == "metadata":
                continue
            if not child.get("description"):
                problems.append(f"{path}.{name}: no description")

    for kind, (crd, schema) in crds.items():
        md = schema["properties"]["metadata"]
        if md != {"type": "object"}:
            problems.append(f"{kind}: metadata may only be declared as type object")
        walk(schema, kind, visit)
        walk(schema, kind + ".openAPIV3Schema", described)
        # Defaults must themselves be valid, or the API server refuses the CRD.
        try:
            mod = crdschema()
        except Skip:
            mod = None

        def check_default(node, path):
            if "default" in node and mod is not None:
                errs = []
                mod._validate(copy.deepcopy(node["default"]), node, path, errs)
                problems.extend(f"default of {e}" for e in errs)

        walk(schema, kind, check_default)
        spec = crd["spec"]
        v = spec["versions"][0]
        if spec["scope"] != "Namespaced" or v.get("subresources") != {"status": {}}:
            problems.append(f"{kind}: must be namespaced with a status subresource")
        if spec["names"].get("categories") != ["tailor"]:
            problems.append(f"{kind}: categories must be [tailor]")
    need(not problems, "\n".join(problems))


def schema_at(schema, json_path):
    """The schema node a printer column's jsonPath points at, or None."""
    node = schema
    for part in json_path.lstrip(".").split("."):
        if "[" in part:
            part = part.split("[", 1)[0]
            node = (node.get("properties") or {}).get(part)
            if node is None or node.get("type") != "array":
                return None
            node = node["items"]
            continue
        if part == "" or "]" in part:
            continue
        node = (node.get("properties") or {}).get(part)
        if node is None:
            return None
    return node


@check
def printer_columns_point_at_fields():
    crds = crd_schemas()
    want = {
        "OptimizationPolicy": (["MODE", "WORKLOADS", "SAVINGS/MO", "READY", "AGE"], "optpol"),
        "Recommendation": (["TARGET", "CPU", "MEMORY", "SAVINGS/MO", "PHASE", "CONFIDENCE",
                            "REVISION", "APPROVED", "AGE"], "rec"),
    }
    for kind, (crd, schema) in crds.items():
        cols = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        names, short = want[kind]
        need([c["name"].upper() for c in cols] == names, f"{kind} columns {[c['name'] for c in cols]}")
        need(crd["spec"]["names"]["shortNames"] == [short], f"{kind} short names")
        for c in cols:
            path = c["jsonPath"]
            if path == ".metadata.creationTimestamp":
                continue
            if "conditions[?(" in path:
                node = schema_at(schema, path.split("[?(", 1)[0])
                need(node and node.get("type") == "array", f"{kind} {c['name']}: {path}")
                node = node["items"]["properties"].get(path.rsplit(".", 1)[1])
            else:
                node = schema_at(schema, path)
            need(node is not None, f"{kind} column {c['name']}: {path} is not a field")
            ctype = {"string": "string", "integer": "integer"}.get(node.get("type"))
            need(ctype == c["type"], f"{kind} column {c['name']} is {c['type']} but the "
                                     f"field is {node.get('type')}")
        wide = [c["name"] for c in cols if c.get("priority")]
        need("Confidence" in wide or "CONFIDENCE" in [w.upper() for w in wide] or
             kind != "Recommendation", "CONFIDENCE must be a -o wide column")


def sample_policies():
    objs = kustomize("config/samples")
    need(objs, "config/samples renders nothing")
    for o in objs:
        need(o["apiVersion"] == "tailor.dev/v1alpha1" and o["kind"] == "OptimizationPolicy",
             f"unexpected sample {key(o)}")
        need(o["metadata"].get("namespace"), f"sample {o['metadata']['name']} has no namespace")
    return objs


@check
def samples_validate_against_the_schema():
    _, schema = crd_schemas()["OptimizationPolicy"]
    modes = set()
    # Each file as `kubectl apply -f` reads it (YAML 1.1, where a bare Off is false), and as
    # kustomize renders it.
    files = [d for f in sorted((ROOT / "config" / "samples").glob("*.yaml"))
             if f.name != "kustomization.yaml" for d in yaml.safe_load_all(f.read_text()) if d]
    need(len(files) == len(sample_policies()), "config/samples/kustomization.yaml does not "
                                              "list every sample")
    for o in files + sample_policies():
        errs, defaulted = validate_cr(o, schema)
        name = f"{o['metadata']['namespace']}/{o['metadata']['name']}"
        need(not errs, f"sample {name} is invalid:\n  " + "\n  ".join(errs))
        spec = o["spec"]
        if o["metadata"]["namespace"] != OPERATOR_NS:
            for field in ("namespaceSelector", "nodePools"):
                need(field not in spec, f"sample {name} sets {field} outside {OPERATOR_NS}")
        modes.add(defaulted["spec"]["approval"]["mode"])
        # The rules the API server checks with CEL, for the values the samples use.
        ap = defaulted["spec"]["approval"]
        need(ap["minChangePercent"] <= ap["maxChangePercent"], f"{name}: minChange > maxChange")
    need({"Off", "Manual", "Auto"} <= modes, f"samples cover modes {sorted(modes)} only")


@check
def invalid_policy_is_refused_with_field_names():
    _, schema = crd_schemas()["OptimizationPolicy"]
    bad = {
        "apiVersion": "tailor.dev/v1alpha1", "kind": "OptimizationPolicy",
        "metadata": {"name": "bad", "namespace": "shop"},
        "spec": {
            "resources": {"cpu": {"percentile": 101, "min": "ten millicores"}},
            "metrics": {"history": "14days"},
            "approval": {"mode": "Sometimes", "maxChangePercent": 0, "cooldown": "6 hours"},
            "workloadKinds": ["Deployment", "CronJob"],
            "frobnicate": True,
        },
    }
    errs, _ = validate_cr(bad, schema)
    text = "\n".join(errs)
    for field in ("spec.resources.cpu.percentile", "spec.resources.cpu.min",
                  "spec.metrics.history", "spec.approval.mode", "spec.approval.maxChangePercent",
                  "spec.approval.cooldown", "spec.workloadKinds[1]", "spec.frobnicate"):
        need(field in text, f"no error names {field}; got:\n{text}")
    good = {"apiVersion": "tailor.dev/v1alpha1", "kind": "OptimizationPolicy",
            "metadata": {"name": "min", "namespace": "shop"}, "spec": {}}
    errs, defaulted = validate_cr(good, schema)
    need(not errs, f"an empty spec is refused: {errs}")
    s = defaulted["spec"]
    got = (s["metrics"]["source"], s["metrics"]["history"], s["resources"]["cpu"]["percentile"],
           s["resources"]["cpu"]["headroomPercent"], s["resources"]["memory"]["percentile"],
           s["resources"]["memory"]["headroomPercent"], s["resources"]["limits"],
           s["approval"]["mode"], s["approval"]["maxChangePercent"], s["approval"]["cooldown"],
           s["approval"]["method"], s["approval"]["verification"]["period"])
    need(got == ("Prometheus", "14d", 95, 15, 99, 20, {"cpu": "Remove", "memory": "KeepRatio"},
                 "Off", 50, "6h", "Patch", "10m"), f"defaults are {got}")
    _, rschema = crd_schemas()["Recommendation"]
    rec = {"apiVersion": "tailor.dev/v1alpha1", "kind": "Recommendation",
           "metadata": {"name": "deployment-web", "namespace": "shop"},
           "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "policyRef": {"name": "web", "namespace": "shop"},
                    "approval": {"approvedRevision": 0}}}
    errs, _ = validate_cr(rec, rschema)
    need(any("spec.approval.approvedRevision" in e for e in errs),
         f"approvedRevision 0 is accepted: {errs}")


def scenario():
    path = ROOT / "e2e" / "scenarios" / "demo.yaml"
    if not path.exists():
        raise Skip("e2e/scenarios/demo.yaml is not there yet")
    return yaml.safe_load(path.read_text())


@check
def samples_select_demo_workloads():
    demo = scenario()
    namespaces = {n["name"]: n for n in demo.get("namespaces") or []}
    _, schema = crd_schemas()["OptimizationPolicy"]
    for o in sample_policies():
        _, d = validate_cr(o, schema)
        spec, ns = d["spec"], o["metadata"]["namespace"]
        name = f"{ns}/{o['metadata']['name']}"
        if ns == OPERATOR_NS and "namespaceSelector" in spec:
            scope = [n for n, v in namespaces.items() if selector_matches(
                spec["namespaceSelector"],
                {**(v.get("labels") or {}), "kubernetes.io/metadata.name": n})]
        else:
            scope = [ns]
        matched = [f"{n}/{w['name']}" for n in scope
                   for w in (namespaces.get(n, {}).get("workloads") or [])
                   if w["kind"] in spec["workloadKinds"]
                   and (w.get("annotations") or {}).get("tailor.dev/ignore") != "true"
                   and selector_matches(spec.get("selector"), w.get("labels") or {})]
        if spec["workloadKinds"]:
            need(matched, f"sample {name} selects no workload of the demo cluster")
        if "nodePools" in spec:
            pools = [p["name"] for p in demo.get("nodePools") or []
                     if selector_matches(spec["nodePools"]["selector"], p.get("labels") or {})]
            need(pools, f"sample {name} selects no NodePool of the demo cluster")
        if VERBOSE:
            print(f"    {name}: {len(matched)} workloads {matched[:6]}")


@check
def api_docs_match_the_crds():
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_api.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    need(proc.returncode == 0, proc.stderr.strip() or proc.stdout.strip())
    doc = (ROOT / "docs" / "api.md").read_text()
    for kind, (_, schema) in crd_schemas().items():
        for part in ("spec", "status"):
            rows = []
            walk(schema["properties"][part], part, lambda n, p: rows.append(p))
            for p in rows:
                if "{}" in p or p.endswith("[]"):
                    continue
                need(f"| `{p}` |" in doc, f"docs/api.md has no row for {kind} {p}")
    need("kubectl patch rec deployment-web -n shop --type merge -p "
         "'{\"spec\":{\"approval\":{\"approvedRevision\":4}}}'" in doc,
         "docs/api.md lacks the approval one-liner")


# ------------------------------------------------------------------------------ live server

class Server:
    """The local API server, started on a free port; stopped by the pid we started."""

    def __init__(self, serve, workdir):
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        self.proc = subprocess.Popen([str(serve), "--port", "0", "--kubeconfig", self.kubeconfig],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=str(ROOT))
        self.url = None
        self.err = []
        ready = threading.Event()

        def read_stdout():
            for line in self.proc.stdout:
                if line.startswith("ready ") and not ready.is_set():
                    self.url = line.split()[1]
                    ready.set()

        def read_stderr():
            for line in self.proc.stderr:
                self.err.append(line)

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        deadline = time.monotonic() + 15
        while not ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = "".join(self.err[-5:]).strip()
                raise Skip(f"e2e/apiserver/serve did not become ready{': ' + tail if tail else ''}")

    def kubectl(self, *args, stdin=None):
        return subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], input=stdin,
                              capture_output=True, text=True, timeout=30)

    def ok(self, *args, stdin=None):
        p = self.kubectl(*args, stdin=stdin)
        need(p.returncode == 0, f"kubectl {' '.join(args)} failed: {p.stderr.strip()}")
        return p.stdout

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@check
def live_apiserver_serves_the_crds():
    serve = ROOT / "e2e" / "apiserver" / "serve"
    if not (serve.exists() and os.access(serve, os.X_OK)):
        raise Skip("e2e/apiserver/serve is not there")
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(serve, tmp)
        try:
            live_checks(srv)
        finally:
            srv.stop()


def live_checks(srv):
    srv.ok("apply", "-k", str(ROOT / "config" / "crd"))
    deadline = time.monotonic() + 10
    while srv.kubectl("get", "optpol", "-A").returncode != 0:
        need(time.monotonic() < deadline, "optimizationpolicies are not served after 10 s")
        time.sleep(0.2)
    samples = sample_policies()
    namespaces = sorted({o["metadata"]["namespace"] for o in samples})
    srv.ok("apply", "-f", "-", stdin="".join(
        f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n" for ns in namespaces))
    srv.ok("apply", "-k", str(ROOT / "config" / "samples"))

    o = samples[0]
    got = json.loads(srv.ok("get", "optpol", "-n", o["metadata"]["namespace"],
                            o["metadata"]["name"], "-o", "json"))
    need(got["spec"]["approval"]["maxChangePercent"] == o["spec"].get("approval", {}).get(
        "maxChangePercent", 50), "the server did not default spec.approval.maxChangePercent")
    header = srv.ok("get", "optpol", "-A").splitlines()[0].split()
    need(header == ["NAMESPACE", "NAME", "MODE", "WORKLOADS", "SAVINGS/MO", "READY", "AGE"],
         f"kubectl get optpol -A prints {header}")

    bad = ("apiVersion: tailor.dev/v1alpha1\nkind: OptimizationPolicy\n"
           "metadata: {name: bad, namespace: %s}\n"
           "spec: {resources: {cpu: {percentile: 101}}, approval: {mode: Sometimes}}\n"
           % o["metadata"]["namespace"])
    p = srv.kubectl("apply", "-f", "-", stdin=bad)
    need(p.returncode != 0, "an OptimizationPolicy with percentile 101 was accepted")
    need("is invalid" in p.stderr, f"refusal is not a 422 Invalid: {p.stderr.strip()}")
    for field in ("spec.resources.cpu.percentile", "spec.approval.mode"):
        need(field in p.stderr, f"the refusal does not name {field}: {p.stderr.strip()}")

    # A Recommendation as the controller would write it, then the documented approval.
    ns = "shop" if "shop" in {s["metadata"]["namespace"] for s in samples} else \
        samples[0]["metadata"]["namespace"]
    rec = ("apiVersion: tailor.dev/v1alpha1\nkind: Recommendation\n"
           "metadata: {name: deployment-web, namespace: %s}\n"
           "spec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
           "  policyRef: {name: web, namespace: %s}\n" % (ns, ns))
    srv.ok("apply", "-f", "-", stdin=rec)
    status = {"status": {"revision": 4, "phase": "Pending", "confidence": "High",
                         "display": {"target": "Deployment/web", "cpu": "1→250m",
                                     "memory": "2Gi→640Mi"},
                         "savings": {"monthlyUSD": "61.20"}}}
    srv.ok("patch", "rec", "deployment-web", "-n", ns, "--subresource=status", "--type", "merge",
           "-p", json.dumps(status))
    srv.ok("patch", "rec", "deployment-web", "-n", ns, "--type", "merge",
           "-p", '{"spec":{"approval":{"approvedRevision":4}}}')
    rows = srv.ok("get", "rec", "-n", ns).splitlines()
    need(rows[0].split() == ["NAME", "TARGET", "CPU", "MEMORY", "SAVINGS/MO", "PHASE", "AGE"],
         f"kubectl get rec prints {rows[0]}")
    need(rows[1].split()[:6] == ["deployment-web", "Deployment/web", "1→250m", "2Gi→640Mi",
                                 "61.20", "Pending"], f"kubectl get rec row: {rows[1]}")
    wide = srv.ok("get", "rec", "-n", ns, "-o", "wide").splitlines()[0].split()
    need("CONFIDENCE" in wide, f"-o wide lacks CONFIDENCE: {wide}")
    p = srv.kubectl("patch", "rec", "deployment-web", "-n", ns, "--type", "merge",
                    "-p", '{"spec":{"approval":{"approvedRevision":0}}}')
    need(p.returncode != 0 and "spec.approval.approvedRevision" in p.stderr,
         f"approvedRevision 0 was not refused by name: {p.stderr.strip()}")


# ------------------------------------------------------------------------------ main

def main():
    os.chdir(ROOT)
    return check.run("config render checks")


if __name__ == "__main__":
    sys.exit(main())
