"""Loading a scenario file (through the scenario module owned by
e2e/scenarios, see scenario.py) into the server: objects are created as the
admin in order, scenario owner-reference placeholders
("scenario:<Kind>/<ns>/<name>") are resolved to the real uids, statuses are
written through the status subresource (as controllers would), and
metrics.k8s.io is wired to the scenario's usage profiles.
"""
import json

from . import api as apimod
from . import errors

PLACEHOLDER = "scenario:"


def _scenario_module():
    try:
        from . import scenario
    except ImportError as e:
        raise SystemExit(f"--scenario needs e2e/apiserver/scenario.py, which is missing ({e})")
    return scenario


def _rt_for(api, obj):
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    rt = api.registry.by_kind(group, obj.get("kind"))
    if rt is None:
        raise ValueError(f"scenario object kind {api_version}/{obj.get('kind')} is not served")
    return rt


def _resolve_uid(api, placeholder, ref_api_version):
    kind_ns_name = placeholder[len(PLACEHOLDER):]
    kind, _, rest = kind_ns_name.partition("/")
    ns, _, name = rest.rpartition("/")
    group = ref_api_version.split("/", 1)[0] if "/" in ref_api_version else ""
    rt = api.registry.by_kind(group, kind)
    if rt is None:
        raise ValueError(f"owner kind {kind} in {placeholder!r} is not served")
    entry = api.store.get(rt.storage_gr, ns if rt.namespaced else "", name)
    if entry is None:
        raise ValueError(f"owner {placeholder!r} was not created before its dependent")
    return entry.obj["metadata"]["uid"]


def create_objects(api, objects, manager="tailor-scenario", backdate_annotation=None):
    ctx = apimod.Context(field_manager=manager, backdate_annotation=backdate_annotation)
    created = []
    for original in objects:
        obj = json.loads(json.dumps(original))
        md = obj.setdefault("metadata", {})
        for ref in md.get("ownerReferences") or []:
            uid = str(ref.get("uid", ""))
            if uid.startswith(PLACEHOLDER):
                ref["uid"] = _resolve_uid(api, uid, ref.get("apiVersion", ""))
        rt = _rt_for(api, obj)
        ns = md.get("namespace", "default") if rt.namespaced else ""
        status = obj.get("status")
        try:
            result = api.create(rt, ns, obj, ctx)
        except errors.StatusError as e:
            if e.code == 409 and rt.gr == ("", "namespaces"):
                # a seeded namespace (default, kube-system): adopt the scenario's labels
                live = api.get(rt, "", md["name"]).copy()
                live["metadata"].setdefault("labels", {}).update(md.get("labels") or {})
                live["metadata"].setdefault("annotations", {}).update(md.get("annotations") or {})
                created.append(api.update(rt, "", md["name"], live, ctx))
                continue
            raise ValueError(f"creating {obj.get('kind')} {ns}/{md.get('name')}: {e.message}")
        if status is not None and rt.has_status and result.get("status") != status:
            try:
                result = api.update(rt, ns, result["metadata"]["name"],
                                    dict(result, status=status), ctx, "status")
            except errors.StatusError as e:
                raise ValueError(f"writing status of {obj.get('kind')} {ns}/{md.get('name')}: "
                                 f"{e.message}")
        created.append(result)
    return created


def load(api, path):
    scenario = _scenario_module()
    sc = scenario.load(path)
    created = create_objects(api, scenario.objects(sc),
                             backdate_annotation=getattr(scenario, "CREATED_AT_ANNOTATION", None))

    def usage(ns, pod, container, t):
        return scenario.pod_usage(sc, ns, pod, container, t)
    api.usage = usage
    return sc, created
