#!/usr/bin/env python3
"""Runs the Argo CD health checks in gitops/argocd/health/*.lua with a real Lua interpreter.

Argo CD calls a health script as a chunk with the live object in the global `obj` and reads
`status` and `message` from the table it returns. Lua has no JSON decoder, so each sample object
is turned into a Lua table literal here and set as `obj` before the unmodified script is loaded
with loadfile() and called; the harness prints the returned status and message.

Argo CD runs these scripts in gopher-lua, a Lua 5.1. The checks run with every interpreter found
(lua5.4, lua5.3, lua5.2, lua5.1, luajit, lua) and also refuse syntax newer than 5.1. Without any
Lua interpreter the test fails and says what to install.

Also checked: the Lua embedded in gitops/argocd/argocd-cm-health.yaml is the same as the
standalone files under the right argocd-cm keys; the Argo CD Applications ignore Tailor's fields
(managedFieldsManagers: [tailor]) and respect that at sync; the Flux and Argo CD manifests
parse; gitops/policies builds with `kubectl kustomize` and its objects are valid against the
CRDs (when e2e/apiserver/crdschema.py is importable); and the Flux "handover" command in
docs/gitops.md keeps a workload's requests when Flux stops applying them, run against the local
API server (e2e/apiserver/serve, when it is there).

    e2e/test_gitops_lua.py [-v]

Exits non-zero if any check fails; the last line is "N passed, N failed, N skipped".
"""

import copy
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import CheckFailed, Checks, Skip, need  # noqa: E402

import yaml

ROOT = Path(__file__).resolve().parent.parent
GITOPS = ROOT / "gitops"
HEALTH = GITOPS / "argocd" / "health"
SCRIPTS = {"OptimizationPolicy": HEALTH / "optimizationpolicy.lua",
           "Recommendation": HEALTH / "recommendation.lua"}
VERBOSE = "-v" in sys.argv[1:]
INTERPRETERS = ("lua5.4", "lua5.3", "lua5.2", "lua5.1", "luajit", "lua")


# ------------------------------------------------------------------------------ Lua harness

def lua_string(s):
    """A Lua 5.1-compatible string literal: printable ASCII as is, every other byte \\ddd."""
    out = ['"']
    for b in s.encode("utf-8"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append("\\%03d" % b)
    out.append('"')
    return "".join(out)


def lua_literal(v, depth=0):
    """The object as Argo CD hands it to Lua: maps and lists become tables, null is nil."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return lua_string(v)
    pad = "  " * (depth + 1)
    if isinstance(v, list):
        if not v:
            return "{}"
        return "{\n" + "".join(f"{pad}{lua_literal(x, depth + 1)},\n" for x in v) + \
            "  " * depth + "}"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{\n" + "".join(f"{pad}[{lua_string(str(k))}] = {lua_literal(x, depth + 1)},\n"
                               for k, x in v.items()) + "  " * depth + "}"
    raise TypeError(f"cannot write {type(v).__name__} as Lua")


HARNESS = """
local chunk, err = loadfile(%s)
if chunk == nil then
  io.stderr:write("load: " .. tostring(err) .. "\\n")
  os.exit(2)
end
local hs = chunk()
if type(hs) ~= "table" then
  io.stderr:write("the script returned " .. type(hs) .. ", not a table\\n")
  os.exit(3)
end
io.write("status=", tostring(hs.status), "\\n")
io.write("message=", tostring(hs.message), "\\n")
"""


def interpreters():
    found, seen = [], set()
    for name in INTERPRETERS:
        path = shutil.which(name)
        if path and os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            found.append(path)
    return found


_interps = None


def lua_interpreters():
    global _interps
    if _interps is None:
        _interps = interpreters()
    need(_interps, "no Lua interpreter found (looked for " + ", ".join(INTERPRETERS) + "). "
                   "Install one, e.g. `apt-get install lua5.4` (scripts/deps.sh lists it); "
                   "Argo CD's health checks cannot be tested without it.")
    return _interps


def run_health(script, obj):
    """{interpreter: (status, message)} of script for obj."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        harness = Path(tmp) / "harness.lua"
        harness.write_text("obj = " + lua_literal(obj) + "\n" + HARNESS % lua_string(str(script)))
        for interp in lua_interpreters():
            p = subprocess.run([interp, str(harness)], capture_output=True, text=True,
                               timeout=10)
            need(p.returncode == 0, f"{os.path.basename(interp)} {script.name} failed "
                                    f"({p.returncode}): {p.stderr.strip()}")
            m = re.fullmatch(r"status=(.*)\nmessage=(.*)\n", p.stdout, re.S)
            need(m, f"{os.path.basename(interp)}: unexpected output {p.stdout!r}")
            out[os.path.basename(interp)] = (m.group(1), m.group(2))
    results = set(out.values())
    need(len(results) == 1, f"{script.name}: interpreters disagree: {out}")
    return results.pop()


# ------------------------------------------------------------------------------ samples

def policy(generation=3, status=None):
    obj = {"apiVersion": "tailor.dev/v1alpha1", "kind": "OptimizationPolicy",
           "metadata": {"name": "web-rightsizing", "namespace": "shop",
                        "generation": generation},
           "spec": {"selector": {"matchLabels": {"tier": "web"}}, "approval": {"mode": "Off"}}}
    if status is not None:
        obj["status"] = status
    return obj


def ready(status, reason, message, generation=3):
    return {"type": "Ready", "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": "2026-11-21T02:00:00Z"}


def cond(type_, status, reason, message):
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-11-21T02:00:00Z"}


def rec(phase=None, generation=2, observed=2, revision=4, conditions=(), explanation=None,
        status=True):
    obj = {"apiVersion": "tailor.dev/v1alpha1", "kind": "Recommendation",
           "metadata": {"name": "deployment-web", "namespace": "shop", "generation": generation},
           "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "policyRef": {"name": "web-rightsizing", "namespace": "shop"}}}
    if status:
        st = {}
        if phase is not None:
            st.update({"phase": phase, "revision": revision, "observedGeneration": observed,
                       "confidence": "High"})
        if conditions:
            st["conditions"] = list(conditions)
        if explanation is not None:
            st["explanation"] = explanation
        obj["status"] = st
    return obj


EXPLAIN = "p95 CPU 212m over 14d (+15% headroom); peak memory 530Mi (+20%)"

# (name, object, expected status, substrings the message must contain)
POLICY_CASES = [
    ("no status yet", policy(), "Progressing", ["Waiting"]),
    ("Ready=True, current", policy(status={"observedGeneration": 3, "conditions": [
        ready("True", "Analyzed", "12 workloads, 12 recommendations")]}),
     "Healthy", ["12 workloads"]),
    ("Ready=False, current", policy(status={"observedGeneration": 3, "conditions": [
        ready("False", "OutOfScope", "spec.namespaceSelector: only a policy in tailor-system "
                                     "may select other namespaces")]}),
     "Degraded", ["OutOfScope", "spec.namespaceSelector"]),
    ("Ready=False for an older generation (a fix is on its way)",
     policy(generation=4, status={"observedGeneration": 3, "conditions": [
         ready("False", "InvalidSpec", "spec.approval.window.duration: too long")]}),
     "Progressing", ["generation 4"]),
    ("Ready=True for an older generation", policy(generation=5, status={
        "observedGeneration": 4, "conditions": [ready("True", "Analyzed", "ok", 4)]}),
     "Progressing", ["generation 5"]),
    ("Ready=Unknown while analysing", policy(status={"observedGeneration": 3, "conditions": [
        ready("Unknown", "Analyzing", "first analysis running")]}),
     "Progressing", ["Analyzing"]),
    ("status without conditions", policy(status={"observedGeneration": 3}), "Progressing", []),
    ("empty status", policy(status={}), "Progressing", []),
    ("non-ASCII message", policy(status={"observedGeneration": 3, "conditions": [
        ready("True", "Analyzed", "savings 1→2 €")]}), "Healthy", ["savings 1→2 €"]),
]

REC_CASES = [
    ("no status yet", rec(status=False), "Progressing", ["first analysis"]),
    ("empty status", rec(), "Progressing", ["first analysis"]),
    ("UpToDate", rec("UpToDate", explanation=EXPLAIN), "Healthy", ["UpToDate", "p95 CPU"]),
    ("Applied", rec("Applied", conditions=[cond("Applied", "True", "Verified", "held 10m")]),
     "Healthy", ["Applied (revision 4)"]),
    ("Pending: advice awaiting a person is not a fault",
     rec("Pending", conditions=[
         cond("Ready", "True", "Analyzed", "advice is current"),
         cond("Approved", "False", "AwaitingApproval", "set spec.approval.approvedRevision to 4")]),
     "Healthy", ["Pending (revision 4)", "approvedRevision to 4"]),
    ("Pending without conditions", rec("Pending"), "Healthy", ["awaiting approval"]),
    ("Pending under an advise-only policy", rec("Pending", conditions=[
        cond("Approved", "False", "AdviseOnly", "the policy's approval.mode is Off")]),
     "Healthy", ["mode is Off"]),
    ("Approved, waiting for the window", rec("Approved", conditions=[
        cond("Approved", "True", "ApprovedManually", "approved by kubectl-patch"),
        cond("Applied", "False", "Waiting", "window opens at 02:00 UTC")]),
     "Progressing", ["Approved", "window opens"]),
    ("Applying", rec("Applying", conditions=[
        cond("Applied", "False", "Verifying", "verifying until 02:10 UTC")]),
     "Progressing", ["Applying", "verifying until"]),
    ("an approval committed to Git, not yet seen", rec("Pending", generation=3, observed=2),
     "Progressing", ["generation 3"]),
    ("Blocked", rec("Blocked", conditions=[
        cond("Applied", "False", "RolledBack", "web OOM-killed twice after revision 6; "
                                               "set spec.approval.unblockRevision to 6")]),
     "Degraded", ["Blocked", "unblockRevision"]),
    ("RolledBack", rec("RolledBack", conditions=[
        cond("Applied", "False", "RolledBack", "container web crash-looped after the change")]),
     "Degraded", ["RolledBack", "crash-looped"]),
    ("Failed without remediation RBAC", rec("Failed", conditions=[
        cond("Applied", "False", "Forbidden", "patch deployments.apps web: 403; install "
                                              "config/rbac/remediation")]),
     "Degraded", ["Failed", "403"]),
    ("Failed without conditions falls back to the explanation",
     rec("Failed", explanation=EXPLAIN), "Degraded", ["Failed", "p95 CPU"]),
    ("a phase from a newer Tailor", rec("Exploded"), "Unknown", ["Exploded"]),
]


# ------------------------------------------------------------------------------ checks

check = Checks()


def run_cases(kind, cases):
    problems = []
    for name, obj, want, parts in cases:
        status, message = run_health(SCRIPTS[kind], obj)
        if VERBOSE:
            print(f"  {kind} {name}: {status}: {message}")
        if status != want:
            problems.append(f"{name}: {status} ({message}), want {want}")
            continue
        missing = [p for p in parts if p not in message]
        if missing:
            problems.append(f"{name}: message {message!r} lacks {missing}")
    need(not problems, f"{kind} health:\n  " + "\n  ".join(problems))


@check
def lua_interpreter_is_there():
    names = [os.path.basename(p) for p in lua_interpreters()]
    if VERBOSE:
        print(f"  interpreters: {names}")


@check
def optimizationpolicy_health():
    run_cases("OptimizationPolicy", POLICY_CASES)


@check
def recommendation_health():
    run_cases("Recommendation", REC_CASES)


@check
def scripts_are_lua_5_1():
    """gopher-lua is a Lua 5.1: no integer division, bitwise operators, goto or attributes."""
    newer = [(r"//", "integer division"), (r"\bgoto\b", "goto"), (r"::\w+::", "labels"),
             (r"<\s*(const|close)\s*>", "attributes"), (r"[^~=<>]~[^=]", "bitwise xor/not"),
             (r"<<|>>", "shifts"), (r"(?<![\w\]\)])&|\s&\s", "bitwise and"),
             (r"\butf8\.", "utf8 library"), (r"\\u\{", "\\u{} escapes")]
    problems = []
    for path in SCRIPTS.values():
        code = path.read_text()
        code = re.sub(r"--[^\n]*", "", code)                 # comments
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', code)      # strings
        for pattern, what in newer:
            if re.search(pattern, code):
                problems.append(f"{path.name}: {what}")
        for bad in ("os.", "io.", "require", "dofile", "loadfile"):
            if bad in code:
                problems.append(f"{path.name}: {bad} is not in Argo CD's sandbox")
    need(not problems, "not Lua 5.1 / not Argo CD's sandbox:\n  " + "\n  ".join(problems))


@check
def argocd_cm_embeds_the_same_lua():
    cm = yaml.safe_load((GITOPS / "argocd" / "argocd-cm-health.yaml").read_text())
    need(cm["kind"] == "ConfigMap" and cm["metadata"]["name"] == "argocd-cm" and
         cm["metadata"]["namespace"] == "argocd", "argocd-cm-health.yaml is not argocd/argocd-cm")
    need(cm["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "argocd",
         "argocd-cm lacks the label app.kubernetes.io/part-of: argocd")
    for kind, path in SCRIPTS.items():
        k = f"resource.customizations.health.tailor.dev_{kind}"
        need(k in cm["data"], f"argocd-cm-health.yaml has no {k}")
        need(cm["data"][k] == path.read_text(),
             f"{k} differs from gitops/argocd/health/{path.name}")
    extra = set(cm["data"]) - {f"resource.customizations.health.tailor.dev_{k}"
                               for k in SCRIPTS}
    need(not extra, f"unexpected keys in argocd-cm-health.yaml: {extra}")


def load_all(path):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d]
    except yaml.YAMLError as e:
        raise CheckFailed(f"{path.relative_to(ROOT)} is not YAML: {e}")


@check
def gitops_manifests_parse():
    files = sorted(GITOPS.rglob("*.yaml"))
    need(files, "gitops/ has no YAML")
    for path in files:
        for doc in load_all(path):
            if path.name == "kustomization.yaml":
                need(doc.get("kind") == "Kustomization" and doc.get("resources"),
                     f"{path.relative_to(ROOT)} is not a kustomization")
                continue
            need(doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"),
                 f"{path.relative_to(ROOT)}: a document without apiVersion, kind or name")


@check
def argocd_applications_leave_tailors_fields_alone():
    app = load_all(GITOPS / "argocd" / "application-workloads.yaml")[0]
    ignored = {(d.get("group"), d.get("kind")): d.get("managedFieldsManagers")
               for d in app["spec"].get("ignoreDifferences", [])}
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        need(ignored.get(("apps", kind)) == ["tailor"],
             f"application-workloads.yaml does not ignore tailor's fields in {kind}s")
    need("RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"].get("syncOptions", []),
         "without RespectIgnoreDifferences=true a sync writes Git's requests back")
    cm = load_all(GITOPS / "argocd" / "argocd-cm-ignore-differences.yaml")[0]
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        body = yaml.safe_load(cm["data"][f"resource.customizations.ignoreDifferences.apps_{kind}"])
        need(body == {"managedFieldsManagers": ["tailor"]}, f"system-level ignore for {kind}")


@check
def flux_keeps_off_tailors_fields():
    ks = load_all(GITOPS / "flux" / "kustomization-workloads.yaml")[0]
    rules = ks["spec"].get("ignore") or []
    need(rules, "kustomization-workloads.yaml has no spec.ignore")
    for rule in rules:
        for p in rule["paths"]:
            need(re.fullmatch(r"/spec/template/spec/containers/\d+/resources", p),
                 f"ignore path {p} is not a container's resources")
        need(rule.get("target", {}).get("kind") == "Deployment", f"ignore target {rule}")


@check
def policies_build_and_validate():
    need(shutil.which("kubectl"), "kubectl is not on PATH; it builds gitops/policies")
    p = subprocess.run(["kubectl", "kustomize", str(GITOPS / "policies")], capture_output=True,
                       text=True, timeout=60)
    need(p.returncode == 0, f"kubectl kustomize gitops/policies: {p.stderr.strip()}")
    objs = [d for d in yaml.safe_load_all(p.stdout) if d]
    kinds = sorted(o["kind"] for o in objs)
    need("OptimizationPolicy" in kinds and "Recommendation" in kinds, f"kinds {kinds}")
    for o in objs:
        if o["kind"] == "OptimizationPolicy" and o["metadata"]["namespace"] != "tailor-system":
            need("namespaceSelector" not in o["spec"] and "nodePools" not in o["spec"],
                 f"{o['metadata']['name']}: only tailor-system policies may reach further")
        if o["kind"] == "OptimizationPolicy":
            need(o["spec"].get("approval", {}).get("mode") in ("Off", "Manual", "Auto"),
                 f"{o['metadata']['name']}: approval.mode {o['spec'].get('approval')} "
                 f"(a bare Off is YAML's false)")
    try:
        sys.path.insert(0, str(ROOT))
        from e2e.apiserver import crdschema
    except ImportError as e:
        raise Skip(f"built, not validated: e2e/apiserver/crdschema.py not importable ({e})")
    schemas = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            if d and d.get("kind") == "CustomResourceDefinition":
                v = next(v for v in d["spec"]["versions"] if v.get("storage"))
                schemas[d["spec"]["names"]["kind"]] = v["schema"]["openAPIV3Schema"]
    problems = []
    for o in objs:
        obj = copy.deepcopy(o)
        dropped = crdschema.prune(obj, schemas[o["kind"]])
        crdschema.apply_defaults(obj, schemas[o["kind"]])
        errs = [str(e) for e in crdschema.validate(obj, schemas[o["kind"]])]
        if dropped or errs:
            problems.append(f"{o['kind']} {o['metadata']['name']}: {dropped} {errs}")
    need(not problems, "invalid objects in gitops/policies:\n  " + "\n  ".join(problems))


# ------------------------------------------------------------------------------ the handover

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        resources: {requests: {cpu: "1", memory: 2Gi}, limits: {memory: 2Gi}}
"""


def handover_command():
    """The shell command docs/gitops.md gives for handing a workload's resources to tailor."""
    doc = (ROOT / "docs" / "gitops.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.S)
    hits = [b for b in blocks if "--field-manager=tailor -f -" in b]
    need(len(hits) == 1, "docs/gitops.md has no (or more than one) handover command")
    return hits[0]


@check
def flux_handover_keeps_the_requests():
    """docs/gitops.md: after the handover, Flux dropping `resources` (spec.ignore or a patch)
    leaves them in place; without it, server-side apply deletes them. Run against the local API
    server, whose server-side apply tracks field managers like Kubernetes'."""
    serve = ROOT / "e2e" / "apiserver" / "serve"
    if not (serve.exists() and os.access(serve, os.X_OK)):
        raise Skip("e2e/apiserver/serve is not there")
    for tool in ("kubectl", "jq", "bash"):
        if not shutil.which(tool):
            raise Skip(f"{tool} is not on PATH")
    command = handover_command()
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = os.path.join(tmp, "kubeconfig")
        proc = subprocess.Popen([str(serve), "--port", "0", "--kubeconfig", kubeconfig],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                cwd=str(ROOT))
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            line = proc.stdout.readline() if ready else ""
            if not line.startswith("ready "):
                raise Skip("e2e/apiserver/serve did not become ready")
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep it drained
            env = dict(os.environ, KUBECONFIG=kubeconfig)

            def sh(cmd, stdin=None):
                p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], input=stdin, env=env,
                                   capture_output=True, text=True, timeout=30)
                need(p.returncode == 0, f"{cmd.strip()}: {p.stderr.strip()}")
                return p.stdout

            def flux_apply(manifest):
                sh("kubectl apply --server-side --field-manager=kustomize-controller -f -",
                   manifest)

            without = re.sub(r"\n\s*resources:.*", "", DEPLOYMENT).replace("1.25", "1.26")
            get = ("kubectl get deployment web -n shop -o "
                   "jsonpath='{.spec.template.spec.containers[0].resources.requests.cpu}'")
            sh("kubectl create namespace shop")
            # Without the handover: Flux stops applying resources, and they are deleted.
            flux_apply(DEPLOYMENT)
            flux_apply(without)
            need(sh(get) == "", "the local API server kept fields nobody owns; this check "
                                "cannot tell anything")
            sh("kubectl delete deployment web -n shop")
            # With it: tailor co-owns them, and they stay.
            flux_apply(DEPLOYMENT)
            sh(command)
            flux_apply(without)
            need(sh(get) == "1", "after the documented handover, Flux dropping resources "
                                 "still deleted the requests")
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# ------------------------------------------------------------------------------ main

def main():
    os.chdir(ROOT)
    return check.run("gitops checks")


if __name__ == "__main__":
    sys.exit(main())
