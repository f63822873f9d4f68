"""Kubernetes Status errors: the exception type every layer raises, and the
constructors that reproduce the real API server's reasons and messages.

Field errors (FieldError) render exactly like k8s.io/apimachinery's
field.Error so 422 messages match what clients and humans expect.
"""
import json


class StatusError(Exception):
    """An error that is answered as a metav1.Status object."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_status(self):
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def qualified(resource, group):
    """'deployments.apps' or 'pods' (core group has no suffix)."""
    return f"{resource}.{group}" if group else resource


def _details(resource, group, name=None, **extra):
    details = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = resource
    details.update(extra)
    return details


def not_found(resource, group, name):
    return StatusError(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                       _details(resource, group, name))


def already_exists(resource, group, name):
    return StatusError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists',
                       _details(resource, group, name))


def conflict(resource, group, name, why="the object has been modified; please apply your "
                                       "changes to the latest version and try again"):
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
                       _details(resource, group, name))


def bad_request(message):
    return StatusError(400, "BadRequest", message)


def unauthorized():
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden_message(user, verb, resource, group, name, namespace, subresource=""):
    what = f"{resource}/{subresource}" if subresource else resource
    subject = qualified(resource, group)
    if name:
        subject += f' "{name}"'
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{what}" '
            f'in API group "{group}" {scope}')


def forbidden(user, verb, resource, group, name, namespace, subresource=""):
    return StatusError(403, "Forbidden",
                       forbidden_message(user, verb, resource, group, name, namespace, subresource),
                       _details(resource, group, name))


def forbidden_path(user, verb, path):
    return StatusError(403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path "{path}"', {})


def forbidden_plain(resource, group, name, why):
    return StatusError(403, "Forbidden", f'{qualified(resource, group)} "{name}" is forbidden: {why}',
                       _details(resource, group, name))


def method_not_allowed(message="the server does not allow this method on the requested resource"):
    return StatusError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(content_type):
    return StatusError(415, "UnsupportedMediaType",
                       f'the body of the request was in an unknown format - accepted media types '
                       f'include: application/json-patch+json, application/merge-patch+json, '
                       f'application/apply-patch+yaml', {})


def expired(message):
    return StatusError(410, "Expired", message)


def gone(message):
    return StatusError(410, "Gone", message)


def too_many_requests(retry_after=1):
    return StatusError(429, "TooManyRequests", "Too many requests, please try again later.",
                       {"retryAfterSeconds": retry_after}, {"Retry-After": str(retry_after)})


def internal(message):
    return StatusError(500, "InternalError", f"Internal error occurred: {message}",
                       {"causes": [{"message": message}]})


def service_unavailable(message="the server is currently unable to handle the request"):
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message):
    return StatusError(504, "Timeout", message)


# --- field errors -----------------------------------------------------------

_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}

# These types never print the offending value (mirrors field.Error.ErrorBody).
_NO_VALUE = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}


def go_value(value):
    """Format a value the way Go's %v / %q would in field.Error.ErrorBody."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class FieldError:
    def __init__(self, type_, field, value=None, detail=""):
        self.type = type_
        self.field = field
        self.value = value
        self.detail = detail

    def body(self):
        text = _TYPE_TEXT.get(self.type, "Invalid value")
        if self.type not in _NO_VALUE:
            text += ": " + go_value(self.value)
        if self.detail:
            text += ": " + self.detail
        return text

    def __str__(self):
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self):
        # the real server reports TypeInvalid as FieldValueInvalid in causes
        reason = "FieldValueInvalid" if self.type == "FieldValueTypeInvalid" else self.type
        return {"reason": reason, "message": self.body(), "field": self.field}


def required(field, detail=""):
    return FieldError("FieldValueRequired", field, None, detail)


def invalid_value(field, value, detail):
    return FieldError("FieldValueInvalid", field, value, detail)


def invalid(kind, group, name, errors):
    """422 Invalid for a list of FieldErrors, formatted like errors.NewInvalid."""
    qual = f"{kind}.{group}" if group else kind
    if len(errors) == 1:
        text = str(errors[0])
    else:
        text = "[" + ", ".join(str(e) for e in errors) + "]"
    details = {"name": name} if name else {}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [e.cause() for e in errors]
    return StatusError(422, "Invalid", f'{qual} "{name}" is invalid: {text}', details)
