#!/usr/bin/env python3
"""Checks the Helm chart (helm/tailor) against the kustomize config it packages.

The helm binary is not available where this runs, so this file carries a small renderer for
the subset of Go templates (text/template plus a few Sprig and Helm functions) that the chart
uses. It is NOT Helm. It renders only this chart's constructs: text, {{/* comments */}}, the
{{- -}} trim markers, pipelines, .Values/.Release/.Chart fields, $variables (declared with :=,
assigned with =, scoped to their if/with block as in Go), parentheses, if / else if / else,
with / else, define and the functions include, toYaml, nindent, indent, quote, default, printf
(%s %v %d), b64enc, list, first, int, not, genCA and genSignedCert (real certificates, made with
the openssl command). Anything else - another function, range, template, a field of a nil value,
printing a map, a .Values key that values.yaml does not have - fails loudly instead of being
guessed at. It is stricter than Helm in one way: a .Values key that values.yaml lacks is an
error here (Helm prints nothing), which catches typos in templates.

What is checked:
  - helm/tailor/crds holds exactly the files crds/*.yaml, byte for byte (Helm installs CRDs from
    there and never templates them).
  - Chart.yaml: apiVersion v2, version and appVersion 0.1.0, appVersion equal to the version in
    CMakeLists.txt and to the image tag in config/manager.
  - values.yaml: every value has a comment, and every value is used by some template.
  - Rendered with default values, the chart gives the objects of `kubectl kustomize
    config/default`: the same kinds, names and namespaces, and each object equal in everything
    (spec, rules, roleRef, subjects, securityContext, args, probes, ports, resources, ...) but
    these tolerated differences:
      * the labels Helm charts conventionally add (helm.sh/chart, app.kubernetes.io/managed-by,
        app.kubernetes.io/instance, app.kubernetes.io/version), on objects and pod templates;
      * no Namespace object: Helm installs into an existing namespace or one it creates with
        --create-namespace, and a chart that creates its own release namespace breaks that.
        docs/install.md shows how to create it with the Pod Security labels of config/manager.
  - With remediation.enabled=true the extra objects are those of `kubectl kustomize
    config/rbac/remediation`; with serviceMonitor.enabled=true, config/prometheus; with
    validatingAdmissionPolicy.enabled=true, config/admission (same tolerations).
  - Non-default values reach the controller's args (prometheusUrl, logFormat, logLevel, dryRun,
    disableAutoApply, extraArgs), replicas: 2 keeps --leader-elect, and the flags are ones
    `tailor run` knows (read from controller/options.c).
  - webhook.enabled, with cert-manager and with Helm-generated certificates: the Service, the
    Secret or Certificate, the caBundle (openssl checks that the serving certificate is signed by
    it and names the Service), and the pod's port, volume and flags agree with each other. The
    controller does not serve the webhook yet: that check is reported as skipped until
    controller/options.c knows the --webhook-* flags.
  - The Dockerfile (no Docker engine here, so the image is not built): the build stage COPYs
    every directory and file a -DTL_TESTS=OFF CMake build reads, and every shared library the
    built binary ($TAILOR_BIN) links belongs to a package the runtime stage installs or to one
    of their dependencies (on Debian bookworm, the image's release; skipped elsewhere).
  - NOTES.txt renders for every values set tried, and the policy it suggests is valid against the
    CRD schema (when e2e/apiserver/crdschema.py is importable).

    e2e/test_helm_chart.py [-v]

Exits non-zero if any check fails; the last line is "N passed, N failed, N skipped".
"""

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import CheckFailed, Checks, Skip, need  # noqa: E402

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "tailor"
NAMESPACE = "tailor-system"
RELEASE = "tailor"
VERBOSE = "-v" in sys.argv[1:]

# Labels a Helm chart conventionally adds that config/ does not have; ignored when comparing.
HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
               "app.kubernetes.io/version"}


class TemplateError(Exception):
    pass


# ============================================================================ the renderer
#
# Lexing: the template is split into text and actions; trim markers eat the whitespace next to
# them. Parsing: actions become a tree (if/with/define blocks hold their bodies). Evaluation walks
# the tree with a dot, a root ($) and a stack of variable scopes.

ACTION_RE = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def lex(src, name):
    """[("text", s) | ("action", body, line)], with the trim markers applied."""
    out = []
    pos = 0
    for m in ACTION_RE.finditer(src):
        text = src[pos:m.start()]
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        out.append(("text", text))
        body = m.group(2)
        line = src.count("\n", 0, m.start()) + 1
        stripped = body.strip()
        if stripped.startswith("/*"):
            if not (body.startswith("/*") and body.endswith("*/")):
                raise TemplateError(f"{name}:{line}: a comment must touch its delimiters")
        else:
            out.append(("action", stripped, line))
        pos = m.end()
        if m.group(3):
            rest = src[pos:]
            pos += len(rest) - len(rest.lstrip(" \t\r\n"))
    tail = src[pos:]
    if "{{" in tail or "}}" in tail:
        raise TemplateError(f"{name}: unbalanced delimiters near {tail[:40]!r}")
    out.append(("text", tail))
    return out


TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?\d+)
  | (?P<decl>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)


def tokenize(body, where):
    toks = []
    pos = 0
    while pos < len(body):
        m = TOKEN_RE.match(body, pos)
        if not m:
            raise TemplateError(f"{where}: cannot read {body[pos:pos + 20]!r}")
        kind = m.lastgroup
        if kind != "ws":
            toks.append((kind, m.group()))
        pos = m.end()
    return toks


class PipeParser:
    """pipeline := [$var (:= | =)] command ('|' command)*; command := operand+."""

    def __init__(self, toks, where):
        self.toks, self.i, self.where = toks, 0, where

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def pipeline(self, inner=False):
        decl = None
        if len(self.toks) > self.i + 1 and self.toks[self.i][0] == "var" and \
                self.toks[self.i + 1][0] in ("decl", "assign"):
            name = self.toks[self.i][1]
            if "." in name:
                raise TemplateError(f"{self.where}: cannot assign to {name}")
            decl = (self.toks[self.i + 1][0], name)
            self.i += 2
        cmds = [self.command()]
        while self.peek()[0] == "pipe":
            self.take()
            cmds.append(self.command())
        if not inner and self.i != len(self.toks):
            raise TemplateError(f"{self.where}: unexpected {self.peek()[1]!r}")
        return ("pipeline", decl, cmds)

    def command(self):
        args = []
        while self.peek()[0] not in (None, "pipe", "rp"):
            args.append(self.operand())
        if not args:
            raise TemplateError(f"{self.where}: empty command")
        return args

    def operand(self):
        kind, val = self.take()
        if kind == "str":
            return ("lit", json.loads(val))
        if kind == "raw":
            return ("lit", val[1:-1])
        if kind == "num":
            return ("lit", int(val))
        if kind == "field":
            return ("field", [] if val == "." else val[1:].split("."))
        if kind == "var":
            name, *path = val.split(".")
            return ("var", name, path)
        if kind == "ident":
            if val in ("true", "false"):
                return ("lit", val == "true")
            if val == "nil":
                return ("lit", None)
            return ("func", val)
        if kind == "lp":
            inner = self.pipeline(inner=True)
            if self.take()[0] != "rp":
                raise TemplateError(f"{self.where}: missing )")
            kind, val = self.peek()
            if kind == "field" and val != ".":
                self.take()
                return ("paren", inner, val[1:].split("."))
            return ("paren", inner, [])
        raise TemplateError(f"{self.where}: unexpected {val!r}")


def parse(tokens, name):
    """Nodes: ("text", s) ("action", pipe) ("if", [(pipe, body)], else) ("with", pipe, body,
    else) ("define", name, body). Returns (nodes, defines)."""
    defines = {}
    pos = 0

    def block(stop):
        nonlocal pos
        nodes = []
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok[0] == "text":
                if tok[1]:
                    nodes.append(("text", tok[1]))
                continue
            body, line = tok[1], tok[2]
            where = f"{name}:{line}"
            word = body.split(None, 1)[0] if body else ""
            rest = body[len(word):].strip()
            if word in ("end", "else"):
                if word not in stop:
                    raise TemplateError(f"{where}: unexpected {{{{ {body} }}}}")
                return nodes, (word, rest, where)
            if word == "if":
                branches = [(pipe_of(rest, where), None)]
                bodies = []
                while True:
                    sub, (kw, kwrest, kwwhere) = block(("end", "else"))
                    bodies.append(sub)
                    if kw == "end":
                        els = None
                        break
                    if kwrest.startswith("if "):
                        branches.append((pipe_of(kwrest[3:], kwwhere), None))
                        continue
                    if kwrest:
                        raise TemplateError(f"{kwwhere}: only 'else' and 'else if' are rendered")
                    els, (kw2, _, w2) = block(("end",))
                    break
                nodes.append(("if", [(b[0], bodies[i]) for i, b in enumerate(branches)], els))
            elif word == "with":
                pipe = pipe_of(rest, where)
                if pipe[1]:
                    raise TemplateError(f"{where}: 'with $x := ...' is not rendered")
                sub, (kw, kwrest, kwwhere) = block(("end", "else"))
                els = None
                if kw == "else":
                    if kwrest:
                        raise TemplateError(f"{kwwhere}: 'else with' is not rendered")
                    els, _ = block(("end",))
                nodes.append(("with", pipe, sub, els))
            elif word == "define":
                dname = json.loads(rest)
                sub, _ = block(("end",))
                defines[dname] = sub
            elif word in ("range", "template", "block", "break", "continue"):
                raise TemplateError(f"{where}: '{word}' is not rendered by this test's renderer")
            else:
                pipe = pipe_of(body, where)
                if pipe[1] is None and not pipe[2]:
                    raise TemplateError(f"{where}: empty action")
                nodes.append(("action", pipe))
        if stop:
            raise TemplateError(f"{name}: missing {{{{ end }}}}")
        return nodes, None

    def pipe_of(text, where):
        pipe = PipeParser(tokenize(text, where), where).pipeline()
        return pipe

    nodes, _ = block(())
    return nodes, defines


def truthy(v):
    if v is None or v is False:
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0
    if isinstance(v, (str, list, dict)):
        return len(v) > 0
    return True


def go_str(v, where):
    """How Go's template prints a value (Helm turns <no value> into "")."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if abs(v) >= 10 ** 6:
            # Helm reads values as float64, which Go prints as 1e+06: a real Helm trap.
            raise TemplateError(f"{where}: {v} would print as a float in Helm; pipe it to int")
        return str(v)
    if isinstance(v, str):
        return v
    raise TemplateError(f"{where}: printing a {type(v).__name__} ({v!r}) is a template bug")


def go_quote(s, where):
    if any(ord(c) < 32 or ord(c) > 126 for c in s):
        raise TemplateError(f"{where}: quote of {s!r}: only printable ASCII is rendered here")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_printf(fmt, args, where):
    out, ai, i = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        verb = fmt[i + 1:i + 2]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if verb not in ("s", "v", "d") or ai >= len(args):
            raise TemplateError(f"{where}: printf {fmt!r}: verb %{verb} or its argument")
        a = args[ai]
        ai += 1
        if verb == "d" and not (isinstance(a, int) and not isinstance(a, bool)):
            raise TemplateError(f"{where}: printf %d of {a!r}")
        out.append(go_str(a, where))
    if ai != len(args):
        raise TemplateError(f"{where}: printf {fmt!r} has {len(args) - ai} extra arguments")
    return "".join(out)


def to_yaml(v):
    if v is None:
        return "null"
    return yaml.safe_dump(v, default_flow_style=False, sort_keys=True, width=10 ** 6).rstrip("\n")


def indent(n, s):
    pad = " " * n
    return pad + s.replace("\n", "\n" + pad)


def openssl(args, stdin=None):
    p = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise TemplateError(f"openssl {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


def gen_ca(cn, days, workdir):
    """Like Sprig's genCA: a self-signed RSA 2048 CA."""
    key, crt = os.path.join(workdir, "ca.key"), os.path.join(workdir, "ca.crt")
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
             "-days", str(days), "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,digitalSignature,keyEncipherment"])
    return {"Cert": Path(crt).read_text(), "Key": Path(key).read_text(), "_files": (crt, key)}


def gen_signed_cert(cn, ips, dns, days, ca, workdir):
    """Like Sprig's genSignedCert: an RSA 2048 serving certificate signed by ca."""
    if ips:
        raise TemplateError("genSignedCert with IP addresses is not rendered here")
    key, csr, crt = (os.path.join(workdir, f"srv.{e}") for e in ("key", "csr", "crt"))
    ext = os.path.join(workdir, "srv.ext")
    Path(ext).write_text("subjectAltName=" + ",".join(f"DNS:{d}" for d in dns) +
                         "\nextendedKeyUsage=serverAuth,clientAuth\n"
                         "keyUsage=critical,digitalSignature,keyEncipherment\n")
    openssl(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/CN={cn}"])
    openssl(["x509", "-req", "-in", csr, "-CA", ca["_files"][0], "-CAkey", ca["_files"][1],
             "-CAcreateserial", "-out", crt, "-days", str(days), "-extfile", ext])
    return {"Cert": Path(crt).read_text(), "Key": Path(key).read_text()}


class Renderer:
    """Renders the chart's templates for one set of values."""

    def __init__(self, chart_dir, values, release_ns=NAMESPACE, release_name=RELEASE):
        self.chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
        self.values = values
        self._workdir = None  # made on first use (genCA), removed by close()
        self.files = {}
        self.defines = {}
        for path in sorted((chart_dir / "templates").iterdir()):
            if path.is_dir():
                raise TemplateError(f"{path.name}: subdirectories are not rendered here")
            nodes, defines = parse(lex(path.read_text(), path.name), path.name)
            for dname in defines:
                if dname in self.defines:
                    raise TemplateError(f"{path.name}: {dname} defined twice")
            self.defines.update(defines)
            self.files[path.name] = nodes
        self.root = {
            "Values": values,
            "Release": {"Name": release_name, "Namespace": release_ns, "Service": "Helm",
                        "IsInstall": True, "IsUpgrade": False, "Revision": 1},
            "Chart": {"Name": self.chart["name"], "Version": self.chart["version"],
                      "AppVersion": self.chart.get("appVersion", "")},
        }
        # Where each node of .Values sits, to name missing keys and record what is used.
        self.value_paths = {}
        self.used = set()

        def walk(node, path):
            if isinstance(node, (dict, list)):
                self.value_paths[id(node)] = path
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, path + (k,))
        walk(values, ())
        self.value_paths[id(values)] = ("<values>",)

    @property
    def workdir(self):
        if self._workdir is None:
            self._workdir = tempfile.mkdtemp(prefix="tailor-helm-")
        return self._workdir

    def close(self):
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def render_all(self):
        """{file name: rendered text} for every template not starting with _."""
        return {name: self.execute(nodes, self.root, name)
                for name, nodes in self.files.items() if not name.startswith("_")}

    def execute(self, nodes, dot, where):
        out = []
        self.run(nodes, dot, dot, [{}], out, where)
        return "".join(out)

    def run(self, nodes, dot, root, scopes, out, where):
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                value = self.pipeline(node[1], dot, root, scopes, where)
                if node[1][1] is None:
                    out.append(go_str(value, where))
            elif kind == "if":
                for pipe, body in node[1]:
                    if truthy(self.pipeline(pipe, dot, root, scopes, where)):
                        self.run(body, dot, root, scopes + [{}], out, where)
                        break
                else:
                    if node[2] is not None:
                        self.run(node[2], dot, root, scopes + [{}], out, where)
            elif kind == "with":
                value = self.pipeline(node[1], dot, root, scopes, where)
                if truthy(value):
                    self.run(node[2], value, root, scopes + [{}], out, where)
                elif node[3] is not None:
                    self.run(node[3], dot, root, scopes + [{}], out, where)
            else:
                raise TemplateError(f"{where}: node {kind}")

    def pipeline(self, pipe, dot, root, scopes, where):
        _, decl, cmds = pipe
        value, have = None, False
        for cmd in cmds:
            value = self.command(cmd, dot, root, scopes, where, value if have else _NONE)
            have = True
        if decl:
            op, name = decl
            if op == "decl":
                scopes[-1][name] = value
            else:
                for scope in reversed(scopes):
                    if name in scope:
                        scope[name] = value
                        break
                else:
                    raise TemplateError(f"{where}: assignment to undefined variable {name}")
        return value

    def command(self, cmd, dot, root, scopes, where, piped):
        head = cmd[0]
        if head[0] == "func":
            args = [self.operand(a, dot, root, scopes, where) for a in cmd[1:]]
            if piped is not _NONE:
                args.append(piped)
            return self.call(head[1], args, dot, where)
        if len(cmd) != 1 or piped is not _NONE:
            raise TemplateError(f"{where}: {head} cannot take arguments")
        return self.operand(head, dot, root, scopes, where)

    def operand(self, op, dot, root, scopes, where):
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "field":
            return self.fields(dot, op[1], where)
        if kind == "var":
            name, path = op[1], op[2]
            if name == "$":
                return self.fields(root, path, where)
            for scope in reversed(scopes):
                if name in scope:
                    return self.fields(scope[name], path, where)
            raise TemplateError(f"{where}: undefined variable {name}")
        if kind == "paren":
            return self.fields(self.pipeline(op[1], dot, root, scopes, where), op[2], where)
        if kind == "func":
            return self.call(op[1], [], dot, where)
        raise TemplateError(f"{where}: operand {op}")

    def fields(self, value, path, where):
        for i, name in enumerate(path):
            if value is None:
                raise TemplateError(f"{where}: nil pointer evaluating .{'.'.join(path[:i + 1])}")
            if not isinstance(value, dict):
                raise TemplateError(f"{where}: .{name} of a {type(value).__name__}")
            vpath = self.value_paths.get(id(value))
            if vpath == ("<values>",):
                vpath = ()
            if name not in value:
                if vpath is not None:
                    raise TemplateError(f"{where}: values.yaml has no "
                                        f"{'.'.join(vpath + (name,))}")
                raise TemplateError(f"{where}: no field {name}")
            value = value[name]
            if vpath is not None:
                self.used.add(vpath + (name,))
        return value

    def call(self, fn, args, dot, where):
        def arity(n):
            if len(args) != n:
                raise TemplateError(f"{where}: {fn} takes {n} arguments, got {len(args)}")

        if fn == "include":
            arity(2)
            if args[0] not in self.defines:
                raise TemplateError(f"{where}: no template {args[0]!r}")
            return self.execute(self.defines[args[0]], args[1], f"{where} > {args[0]}")
        if fn == "toYaml":
            arity(1)
            self.mark_used(args[0])
            return to_yaml(args[0])
        if fn in ("nindent", "indent"):
            arity(2)
            if not isinstance(args[0], int) or not isinstance(args[1], str):
                raise TemplateError(f"{where}: {fn} {args[0]!r} {args[1]!r}")
            return ("\n" if fn == "nindent" else "") + indent(args[0], args[1])
        if fn == "quote":
            return " ".join(go_quote(go_str(a, where), where) for a in args if a is not None)
        if fn == "default":
            arity(2)
            return args[1] if truthy(args[1]) else args[0]
        if fn == "printf":
            if not args or not isinstance(args[0], str):
                raise TemplateError(f"{where}: printf needs a format")
            return go_printf(args[0], args[1:], where)
        if fn == "b64enc":
            arity(1)
            return base64.b64encode(go_str(args[0], where).encode()).decode()
        if fn == "list":
            return list(args)
        if fn == "first":
            arity(1)
            return args[0][0] if args[0] else None
        if fn == "int":
            arity(1)
            return int(args[0])
        if fn == "not":
            arity(1)
            return not truthy(args[0])
        if fn == "genCA":
            arity(2)
            return gen_ca(args[0], args[1], self.workdir)
        if fn == "genSignedCert":
            arity(5)
            return gen_signed_cert(args[0], args[1], args[2], args[3], args[4], self.workdir)
        raise TemplateError(f"{where}: function {fn!r} is not rendered by this test's renderer")

    def mark_used(self, value):
        path = self.value_paths.get(id(value))
        if path is not None and path != ("<values>",):
            self.used.add(path)


_NONE = object()


# ============================================================================ helpers

def default_values():
    return yaml.safe_load((CHART / "values.yaml").read_text())


def merged(overrides):
    """values.yaml with overrides merged in, like --set; overriding a key values.yaml lacks
    is a test bug."""
    values = default_values()

    def merge(dst, src, path):
        for k, v in src.items():
            need(k in dst, f"override {'.'.join(path + (k,))} is not in values.yaml")
            if isinstance(v, dict) and isinstance(dst[k], dict) and dst[k]:
                merge(dst[k], v, path + (k,))
            else:
                dst[k] = v
    merge(values, overrides, ())
    return values


_renders = {}
USED = set()


def render(overrides=None, namespace=NAMESPACE):
    """(objects, notes, renderer-used-paths) of the chart with these values (cached)."""
    cache_key = json.dumps([overrides or {}, namespace], sort_keys=True)
    if cache_key not in _renders:
        r = Renderer(CHART, merged(overrides or {}), release_ns=namespace)
        try:
            files = r.render_all()
        except TemplateError as e:
            raise CheckFailed(f"rendering with {overrides or 'default values'}: {e}")
        finally:
            r.close()
        USED.update(r.used)
        notes = files.pop("NOTES.txt", None)
        need(notes is not None, "templates/NOTES.txt is missing")
        objs = []
        for name, text in sorted(files.items()):
            need("{{" not in text and "}}" not in text,
                 f"{name} renders a stray delimiter:\n{text}")
            try:
                docs = list(yaml.safe_load_all(text))
            except yaml.YAMLError as e:
                raise CheckFailed(f"{name} with {overrides or 'default values'} is not YAML: "
                                  f"{e}\n{text}")
            for doc in docs:
                if doc is None:
                    continue
                need(isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind") and
                     (doc.get("metadata") or {}).get("name"),
                     f"{name} renders a document without apiVersion, kind or name: {doc}")
                objs.append(doc)
        if VERBOSE:
            names = ", ".join(o["kind"] + "/" + o["metadata"]["name"] for o in objs)
            print(f"  rendered {overrides or 'defaults'}: {names}")
        _renders[cache_key] = (objs, notes)
    return _renders[cache_key]


def chart_crds():
    out = []
    for path in sorted((CHART / "crds").glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


_kustomized = {}


def kustomize(rel):
    if rel not in _kustomized:
        need(shutil.which("kubectl"), "kubectl is not on PATH; it renders config/ (kustomize)")
        p = subprocess.run(["kubectl", "kustomize", str(ROOT / rel)], capture_output=True,
                           text=True, timeout=60)
        need(p.returncode == 0, f"kubectl kustomize {rel} failed:\n{p.stderr.strip()}")
        _kustomized[rel] = [d for d in yaml.safe_load_all(p.stdout) if d]
    return _kustomized[rel]


def key(obj):
    md = obj.get("metadata") or {}
    return (obj["kind"], md.get("namespace"), md["name"])


def fmt_key(k):
    return f"{k[0]} {k[1] + '/' if k[1] else ''}{k[2]}"


def normalized(obj):
    """The object without the labels Helm conventionally adds (object and pod template)."""
    obj = copy.deepcopy(obj)

    def strip(md):
        labels = md.get("labels")
        if labels is not None:
            for k in HELM_LABELS:
                labels.pop(k, None)
            if not labels:
                del md["labels"]
    strip(obj.setdefault("metadata", {}))
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict) and "metadata" in template:
        strip(template["metadata"])
    return obj


def diff(a, b, path=""):
    """Paths where a and b differ, as readable lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append(f"{path}.{k}: only in Helm: {json.dumps(b[k])[:200]}")
            elif k not in b:
                out.append(f"{path}.{k}: only in kustomize: {json.dumps(a[k])[:200]}")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    if a != b:
        return [f"{path}: kustomize {json.dumps(a)[:200]} / Helm {json.dumps(b)[:200]}"]
    return []


def compare(expected, got, what):
    """expected (kustomize) and got (Helm) hold the same objects, equal once normalized."""
    exp = {key(o): o for o in expected}
    have = {key(o): o for o in got}
    need(len(exp) == len(expected) and len(have) == len(got),
         f"{what}: an object is rendered twice")
    missing = sorted(set(exp) - set(have), key=str)
    extra = sorted(set(have) - set(exp), key=str)
    need(not missing and not extra,
         f"{what}: kinds/names differ\n  only in kustomize: {[fmt_key(k) for k in missing]}"
         f"\n  only in Helm: {[fmt_key(k) for k in extra]}")
    problems = []
    for k in sorted(exp, key=str):
        d = diff(normalized(exp[k]), normalized(have[k]))
        if d:
            problems.append(f"{fmt_key(k)}:\n    " + "\n    ".join(d))
    need(not problems, f"{what}: objects differ\n  " + "\n  ".join(problems))


def find(objs, kind, name):
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    need(len(hits) == 1, f"{len(hits)} {kind} {name} rendered")
    return hits[0]


def controller(objs):
    dep = find(objs, "Deployment", "tailor")
    return dep, dep["spec"]["template"]["spec"]["containers"][0]


def known_flags():
    """The flags `tailor run` knows, read from controller/options.c."""
    src = (ROOT / "controller" / "options.c").read_text()
    flags = set(re.findall(r'F\("([a-z0-9-]+)"', src))
    need(flags, "no flags found in controller/options.c")
    return flags


def flag_names(args):
    out = []
    for a in args:
        if a.startswith("--"):
            out.append(a[2:].split("=", 1)[0])
    return out


# ============================================================================ checks

check = Checks()


@check
def crds_are_copies():
    src = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    dst = sorted(p.name for p in (CHART / "crds").iterdir())
    need(src, "crds/*.yaml is empty")
    need(src == dst, f"helm/tailor/crds has {dst}, crds/ has {src}")
    for name in src:
        a = (ROOT / "crds" / name).read_bytes()
        b = (CHART / "crds" / name).read_bytes()
        need(a == b, f"helm/tailor/crds/{name} differs from crds/{name}; "
                     f"copy it: cp crds/*.yaml helm/tailor/crds/")


@check
def chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    need(chart.get("apiVersion") == "v2", f"Chart.yaml apiVersion {chart.get('apiVersion')}")
    need(chart.get("name") == "tailor", f"Chart.yaml name {chart.get('name')}")
    need(chart.get("version") == "0.1.0", f"Chart.yaml version {chart.get('version')}")
    need(chart.get("appVersion") == "0.1.0", f"Chart.yaml appVersion {chart.get('appVersion')}")
    m = re.search(r"project\(tailor VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text())
    need(m and m.group(1) == chart["appVersion"],
         f"appVersion {chart['appVersion']} is not the CMake project version "
         f"{m.group(1) if m else '?'}")
    kust = yaml.safe_load((ROOT / "config" / "manager" / "kustomization.yaml").read_text())
    tags = {i.get("newTag") for i in kust.get("images", [])}
    need(tags == {chart["appVersion"]}, f"config/manager image tag {tags} is not the "
                                        f"appVersion {chart['appVersion']}")


@check
def every_value_is_documented():
    """Each key in values.yaml has a comment on the line above it or at its end. The keys inside
    resources, podSecurityContext, securityContext and nodeSelector are literal Kubernetes
    fields, documented by the comment on their block."""
    literal_blocks = {"resources", "podSecurityContext", "securityContext", "nodeSelector"}
    undocumented = []
    prev, top = "", None
    for no, line in enumerate((CHART / "values.yaml").read_text().splitlines(), 1):
        s = line.strip()
        m = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if m and not s.startswith("#"):
            if not m.group(1):
                top = m.group(2)
            exempt = bool(m.group(1)) and top in literal_blocks
            if not exempt and not prev.startswith("#") and "#" not in line:
                undocumented.append(f"line {no}: {s}")
        if s:
            prev = s
    need(not undocumented, "values.yaml keys without a comment:\n  " + "\n  ".join(undocumented))


@check
def default_render_matches_config_default():
    objs, _ = render()
    expected = [o for o in kustomize("config/default") if o["kind"] != "Namespace"]
    namespaces = [o for o in kustomize("config/default") if o["kind"] == "Namespace"]
    need([o["metadata"]["name"] for o in namespaces] == [NAMESPACE],
         f"config/default renders namespaces {[o['metadata']['name'] for o in namespaces]}")
    compare(expected, objs + chart_crds(), "helm (defaults) vs kubectl kustomize config/default")


@check
def remediation_matches_config_rbac_remediation():
    base, _ = render()
    objs, _ = render({"remediation": {"enabled": True}})
    base_keys = {key(o) for o in base}
    extra = [o for o in objs if key(o) not in base_keys]
    compare(kustomize("config/rbac/remediation"), extra,
            "helm remediation.enabled=true extras vs kubectl kustomize config/rbac/remediation")
    compare(base, [o for o in objs if key(o) in base_keys],
            "remediation.enabled=true changes the default objects")


@check
def service_monitor_matches_config_prometheus():
    base, _ = render()
    objs, _ = render({"serviceMonitor": {"enabled": True}})
    extra = [o for o in objs if key(o) not in {key(b) for b in base}]
    compare(kustomize("config/prometheus"), extra,
            "helm serviceMonitor.enabled=true extras vs kubectl kustomize config/prometheus")
    objs, _ = render({"serviceMonitor": {"enabled": True, "interval": "1m",
                                         "labels": {"release": "kube-prometheus-stack"}}})
    sm = find(objs, "ServiceMonitor", "tailor")
    need(sm["metadata"]["labels"].get("release") == "kube-prometheus-stack",
         "serviceMonitor.labels are not on the ServiceMonitor")
    need(sm["spec"]["endpoints"][0]["interval"] == "1m", "serviceMonitor.interval is not used")


@check
def admission_policy_matches_config_admission():
    base, _ = render()
    objs, _ = render({"validatingAdmissionPolicy": {"enabled": True}})
    extra = [o for o in objs if key(o) not in {key(b) for b in base}]
    compare(kustomize("config/admission"), extra,
            "helm validatingAdmissionPolicy.enabled=true extras vs config/admission")
    # In another namespace the policy must name that namespace, not tailor-system.
    objs, _ = render({"validatingAdmissionPolicy": {"enabled": True}}, namespace="ops")
    vap = find(objs, "ValidatingAdmissionPolicy", "tailor-policy-scope")
    text = json.dumps(vap)
    need("tailor-system" not in text and "request.namespace == 'ops'" in text,
         "the admission policy does not follow the release namespace")


@check
def controller_args_follow_values():
    flags = known_flags()
    _, c = controller(render()[0])
    need(c["args"] == ["run", "--leader-elect", "--metrics-bind-address=:8080",
                       "--health-probe-bind-address=:8081"], f"default args {c['args']}")
    over = {"replicas": 2, "prometheusUrl": "http://prometheus-operated.monitoring:9090",
            "logFormat": "json", "logLevel": "debug", "dryRun": True,
            "disableAutoApply": True, "extraArgs": ["--kube-api-qps=10"],
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
            "image": {"repository": "tailor", "tag": "dev", "pullPolicy": "Never"}}
    objs, notes = render(over)
    dep, c = controller(objs)
    need(dep["spec"]["replicas"] == 2, f"replicas {dep['spec']['replicas']}")
    want = ["run", "--leader-elect", "--metrics-bind-address=:8080",
            "--health-probe-bind-address=:8081",
            "--prometheus-url=http://prometheus-operated.monitoring:9090", "--log-format=json",
            "--log-level=debug", "--dry-run", "--disable-auto-apply", "--kube-api-qps=10"]
    need(c["args"] == want, f"args with every value set:\n  {c['args']}\n  want {want}")
    unknown = [f for f in flag_names(c["args"]) if f not in flags]
    need(not unknown, f"args that `tailor run` does not know: {unknown}")
    need(c["image"] == "tailor:dev" and c["imagePullPolicy"] == "Never",
         f"image {c['image']} pull policy {c.get('imagePullPolicy')}")
    need({"name": "TZ", "value": "UTC"} in c["env"], "extraEnv is not in the container")
    names = [e["name"] for e in c["env"]]
    need(names[:2] == ["POD_NAMESPACE", "POD_NAME"], f"env {names}")
    need("Dry run" in notes and "prometheusUrl" not in notes, "NOTES.txt ignores the values")


@check
def pod_is_locked_down():
    """What the restricted Pod Security Standard and the brief ask, on the rendered pod."""
    dep, c = controller(render()[0])
    pod = dep["spec"]["template"]["spec"]
    psc, sc = pod["securityContext"], c["securityContext"]
    need(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, f"pod {psc}")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"pod {psc}")
    need(sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
         and sc.get("capabilities", {}).get("drop") == ["ALL"]
         and sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532, f"container {sc}")
    need(c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"} and
         c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}, "probes")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    need(ports == {"http": 8080, "health": 8081}, f"ports {ports}")
    need(pod["serviceAccountName"] == "tailor", "serviceAccountName")
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
           for e in c["env"]}
    need(env.get("POD_NAMESPACE") == "metadata.namespace" and
         env.get("POD_NAME") == "metadata.name", f"downward API env {env}")
    svc = find(render()[0], "Service", "tailor")
    need(svc["spec"]["ports"][0]["port"] == 8080, "Service port")


def webhook_common(objs):
    dep, c = controller(objs)
    svc = find(objs, "Service", "tailor-webhook")
    vwc = find(objs, "ValidatingWebhookConfiguration", "tailor")
    hook = vwc["webhooks"][0]
    need(hook["clientConfig"]["service"] == {
        "name": "tailor-webhook", "namespace": NAMESPACE, "port": 443,
        "path": hook["clientConfig"]["service"]["path"]}, f"clientConfig {hook['clientConfig']}")
    need(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"],
         "the webhook Service does not select the controller pods")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    need(svc["spec"]["ports"][0]["targetPort"] == "webhook" and ports.get("webhook") == 9443,
         f"webhook ports: Service {svc['spec']['ports']}, container {ports}")
    need("--webhook-bind-address=:9443" in c["args"], f"args {c['args']}")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    need(mounts.get("webhook-cert") == "/etc/tailor/webhook" and
         vols["webhook-cert"]["secret"]["secretName"] == "tailor-webhook-tls",
         f"certificate volume {mounts} {vols.get('webhook-cert')}")
    need(f"--webhook-cert-file={mounts['webhook-cert']}/tls.crt" in c["args"] and
         f"--webhook-key-file={mounts['webhook-cert']}/tls.key" in c["args"],
         f"args do not name the mounted certificate: {c['args']}")
    need(hook["rules"][0]["resources"] == ["optimizationpolicies"] and
         hook["sideEffects"] == "None" and hook["failurePolicy"] == "Ignore",
         f"webhook {hook}")
    return hook


@check
def webhook_with_cert_manager():
    objs, _ = render({"webhook": {"enabled": True, "certManager": {"enabled": True}}})
    hook = webhook_common(objs)
    vwc = find(objs, "ValidatingWebhookConfiguration", "tailor")
    cert = find(objs, "Certificate", "tailor-webhook")
    issuer = find(objs, "Issuer", cert["spec"]["issuerRef"]["name"])
    need(issuer["spec"] == {"selfSigned": {}}, f"Issuer {issuer['spec']}")
    need(vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] ==
         f"{NAMESPACE}/tailor-webhook", "inject-ca-from does not name the Certificate")
    need(cert["spec"]["secretName"] == "tailor-webhook-tls", "Certificate secretName")
    need(f"tailor-webhook.{NAMESPACE}.svc" in cert["spec"]["dnsNames"],
         f"dnsNames {cert['spec']['dnsNames']}")
    need("caBundle" not in hook["clientConfig"], "caBundle set although cert-manager injects it")
    need(not [o for o in objs if o["kind"] == "Secret"], "a Secret is rendered with cert-manager")


@check
def webhook_with_generated_certificate():
    need(shutil.which("openssl"), "openssl is not on PATH; it makes genCA's certificates here")
    objs, _ = render({"webhook": {"enabled": True}})
    hook = webhook_common(objs)
    secret = find(objs, "Secret", "tailor-webhook-tls")
    need(secret["type"] == "kubernetes.io/tls", f"Secret type {secret['type']}")
    need(not [o for o in objs if o["kind"] in ("Certificate", "Issuer")],
         "cert-manager objects rendered without cert-manager")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    ca = base64.b64decode(hook["clientConfig"]["caBundle"]).decode()
    need(ca == data["ca.crt"], "the caBundle is not the Secret's ca.crt")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, text in (("ca.crt", ca), ("tls.crt", data["tls.crt"]),
                           ("tls.key", data["tls.key"])):
            paths[name] = os.path.join(tmp, name)
            Path(paths[name]).write_text(text)
        p = subprocess.run(["openssl", "verify", "-CAfile", paths["ca.crt"], paths["tls.crt"]],
                           capture_output=True, text=True, timeout=30)
        need(p.returncode == 0, f"the serving certificate does not chain to the caBundle: "
                                f"{p.stdout.strip()} {p.stderr.strip()}")
        text = subprocess.run(["openssl", "x509", "-in", paths["tls.crt"], "-noout", "-text"],
                              capture_output=True, text=True, timeout=30).stdout
        need(f"DNS:tailor-webhook.{NAMESPACE}.svc" in text, "the certificate lacks the "
                                                           "Service's DNS name")
        pub = lambda args: subprocess.run(["openssl", *args], capture_output=True,  # noqa: E731
                                          text=True, timeout=30).stdout
        need(pub(["x509", "-in", paths["tls.crt"], "-noout", "-pubkey"]) ==
             pub(["pkey", "-in", paths["tls.key"], "-pubout"]),
             "tls.key is not the certificate's key")


@check
def controller_knows_the_webhook_flags():
    """webhook.enabled passes flags the controller must know; until it does, say so."""
    objs, _ = render({"webhook": {"enabled": True}})
    _, c = controller(objs)
    unknown = [f for f in flag_names(c["args"]) if f not in known_flags()]
    if unknown:
        raise Skip(f"`tailor run` does not know {unknown} yet: webhook.enabled stays off "
                   f"(values.yaml says so) until the controller serves the webhook")


@check
def notes_render_and_suggest_a_valid_policy():
    variants = [None, {"remediation": {"enabled": True}},
                {"remediation": {"enabled": True}, "disableAutoApply": True},
                {"prometheusUrl": "http://p:9090", "dryRun": True}]
    for v in variants:
        _, notes = render(v)
        need("tailor-system" in notes and "{{" not in notes, f"NOTES.txt with {v}:\n{notes}")
    _, notes = render()
    m = re.search(r"echo '(\{.*?\})' \|", notes, re.S)
    need(m, "NOTES.txt has no example policy")
    policy = json.loads(m.group(1))
    need(policy["kind"] == "OptimizationPolicy" and
         policy["metadata"]["namespace"] == NAMESPACE, f"NOTES policy {policy}")
    try:
        sys.path.insert(0, str(ROOT))
        from e2e.apiserver import crdschema
    except ImportError as e:
        raise Skip(f"policy not validated: e2e/apiserver/crdschema.py not importable ({e})")
    crd = next(c for c in chart_crds() if c["spec"]["names"]["kind"] == "OptimizationPolicy")
    schema = next(v for v in crd["spec"]["versions"] if v.get("storage"))["schema"][
        "openAPIV3Schema"]
    obj = copy.deepcopy(policy)
    dropped = crdschema.prune(obj, schema)
    crdschema.apply_defaults(obj, schema)
    errs = [str(e) for e in crdschema.validate(obj, schema)]
    need(not dropped and not errs, f"NOTES.txt's policy is invalid: {dropped} {errs}")


@check
def every_value_is_used():
    # Renders that between them switch every option on (the checks above add theirs).
    for v in (None, {"remediation": {"enabled": True}}, {"serviceMonitor": {"enabled": True}},
              {"validatingAdmissionPolicy": {"enabled": True}},
              {"webhook": {"enabled": True, "certManager": {"enabled": True}}},
              {"podAnnotations": {"a": "b"}, "podLabels": {"team": "platform"},
               "tolerations": [{"operator": "Exists"}], "affinity": {"nodeAffinity": {}},
               "priorityClassName": "system-cluster-critical",
               "imagePullSecrets": [{"name": "regcred"}]}):
        render(v)
    objs, _ = render({"podAnnotations": {"a": "b"}, "podLabels": {"team": "platform"},
                      "tolerations": [{"operator": "Exists"}], "affinity": {"nodeAffinity": {}},
                      "priorityClassName": "system-cluster-critical",
                      "imagePullSecrets": [{"name": "regcred"}]})
    dep, _ = controller(objs)
    pod = dep["spec"]["template"]
    need(pod["metadata"]["annotations"] == {"a": "b"} and
         pod["metadata"]["labels"]["team"] == "platform" and
         pod["spec"]["priorityClassName"] == "system-cluster-critical" and
         pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}] and
         pod["spec"]["tolerations"] == [{"operator": "Exists"}], f"pod options {pod}")
    need(find(objs, "ServiceAccount", "tailor")["imagePullSecrets"] == [{"name": "regcred"}],
         "imagePullSecrets are not on the ServiceAccount")
    render({"webhook": {"enabled": True}})

    leaves = []

    def walk(node, path):
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, path + (k,))
        else:
            leaves.append(path)
    walk(default_values(), ())
    unused = [".".join(p) for p in leaves
              if not any(p[:n] in USED for n in range(1, len(p) + 1))]
    need(not unused, f"values.yaml entries no template uses: {unused}")


@check
def renderer_refuses_what_it_does_not_know():
    """The renderer is honest only if it fails on what it cannot render."""
    cases = {
        "unknown function": '{{ upper "x" }}',
        "range": "{{ range .Values.extraArgs }}x{{ end }}",
        "missing value": "{{ .Values.nope }}",
        "nil pointer": "{{ .Values.image.tag.x }}",
        "printing a map": "{{ .Values.resources }}",
        "variable out of scope": '{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}',
        "undeclared assignment": "{{ $y = 1 }}",
        "missing end": "{{ if true }}x",
    }
    for what, src in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            chart = Path(tmp)
            (chart / "templates").mkdir()
            shutil.copy(CHART / "Chart.yaml", chart / "Chart.yaml")
            (chart / "templates" / "t.yaml").write_text(src)
            try:
                r = Renderer(chart, default_values())
                try:
                    r.render_all()
                finally:
                    r.close()
            except TemplateError:
                continue
            raise CheckFailed(f"the renderer accepted {what}: {src}")
    # And renders what it claims to, like Go: trim markers, scoping by assignment, else if.
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp)
        (chart / "templates").mkdir()
        shutil.copy(CHART / "Chart.yaml", chart / "Chart.yaml")
        (chart / "templates" / "t.yaml").write_text(
            'a: {{- " b" }}\n{{- $v := "x" }}{{ if true }}{{ $v = "y" }}{{ end }}\nv: {{ $v }}\n'
            '{{- if false }}\nno\n{{- else if .Values.replicas }}\nr: {{ .Values.replicas }}\n'
            '{{- end }}\nq: {{ "a\\"b" | quote }}\nn: {{ list 1 2 | toYaml | nindent 2 }}\n')
        r = Renderer(chart, default_values())
        try:
            out = r.render_all()["t.yaml"]
        finally:
            r.close()
        want = 'a: b\nv: y\nr: 1\nq: "a\\"b"\nn: \n  - 1\n  - 2\n'
        need(out == want, f"renderer output {out!r}, Go gives {want!r}")


# ============================================================================ the Dockerfile
#
# No Docker engine runs here, so the image is not built. These two checks cover what breaks a
# Dockerfile quietly: a source the build reads that is not copied into the build stage, and a
# shared library the binary links that the runtime stage does not install.

def dockerfile_stages():
    """[(base image, [instructions])] of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append((rest.split()[0], []))
        else:
            need(stages, "Dockerfile: an instruction before FROM")
            stages[-1][1].append((word.upper(), rest.strip()))
    return stages


def apt_packages(instructions):
    pkgs = []
    for word, rest in instructions:
        if word == "RUN":
            for m in re.finditer(r"apt-get install ([^&;]*)", rest):
                pkgs += [t for t in m.group(1).split() if not t.startswith("-")]
    return pkgs


@check
def dockerfile_copies_what_the_build_reads():
    stages = dockerfile_stages()
    need(len(stages) == 2 and stages[0][0].startswith("debian:bookworm") and
         stages[1][0] == "debian:bookworm-slim", f"stages {[s[0] for s in stages]}")
    build, runtime = stages[0][1], stages[1][1]
    copied = []
    for word, rest in build:
        if word == "COPY":
            copied += [a.rstrip("/") for a in rest.split()[:-1]]
    run = " ".join(rest for word, rest in build if word == "RUN")
    need("-DTL_TESTS=OFF" in run and "--target tailor" in run, f"build stage runs: {run}")
    need(set(apt_packages(build)) >= {"build-essential", "cmake", "pkg-config",
                                      "libcurl4-openssl-dev", "libcjson-dev", "libyaml-dev",
                                      "libev-dev", "libwebsockets-dev", "python3"},
         f"build packages {apt_packages(build)}")

    def is_copied(rel):
        return any(rel == c or rel.startswith(c + "/") for c in copied)

    # What a -DTL_TESTS=OFF configure and build read: the top-level CMakeLists.txt, every
    # add_subdirectory outside if(TL_TESTS)/if(TL_FUZZ), and ${PROJECT_SOURCE_DIR}/ paths named
    # in the CMakeLists.txt of those directories.
    missing = []
    todo, seen = [""], set()
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        cm = ROOT / d / "CMakeLists.txt"
        rel_cm = str(cm.relative_to(ROOT))
        if not is_copied(rel_cm):
            missing.append(rel_cm)
        skipping = 0
        for line in cm.read_text().splitlines():
            code = line.split("#", 1)[0]
            if re.match(r"\s*if\s*\(", code):
                if skipping or re.search(r"\bTL_(TESTS|FUZZ)\b", code):
                    skipping += 1
                continue
            if re.match(r"\s*endif\s*\(", code):
                skipping = max(0, skipping - 1)
                continue
            if skipping:
                continue
            for sub in re.findall(r"add_subdirectory\((\w+)\)", code):
                todo.append(f"{d}/{sub}".strip("/"))
            for ref in re.findall(r"\$\{PROJECT_SOURCE_DIR\}/([\w./-]+)", code):
                if not is_copied(ref.rstrip("/")):
                    missing.append(ref)
    need(not missing, f"the build stage does not COPY what CMake reads: {sorted(set(missing))}")
    ignore = (ROOT / ".dockerignore").read_text().split()
    need("build*/" in ignore and any(i.startswith("node_modules") for i in ignore),
         ".dockerignore must leave out build*/ and node_modules")
    for c in copied:
        need(not any(re.fullmatch(i.rstrip("/").replace("*", ".*"), c) for i in ignore
                     if not i.startswith("#")), f".dockerignore drops {c}, which is copied")
    # The runtime stage: the binary where the Deployment expects it, as the pod's user.
    instr = dict(runtime)
    need(instr.get("USER") == "65532:65532", f"USER {instr.get('USER')}")
    need(instr.get("ENTRYPOINT") == '["/usr/local/bin/tailor"]' and instr.get("CMD") == '["run"]',
         f"ENTRYPOINT {instr.get('ENTRYPOINT')} CMD {instr.get('CMD')}")
    need(any(w == "COPY" and r.endswith(" /usr/local/bin/tailor") and "--from=" in r
             for w, r in runtime), "the runtime stage does not copy the binary to "
                                   "/usr/local/bin/tailor")


@check
def runtime_image_has_the_linked_libraries():
    """Every shared library the built binary links comes from a package the runtime stage
    installs, or one they depend on (read from this Debian's package database)."""
    binary = os.environ.get("TAILOR_BIN") or str(ROOT / "build" / "controller" / "tailor")
    if not os.access(binary, os.X_OK):
        raise Skip(f"no built binary ({binary}); ctest passes TAILOR_BIN")
    if not (shutil.which("ldd") and shutil.which("dpkg-query") and shutil.which("dpkg")):
        raise Skip("ldd or dpkg is not there (not a Debian system)")
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    if "bookworm" not in os_release:
        raise Skip("not Debian bookworm: its packages are not the image's")
    runtime = apt_packages(dockerfile_stages()[1][1])
    need({"libcurl4", "libcjson1", "libyaml-0-2", "libev4", "libwebsockets17",
          "libwebsockets-evlib-ev", "ca-certificates"} <= set(runtime),
         f"runtime packages {runtime}")
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    if re.search(r"lib(asan|ubsan)\.so", ldd):
        raise Skip("a sanitizer build (links the ASan/UBSan runtimes, which no image ships); "
                   "the normal build checks the image's libraries")
    libs = sorted(set(re.findall(r"=> (/\S+)", ldd)))
    need(libs, f"ldd {binary} found no libraries")
    q = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}\n"],
                       capture_output=True, text=True, timeout=30).stdout
    deps = {}
    for line in q.splitlines():
        pkg, _, d = line.partition("\t")
        deps[pkg] = {re.split(r"[\s:(]", alt.strip())[0]
                     for part in d.split(",") for alt in part.split("|")[:1] if alt.strip()}
    closure, todo = set(), list(runtime)
    while todo:
        p = todo.pop()
        if p not in closure:
            closure.add(p)
            todo += deps.get(p, ())
    def variants(path):
        real = os.path.realpath(path)
        out = {path, real}
        for x in (path, real):
            if x.startswith("/usr/lib/"):
                out.add(x[len("/usr"):])
            elif x.startswith("/lib/"):
                out.add("/usr" + x)
        return out
    # One dpkg -S for all of them (it reports what it finds and complains about the rest).
    candidates = sorted(set().union(*(variants(lib) for lib in libs)))
    p = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True, timeout=60)
    owner_of = {}
    for line in p.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        owner_of[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    owners = {}
    for lib in libs:
        found = next((owner_of[v] for v in sorted(variants(lib)) if v in owner_of), None)
        need(found, f"no package owns {lib}")
        owners[lib] = found
    missing = {lib: pkg for lib, pkg in owners.items() if pkg not in closure}
    need(not missing, f"the runtime stage lacks the packages of: {missing}")


# ============================================================================ main

def main():
    os.chdir(ROOT)
    return check.run("helm chart checks")


if __name__ == "__main__":
    sys.exit(main())
