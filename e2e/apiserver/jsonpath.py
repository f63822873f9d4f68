"""The subset of Kubernetes JSONPath used by additionalPrinterColumns:
.field, ['field'], [n], [*], .. is not supported, and filters
[?(@.a.b=="x")] with == != < > <= >= and bare existence [?(@.a)].
"""
import json
import re

_TOKEN = re.compile(r"""
    \.(?P<field>(?:[A-Za-z0-9_\-$/]|\\\.)+)
  | \[\s*'(?P<quoted>[^']*)'\s*\]
  | \[\s*"(?P<dquoted>[^"]*)"\s*\]
  | \[\s*(?P<index>-?\d+)\s*\]
  | \[\s*(?P<star>\*)\s*\]
  | \.(?P<dotstar>\*)
  | \[\?\((?P<filter>.*?)\)\]
""", re.VERBOSE)

_FILTER = re.compile(r"^\s*@((?:\.[A-Za-z0-9_\-]+)+)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")


def compile_path(expr):
    expr = expr.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1].strip()
    if expr.startswith("$"):
        expr = expr[1:]
    if expr and not expr.startswith((".", "[")):
        expr = "." + expr
    steps, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"unsupported JSONPath {expr!r} at {pos}")
        pos = m.end()
        if m.group("field") is not None:
            # label keys in paths escape their dots: .metadata.labels.node\.kubernetes\.io/x
            steps.append(("field", m.group("field").replace("\\.", ".")))
        elif m.group("quoted") is not None:
            steps.append(("field", m.group("quoted")))
        elif m.group("dquoted") is not None:
            steps.append(("field", m.group("dquoted")))
        elif m.group("index") is not None:
            steps.append(("index", int(m.group("index"))))
        elif m.group("star") or m.group("dotstar"):
            steps.append(("star", None))
        else:
            fm = _FILTER.match(m.group("filter"))
            if not fm:
                raise ValueError(f"unsupported filter in {expr!r}")
            fields = fm.group(1).split(".")[1:]
            literal = fm.group(3)
            if literal is not None:
                literal = _literal(literal)
            steps.append(("filter", (fields, fm.group(2), literal)))
    return steps


def _literal(text):
    text = text.strip()
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _dig(value, fields):
    for f in fields:
        if not isinstance(value, dict) or f not in value:
            return None, False
        value = value[f]
    return value, True


def _compare(a, op, b):
    try:
        if op == "==":
            return a == b or str(a) == str(b)
        if op == "!=":
            return not (a == b or str(a) == str(b))
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        if op == "<=":
            return a <= b
        if op == ">=":
            return a >= b
    except TypeError:
        return False
    return False


def find(obj, steps):
    """All values the path selects (empty when nothing matches)."""
    current = [obj]
    for kind, arg in steps:
        nxt = []
        for value in current:
            if kind == "field":
                if isinstance(value, dict) and arg in value:
                    nxt.append(value[arg])
            elif kind == "index":
                if isinstance(value, list) and -len(value) <= arg < len(value):
                    nxt.append(value[arg])
            elif kind == "star":
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value.values())
            else:
                fields, op, literal = arg
                items = value if isinstance(value, list) else [value]
                for item in items:
                    got, ok = _dig(item, fields)
                    if not ok:
                        continue
                    if op is None or _compare(got, op, literal):
                        nxt.append(item)
        current = nxt
    return current
