#!/usr/bin/env python3
"""Generates the field tables of docs/api.md from the CRD schemas in crds/.

The tables sit between marker comments in docs/api.md:

    <!-- BEGIN GENERATED FIELDS: OptimizationPolicy -->
    ...
    <!-- END GENERATED FIELDS: OptimizationPolicy -->

Everything outside the markers is written by hand and left alone.

    python3 docs/gen_api.py          rewrite docs/api.md in place
    python3 docs/gen_api.py --check  exit 1 if docs/api.md is not what this script would write

Needs Python 3 and PyYAML only.
"""
import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CRD_DIR = ROOT / "crds"
DOC = ROOT / "docs" / "api.md"

DURATION_RE = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+$"
QUANTITY_RE = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
               r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
DECIMAL_RE = r"^-?[0-9]+(\.[0-9]+)?$"

# Patterns that have a name in the conventions section of docs/api.md: shown as the type.
NAMED_PATTERNS = {
    DURATION_RE: "duration",
    QUANTITY_RE: "quantity",
    DECIMAL_RE: "decimal",
}
# Patterns every Kubernetes user knows by name: shown as the validation.
KNOWN_PATTERNS = {
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$": "a DNS-1123 subdomain",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "a DNS-1123 label",
}


def load_crds():
    """Returns {kind: (crd, openAPIV3Schema)} for every CRD in crds/."""
    crds = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            kind = doc["spec"]["names"]["kind"]
            version = next(v for v in doc["spec"]["versions"] if v.get("storage"))
            crds[kind] = (doc, version["schema"]["openAPIV3Schema"])
    return crds


def cell(text):
    """Text safe for one Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def code(text):
    """An inline code span safe for a table cell."""
    text = str(text).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def type_of(node):
    """A short, reader-facing type name."""
    if node.get("x-kubernetes-int-or-string"):
        return "quantity" if node.get("pattern") == QUANTITY_RE else "int or string"
    t = node.get("type", "")
    if t == "string":
        named = NAMED_PATTERNS.get(node.get("pattern", ""))
        if named:
            return named
        if node.get("format") == "date-time":
            return "time (RFC 3339)"
        return "string"
    if t == "integer":
        return "int64" if node.get("format") == "int64" else "int32"
    if t == "array":
        return "[]" + type_of(node.get("items", {}))
    if t == "object":
        if "additionalProperties" in node and "properties" not in node:
            return "map[string]" + type_of(node["additionalProperties"])
        return "object"
    return t


def default_of(node):
    if "default" not in node:
        return ""
    d = node["default"]
    if d == {}:
        return code("{}")
    if isinstance(d, bool):
        return code("true" if d else "false")
    if isinstance(d, list):
        return code("[" + ", ".join(str(x) for x in d) + "]")
    return code(d)


def constraints_of(node, required):
    out = []
    if required:
        out.append("**required**")
    enum = node.get("enum") or (node.get("items") or {}).get("enum")
    if enum:
        out.append("one of " + ", ".join(code(v) for v in enum))
    lo, hi = node.get("minimum"), node.get("maximum")
    if lo is not None and hi is not None:
        out.append(f"{lo}..{hi}")
    elif lo is not None:
        out.append(f">= {lo}")
    elif hi is not None:
        out.append(f"<= {hi}")
    pattern = node.get("pattern")
    if pattern in KNOWN_PATTERNS:
        out.append(KNOWN_PATTERNS[pattern])
    elif pattern and pattern not in NAMED_PATTERNS:
        out.append("pattern " + code(pattern))
    if node.get("type") == "array":
        for key, word in (("minItems", "at least"), ("maxItems", "at most")):
            if key in node:
                n = node[key]
                out.append(f"{word} {n} item" + ("" if n == 1 else "s"))
        lt = node.get("x-kubernetes-list-type")
        if lt == "set":
            out.append("unique items")
        elif lt == "map":
            keys = ", ".join(node.get("x-kubernetes-list-map-keys", []))
            out.append(f"keyed by {keys}")
    if node.get("type") == "string" and "maxLength" in node and not pattern:
        out.append(f"at most {node['maxLength']} characters")
    for rule in node.get("x-kubernetes-validations", []):
        if rule.get("rule") == "self == oldSelf":
            out.append("immutable")
        else:
            out.append("rule: " + rule.get("message", rule["rule"]))
    return "; ".join(out)


def rows(node, path, required=False):
    """Yields (path, type, default, constraints, description) for node and its fields."""
    if path:
        yield (path, type_of(node), default_of(node), constraints_of(node, required),
               node.get("description", ""))
    if node.get("type") == "array":
        node = node.get("items", {})
        path += "[]"
    req = set(node.get("required", []))
    for name, child in (node.get("properties") or {}).items():
        yield from rows(child, f"{path}.{name}" if path else name, name in req)


def fields_section(kind, schema):
    lines = []
    for part in ("spec", "status"):
        sub = schema["properties"].get(part)
        if not sub:
            continue
        lines.append(f"#### {kind} `{part}`")
        lines.append("")
        lines.append("| Field | Type | Default | Validation | Description |")
        lines.append("| --- | --- | --- | --- | --- |")
        for path, typ, default, cons, desc in rows(sub, part, part in schema.get("required", [])):
            lines.append(f"| `{path}` | {cell(typ)} | {default} | {cons} | {cell(desc)} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def columns_section(crd):
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    names = crd["spec"]["names"]
    lines = [
        f"`kubectl get {names['shortNames'][0]}` (also `{names['plural']}`, category "
        f"`{', '.join(names.get('categories', []))}`) prints these columns; priority 1 columns "
        "show with `-o wide`:",
        "",
        "| Column | From | Priority |",
        "| --- | --- | --- |",
    ]
    for col in version.get("additionalPrinterColumns", []):
        lines.append(f"| {col['name'].upper()} | {code(col['jsonPath'])} | "
                     f"{col.get('priority', 0)} |")
    return "\n".join(lines)


def generate(doc_text, crds):
    def replace(match):
        what, kind = match.group(1), match.group(2)
        if kind not in crds:
            raise SystemExit(f"gen_api: docs/api.md names unknown kind {kind!r}")
        crd, schema = crds[kind]
        body = fields_section(kind, schema) if what == "FIELDS" else columns_section(crd)
        return (f"<!-- BEGIN GENERATED {what}: {kind} -->\n{body}\n"
                f"<!-- END GENERATED {what}: {kind} -->")

    pattern = re.compile(r"<!-- BEGIN GENERATED (FIELDS|COLUMNS): (\w+) -->.*?"
                         r"<!-- END GENERATED \1: \2 -->", re.S)
    return pattern.sub(replace, doc_text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if docs/api.md is out of date instead of rewriting it")
    args = parser.parse_args()
    crds = load_crds()
    if not crds:
        print(f"gen_api: no CRDs found in {CRD_DIR.relative_to(ROOT)}/", file=sys.stderr)
        return 1
    current = DOC.read_text()
    wanted = generate(current, crds)
    if args.check:
        if current != wanted:
            print("gen_api: docs/api.md is out of date with crds/; run python3 docs/gen_api.py",
                  file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        DOC.write_text(wanted)
        print("gen_api: updated docs/api.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
