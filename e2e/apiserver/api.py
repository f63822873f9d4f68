"""The API semantics layer: get/list/create/update/patch/delete for any
resource type, independent of HTTP.

Owns object metadata rules (uid, creationTimestamp, generation, generateName,
resourceVersion preconditions), status-subresource separation, finalizers and
deletionTimestamp, dryRun, managedFields bookkeeping, CRD registration and
CR schema enforcement.  The HTTP layer (server.py) parses requests and calls
into APIServer; the garbage collector (collector.py) calls back into it.
"""
import json
import random
import time
import uuid

import yaml

from . import (builtin_types, conversion, crds, crdschema, errors, managedfields, patches,
               typeinfo)
from .authn import Authenticator
from .errors import FieldError
from .rbac import Authorizer, bootstrap_objects
from .resources import Registry
from .store import Store, decode_continue, encode_continue

CRD_GR = ("apiextensions.k8s.io", "customresourcedefinitions")
DS_GR = ("apps", "daemonsets")
DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
NS_GR = ("", "namespaces")
PATCH_JSON = "application/json-patch+json"
PATCH_MERGE = "application/merge-patch+json"
PATCH_STRATEGIC = "application/strategic-merge-patch+json"
PATCH_APPLY = "application/apply-patch+yaml"
_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Context:
    """Who is writing, and how (query parameters that shape a write)."""

    def __init__(self, user=None, dry_run=False, field_manager="", field_validation="",
                 user_agent="", version=None, backdate_annotation=None):
        self.user = user
        self.dry_run = dry_run
        self.field_manager = field_manager
        self.field_validation = field_validation or "Warn"
        self.user_agent = user_agent
        self.version = version
        self.warnings = []
        # internal (scenario loading): take creationTimestamp from this annotation
        self.backdate_annotation = backdate_annotation

    def manager(self):
        if self.field_manager:
            return self.field_manager
        # the real default: the user agent up to the first '/'
        ua = self.user_agent or "unknown"
        return ua.split("/", 1)[0][:128]


SYSTEM = Context(field_manager="tailor-apiserver")


def _spec_view(obj, has_status):
    skip = ("metadata", "status") if has_status else ("metadata",)
    return {k: v for k, v in obj.items() if k not in skip}


class APIServer:
    def __init__(self, history_size=1000):
        self.registry = Registry()
        self.store = Store(history_size)
        self.authn = Authenticator()
        self.authz = Authorizer(self.store)
        self.usage = None          # (ns, pod, container, t) -> (cpu, mem); set by scenario
        self.simulation = None     # simulation.Simulation when controllers/kubelets run
        from .collector import GarbageCollector
        self.gc = GarbageCollector(self)
        self._seed()

    # --- bootstrap ---------------------------------------------------------------------
    def _seed(self):
        ns_rt = self.registry.get(*NS_GR)
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.create(ns_rt, "", {"metadata": {"name": name}}, SYSTEM)
        for gr, obj in bootstrap_objects():
            self.create(self.registry.get(*gr), "", obj, SYSTEM)
        crd_rt = self.registry.get(*CRD_GR)
        for crd in crds.fixture_crds():
            self.create(crd_rt, "", crd, SYSTEM)

    def ensure_service_account(self, namespace, name):
        ns_rt = self.registry.get(*NS_GR)
        if self.store.get(NS_GR, "", namespace) is None:
            self.create(ns_rt, "", {"metadata": {"name": namespace}}, SYSTEM)
        sa_rt = self.registry.get("", "serviceaccounts")
        if self.store.get(sa_rt.gr, namespace, name) is None:
            self.create(sa_rt, namespace, {"metadata": {"name": name}}, SYSTEM)

    # --- reads ---------------------------------------------------------------------------
    def get(self, rt, ns, name, version=None):
        entry = self.store.get(rt.storage_gr, ns, name)
        if entry is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return entry

    def list(self, rt, ns, label_sel=None, field_sel=None, limit=0, cont="",
             resource_version="", rv_match=""):
        """Returns (list_rv, [Entry], continue_token, remaining_count or None)."""
        gr = rt.storage_gr
        with self.store.lock:
            current = self.store.rv
            if cont:
                rv, start_key, sid = decode_continue(cont)
                snap = self.store.resume_snapshot(sid)
                if snap is None:
                    raise errors.expired(
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter, "
                        "or use the continue token in this response to retrieve the remainder "
                        "of the results. Continuing with the provided token results in an "
                        "inconsistent list - objects that were created, modified, or deleted "
                        "between the time the first chunk was returned and now may show up in "
                        "the list.")
                list_rv, entries = snap
                lo, hi = 0, len(entries)
                while lo < hi:   # first entry with key > start_key
                    mid = (lo + hi) // 2
                    if entries[mid].key <= start_key:
                        lo = mid + 1
                    else:
                        hi = mid
                pos = lo
            else:
                if resource_version and resource_version != "0":
                    try:
                        want = int(resource_version)
                    except ValueError:
                        raise errors.bad_request(f"invalid resource version: {resource_version}")
                    if rv_match == "Exact" and want != current:
                        raise errors.expired(f"too old resource version: {want} ({current})")
                    if want > current:
                        raise errors.timeout(f"Too large resource version: {want}, current: "
                                             f"{current}")
                name = field_sel.exact_name() if field_sel else None
                if name is not None and not limit:
                    e = self.store.get(gr, ns, name) if (ns or not rt.namespaced) else None
                    candidates = [e] if e else [x for x in self.store.entries(gr, ns or None)
                                                if x.obj["metadata"]["name"] == name]
                    return current, [x for x in candidates if self._match(x, label_sel,
                                                                           field_sel)], "", None
                if limit:
                    sid, list_rv, entries = self.store.snapshot(gr, ns or None)
                else:
                    list_rv, entries, sid = current, self.store.entries(gr, ns or None), None
                pos = 0
        # filtering runs outside the lock over the immutable snapshot
        out = []
        i = pos
        n = len(entries)
        filtered = (label_sel and not label_sel.empty()) or (field_sel and not field_sel.empty())
        while i < n:
            e = entries[i]
            i += 1
            if not filtered or self._match(e, label_sel, field_sel):
                out.append(e)
                if limit and len(out) >= limit:
                    break
        token, remaining = "", None
        if limit and i < n:
            token = encode_continue(list_rv, entries[i - 1].key, sid)
            if not filtered:
                remaining = n - i
        return list_rv, out, token, remaining

    @staticmethod
    def _match(entry, label_sel, field_sel):
        if label_sel and not label_sel.matches(entry.obj["metadata"].get("labels")):
            return False
        if field_sel and not field_sel.matches(entry.obj):
            return False
        return True

    # --- create --------------------------------------------------------------------------
    def create(self, rt, ns, body, ctx, managed=False):
        if not isinstance(body, dict):
            raise errors.bad_request("Object 'Kind' is missing in request body")
        obj = conversion.from_version(rt, json.loads(json.dumps(body)))
        with self.store.lock:
            obj = self._prepare_create(rt, ns, obj, ctx, managed)
            if ctx.dry_run:
                return obj
            entry = self.store.put(rt.storage_gr, obj)
            self._after_write(rt, None, entry)
            return entry.obj

    def _prepare_create(self, rt, ns, obj, ctx, managed):
        self._check_kind(rt, obj)
        md = obj.get("metadata")
        if not isinstance(md, dict):
            md = obj["metadata"] = {}
        if rt.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            md["namespace"] = ns
            self._check_namespace_open(rt, ns, md.get("name") or md.get("generateName", ""))
        else:
            md.pop("namespace", None)
        if not md.get("name"):
            if md.get("generateName"):
                for _ in range(10):
                    md["name"] = md["generateName"] + "".join(
                        random.choice(_GENERATE_CHARS) for _ in range(5))
                    if self.store.get(rt.storage_gr, ns, md["name"]) is None:
                        break
            else:
                raise errors.invalid(rt.kind, rt.group, "", [FieldError(
                    "FieldValueRequired", "metadata.name", None,
                    "name or generateName is required")])
        errs = builtin_types.validate_name(rt, md["name"])
        if errs:
            raise errors.invalid(rt.kind, rt.group, md["name"], errs)
        if self.store.get(rt.storage_gr, ns if rt.namespaced else "", md["name"]) is not None:
            raise errors.already_exists(rt.plural, rt.group, md["name"])
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "selfLink"):
            md.pop(key, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        if ctx.backdate_annotation:
            backdated = (md.get("annotations") or {}).get(ctx.backdate_annotation)
            if backdated:
                md["creationTimestamp"] = backdated
        if rt.crd or rt.gr in builtin_types.GENERATION_TYPES:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        if rt.crd:
            if rt.has_status:
                obj.pop("status", None)
        else:
            builtin_types.reset_status_on_create(rt, obj)
        self._admit(rt, None, obj, ctx)
        if not managed:
            managedfields.record_update(rt, typeinfo.for_resource(rt), None, obj, ctx.manager(),
                                        rt.api_version(ctx.version))
        if rt.gr == CRD_GR:
            obj["status"] = crds.established_status(obj, md["creationTimestamp"])
        if rt.gr == DS_GR:
            # apps/v1 shows the internal spec.templateGeneration as this annotation
            md.setdefault("annotations", {})[DS_TEMPLATE_GENERATION] = "1"
        return obj

    def _check_kind(self, rt, obj):
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(f'{kind} in version "{rt.version}" cannot be handled as a '
                                     f'{rt.kind}: the kind in the body does not match the '
                                     f'resource')
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version() if rt.storage_gr == rt.gr else "v1"

    def _check_namespace_open(self, rt, ns, name):
        entry = self.store.get(NS_GR, "", ns)
        if entry is None:
            raise errors.not_found("namespaces", "", ns)
        if entry.obj["metadata"].get("deletionTimestamp"):
            raise errors.forbidden_plain(rt.plural, rt.group, name,
                                         f"unable to create new content in namespace {ns} "
                                         f"because it is being terminated")

    def _admit(self, rt, old, obj, ctx):
        """Defaulting, pruning and validation (mutating + validating admission)."""
        name = obj["metadata"].get("name", "")
        errs = []
        if rt.crd:
            schema = rt.schema()
            if schema:
                dropped = crdschema.prune(obj, schema)
                self._unknown_fields(rt, dropped, ctx)
                crdschema.apply_defaults(obj, schema)
                errs = crdschema.validate(obj, schema)
        else:
            builtin_types.apply_defaults(rt, obj)
            errs = builtin_types.validate(rt, obj, old)
            if rt.gr == CRD_GR:
                crds.default_crd(obj)
                errs = crds.validate_crd(obj)
                if not errs:
                    crds.check_names_free(self.registry, obj)
        errs = errs + builtin_types.validate_labels(obj)
        if errs:
            raise errors.invalid(rt.kind, rt.group, name, errs)

    def _unknown_fields(self, rt, dropped, ctx):
        if not dropped:
            return
        if ctx.field_validation == "Strict":
            detail = ", ".join(f'unknown field "{d}"' for d in dropped)
            raise errors.bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as '
                                     f'a {rt.kind}: strict decoding error: {detail}')
        if ctx.field_validation == "Warn":
            ctx.warnings.extend(f'unknown field "{d}"' for d in dropped)

    # --- update --------------------------------------------------------------------------
    def update(self, rt, ns, name, body, ctx, subresource=""):
        if not isinstance(body, dict):
            raise errors.bad_request("Object 'Kind' is missing in request body")
        new = conversion.from_version(rt, json.loads(json.dumps(body)))
        with self.store.lock:
            entry = self.store.get(rt.storage_gr, ns, name)
            if entry is None:
                raise errors.not_found(rt.plural, rt.group, name)
            return self._update(rt, entry, new, ctx, subresource)

    def _update(self, rt, entry, new, ctx, subresource, managed=False):
        old = entry.obj
        md_old = old["metadata"]
        self._check_kind(rt, new)
        md = new.get("metadata")
        if not isinstance(md, dict):
            md = new["metadata"] = {}
        if md.get("name") and md["name"] != md_old["name"]:
            raise errors.bad_request(f"the name of the object ({md['name']}) does not match the "
                                     f"name on the URL ({md_old['name']})")
        if rt.namespaced and md.get("namespace") and md["namespace"] != md_old.get("namespace"):
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        rv = md.get("resourceVersion")
        if rv and rv != md_old["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, md_old["name"])

        if subresource == "status":
            status = new.get("status")
            new = json.loads(entry.raw)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            md = new["metadata"]
        elif rt.has_status and not subresource == "resize":
            if "status" in old:
                new["status"] = json.loads(json.dumps(old["status"]))
            else:
                new.pop("status", None)
        # immutable / server-owned metadata
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation"):
            if key in md_old:
                md[key] = md_old[key]
            else:
                md.pop(key, None)
        md.pop("selfLink", None)
        if rt.gr == ("", "pods"):
            if subresource == "resize":
                new["status"] = json.loads(json.dumps(old.get("status", {})))
                errs = builtin_types.pod_resize_errors(old, new)
            elif subresource == "status":
                errs = []
            else:
                errs = builtin_types.pod_update_errors(old, new)
            if errs:
                raise errors.invalid(rt.kind, rt.group, md["name"], errs)
        if subresource != "status":
            self._admit(rt, old, new, ctx)
        elif rt.crd and rt.schema():
            self._admit(rt, old, new, ctx)
        if rt.gr == CRD_GR:
            new["status"] = old.get("status", {})
            if subresource != "status":
                new["status"]["acceptedNames"] = dict(new["spec"]["names"])
        if "generation" in md_old and \
                _spec_view(old, rt.has_status) != _spec_view(new, rt.has_status):
            md["generation"] = md_old["generation"] + 1
        if not managed:
            managedfields.record_update(rt, typeinfo.for_resource(rt), old, new, ctx.manager(),
                                        rt.api_version(ctx.version), subresource)
        if rt.gr == DS_GR and not subresource and \
                (old.get("spec") or {}).get("template") != (new.get("spec") or {}).get("template"):
            ann = md.setdefault("annotations", {})
            try:
                generation = int((md_old.get("annotations") or {}).get(DS_TEMPLATE_GENERATION, 1))
            except ValueError:
                generation = 1
            ann[DS_TEMPLATE_GENERATION] = str(generation + 1)
        if rt.gr == ("", "pods") and subresource == "resize" and self.simulation is None:
            # without the simulation no kubelet acts on it: accept it at once
            _emulate_kubelet_resize(new)
        # a no-op write does not bump the resourceVersion
        md["resourceVersion"] = md_old["resourceVersion"]
        if new == old:
            return old
        if ctx.dry_run:
            return new
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            removed = self.store.remove(rt.storage_gr, md.get("namespace", ""), md["name"])
            self._after_delete(rt, removed)
            return removed.obj
        stored = self.store.put(rt.storage_gr, new)
        self._after_write(rt, entry, stored)
        return stored.obj

    # --- patch ---------------------------------------------------------------------------
    def patch(self, rt, ns, name, patch_type, body, ctx, subresource="", force=False):
        if patch_type == PATCH_APPLY:
            return self._apply(rt, ns, name, body, ctx, subresource, force)
        try:
            patch = json.loads(body or b"null")
        except ValueError as e:
            raise errors.bad_request(f"error decoding patch: {e}")
        if patch_type == PATCH_STRATEGIC and not typeinfo.for_resource(rt).smp_supported:
            raise errors.StatusError(
                415, "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {PATCH_JSON}, {PATCH_MERGE}, {PATCH_APPLY}", {})
        if patch_type in (PATCH_MERGE, PATCH_STRATEGIC) and not isinstance(patch, dict):
            raise errors.bad_request("json: cannot unmarshal array into Go value of type "
                                     "map[string]interface {}")
        with self.store.lock:
            entry = self.store.get(rt.storage_gr, ns, name)
            if entry is None:
                raise errors.not_found(rt.plural, rt.group, name)
            current = conversion.to_version(rt, json.loads(entry.raw), ctx.version)
            if subresource == "scale":
                current = scale_of(rt, current)
            patched = self._apply_patch(rt, current, patch, patch_type)
            if subresource == "scale":
                return self._write_scale(rt, entry, patched, ctx)
            patched = conversion.from_version(rt, patched)
            return self._update(rt, entry, patched, ctx, subresource)

    def _apply_patch(self, rt, current, patch, patch_type):
        if patch_type == PATCH_MERGE:
            return patches.merge_patch(current, patch)
        if patch_type == PATCH_JSON:
            try:
                return patches.json_patch(current, patch)
            except patches.JSONPatchError as e:
                raise patches.json_patch_error(e)
        if patch_type == PATCH_STRATEGIC:
            return patches.strategic_merge_patch(current, patch, typeinfo.for_resource(rt))
        raise errors.StatusError(415, "UnsupportedMediaType",
                                 f"the body of the request was in an unknown format - accepted "
                                 f"media types include: {PATCH_JSON}, {PATCH_MERGE}, "
                                 f"{PATCH_APPLY}, {PATCH_STRATEGIC}", {})

    def _apply(self, rt, ns, name, body, ctx, subresource, force):
        if not ctx.field_manager:
            raise errors.bad_request("PATCH /apply requires fieldManager to be set")
        try:
            applied = yaml.safe_load(body.decode() if isinstance(body, bytes) else body)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error decoding YAML: {e}")
        if not isinstance(applied, dict):
            raise errors.bad_request("invalid object type: expected an object")
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise errors.bad_request("Object 'Kind' is missing in '" + json.dumps(applied) + "'")
        if applied.get("apiVersion") != rt.api_version(ctx.version) or applied["kind"] != rt.kind:
            raise errors.bad_request(f"the API version in the data ({applied.get('apiVersion')}) "
                                     f"does not match the expected API version "
                                     f"({rt.api_version(ctx.version)})")
        amd = applied.setdefault("metadata", {})
        if amd.get("name") and amd["name"] != name:
            raise errors.bad_request(f"the name of the object ({amd['name']}) does not match "
                                     f"the name on the URL ({name})")
        amd["name"] = name
        if rt.namespaced:
            amd.setdefault("namespace", ns)
        if rt.crd and rt.schema():
            dropped = crdschema.prune(applied, rt.schema())
            self._unknown_fields(rt, dropped, ctx)
        ti = typeinfo.for_resource(rt)
        with self.store.lock:
            entry = self.store.get(rt.storage_gr, ns, name)
            if entry is None:
                if subresource:
                    raise errors.not_found(rt.plural, rt.group, name)
                merged = managedfields.server_side_apply(
                    rt, ti, {}, applied, ctx.field_manager, rt.api_version(ctx.version), force)
                obj = self.create(rt, ns, merged, ctx, managed=True)
                return obj
            live = conversion.to_version(rt, json.loads(entry.raw), ctx.version)
            rv = amd.get("resourceVersion")
            if rv and rv != live["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
            merged = managedfields.server_side_apply(
                rt, ti, live, applied, ctx.field_manager, rt.api_version(ctx.version), force,
                subresource)
            merged = conversion.from_version(rt, merged)
            return self._update(rt, entry, merged, ctx, subresource, managed=True)

    # --- scale subresource -----------------------------------------------------------------
    def get_scale(self, rt, ns, name):
        return scale_of(rt, self.get(rt, ns, name).obj)

    def update_scale(self, rt, ns, name, body, ctx):
        with self.store.lock:
            entry = self.store.get(rt.storage_gr, ns, name)
            if entry is None:
                raise errors.not_found(rt.plural, rt.group, name)
            return self._write_scale(rt, entry, body, ctx)

    def _write_scale(self, rt, entry, scale, ctx):
        replicas = (scale.get("spec") or {}).get("replicas")
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != entry.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, entry.obj["metadata"]["name"])
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", entry.obj["metadata"]["name"], [
                FieldError("FieldValueInvalid", "spec.replicas", replicas,
                           "must be greater than or equal to 0")])
        new = json.loads(entry.raw)
        _set_path(new, rt.scale["specReplicasPath"], replicas)
        obj = self._update(rt, entry, new, ctx, "scale")
        return scale_of(rt, obj)

    # --- delete --------------------------------------------------------------------------
    def delete(self, rt, ns, name, ctx, propagation=None, preconditions=None):
        with self.store.lock:
            entry = self.store.get(rt.storage_gr, ns, name)
            if entry is None:
                raise errors.not_found(rt.plural, rt.group, name)
            md = entry.obj["metadata"]
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise errors.conflict(rt.plural, rt.group, name,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, "
                                      f"UID in object meta: {md.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name,
                                      f"Precondition failed: ResourceVersion in precondition: "
                                      f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                      f"{md['resourceVersion']}")
            if rt.gr == NS_GR and name in ("default", "kube-system", "kube-public"):
                raise errors.forbidden_plain(rt.plural, rt.group, name,
                                             "this namespace may not be deleted")
            obj = json.loads(entry.raw)
            finalizers = list(obj["metadata"].get("finalizers") or [])
            if rt.gr == NS_GR:
                return self._delete_namespace(rt, entry, obj, ctx)
            if propagation == "Orphan":
                if not ctx.dry_run:
                    self.gc.orphan_dependents(md.get("uid"))
            elif propagation == "Foreground" and self.gc.has_dependents(md.get("uid")):
                if "foregroundDeletion" not in finalizers:
                    finalizers.append("foregroundDeletion")
            if finalizers:
                if md.get("deletionTimestamp"):
                    if finalizers == md.get("finalizers"):
                        return entry.obj
                obj["metadata"]["finalizers"] = finalizers
                obj["metadata"].setdefault("deletionTimestamp", now_rfc3339())
                obj["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                if "generation" in md and not md.get("deletionTimestamp"):
                    obj["metadata"]["generation"] = md["generation"] + 1
                if ctx.dry_run:
                    return obj
                stored = self.store.put(rt.storage_gr, obj)
                self._after_write(rt, entry, stored)
                if "foregroundDeletion" in finalizers:
                    self.gc.kick()
                return stored.obj
            if ctx.dry_run:
                return entry.obj
            removed = self.store.remove(rt.storage_gr, ns, name)
            self._after_delete(rt, removed)
            return removed.obj

    def _delete_namespace(self, rt, entry, obj, ctx):
        md = obj["metadata"]
        if md.get("deletionTimestamp"):
            return entry.obj
        md["deletionTimestamp"] = now_rfc3339()
        md["deletionGracePeriodSeconds"] = 0
        obj.setdefault("status", {})["phase"] = "Terminating"
        if ctx.dry_run:
            return obj
        stored = self.store.put(rt.storage_gr, obj)
        self.gc.terminate_namespace(md["name"])
        return stored.obj

    def finalize_namespace(self, name):
        """Called by the namespace controller once the namespace is empty."""
        with self.store.lock:
            entry = self.store.get(NS_GR, "", name)
            if entry is None:
                return
            if entry.obj["metadata"].get("finalizers"):
                return   # user finalizers still pending; wait for them
            removed = self.store.remove(NS_GR, "", name)
            self._after_delete(self.registry.get(*NS_GR), removed)

    def delete_collection(self, rt, ns, label_sel, field_sel, ctx, propagation=None):
        _, entries, _, _ = self.list(rt, ns, label_sel, field_sel)
        out = []
        for e in entries:
            md = e.obj["metadata"]
            try:
                out.append(self.delete(rt, md.get("namespace", ""), md["name"], ctx, propagation))
            except errors.StatusError as err:
                if err.code != 404:
                    raise
        return out

    # --- hooks -----------------------------------------------------------------------------
    def _after_write(self, rt, old_entry, entry):
        if rt.gr == CRD_GR:
            self._register_crd(entry.obj)
        elif rt.gr == NS_GR and old_entry is None:
            # the serviceaccount controller gives every namespace a "default" SA
            sa_rt = self.registry.get("", "serviceaccounts")
            name = entry.obj["metadata"]["name"]
            if self.store.get(sa_rt.gr, name, "default") is None:
                self.create(sa_rt, name, {"metadata": {"name": "default"}}, SYSTEM)

    def _after_delete(self, rt, removed):
        if rt.gr == CRD_GR and removed is not None:
            spec = removed.obj["spec"]
            gr = (spec["group"], spec["names"]["plural"])
            crt = self.registry.get(*gr)
            if crt is not None and crt.crd:
                for e in self.store.entries(gr):
                    md = e.obj["metadata"]
                    self.store.remove(gr, md.get("namespace", ""), md["name"])
                self.registry.remove(gr)

    def _register_crd(self, crd):
        rt = crds.resource_type(crd)
        old = self.registry.get(*rt.gr)
        if old is None or old.crd:
            self.registry.add(rt)


def _set_path(obj, path, value):
    parts = [p for p in path.strip(".").split(".") if p]
    node = obj
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def _get_path(obj, path):
    node = obj
    for p in [p for p in (path or "").strip(".").split(".") if p]:
        if not isinstance(node, dict):
            return None
        node = node.get(p)
    return node


def scale_of(rt, obj):
    from .selection import selector_object_to_string
    md = obj["metadata"]
    spec_path = rt.scale["specReplicasPath"]
    status_path = rt.scale.get("statusReplicasPath", ".status.replicas")
    sel_path = rt.scale.get("labelSelectorPath")
    if not rt.crd:
        selector = selector_object_to_string((obj.get("spec") or {}).get("selector"))
    else:
        selector = _get_path(obj, sel_path) if sel_path else None
    status = {"replicas": _get_path(obj, status_path) or 0}
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                        "creationTimestamp") if k in md},
        "spec": {"replicas": _get_path(obj, spec_path) or 0},
        "status": status,
    }


def _emulate_kubelet_resize(pod):
    """No kubelet runs here: accept an in-place resize at once, the way a
    kubelet with spare capacity would (container status reports new resources)."""
    status = pod.get("status") or {}
    wanted = {c.get("name"): c.get("resources") or {} for c in pod["spec"].get("containers") or []}
    for cs in status.get("containerStatuses") or []:
        res = wanted.get(cs.get("name"))
        if res is not None:
            cs["resources"] = json.loads(json.dumps(res))
            if res.get("requests"):
                cs["allocatedResources"] = dict(res["requests"])
    status.pop("resize", None)
    status["qosClass"] = builtin_types.qos_class(pod)
