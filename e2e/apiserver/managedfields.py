"""Field ownership (metadata.managedFields) and server-side apply.

Field paths are tuples of elements:
  ("f", name)        a struct/map field              -> "f:name"
  ("k", json-of-key)  an item of an associative list  -> 'k:{"name":"c"}'
  ("v", json-value)   an item of a set list           -> 'v:"x"'
  ("i", index)        an item of an atomic list (rare) -> "i:0"
A field set is a Python set of such paths; it is serialized to the real
fieldsV1 format (nested dicts, "." marking a member that has children).

This mirrors sigs.k8s.io/structured-merge-diff closely enough for conflict
detection, shared ownership and removal of fields dropped from an applier's
configuration; see docs/apiserver.md for the differences.
"""
import copy
import datetime
import functools
import json

from . import errors

# Fields that are never tracked (the real server strips the same set).
_STRIPPED_META = {"name", "namespace", "creationTimestamp", "selfLink", "uid", "generation",
                  "managedFields", "resourceVersion", "deletionTimestamp",
                  "deletionGracePeriodSeconds"}
_DEFAULT_KEYS = {"protocol": "TCP"}


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canon(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _item_key(item, keys):
    vals = {}
    for k in keys:
        if isinstance(item, dict) and k in item:
            vals[k] = item[k]
        elif k in _DEFAULT_KEYS:
            vals[k] = _DEFAULT_KEYS[k]
    return _canon(vals)


# --- building field sets -----------------------------------------------------------
def field_set(obj, ti, scope="main"):
    """The set of field paths present in obj.  scope: 'main' (status excluded
    when the type has a status subresource -> caller passes 'nostatus'),
    'status' (only .status), or 'all'."""
    out = set()
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if scope == "nostatus" and key == "status":
            continue
        if scope == "status" and key != "status":
            continue
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _STRIPPED_META}
            if scope == "status":
                continue
            _walk_map(meta, ti, (("f", "metadata"),), ("metadata",), out, "struct")
            continue
        _walk_value(value, ti, (("f", key),), (key,), out)
    return out


def _walk_value(value, ti, path, names, out):
    if value is None:
        out.add(path)
    elif isinstance(value, dict):
        kind = ti.map_kind(names)
        if kind == "atomic" or not value:
            out.add(path)
        else:
            if kind == "map":
                out.add(path)
            _walk_map(value, ti, path, names, out, kind)
    elif isinstance(value, list):
        list_type, keys = ti.list_info(names)
        if list_type == "atomic":
            out.add(path)
        elif list_type == "set":
            for item in value:
                out.add(path + (("v", _canon(item)),))
        else:
            for item in value:
                ip = path + (("k", _item_key(item, keys)),)
                out.add(ip)
                if isinstance(item, dict):
                    _walk_map(item, ti, ip, names, out, "struct")
    else:
        out.add(path)


def _walk_map(value, ti, path, names, out, kind):
    for k, v in value.items():
        _walk_value(v, ti, path + (("f", k),), names + (k,), out)


# --- fieldsV1 (de)serialization --------------------------------------------------------
def _elem_str(el):
    kind, v = el
    return f"{kind}:{v}"


def to_fields_v1(paths):
    root = {}
    for path in paths:
        node = root
        for kind, v in path:
            node = node.setdefault(f"{kind}:{v}", {})
        node["."] = None
    return _finish(root)


def _finish(node):
    """Sort keys like Go's map encoding; '.' marks a member only where it has children."""
    keys = sorted(k for k in node if k != ".")
    out = {".": {}} if "." in node and keys else {}
    for k in keys:
        out[k] = _finish(node[k])
    return out


def from_fields_v1(fields, prefix=()):
    out = set()
    for k, v in (fields or {}).items():
        if k == ".":
            out.add(prefix)
            continue
        kind, _, rest = k.partition(":")
        el = (kind, int(rest) if kind == "i" else rest)
        path = prefix + (el,)
        if not v:
            out.add(path)
        else:
            out |= from_fields_v1(v, path)
    return out


def path_string(path):
    parts = []
    for kind, v in path:
        if kind == "f":
            parts.append("." + v)
        elif kind == "k":
            keys = json.loads(v)
            parts.append("[" + ",".join(f"{k}={_canon(keys[k])}" for k in sorted(keys)) + "]")
        elif kind == "v":
            parts.append(f"[={v}]")
        else:
            parts.append(f"[{v}]")
    return "".join(parts)


# --- navigating objects by path -------------------------------------------------------
_MISSING = object()


@functools.lru_cache(maxsize=65536)
def _decoded(v):
    """json.loads of a `k:`/`v:` element, cached (callers only read the result)."""
    return json.loads(v)


def _find_item(lst, kind, v, ti_keys=None):
    if kind == "k":
        want = _decoded(v)
        for i, item in enumerate(lst):
            if isinstance(item, dict) and all(
                    item.get(k, _DEFAULT_KEYS.get(k)) == val for k, val in want.items()):
                return i
    elif kind == "v":
        want = _decoded(v)
        for i, item in enumerate(lst):
            if item == want:
                return i
    elif kind == "i" and 0 <= int(v) < len(lst):
        return int(v)
    return None


def value_at(obj, path):
    node = obj
    for kind, v in path:
        if kind == "f":
            if not isinstance(node, dict) or v not in node:
                return _MISSING
            node = node[v]
        else:
            if not isinstance(node, list):
                return _MISSING
            i = _find_item(node, kind, v)
            if i is None:
                return _MISSING
            node = node[i]
    return node


def remove_path(obj, path):
    if not path:
        return
    parent = value_at(obj, path[:-1])
    kind, v = path[-1]
    if kind == "f":
        if isinstance(parent, dict):
            parent.pop(v, None)
    elif isinstance(parent, list):
        i = _find_item(parent, kind, v)
        if i is not None:
            parent.pop(i)


def _is_container(value):
    return isinstance(value, dict) and bool(value)


def changed_paths(old, new, paths):
    """Paths of `paths` whose value differs between old and new.  Non-empty
    maps and list items count as changed only if they appear or disappear."""
    out = set()
    for p in paths:
        a, b = value_at(old, p), value_at(new, p)
        if a is _MISSING or b is _MISSING:
            if a is not b:
                out.add(p)
        elif _is_container(a) and _is_container(b):
            continue
        elif a != b or type(a) is not type(b):
            out.add(p)
    return out


# --- merge for apply -------------------------------------------------------------------
def apply_merge(live, applied, ti, names=()):
    if isinstance(applied, dict) and isinstance(live, dict) and ti.map_kind(names) != "atomic":
        out = dict(live)
        for k, v in applied.items():
            if v is None:
                out.pop(k, None)
            elif k in live:
                out[k] = apply_merge(live[k], v, ti, names + (k,))
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        list_type, keys = ti.list_info(names)
        if list_type == "map":
            out = list(live)
            for item in applied:
                k = _item_key(item, keys)
                i = _find_item(out, "k", k)
                if i is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[i] = apply_merge(out[i], item, ti, names)
            return out
        if list_type == "set":
            out = list(live)
            for item in applied:
                if item not in out:
                    out.append(copy.deepcopy(item))
            return out
    return copy.deepcopy(applied)


# --- managers -------------------------------------------------------------------------
class Manager:
    """One managedFields entry, decoded."""

    def __init__(self, manager, operation, api_version, fields, subresource="", time=None,
                 raw=None):
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.fields = fields
        self.subresource = subresource
        self.time = time or now_rfc3339()
        # the entry this was decoded from, reused by encode() while nothing changed
        # (stored objects are immutable, so sharing it is safe)
        self._raw = raw
        self._raw_fields = fields
        self._raw_time = self.time

    def ident(self):
        # appliers are identified without apiVersion, updaters with it (as upstream)
        av = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, self.subresource, av)

    def describe(self):
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def encode(self):
        if self._raw is not None and self.time == self._raw_time and \
                (self.fields is self._raw_fields or self.fields == self._raw_fields):
            return self._raw
        entry = {"manager": self.manager, "operation": self.operation,
                 "apiVersion": self.api_version, "time": self.time,
                 "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.fields)}
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


_ENTRY_KEYS = {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1",
               "subresource"}


def decode(entries):
    out = []
    for e in entries or []:
        if not isinstance(e, dict):
            continue
        raw = e if e.get("fieldsType", "FieldsV1") == "FieldsV1" and \
            set(e) <= _ENTRY_KEYS else None
        out.append(Manager(e.get("manager", ""), e.get("operation", "Update"),
                           e.get("apiVersion", ""), from_fields_v1(e.get("fieldsV1")),
                           e.get("subresource", ""), e.get("time"), raw))
    return out


def encode(managers):
    return [m.encode() for m in managers if m.fields]


def _scope(rt, subresource):
    if subresource == "status":
        return "status"
    return "nostatus" if rt.has_status else "all"


def _find(managers, ident):
    for m in managers:
        if m.ident() == ident:
            return m
    return None


def record_update(rt, ti, old, new, manager, api_version, subresource=""):
    """Non-apply write: manager takes ownership of every added/changed field.
    Sets new['metadata']['managedFields']."""
    scope = _scope(rt, subresource)
    incoming = new.get("metadata", {}).get("managedFields")
    base = incoming if incoming and not subresource and old is not None and \
        incoming != old.get("metadata", {}).get("managedFields") else \
        (old or {}).get("metadata", {}).get("managedFields")
    managers = decode(base)
    new_set = field_set(new, ti, scope)
    if old is None:
        touched, removed = new_set, set()
    else:
        old_set = field_set(old, ti, scope)
        touched = (new_set - old_set) | changed_paths(old, new, new_set & old_set)
        removed = old_set - new_set
    sub = subresource if subresource in ("status", "scale", "resize") else ""
    me_ident = (manager, "Update", sub, api_version)
    for m in managers:
        if m.ident() != me_ident:
            m.fields = m.fields - touched - removed
    me = _find(managers, me_ident)
    if me is None:
        if touched:
            managers.append(Manager(manager, "Update", api_version, set(touched), sub))
    else:
        me.fields = (me.fields | touched) - removed
        if touched:
            me.time = now_rfc3339()
    new.setdefault("metadata", {})["managedFields"] = encode(managers)
    if not new["metadata"]["managedFields"]:
        del new["metadata"]["managedFields"]


def server_side_apply(rt, ti, live, applied, manager, api_version, force, subresource=""):
    """Returns the new object (with managedFields) or raises a 409 apply conflict."""
    scope = _scope(rt, subresource)
    live = live or {}
    managers = decode(live.get("metadata", {}).get("managedFields"))
    applied_set = field_set(applied, ti, scope)
    me_ident = (manager, "Apply", subresource, "")
    me = _find(managers, me_ident)
    previous = me.fields if me else set()

    merged = apply_merge(live, _scoped(applied, scope), ti)
    merged["apiVersion"] = live.get("apiVersion", applied.get("apiVersion"))
    merged["kind"] = live.get("kind", applied.get("kind"))
    changed = changed_paths(live, merged, applied_set)

    conflicts = []
    for m in managers:
        if m is me:
            continue
        for p in sorted(m.fields & changed, key=lambda p: [_elem_str(e) for e in p]):
            conflicts.append((m, p))
    if conflicts and not force:
        raise conflict_error(conflicts, rt)
    for m, p in conflicts:
        m.fields = m.fields - {p}

    # fields this applier dropped from its config and nobody else owns go away
    others = set()
    for m in managers:
        if m is not me:
            others |= m.fields
    keep = others | applied_set
    doomed = previous - keep
    # parents first: a parent kept for someone else's descendants is skipped, its
    # other children still go; key fields of a surviving list item always stay
    for p in sorted(doomed, key=len):
        if any(q[:len(p)] == p and len(q) > len(p) for q in keep):
            continue
        if len(p) >= 2 and p[-2][0] == "k" and p[-1][0] == "f" and \
                p[-1][1] in json.loads(p[-2][1]):
            continue
        remove_path(merged, p)

    if me is None:
        me = Manager(manager, "Apply", api_version, set(), subresource)
        managers.append(me)
    me.fields = applied_set
    me.api_version = api_version
    me.time = now_rfc3339()
    merged.setdefault("metadata", {})["managedFields"] = encode(managers)
    return merged


def _scoped(applied, scope):
    if scope == "nostatus":
        return {k: v for k, v in applied.items() if k != "status"}
    if scope == "status":
        return {"status": applied.get("status", {})}
    return applied


def conflict_error(conflicts, rt):
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {m.describe()}",
               "field": path_string(p)} for m, p in conflicts]
    if len(conflicts) == 1:
        m, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {m.describe()}: {path_string(p)}"
    else:
        by_manager = {}
        for m, p in conflicts:
            by_manager.setdefault(m.describe(), []).append(path_string(p))
        lines = []
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {p}" for p in by_manager[who])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return errors.StatusError(409, "Conflict", message, {"causes": causes})
