"""CustomResourceDefinition handling: validating a CRD, turning it into a
ResourceType the server serves at once, and the status the real
apiextensions controllers would write (Established, NamesAccepted).
"""
import os

import yaml

from . import errors
from .errors import FieldError
from .resources import ResourceType, version_priority

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def validate_crd(crd):
    errs = []
    md = crd.get("metadata") or {}
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    if not group:
        errs.append(FieldError("FieldValueRequired", "spec.group", None, ""))
    elif "." not in group:
        errs.append(FieldError("FieldValueInvalid", "spec.group", group,
                               "should be a domain with at least one dot"))
    if not names.get("plural"):
        errs.append(FieldError("FieldValueRequired", "spec.names.plural", None, ""))
    if not names.get("kind"):
        errs.append(FieldError("FieldValueRequired", "spec.names.kind", None, ""))
    if names.get("plural") and group and md.get("name") != f"{names['plural']}.{group}":
        errs.append(FieldError("FieldValueInvalid", "metadata.name", md.get("name"),
                               'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errs.append(FieldError("FieldValueNotSupported", "spec.scope", spec.get("scope"),
                               'supported values: "Cluster", "Namespaced"'))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(FieldError("FieldValueInvalid", "spec.versions", versions,
                               "must have exactly one version marked as storage version"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(FieldError("FieldValueInvalid", "spec.versions", versions,
                               "must have exactly one version marked as storage version"))
    for i, v in enumerate(versions):
        schema = ((v.get("schema") or {}).get("openAPIV3Schema"))
        if schema is None:
            errs.append(FieldError("FieldValueRequired", f"spec.versions[{i}].schema.openAPIV3Schema",
                                   None, "schemas are required"))
    return errs


def resource_type(crd):
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    subresources = []
    scale = None
    for v in spec["versions"]:
        sub = v.get("subresources") or {}
        if "status" in sub and "status" not in subresources:
            subresources.append("status")
        if "scale" in sub and scale is None:
            subresources.append("scale")
            scale = sub["scale"]
    return ResourceType(
        spec["group"], storage, names["kind"], names["plural"],
        names.get("singular") or names["kind"].lower(), spec.get("scope") == "Namespaced",
        short_names=names.get("shortNames") or [], categories=names.get("categories") or [],
        subresources=subresources, scale=scale, crd=True,
        list_kind=names.get("listKind") or names["kind"] + "List",
        versions=sorted((v["name"] for v in served), key=version_priority, reverse=True),
        schemas={v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {}
                 for v in spec["versions"]},
        columns={v["name"]: v.get("additionalPrinterColumns") or [] for v in spec["versions"]},
        preserve_unknown=False)


def default_crd(crd):
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    for v in spec.get("versions") or []:
        v.setdefault("served", True)


def established_status(crd, now):
    spec = crd["spec"]
    names = dict(spec["names"])
    return {
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }


def fixture_crds():
    """The CRDs shipped in fixtures/ (Karpenter NodePool and NodeClaim)."""
    out = []
    for fname in sorted(os.listdir(FIXTURES)):
        if fname.endswith("-crd.yaml"):
            with open(os.path.join(FIXTURES, fname)) as f:
                out.extend(d for d in yaml.safe_load_all(f) if d)
    return out


def check_names_free(registry, crd):
    spec = crd["spec"]
    existing = registry.get(spec["group"], spec["names"]["plural"])
    if existing is not None and not existing.crd:
        raise errors.invalid("CustomResourceDefinition", "apiextensions.k8s.io",
                             crd["metadata"]["name"],
                             [FieldError("FieldValueInvalid", "spec.names.plural",
                                         spec["names"]["plural"], "conflicts with a built-in")])
