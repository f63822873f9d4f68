"""OpenAPI v3 structural-schema handling for custom resources: pruning of
unknown fields, defaulting, and validation with Kubernetes-identical field
paths and messages (kube-openapi errors converted like apiextensions does).

x-kubernetes-validations (CEL) rules are accepted in schemas but NOT
evaluated; see docs/apiserver.md.
"""
import base64
import datetime
import json
import re
import uuid

from .errors import FieldError

_META_KEYS = ("apiVersion", "kind", "metadata")


def _child(path, name):
    return f"{path}.{name}" if path else name


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _preserve(schema):
    return bool(schema.get("x-kubernetes-preserve-unknown-fields")) or \
        bool(schema.get("x-kubernetes-embedded-resource"))


# --- pruning ----------------------------------------------------------------------------
def prune(obj, schema, root=True):
    """Drop fields not declared in the schema, in place.  Returns the list of
    dropped field paths (for fieldValidation=Strict/Warn)."""
    dropped = []
    if root and isinstance(obj, dict):
        for key in list(obj):
            if key in _META_KEYS:
                continue
            props = schema.get("properties") or {}
            if key in props:
                _prune(obj[key], props[key], key, dropped)
            elif not _preserve(schema):
                dropped.append(key)
                del obj[key]
        return dropped
    _prune(obj, schema, "", dropped)
    return dropped


def _prune(value, schema, path, dropped):
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        for key in list(value):
            child = _child(path, key)
            if props and key in props:
                _prune(value[key], props[key], child, dropped)
            elif isinstance(addl, dict):
                _prune(value[key], addl, child, dropped)
            elif addl is True or _preserve(schema) or schema.get("x-kubernetes-int-or-string"):
                continue
            elif props is not None or schema.get("type") == "object":
                dropped.append(child)
                del value[key]
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune(item, items, f"{path}[{i}]", dropped)


# --- defaulting -------------------------------------------------------------------------
def apply_defaults(value, schema):
    """Fill in `default`s of missing properties, top-down, in place."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = json.loads(json.dumps(sub["default"]))
            if key in value:
                apply_defaults(value[key], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for key in value:
                if key not in (schema.get("properties") or {}):
                    apply_defaults(value[key], addl)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


# --- validation -------------------------------------------------------------------------
def validate(obj, schema):
    """Validate a whole custom resource; returns a list of FieldError."""
    errs = []
    props = schema.get("properties") or {}
    for key, sub in props.items():
        if key in _META_KEYS:
            continue
        if key in obj:
            _validate(obj[key], sub, key, errs)
    for req in schema.get("required") or []:
        if req not in obj and req not in _META_KEYS:
            errs.append(FieldError("FieldValueRequired", req, None, ""))
    return errs


def _invalid(errs, path, value, detail):
    errs.append(FieldError("FieldValueInvalid", path, value, detail))


def _num(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _validate(value, schema, path, errs):
    if not isinstance(schema, dict):
        return
    if value is None:
        if schema.get("nullable") or _preserve(schema) and "type" not in schema:
            return
        want = schema.get("type") or "object"
        errs.append(FieldError("FieldValueTypeInvalid", path, "null",
                               f'{path} in body must be of type {want}: "null"'))
        return
    int_or_string = schema.get("x-kubernetes-int-or-string")
    want = schema.get("type")
    actual = _type_name(value)
    if int_or_string:
        if actual not in ("integer", "string"):
            errs.append(FieldError("FieldValueTypeInvalid", path, actual,
                                   f'{path} in body must be of type integer,string: "{actual}"'))
            return
    elif want and not (want == actual or (want == "number" and actual == "integer")):
        errs.append(FieldError("FieldValueTypeInvalid", path, actual,
                               f'{path} in body must be of type {want}: "{actual}"'))
        return

    if "enum" in schema and value not in schema["enum"]:
        values = [v if isinstance(v, str) else json.dumps(v) for v in schema["enum"]]
        errs.append(FieldError("FieldValueNotSupported", path, value,
                               "supported values: " + ", ".join(json.dumps(v) for v in values)))

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(value, schema, path, errs)
    elif isinstance(value, str):
        _validate_string(value, schema, path, errs)
    elif isinstance(value, list):
        _validate_array(value, schema, path, errs)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, errs)

    for sub in schema.get("allOf") or []:
        _validate(value, _merge_type(sub, schema), path, errs)
    any_of = schema.get("anyOf")
    if any_of and not int_or_string:
        if not any(not _collect(value, _merge_type(s, schema), path) for s in any_of):
            _invalid(errs, path, value, f"{path} in body must match at least one schema in anyOf")
    one_of = schema.get("oneOf")
    if one_of:
        ok = sum(1 for s in one_of if not _collect(value, _merge_type(s, schema), path))
        if ok != 1:
            _invalid(errs, path, value, f"{path} in body must validate one and only one schema "
                                        f"(oneOf)")
    if isinstance(schema.get("not"), dict) and not _collect(value, schema["not"], path):
        _invalid(errs, path, value, f"{path} in body must not validate the schema (not)")


def _merge_type(sub, parent):
    # sub-schemas in anyOf/allOf inherit nothing; give them the parent type for
    # value-validations so `- minimum: 1` style entries work
    if "type" not in sub and "type" in parent:
        return {**sub, "type": parent["type"]}
    return sub


def _collect(value, schema, path):
    errs = []
    _validate(value, schema, path, errs)
    return errs


def _validate_number(value, schema, path, errs):
    shown = _num(value)
    if "maximum" in schema:
        mx = _num(schema["maximum"])
        if schema.get("exclusiveMaximum") and value >= mx:
            _invalid(errs, path, shown, f"{path} in body should be less than {mx}")
        elif value > mx:
            _invalid(errs, path, shown, f"{path} in body should be less than or equal to {mx}")
    if "minimum" in schema:
        mn = _num(schema["minimum"])
        if schema.get("exclusiveMinimum") and value <= mn:
            _invalid(errs, path, shown, f"{path} in body should be greater than {mn}")
        elif value < mn:
            _invalid(errs, path, shown, f"{path} in body should be greater than or equal to {mn}")
    if "multipleOf" in schema and schema["multipleOf"]:
        q = value / schema["multipleOf"]
        if abs(q - round(q)) > 1e-9:
            _invalid(errs, path, shown,
                     f"{path} in body should be a multiple of {_num(schema['multipleOf'])}")
    fmt = schema.get("format")
    if fmt == "int32" and not -2**31 <= value < 2**31 or fmt == "int64" and not -2**63 <= value < 2**63:
        errs.append(FieldError("FieldValueTypeInvalid", path, shown,
                               f'{path} in body must be of type {fmt}: "{shown}"'))


_FORMATS = {
    "date-time": lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")),
    "date": lambda s: datetime.date.fromisoformat(s),
    "uuid": lambda s: uuid.UUID(s),
    "byte": lambda s: base64.b64decode(s, validate=True),
    "duration": lambda s: _go_duration(s),
}


def _go_duration(s):
    if not re.fullmatch(r"[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+|0", s):
        raise ValueError(s)


def _validate_string(value, schema, path, errs):
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errs.append(FieldError("FieldValueTooLong", path, value,
                               f"may not be longer than {schema['maxLength']}"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        _invalid(errs, path, value, f"{path} in body should be at least {schema['minLength']} "
                                    f"chars long")
    if "pattern" in schema:
        try:
            ok = re.search(schema["pattern"], value) is not None
        except re.error:
            ok = True   # an RE2 construct Python lacks: do not reject the object
        if not ok:
            _invalid(errs, path, value, f"{path} in body should match '{schema['pattern']}'")
    fmt = schema.get("format")
    if fmt in _FORMATS:
        try:
            _FORMATS[fmt](value)
        except (ValueError, TypeError):
            errs.append(FieldError("FieldValueTypeInvalid", path, value,
                                   f'{path} in body must be of type {fmt}: "{value}"'))


def _validate_array(value, schema, path, errs):
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errs.append(FieldError("FieldValueTooMany", path, len(value),
                               f"must have at most {schema['maxItems']} items"))
    if "minItems" in schema and len(value) < schema["minItems"]:
        _invalid(errs, path, len(value), f"{path} in body should have at least "
                                         f"{schema['minItems']} items")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", errs)
    list_type = schema.get("x-kubernetes-list-type")
    if schema.get("uniqueItems") or list_type == "set":
        seen = []
        for i, item in enumerate(value):
            if item in seen:
                errs.append(FieldError("FieldValueDuplicate", f"{path}[{i}]", item, ""))
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            k = {key: item.get(key) for key in keys if key in item}
            if k in seen:
                errs.append(FieldError("FieldValueDuplicate", f"{path}[{i}]", k, ""))
            seen.append(k)


def _validate_object(value, schema, path, errs):
    props = schema.get("properties") or {}
    for req in schema.get("required") or []:
        if req not in value:
            errs.append(FieldError("FieldValueRequired", _child(path, req), None, ""))
    for key, sub in props.items():
        if key in value:
            _validate(value[key], sub, _child(path, key), errs)
    addl = schema.get("additionalProperties")
    if isinstance(addl, dict):
        for key, item in value.items():
            if key not in props:
                _validate(item, addl, _child(path, key), errs)
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errs.append(FieldError("FieldValueTooMany", path, len(value),
                               f"must have at most {schema['maxProperties']} items"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        _invalid(errs, path, len(value), f"{path} in body should have at least "
                                         f"{schema['minProperties']} properties")
