"""The three non-apply patch formats: JSON merge patch (RFC 7386), JSON patch
(RFC 6902) and Kubernetes strategic merge patch (merge keys, $patch,
$retainKeys, $setElementOrder, $deleteFromPrimitiveList).

All functions are pure: they return new documents and never mutate inputs.
Failures raise StatusError with the codes the real server uses.
"""
import copy
import json

from . import errors


# --- RFC 7386 ---------------------------------------------------------------------
def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 ---------------------------------------------------------------------
class JSONPatchError(Exception):
    pass


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer):
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise JSONPatchError(f"JSON pointer must start with '/': {pointer!r}")
    return [_unescape(t) for t in pointer[1:].split("/")]


def _parent(doc, tokens, pointer):
    node = doc
    for tok in tokens[:-1]:
        if isinstance(node, dict):
            if tok not in node:
                raise JSONPatchError(f'doc is missing path: "{pointer}": missing value')
            node = node[tok]
        elif isinstance(node, list):
            try:
                node = node[int(tok)]
            except (ValueError, IndexError):
                raise JSONPatchError(f'doc is missing path: "{pointer}": missing value')
        else:
            raise JSONPatchError(f'doc is missing path: "{pointer}": missing value')
    return node


def _get(doc, pointer):
    tokens = _split(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        try:
            return parent[int(last)]
        except (ValueError, IndexError):
            pass
    raise JSONPatchError(f'doc is missing path: "{pointer}": missing value')


def _index(parent, tok, pointer, allow_end):
    if tok == "-" and allow_end:
        return len(parent)
    try:
        i = int(tok)
    except ValueError:
        raise JSONPatchError(f'doc is missing path: "{pointer}": missing value')
    if i < 0 or i > len(parent) or (i == len(parent) and not allow_end):
        raise JSONPatchError(f"Unable to access invalid index: {i}: invalid index referenced")
    return i


def _add(doc, pointer, value):
    tokens = _split(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, True), value)
    else:
        raise JSONPatchError(f'doc is missing path: "{pointer}": missing value')
    return doc


def _remove(doc, pointer):
    tokens = _split(pointer)
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise JSONPatchError(f'remove operation does not apply: doc is missing path: '
                                 f'"{pointer}": missing value')
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, pointer, False))
    raise JSONPatchError(f'doc is missing path: "{pointer}": missing value')


def json_patch(doc, ops):
    """Apply RFC 6902 operations; JSONPatchError on failure (-> 422)."""
    if not isinstance(ops, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type "
                                 "jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise errors.bad_request("Unexpected kind: <nil>")
        kind, path = op["op"], op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            tokens = _split(path)
            if not tokens:
                doc = copy.deepcopy(op.get("value"))
            else:
                parent = _parent(doc, tokens, path)
                if isinstance(parent, list):
                    parent[_index(parent, tokens[-1], path, False)] = copy.deepcopy(op.get("value"))
                else:
                    parent[tokens[-1]] = copy.deepcopy(op.get("value"))
        elif kind == "move":
            value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op.get("from", ""))))
        elif kind == "test":
            try:
                actual = _get(doc, path)
            except JSONPatchError:
                actual = None
            if actual != op.get("value") or type(actual) is bool and type(op.get("value")) is not bool:
                raise JSONPatchError(f"testing value {path} failed: test failed")
        else:
            raise errors.bad_request(f"Unexpected kind: {kind}")
    return doc


def json_patch_error(exc):
    """The real server answers failed JSON patches with 422 and the detail as a cause."""
    return errors.StatusError(422, "Invalid",
                              "the server rejected our request due to an error in our request",
                              {"causes": [{"reason": "UnexpectedServerResponse",
                                           "message": str(exc)}]})


# --- strategic merge patch ---------------------------------------------------------
_DELETE = object()


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value
                if not (isinstance(v, dict) and v.get("$patch") in ("delete", "replace")
                        and len(v) == 1)]
    return value


def strategic_merge_patch(original, patch, typeinfo):
    result = _smp_map(original, patch, typeinfo, ())
    return {} if result is _DELETE else result


def _smp_map(original, patch, ti, path):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive is not None:
        raise errors.bad_request(f"Unknown patch type: {directive} in map: {json.dumps(patch)}")
    result = dict(original) if isinstance(original, dict) else {}
    orders = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = path + (key,)
        if isinstance(value, dict):
            merged = _smp_map(result.get(key), value, ti, child)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(result.get(key), value, ti, child)
        else:
            result[key] = value
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain or k in patch}
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _reorder(result[field], order, ti.smp(path + (field,))[0])
    return result


def _smp_list(original, patch, ti, path):
    original = original if isinstance(original, list) else []
    key, strategy = ti.smp(path)
    if "merge" not in strategy:
        return _strip_directives(patch)
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return _strip_directives([i for i in patch
                                  if not (isinstance(i, dict) and i.get("$patch") == "replace")])
    if key is None:   # list of primitives: union, keeping existing order
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    result = [copy.deepcopy(i) for i in original]
    for item in patch:
        if not isinstance(item, dict):
            raise errors.bad_request(f"merging an object in json but data type is not map: {item!r}")
        if key not in item:
            raise errors.bad_request(f"map: {json.dumps(item)} does not contain declared merge "
                                     f"key: {key}")
        pos = next((i for i, o in enumerate(result)
                    if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if pos is not None:
                result.pop(pos)
            continue
        if pos is None:
            result.append(_strip_directives(item))
        else:
            merged = _smp_map(result[pos], item, ti, path)
            if merged is _DELETE:
                result.pop(pos)
            else:
                result[pos] = merged
    return result


def _reorder(items, order, key):
    def ident(v):
        return v.get(key) if key and isinstance(v, dict) else json.dumps(v, sort_keys=True)
    wanted = [ident(o) for o in order]
    ranked = {w: i for i, w in enumerate(wanted)}
    indexed = list(enumerate(items))
    indexed.sort(key=lambda p: (ranked.get(ident(p[1]), len(wanted) + p[0])))
    return [v for _, v in indexed]
