"""The HTTP layer: a ThreadingHTTPServer (HTTP/1.1, keep-alive, optional TLS)
whose handler authenticates, authorizes, applies faults, dispatches to the
APIServer, negotiates the response format (JSON, Table, partial metadata),
streams watches with chunked encoding, and logs every request.

Watch streams wait on the store's condition variable and never hold the
store lock while writing to the socket.
"""
import json
import socket
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import (api as apimod, conversion, discovery, errors, reviews, routing, selection,
               tables)
from .authn import user_for_name
from .faults import Faults
from .openapi import OpenAPI
from .rbac import Attributes
from .reqlog import RequestLog
from .store import dumps

_TABLE = "as=table"
_PARTIAL = "as=partialobjectmetadata"
_DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_SUPPORTED_BODY = ("application/json", "application/yaml", "*/*", "")
_PATCH_TYPES = (apimod.PATCH_JSON, apimod.PATCH_MERGE, apimod.PATCH_STRATEGIC, apimod.PATCH_APPLY)


class Response(Exception):
    """Raised to short-circuit with a complete answer (code, body bytes, headers)."""

    def __init__(self, code, body, content_type="application/json", headers=None):
        super().__init__(code)
        self.code, self.body, self.content_type = code, body, content_type
        self.headers = headers or {}


class App:
    """Everything the handler needs; one per server."""

    def __init__(self, api, faults=None, reqlog=None, bookmark_interval=5.0,
                 default_watch_timeout=1800):
        self.api = api
        self.faults = faults or Faults()
        self.reqlog = reqlog or RequestLog()
        self.openapi = OpenAPI(api.registry)
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.server_address = "127.0.0.1:0"
        self.restarts = 0
        self.shutting_down = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tailor-apiserver/1.32"
    app = None   # set on the subclass created per server

    def log_message(self, fmt, *args):   # our own request log replaces stderr lines
        pass

    def do_GET(self):
        self._handle("GET")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_DELETE(self):
        self._handle("DELETE")

    # --- entry point ---------------------------------------------------------------------
    def _handle(self, method):
        app = self.app
        self._body = None
        info = routing.parse(method, self.path)
        user = None
        code = 500
        started = time.monotonic()
        try:
            user = self._authenticate(info)
            code = self._dispatch(method, info, user)
        except Response as r:
            code = r.code
            self._send(r.code, r.body, r.content_type, r.headers)
        except errors.StatusError as e:
            code = e.code
            self._send_status(e)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            code = 499
            self.close_connection = True
        except Exception as e:   # a bug must not kill the connection silently
            traceback.print_exc(file=sys.stderr)
            code = 500
            try:
                self._send_status(errors.internal(repr(e)))
            except OSError:
                self.close_connection = True
        finally:
            if not info.path.startswith("/debug/requests"):
                app.reqlog.add(user=user.name if user else "", verb=info.verb,
                               group=info.group, resource=info.resource,
                               subresource=info.subresource,
                               namespace=info.namespace if info.resource != "namespaces"
                               else "", name=info.name, code=code, method=method,
                               path=self.path.split("?")[0],
                               userAgent=self.headers.get("User-Agent", ""),
                               durationMs=round((time.monotonic() - started) * 1000, 2))

    def _authenticate(self, info):
        api = self.app.api
        user = api.authn.authenticate(self.headers.get("Authorization"))
        if user is None:
            if info.path in ("/healthz", "/livez", "/readyz", "/version", "/version/") and \
                    not self.headers.get("Authorization"):
                return user_for_name("system:anonymous", ["system:unauthenticated"])
            raise errors.unauthorized()
        imp = self.headers.get("Impersonate-User")
        if imp:
            groups = self.headers.get_all("Impersonate-Group") or []
            kind = "serviceaccounts" if imp.startswith("system:serviceaccount:") else "users"
            attrs = Attributes("impersonate", "", kind, name=imp)
            if kind == "serviceaccounts":
                ns, _, sa = imp[len("system:serviceaccount:"):].partition(":")
                attrs = Attributes("impersonate", "", kind, name=sa, namespace=ns)
            if not api.authz.allowed(user, attrs):
                raise errors.StatusError(403, "Forbidden",
                                         f'{kind} "{imp}" is forbidden: User "{user.name}" '
                                         f'cannot impersonate resource "{kind}" in API group "" '
                                         f'at the cluster scope', {"name": imp, "kind": kind})
            for g in groups:
                if not api.authz.allowed(user, Attributes("impersonate", "", "groups", name=g)):
                    raise errors.StatusError(403, "Forbidden",
                                             f'groups "{g}" is forbidden: User "{user.name}" '
                                             f'cannot impersonate resource "groups" in API group '
                                             f'"" at the cluster scope', {"name": g})
            user = user_for_name(imp, groups)
        return user

    # --- dispatch ------------------------------------------------------------------------
    def _dispatch(self, method, info, user):
        app = self.app
        path = info.path
        if path.startswith("/debug/"):
            return self._debug(method, info, user)
        if not info.resource_request:
            return self._non_resource(method, info, user)
        if app.faults.latency():
            time.sleep(app.faults.latency())
        code = app.faults.pick_error(info.verb)
        if code:
            self._read_body()
            if code == 429:
                raise errors.too_many_requests(1)
            if code == 503:
                raise errors.service_unavailable()
            if code == 504:
                raise errors.timeout("the request timed out (injected fault)")
            raise errors.internal("injected fault")
        return self._resource(method, info, user)

    def _authorize_path(self, user, path, verb="get"):
        attrs = Attributes(verb, path=path, resource_request=False)
        if not self.app.api.authz.allowed(user, attrs):
            raise errors.forbidden_path(user.name, verb, path)

    def _non_resource(self, method, info, user):
        app = self.app
        api = app.api
        path = info.path.rstrip("/") or "/"
        if method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        self._authorize_path(user, info.path)
        accept = self.headers.get("Accept", "")
        if path in ("/healthz", "/livez", "/readyz"):
            raise Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/version":
            return self._json(200, discovery.VERSION_INFO)
        if path == "/api":
            if "g=apidiscovery.k8s.io" in accept and "v=v2" in accept:
                return self._json(200, discovery.aggregated(api.registry, True),
                                  content_type=_DISCOVERY_V2)
            return self._json(200, discovery.api_versions(app.server_address))
        if path == "/apis":
            if "g=apidiscovery.k8s.io" in accept and "v=v2" in accept:
                return self._json(200, discovery.aggregated(api.registry, False),
                                  content_type=_DISCOVERY_V2)
            return self._json(200, discovery.api_group_list(api.registry))
        segs = path.strip("/").split("/")
        if segs[0] == "api" and len(segs) == 2:
            doc = discovery.resource_list(api.registry, "", segs[1])
            if doc:
                return self._json(200, doc)
        if segs[0] == "apis" and len(segs) == 2:
            doc = discovery.api_group(api.registry, segs[1])
            if doc:
                return self._json(200, doc)
        if segs[0] == "apis" and len(segs) == 3:
            doc = discovery.resource_list(api.registry, segs[1], segs[2])
            if doc:
                return self._json(200, doc)
        if path == "/openapi/v3":
            return self._json(200, app.openapi.root())
        if path.startswith("/openapi/v3/"):
            doc = app.openapi.document(path[len("/openapi/v3/"):])
            if doc is not None:
                headers = {"Cache-Control": "public, immutable"} if info.param("hash") else {}
                raise Response(200, doc, "application/json", headers)
        if path == "/openapi/v2":
            if "protobuf" in accept and "json" not in accept:
                from .openapi import V2_PROTOBUF, V2_PROTOBUF_TYPE
                raise Response(200, V2_PROTOBUF, V2_PROTOBUF_TYPE)
            return self._json(200, app.openapi.v2())
        raise errors.StatusError(404, "NotFound", "the server could not find the requested "
                                                  "resource", {})

    # --- debug endpoints ---------------------------------------------------------------------
    def _debug(self, method, info, user):
        if not user.is_admin:
            raise errors.forbidden_path(user.name, method.lower(), info.path)
        app = self.app
        path = info.path.rstrip("/")
        if path == "/debug/faults":
            if method == "POST":
                from . import faults as faultsmod
                try:
                    body = json.loads(self._read_body() or b"{}")
                    settings = faultsmod.normalize(body.get("faults", body)
                                                   if isinstance(body, dict) else {})
                except (ValueError, TypeError, AttributeError) as e:
                    raise errors.bad_request(f"bad fault settings: {e}")
                current = app.faults.update(settings, replace=bool(info.flag("replace")))
                if "watch-history" in settings:
                    app.api.store.set_history_size(settings["watch-history"])
                return self._json(200, current)
            return self._json(200, app.faults.settings)
        if path == "/debug/restart" and method == "POST":
            self._read_body()
            store = app.api.store
            with store.lock:
                store.drop_watchers("restart")
                store.clear_history()
                app.restarts += 1
            return self._json(200, {"restarted": True, "resourceVersion": str(store.rv),
                                    "restarts": app.restarts})
        if path == "/debug/requests" and method == "GET":
            return self._json(200, app.reqlog.records())
        if path == "/debug/requests/reset" and method == "POST":
            self._read_body()
            app.reqlog.reset()
            return self._json(200, {"reset": True})
        if path == "/debug/state" and method == "GET":
            store = app.api.store
            state = {"resourceVersion": str(store.rv), "watchers": store.watcher_count(),
                     "counts": {f"{g}/{r}": store.count((g, r))
                                for g, r in store.resource_types()}}
            if app.api.simulation is not None:
                state["simulation"] = app.api.simulation.debug_state()
            return self._json(200, state)
        raise errors.StatusError(404, "NotFound", "the server could not find the requested "
                                                  "resource", {})

    # --- resources -----------------------------------------------------------------------------
    def _resource(self, method, info, user):
        api = self.app.api
        rt = api.registry.lookup(info.group, info.version, info.resource)
        if rt is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested "
                                                      "resource", {})
        if info.subresource and info.subresource not in rt.subresources:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested "
                                                      "resource", {})
        verb = info.verb
        allowed_verbs = rt.verbs if not info.subresource else \
            discovery.SUBRESOURCES.get(info.subresource, (None, None, None, []))[3]
        if verb not in allowed_verbs:
            raise errors.method_not_allowed()
        ns = info.namespace if rt.namespaced else ""
        if rt.namespaced and not ns and verb not in ("list", "watch", "deletecollection") \
                and not rt.virtual:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested "
                                                      "resource", {})
        attrs = Attributes(verb, rt.group, rt.plural, info.subresource, info.name,
                           info.namespace if rt.namespaced or rt.gr == ("", "namespaces")
                           else "")
        if not api.authz.allowed(user, attrs):
            raise errors.forbidden(user.name, verb, rt.plural, rt.group, info.name,
                                   attrs.namespace, info.subresource)
        if rt.virtual:
            return self._virtual(method, info, user, rt, ns)
        ctx = self._context(info, user)
        if verb == "watch":
            return self._watch(info, rt, ns)
        if verb == "list":
            return self._list(info, rt, ns)
        if verb == "get":
            if info.subresource == "scale":
                return self._json(200, api.get_scale(rt, ns, info.name))
            entry = api.get(rt, ns, info.name)
            return self._object(200, rt, entry.obj, info, raw=entry.raw)
        if verb == "create":
            if info.name and not info.subresource:
                raise errors.method_not_allowed()     # POST goes to the collection
            body = self._decode_body()
            if info.subresource:
                return self._create_subresource(info, rt, ns, body, ctx)
            obj = api.create(rt, ns, body, ctx)
            return self._object(201, rt, obj, info, ctx=ctx)
        if verb == "update":
            body = self._decode_body()
            if info.subresource == "scale":
                return self._json(200, api.update_scale(rt, ns, info.name, body, ctx), ctx=ctx)
            obj = api.update(rt, ns, info.name, body, ctx, info.subresource)
            return self._object(200, rt, obj, info, ctx=ctx)
        if verb == "patch":
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype not in _PATCH_TYPES:
                raise errors.StatusError(
                    415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(_PATCH_TYPES)}", {})
            body = self._read_body()
            existed = api.store.get(rt.storage_gr, ns, info.name) is not None
            result = api.patch(rt, ns, info.name, ctype, body, ctx, info.subresource,
                               force=info.flag("force"))
            if info.subresource == "scale":
                return self._json(200, result, ctx=ctx)
            return self._object(200 if existed else 201, rt, result, info, ctx=ctx)
        if verb == "delete":
            if info.subresource:
                raise errors.method_not_allowed()
            opts = self._delete_options(info)
            obj = api.delete(rt, ns, info.name, ctx, opts.get("propagationPolicy"),
                             opts.get("preconditions"))
            return self._object(200, rt, obj, info, ctx=ctx)
        if verb == "deletecollection":
            opts = self._delete_options(info)
            lsel = selection.parse_label_selector(info.param("labelSelector"))
            fsel = selection.parse_field_selector(info.param("fieldSelector"), rt.storage_gr)
            items = api.delete_collection(rt, ns or None, lsel, fsel, ctx,
                                          opts.get("propagationPolicy"))
            body = {"kind": rt.list_kind, "apiVersion": rt.api_version(info.version),
                    "metadata": {"resourceVersion": str(api.store.rv)},
                    "items": [conversion.to_version(rt, o, info.version) for o in items]}
            return self._json(200, body, ctx=ctx)
        raise errors.method_not_allowed()

    def _context(self, info, user):
        dry = info.query.get("dryRun") or []
        if any(d not in ("All",) for d in dry):
            raise errors.bad_request(f"Invalid dry run value: {dry}")
        validation = info.param("fieldValidation")
        if validation and validation not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(f"fieldValidation must be one of Ignore, Warn, Strict")
        manager = info.param("fieldManager")
        if len(manager) > 128:
            raise errors.bad_request("fieldManager must be at most 128 characters")
        return apimod.Context(user=user, dry_run=bool(dry), field_manager=manager,
                              field_validation=validation,
                              user_agent=self.headers.get("User-Agent", ""),
                              version=info.version)

    def _delete_options(self, info):
        opts = {}
        raw = self._read_body()
        if raw and raw.strip():
            try:
                opts = json.loads(raw)
            except ValueError as e:
                raise errors.bad_request(f"error decoding DeleteOptions: {e}")
            if not isinstance(opts, dict):
                opts = {}
        if info.param("propagationPolicy"):
            opts["propagationPolicy"] = info.param("propagationPolicy")
        if info.query.get("dryRun"):
            opts["dryRun"] = info.query["dryRun"]
        policy = opts.get("propagationPolicy")
        if policy is None and opts.get("orphanDependents") is not None:
            policy = "Orphan" if opts["orphanDependents"] else "Background"
            opts["propagationPolicy"] = policy
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid("DeleteOptions", "", "", [errors.FieldError(
                "FieldValueNotSupported", "propagationPolicy", policy,
                'supported values: "Foreground", "Background", "Orphan", "nil"')])
        return opts

    def _create_subresource(self, info, rt, ns, body, ctx):
        api = self.app.api
        if rt.gr == ("", "pods") and info.subresource == "eviction":
            from .eviction import evict
            status = evict(api, ns, info.name, body, ctx)
            return self._json(201, status)
        if rt.gr == ("", "pods") and info.subresource == "binding":
            target = (body.get("target") or {}).get("name")
            if not target:
                raise errors.invalid("Binding", "", info.name, [errors.FieldError(
                    "FieldValueRequired", "target.name", None, "")])
            with api.store.lock:
                entry = api.get(rt, ns, info.name)
                pod = entry.copy()
                if pod["spec"].get("nodeName"):
                    raise errors.conflict(rt.plural, rt.group, info.name,
                                          f"pod {info.name} is already assigned to node "
                                          f"\"{pod['spec']['nodeName']}\"")
                pod["spec"]["nodeName"] = target
                api.store.put(rt.storage_gr, pod)
            return self._json(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                    "status": "Success", "code": 201})
        raise errors.method_not_allowed()

    def _virtual(self, method, info, user, rt, ns):
        api = self.app.api
        if rt.group == "metrics.k8s.io":
            return self._metrics(info, rt, ns)
        body = self._decode_body()
        if not isinstance(body, dict):
            raise errors.bad_request("Object 'Kind' is missing in request body")
        body.setdefault("apiVersion", rt.api_version())
        body.setdefault("kind", rt.kind)
        if rt.plural == "tokenreviews":
            result = reviews.token_review(api, body)
        elif rt.plural == "selfsubjectreviews":
            result = reviews.self_subject_review(user, body)
        elif rt.plural == "subjectaccessreviews":
            result = reviews.subject_access_review(api, body)
        elif rt.plural == "localsubjectaccessreviews":
            result = reviews.subject_access_review(api, body, ns)
        elif rt.plural == "selfsubjectaccessreviews":
            result = reviews.self_subject_access_review(api, user, body)
        elif rt.plural == "selfsubjectrulesreviews":
            result = reviews.self_subject_rules_review(api, user, body)
        else:
            raise errors.method_not_allowed()
        return self._json(201, result)

    def _metrics(self, info, rt, ns):
        api = self.app.api
        store = api.store
        lsel = selection.parse_label_selector(info.param("labelSelector"))
        if rt.plural == "pods":
            pods_gr = ("", "pods")
            if info.name:
                entry = store.get(pods_gr, ns, info.name)
                if entry is None or (entry.obj.get("status") or {}).get("phase") != "Running":
                    raise errors.not_found("pods", "metrics.k8s.io", info.name)
                return self._json(200, reviews.pod_metrics(api, entry.obj))
            with store.lock:
                entries = store.entries(pods_gr, ns or None)
            items = [reviews.pod_metrics(api, e.obj) for e in entries
                     if (e.obj.get("status") or {}).get("phase") == "Running"
                     and lsel.matches(e.obj["metadata"].get("labels"))]
            return self._json(200, {"kind": "PodMetricsList", "apiVersion":
                                    "metrics.k8s.io/v1beta1", "metadata": {}, "items": items})
        with store.lock:
            nodes = store.entries(("", "nodes"))
            pods = [e.obj for e in store.entries(("", "pods"))]
        by_node = {}
        for p in pods:
            by_node.setdefault((p.get("spec") or {}).get("nodeName"), []).append(p)
        if info.name:
            node = next((n.obj for n in nodes if n.obj["metadata"]["name"] == info.name), None)
            if node is None:
                raise errors.not_found("nodes", "metrics.k8s.io", info.name)
            return self._json(200, reviews.node_metrics(api, node, by_node.get(info.name, [])))
        items = [reviews.node_metrics(api, n.obj, by_node.get(n.obj["metadata"]["name"], []))
                 for n in nodes if lsel.matches(n.obj["metadata"].get("labels"))]
        return self._json(200, {"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                "metadata": {}, "items": items})

    # --- list & watch ------------------------------------------------------------------------
    def _selectors(self, info, rt):
        lsel = selection.parse_label_selector(info.param("labelSelector"))
        fsel = selection.parse_field_selector(info.param("fieldSelector"), rt.storage_gr)
        return lsel, fsel

    def _list(self, info, rt, ns):
        api = self.app.api
        lsel, fsel = self._selectors(info, rt)
        try:
            limit = int(info.param("limit") or 0)
        except ValueError:
            raise errors.bad_request("limit must be an integer")
        if info.flag("watch"):
            return self._watch(info, rt, ns)
        list_rv, entries, token, remaining = api.list(
            rt, ns, lsel, fsel, max(0, limit), info.param("continue"),
            info.param("resourceVersion"), info.param("resourceVersionMatch"))
        meta = {"resourceVersion": str(list_rv)}
        if token:
            meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        accept = self.headers.get("Accept", "").lower()
        if _TABLE in accept:
            objs = [self._convert(rt, e.obj, info.version) for e in entries]
            body = tables.table(rt, objs, info.version, info.param("includeObject") or
                                "Metadata", meta)
            return self._json(200, body)
        if _PARTIAL in accept:
            items = [tables.partial_metadata(self._convert(rt, e.obj, info.version))
                     for e in entries]
            return self._json(200, {"kind": "PartialObjectMetadataList",
                                    "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                                    "items": items})
        if conversion.needs_conversion(rt, info.version):
            raws = [dumps(self._convert(rt, e.obj, info.version)) for e in entries]
        else:
            raws = [e.raw for e in entries]
        head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version(info.version),
                      "metadata": meta})[:-1]
        body = b"".join([head, b',"items":[', b",".join(raws), b"]}"])
        raise Response(200, body)

    def _convert(self, rt, obj, version):
        if conversion.needs_conversion(rt, version):
            return conversion.to_version(rt, obj, version)
        return obj

    def _watch(self, info, rt, ns):
        app = self.app
        store = app.api.store
        lsel, fsel = self._selectors(info, rt)
        if info.name:   # legacy single-object watch: GET .../pods/NAME?watch=1
            fsel.reqs.append((selection._name, "=", info.name))
        rv_param = info.param("resourceVersion")
        initial = info.flag("sendInitialEvents")
        if initial and info.param("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.FieldError(
                "FieldValueForbidden", "sendInitialEvents", None,
                "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set "
                "to NotOlderThan")])
        rv = None
        if rv_param not in ("", "0"):
            try:
                rv = int(rv_param)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv_param}")
        try:
            timeout = float(info.param("timeoutSeconds") or app.default_watch_timeout)
        except ValueError:
            raise errors.bad_request("timeoutSeconds must be a number")
        bookmarks = info.flag("allowWatchBookmarks")
        accept = self.headers.get("Accept", "").lower()
        as_table = _TABLE in accept
        convert = conversion.needs_conversion(rt, info.version)
        expired = None
        watcher = None
        try:
            watcher = store.watch(rt.storage_gr, ns or None, lsel, fsel, rv, initial)
        except errors.StatusError as e:
            expired = e
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if expired is not None:
            self._chunk(dumps({"type": "ERROR", "object": expired.to_status()}) + b"\n")
            self._chunk(b"")
            return 200
        start = time.monotonic()
        deadline = start + timeout
        close_after = app.faults.close_watch_after()
        if close_after:
            deadline = min(deadline, start + close_after)
        next_bookmark = start + app.bookmark_interval
        first_table = True
        initial_pending = initial
        try:
            while not app.shutting_down:
                now = time.monotonic()
                if now >= deadline:
                    break
                close_after = app.faults.close_watch_after()
                if close_after and now >= start + close_after:
                    break
                wait = min(deadline - now, max(0.05, next_bookmark - now), 1.0)
                events, current_rv = store.next_events(watcher, wait)
                if events:
                    parts = []
                    for type_, obj, raw in events:
                        if as_table:
                            t = tables.table(rt, [self._convert(rt, obj, info.version)],
                                             info.version, info.param("includeObject")
                                             or "Metadata", {"resourceVersion":
                                                             obj["metadata"]["resourceVersion"]},
                                             headers=first_table)
                            first_table = False
                            parts.append(dumps({"type": type_, "object": t}))
                        elif convert:
                            parts.append(dumps({"type": type_, "object":
                                                self._convert(rt, obj, info.version)}))
                        else:
                            parts.append(b'{"type":"' + type_.encode() + b'","object":' + raw +
                                         b"}")
                    self._chunk(b"\n".join(parts) + b"\n")
                if initial_pending:
                    initial_pending = False
                    self._chunk(dumps(self._bookmark(rt, info, current_rv, True)) + b"\n")
                if watcher.closed:
                    break
                if bookmarks and time.monotonic() >= next_bookmark:
                    self._chunk(dumps(self._bookmark(rt, info, current_rv)) + b"\n")
                    next_bookmark = time.monotonic() + app.bookmark_interval
                elif not bookmarks and time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + app.bookmark_interval
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            store.unwatch(watcher)
        return 200

    def _bookmark(self, rt, info, rv, initial_end=False):
        md = {"resourceVersion": str(rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"type": "BOOKMARK", "object": {"kind": rt.kind,
                                               "apiVersion": rt.api_version(info.version),
                                               "metadata": md}}

    def _chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # --- bodies & responses -----------------------------------------------------------------
    def _read_body(self):
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self._body = b"".join(chunks)
            else:
                self._body = self.rfile.read(length) if length else b""
        return self._body

    def _decode_body(self):
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        raw = self._read_body()
        if "protobuf" in ctype:
            from . import protobuf
            try:
                return protobuf.decode(raw)
            except protobuf.ProtobufError as e:
                raise errors.StatusError(415, "UnsupportedMediaType",
                                         f"the body of the request was in an unknown format - "
                                         f"accepted media types include: application/json, "
                                         f"application/yaml ({e})", {})
        try:
            if ctype == "application/yaml":
                import yaml
                return yaml.safe_load(raw.decode())
            return json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            raise errors.bad_request(f"error decoding request body: {e}")
        except Exception as e:
            raise errors.bad_request(f"error decoding YAML: {e}")

    def _object(self, code, rt, obj, info, raw=None, ctx=None):
        accept = self.headers.get("Accept", "").lower()
        if _TABLE in accept and info.verb == "get":
            body = tables.table(rt, [self._convert(rt, obj, info.version)], info.version,
                                info.param("includeObject") or "Metadata",
                                {"resourceVersion": obj["metadata"].get("resourceVersion", "")})
            return self._json(code, body, ctx=ctx)
        if _PARTIAL in accept:
            return self._json(code, tables.partial_metadata(
                self._convert(rt, obj, info.version)), ctx=ctx)
        if conversion.needs_conversion(rt, info.version):
            return self._json(code, conversion.to_version(rt, obj, info.version), ctx=ctx)
        if raw is None:
            raw = dumps(obj)
        self._send(code, raw, "application/json", self._warning_headers(ctx))
        return code

    def _warning_headers(self, ctx):
        if ctx is None or not ctx.warnings:
            return {}
        return {"Warning": [f'299 - {json.dumps(w)}' for w in ctx.warnings]}

    def _json(self, code, obj, content_type="application/json", ctx=None):
        self._send(code, dumps(obj), content_type, self._warning_headers(ctx))
        return code

    def _send_status(self, err):
        headers = dict(err.headers)
        self._send(err.code, dumps(err.to_status()), "application/json", headers)

    def _send(self, code, body, content_type="application/json", headers=None):
        if self._body is None and self.command in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                self._read_body()   # drain so keep-alive stays in sync
            except OSError:
                pass
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", (headers or {}).pop("Cache-Control", "no-cache, private")
                         if headers else "no-cache, private")
        self.send_header("Audit-Id", f"{threading.get_ident():x}-{time.monotonic_ns():x}")
        for k, v in (headers or {}).items():
            for item in (v if isinstance(v, list) else [v]):
                self.send_header(k, item)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class APIHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app, port=0, tls_context=None):
        handler = type("BoundHandler", (Handler,), {"app": app})
        super().__init__(("127.0.0.1", port), handler)
        self.app = app
        self.tls_context = tls_context
        app.server_address = f"127.0.0.1:{self.server_address[1]}"

    def get_request(self):
        sock, addr = super().get_request()
        # answers are written as header + body; without NODELAY delayed ACKs add ~40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context is not None:
            # the handshake happens lazily in the handler thread, never in accept()
            sock = self.tls_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)

    @property
    def port(self):
        return self.server_address[1]

    def shutdown(self):
        self.app.shutting_down = True
        self.app.api.store.drop_watchers("shutdown")
        super().shutdown()
