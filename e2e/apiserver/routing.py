"""URL parsing: turns a Kubernetes REST path plus method into request
attributes (verb, group, version, resource, namespace, name, subresource),
the same decomposition the real server's RequestInfoFactory performs.
"""
from urllib.parse import parse_qs, unquote, urlsplit

_NAMESPACE_SUBRESOURCES = ("status", "finalize")


class RequestInfo:
    def __init__(self):
        self.resource_request = False
        self.path = "/"
        self.query = {}
        self.verb = ""
        self.group = ""
        self.version = ""
        self.resource = ""
        self.subresource = ""
        self.namespace = ""
        self.name = ""
        self.legacy_watch = False

    def param(self, key, default=""):
        values = self.query.get(key)
        return values[-1] if values else default

    def flag(self, key):
        return self.param(key).lower() in ("1", "true", "t", "yes")

    def __repr__(self):
        return (f"<RequestInfo {self.verb} {self.group}/{self.version}/{self.resource}"
                f"/{self.subresource} ns={self.namespace} name={self.name}>")


def parse(method, raw_path):
    info = RequestInfo()
    parts = urlsplit(raw_path)
    info.path = parts.path or "/"
    info.query = parse_qs(parts.query, keep_blank_values=True)
    segs = [unquote(s) for s in info.path.strip("/").split("/") if s != ""]
    if not segs or segs[0] not in ("api", "apis"):
        info.verb = method.lower()
        return info
    if segs[0] == "api":
        if len(segs) < 2:
            info.verb = "get"
            return info
        info.group, info.version, rest = "", segs[1], segs[2:]
    else:
        if len(segs) < 3:
            info.verb = "get"
            return info
        info.group, info.version, rest = segs[1], segs[2], segs[3:]
    if not rest:
        info.verb = "get"
        return info
    if rest[0] == "watch":
        info.legacy_watch = True
        rest = rest[1:]
    if not rest:
        info.verb = "get"
        return info
    info.resource_request = True
    if rest[0] == "namespaces" and len(rest) >= 3 and not (
            info.group == "" and len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES):
        info.namespace = rest[1]
        rest = rest[2:]
    elif rest[0] == "namespaces" and len(rest) >= 2:
        # the namespace object itself: /api/v1/namespaces/NAME[/status]
        pass
    info.resource = rest[0]
    if len(rest) >= 2:
        info.name = rest[1]
        if rest[0] == "namespaces" and not info.namespace:
            info.namespace = rest[1]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if len(rest) > 3:
        info.resource_request = False   # unknown deeper paths -> 404
    watch = info.legacy_watch or info.flag("watch")
    if method == "GET":
        info.verb = ("watch" if watch else "list") if not info.name else \
            ("watch" if watch else "get")
    elif method == "HEAD":
        info.verb = "get" if info.name else "list"
    elif method == "POST":
        info.verb = "create"
    elif method == "PUT":
        info.verb = "update"
    elif method == "PATCH":
        info.verb = "patch"
    elif method == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    else:
        info.verb = method.lower()
    return info
