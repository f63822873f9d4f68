"""Cluster scenarios: one YAML file describes a small Kubernetes cluster (Karpenter
NodePools and their nodes, namespaces, workloads) and how much CPU and memory every
container really uses over time.

Owns: parsing and validating scenario files, turning them into real Kubernetes
objects (with a deterministic scheduler), and the usage model that the API server
(metrics.k8s.io), the Prometheus history generator and the pod simulator all share.
The format and every formula are documented in e2e/scenarios/README.md; keep the
two in step.

Pure module: standard library + PyYAML, no I/O except reading the scenario file and
the optional EC2 instance catalogue, no wall clock except where a caller asks for
"now" and the scenario has no fixed start.

Public API (the API server relies on these names):
    load(path) / load_text(text, name)      -> scenario dict (validated, defaults applied)
    objects(sc, now=None)                   -> list of Kubernetes object dicts, owners first
    pod_usage(sc, ns, pod, container, t)    -> (cpu_cores, memory_bytes) reported usage
    usage_detail(...)                       -> demand, reported usage, throttling, OOM threshold
    container_profiles(sc)                  -> (ns, kind, workload, pod, container, profile)
    series(sc, start, end, step)            -> per-container sample arrays (history)
    restart_events(sc, ns, pod, container, t0, t1)
    window(sc, now=None) / anchor(sc, now)  -> the (start, end) of the described history
    pod_template_hash(template)             -> the 10-character pod-template-hash
"""

import csv
import functools
import hashlib
import json
import math
import os
import random
import re
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation, ROUND_CEILING

import yaml

__all__ = [
    "load", "load_text", "objects", "pod_usage", "usage_detail", "container_profiles",
    "series", "restart_events", "window", "anchor", "pod_template_hash", "pods",
    "parse_quantity", "parse_cpu", "parse_memory", "parse_duration", "format_cpu",
    "format_memory", "instance_type", "node_allocatable", "CREATED_AT_ANNOTATION",
]

# The API server sets creationTimestamp itself; objects carry the time the scenario
# says they were created (the start of the history) here so it can backdate them.
CREATED_AT_ANNOTATION = "scenario.tailor.dev/created-at"

DEFAULT_HISTORY = 14 * 86400
DEFAULT_KUBERNETES_VERSION = "v1.31.7"
NOISE_BUCKET = 60          # seconds: noise is piecewise constant over these buckets
DAY = 86400
WEEK = 7 * DAY

# --------------------------------------------------------------------------------------
# Quantities and durations
# --------------------------------------------------------------------------------------

_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
           "Ei": 1 << 60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}
_QTY_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                     r"(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?[0-9]+))?$")


def parse_quantity(value):
    """Kubernetes resource.Quantity -> (Decimal value, 'binary'|'decimal').

    Raises ValueError (without a field path; callers add it)."""
    if isinstance(value, bool):
        raise ValueError("a quantity, not a boolean")
    if isinstance(value, int):
        return Decimal(value), "decimal"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a finite quantity")
        return Decimal(repr(value)), "decimal"
    if not isinstance(value, str):
        raise ValueError("a quantity such as 250m, 1.5 or 512Mi")
    m = _QTY_RE.match(value.strip())
    if not m:
        raise ValueError("a quantity such as 250m, 1.5 or 512Mi")
    num = Decimal(m.group(1))
    suffix, exp = m.group(2), m.group(3)
    if suffix in _BINARY:
        return num * _BINARY[suffix], "binary"
    if exp is not None:
        return num.scaleb(int(exp)), "decimal"
    return num * _DECIMAL[suffix or ""], "decimal"


def parse_cpu(value):
    """CPU quantity (or plain number of cores) -> float cores."""
    return float(parse_quantity(value)[0])


def parse_memory(value):
    """Memory quantity -> int bytes (rounded up, as the API server does)."""
    d = parse_quantity(value)[0]
    return int(d.to_integral_value(rounding=ROUND_CEILING))


def format_cpu(cores):
    """Canonical CPU quantity the way the API server prints it: 2, 250m, 500u."""
    n = int((Decimal(repr(float(cores))) * 10**9).to_integral_value(rounding=ROUND_CEILING))
    if n % 10**9 == 0:
        return str(n // 10**9)
    if n % 10**6 == 0:
        return "%dm" % (n // 10**6)
    if n % 10**3 == 0:
        return "%du" % (n // 10**3)
    return "%dn" % n


def format_memory(nbytes, binary=True):
    """Canonical memory quantity: the largest suffix that divides exactly."""
    nbytes = int(nbytes)
    if nbytes == 0:
        return "0"
    if binary:
        for suf in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            if nbytes % _BINARY[suf] == 0:
                return "%d%s" % (nbytes // _BINARY[suf], suf)
        return str(nbytes)
    for suf, mult in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6),
                      ("k", 10**3)):
        if nbytes % mult == 0:
            return "%d%s" % (nbytes // mult, suf)
    return str(nbytes)


def _canonical_quantity(value, resource):
    d, fmt = parse_quantity(value)
    if resource == "cpu":
        return format_cpu(d)
    if resource in ("memory", "ephemeral-storage"):
        b = int(d.to_integral_value(rounding=ROUND_CEILING))
        return format_memory(b, binary=(fmt == "binary"))
    return str(value)


_DUR_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_DUR_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": DAY, "w": WEEK}


def parse_duration(value):
    """'14d', '6h', '1h30m', '90s' or a number of seconds -> seconds (int when whole)."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 15m, 6h or 14d")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("a finite duration")
        return int(value) if float(value).is_integer() else float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a duration such as 15m, 6h or 14d")
    s = value.strip()
    pos, total = 0, 0.0
    for m in _DUR_PART.finditer(s):
        if m.start() != pos:
            raise ValueError("a duration such as 15m, 6h or 14d")
        total += float(m.group(1)) * _DUR_UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError("a duration such as 15m, 6h or 14d")
    return int(total) if total.is_integer() else total


def _rfc3339(epoch):
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(s)
        except ValueError:
            raise ValueError("an RFC 3339 time such as 2026-11-07T00:00:00Z") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp())
    raise ValueError("an RFC 3339 time such as 2026-11-07T00:00:00Z")


# --------------------------------------------------------------------------------------
# Deterministic hashing
# --------------------------------------------------------------------------------------

# Kubernetes' generated-name alphabet (k8s.io/apimachinery/pkg/util/rand): no vowels,
# no look-alike characters. Real pod suffixes and template hashes use it.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def _h64(*parts):
    data = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _unit(*parts):
    """A uniform number in [0, 1) fixed by its inputs."""
    return _h64(*parts) / 18446744073709551616.0


def _suffix(n, *parts):
    h = _h64(*parts)
    out = []
    for _ in range(n):
        h, r = divmod(h, 27)
        out.append(_ALPHANUMS[r])
    return "".join(out)


def pod_template_hash(template, collision_count=0):
    """The pod-template-hash for a pod template, shaped like the Deployment
    controller's: a 32-bit hash of the template printed as a decimal number, each
    digit mapped into the generated-name alphabet (so only 4-9, b, c, d, f appear,
    as in real hashes). The controller uses FNV-32a; BLAKE2 here is much faster in
    Python. Zero-padded to 10 digits so it is always 10 characters."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    h = int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "big")
    return "".join(_ALPHANUMS[ord(ch) % 27] for ch in "%010d" % h)


def _hexid(n, *parts):
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return h[:n]


# --------------------------------------------------------------------------------------
# Instance catalogue and node allocatable
# --------------------------------------------------------------------------------------

# (vCPU, memory GiB, arch) for types the demo and generator use, so the module works
# without ../shared/data/ec2/instances.csv. Values are AWS's published specs.
_FALLBACK_TYPES = {}
for _fam, _arch, _ratio in (("m5", "amd64", 4), ("m6i", "amd64", 4), ("m7i", "amd64", 4),
                            ("m6g", "arm64", 4), ("m7g", "arm64", 4), ("c5", "amd64", 2),
                            ("c6i", "amd64", 2), ("c7i", "amd64", 2), ("c6g", "arm64", 2),
                            ("c7g", "arm64", 2), ("r5", "amd64", 8), ("r6i", "amd64", 8),
                            ("r7i", "amd64", 8), ("r6g", "arm64", 8)):
    for _size, _vcpu in (("large", 2), ("xlarge", 4), ("2xlarge", 8), ("4xlarge", 16),
                         ("8xlarge", 32), ("12xlarge", 48), ("16xlarge", 64),
                         ("24xlarge", 96)):
        _FALLBACK_TYPES["%s.%s" % (_fam, _size)] = (_vcpu, _vcpu * _ratio, _arch)
for _name, _vcpu, _gib in (("t3.medium", 2, 4), ("t3.large", 2, 8), ("t3.xlarge", 4, 16),
                           ("t3.2xlarge", 8, 32)):
    _FALLBACK_TYPES[_name] = (_vcpu, _gib, "amd64")
# c5 has 9xlarge/18xlarge rather than 8xlarge/16xlarge.
for _size, _vcpu in (("9xlarge", 36), ("18xlarge", 72)):
    _FALLBACK_TYPES["c5." + _size] = (_vcpu, _vcpu * 2, "amd64")
for _bad in ("c5.8xlarge", "c5.16xlarge"):
    _FALLBACK_TYPES.pop(_bad, None)

# ENI-limited max pods (VPC CNI: ENIs * (IPv4 per ENI - 1) + 2), from
# awslabs/amazon-eks-ami templates/shared/runtime/eni-max-pods.txt. Families listed
# here all follow the same per-size pattern in that file; anything else gets 110.
_ENI_PATTERN_FAMILIES = {
    "m5", "m5a", "m5d", "m6i", "m6a", "m6id", "m6g", "m6gd", "m7i", "m7a", "m7g", "m7gd",
    "c5", "c5a", "c5d", "c6i", "c6a", "c6id", "c6g", "c6gd", "c7i", "c7a", "c7g", "c7gd",
    "r5", "r5a", "r5d", "r6i", "r6a", "r6id", "r6g", "r6gd", "r7i", "r7a", "r7g", "r7gd"}
_ENI_PATTERN = {"medium": 8, "large": 29, "xlarge": 58, "2xlarge": 58, "4xlarge": 234,
                "8xlarge": 234, "9xlarge": 234, "12xlarge": 234, "16xlarge": 737,
                "18xlarge": 737, "24xlarge": 737, "32xlarge": 737, "48xlarge": 737,
                "metal": 737}
_ENI_EXPLICIT = {"t3.micro": 4, "t3.small": 11, "t3.medium": 17, "t3.large": 35,
                 "t3.xlarge": 58, "t3.2xlarge": 58}

_TYPE_RE = re.compile(r"^([a-z]+)(-[0-9]+tb)?([0-9]+)")
_CATALOG = None


def _catalog_path():
    # e2e/apiserver/scenario.py -> repo root is two levels up; shared/ is its sibling.
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    return os.path.join(os.path.dirname(root), "shared", "data", "ec2", "instances.csv")


def _catalog():
    global _CATALOG
    if _CATALOG is None:
        cat = {}
        path = _catalog_path()
        if os.path.exists(path):
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    try:
                        vcpu = int(row["vcpu"])
                        mib = int(round(float(row["memory_gib"]) * 1024))
                    except (KeyError, ValueError):
                        continue
                    cat[row["instance_type"]] = {"vcpu": vcpu, "memoryMiB": mib,
                                                 "arch": row.get("arch") or "amd64",
                                                 "source": "instances.csv"}
        for name, (vcpu, gib, arch) in _FALLBACK_TYPES.items():
            cat.setdefault(name, {"vcpu": vcpu, "memoryMiB": gib * 1024, "arch": arch,
                                  "source": "built-in"})
        _CATALOG = cat
    return _CATALOG


def instance_type(name):
    """Specs for an EC2 instance type, or None: vcpu, memoryMiB, arch, category,
    family, generation, size, eniMaxPods."""
    spec = _catalog().get(name)
    if spec is None:
        return None
    out = dict(spec)
    family, _, size = name.partition(".")
    m = _TYPE_RE.match(name)
    out["family"] = family
    out["size"] = size
    out["category"] = m.group(1) if m else family
    out["generation"] = m.group(3) if m else ""
    if name in _ENI_EXPLICIT:
        out["eniMaxPods"] = _ENI_EXPLICIT[name]
    elif family in _ENI_PATTERN_FAMILIES and size in _ENI_PATTERN:
        out["eniMaxPods"] = _ENI_PATTERN[size]
    else:
        out["eniMaxPods"] = None
    return out


def node_allocatable(vcpu, memory_mib, max_pods, arch="amd64", ephemeral_bytes=20 << 30,
                     vm_overhead=0.075):
    """Node capacity and allocatable the way Karpenter (aws/karpenter-provider-aws,
    pkg/providers/instancetype/types.go) estimates them for EKS:

      memory capacity = MiB (-64 on arm64) - ceil(MiB * VM_MEMORY_OVERHEAD_PERCENT 0.075)
      kube-reserved   cpu: 6% of the first core, 1% of the second, 0.5% of cores 3-4,
                           0.25% beyond (60m, 10m, 5m each, 2.5m each)
                      memory: 11 * maxPods + 255 MiB; ephemeral-storage: 1Gi
      eviction        memory.available 100Mi; nodefs.available 10% of the root volume
      allocatable     = capacity - kube-reserved - eviction threshold

    Returns (capacity, allocatable) as numbers: cpu millicores, memory bytes,
    ephemeral-storage bytes, pods."""
    cpu_m = vcpu * 1000
    mib = memory_mib - (64 if arch == "arm64" else 0)
    mib -= int(math.ceil(mib * vm_overhead))
    reserved_m = 0.0
    for lo, hi, pct in ((0, 1000, 0.06), (1000, 2000, 0.01), (2000, 4000, 0.005),
                        (4000, 1 << 31, 0.0025)):
        if cpu_m >= lo:
            reserved_m += int((min(cpu_m, hi) - lo) * pct)
    reserved_mem = (11 * max_pods + 255) << 20
    cap = {"cpu": cpu_m, "memory": mib << 20, "ephemeral-storage": ephemeral_bytes,
           "pods": max_pods}
    alloc = {"cpu": cpu_m - int(reserved_m),
             "memory": (mib << 20) - reserved_mem - (100 << 20),
             "ephemeral-storage": ephemeral_bytes - (1 << 30)
             - int(math.ceil(ephemeral_bytes / 100 * 10)),
             "pods": max_pods}
    return cap, alloc


def _quantity_list(res):
    """Numbers -> the strings a kubelet would report (memory in Ki like real nodes)."""
    out = {"cpu": format_cpu(res["cpu"] / 1000.0)}
    for k in ("ephemeral-storage", "memory"):
        b = res[k]
        out[k] = "%dKi" % (b // 1024) if b % 1024 == 0 else str(b)
    out["pods"] = str(res["pods"])
    return out


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

def _show(v):
    try:
        s = json.dumps(v, default=str)
    except (TypeError, ValueError):
        s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _join(path, key):
    if isinstance(key, int):
        return "%s[%d]" % (path, key)
    return "%s.%s" % (path, key) if path else key


class _Checker:
    """Validation helpers that raise ValueError('<file>: <field path>: <problem>')."""

    def __init__(self, name):
        self.name = name

    def fail(self, path, msg):
        raise ValueError("%s: %s: %s" % (self.name, path or "(top level)", msg))

    def mapping(self, d, path, allowed, required=()):
        if not isinstance(d, dict):
            self.fail(path, "expected a mapping, got %s" % _show(d))
        for k in d:
            if not isinstance(k, str):
                self.fail(path, "expected string keys, got %s" % _show(k))
            if k not in allowed:
                self.fail(_join(path, k), "unknown field (expected one of: %s)"
                          % ", ".join(sorted(allowed)))
        for k in required:
            if d.get(k) is None:
                self.fail(_join(path, k), "required field is missing")
        return d

    def seq(self, v, path, allow_none=True):
        if v is None and allow_none:
            return []
        if not isinstance(v, list):
            self.fail(path, "expected a list, got %s" % _show(v))
        return v

    def string(self, v, path, pattern=None, what=None, maxlen=None):
        if not isinstance(v, str) or not v:
            self.fail(path, "expected %s, got %s" % (what or "a non-empty string", _show(v)))
        if pattern is not None and not pattern.match(v):
            self.fail(path, "expected %s, got %s" % (what, _show(v)))
        if maxlen is not None and len(v) > maxlen:
            self.fail(path, "must be at most %d characters, got %d" % (maxlen, len(v)))
        return v

    def number(self, v, path, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if integer:
            ok = ok and float(v).is_integer()
        if ok and lo is not None:
            ok = v > lo if lo_open else v >= lo
        if ok and hi is not None:
            ok = v < hi if hi_open else v <= hi
        if not ok:
            kind = "an integer" if integer else "a number"
            bounds = []
            if lo is not None:
                bounds.append(("> %s" if lo_open else ">= %s") % _g(lo))
            if hi is not None:
                bounds.append(("< %s" if hi_open else "<= %s") % _g(hi))
            self.fail(path, "expected %s%s, got %s"
                      % (kind, (" " + " and ".join(bounds)) if bounds else "", _show(v)))
        return int(v) if integer else v

    def boolean(self, v, path):
        if not isinstance(v, bool):
            self.fail(path, "expected true or false, got %s" % _show(v))
        return v

    def cpu(self, v, path, positive=False):
        try:
            c = parse_cpu(v)
        except ValueError as e:
            self.fail(path, "expected %s, got %s" % (e, _show(v)))
        if c < 0 or (positive and c == 0):
            self.fail(path, "expected a CPU quantity %s 0, got %s" % (">" if positive else ">=",
                                                                      _show(v)))
        return c

    def memory(self, v, path, positive=False):
        try:
            b = parse_memory(v)
        except ValueError as e:
            self.fail(path, "expected %s, got %s" % (e, _show(v)))
        if b < 0 or (positive and b == 0):
            self.fail(path, "expected a memory quantity %s 0, got %s"
                      % (">" if positive else ">=", _show(v)))
        return b

    def duration(self, v, path, positive=True):
        try:
            d = parse_duration(v)
        except ValueError as e:
            self.fail(path, "expected %s, got %s" % (e, _show(v)))
        if d < 0 or (positive and d == 0):
            self.fail(path, "expected a duration > 0, got %s" % _show(v))
        return d

    def labels(self, v, path):
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.fail(path, "expected a mapping of strings, got %s" % _show(v))
        out = {}
        for k, val in v.items():
            p = _join(path, str(k))
            if not isinstance(k, str) or not _LABEL_KEY.match(k):
                self.fail(p, "invalid label/annotation key %s" % _show(k))
            # YAML turns true/123 into non-strings; Kubernetes wants strings, and the
            # intent is unambiguous for booleans and integers.
            if isinstance(val, bool):
                val = "true" if val else "false"
            elif isinstance(val, int):
                val = str(val)
            elif val is None:
                val = ""
            if not isinstance(val, str):
                self.fail(p, "expected a string value, got %s" % _show(val))
            out[k] = val
        return out


def _g(x):
    return ("%g" % x) if isinstance(x, float) else str(x)


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_WHAT = "a lowercase DNS label (a-z, 0-9, '-')"

_TOP_KEYS = {"name", "description", "region", "seed", "start", "history", "kubernetesVersion",
             "nodePools", "namespaces"}
_POOL_KEYS = {"name", "labels", "annotations", "requirements", "taints", "limits", "disruption",
              "weight", "nodeClassRef", "expireAfter", "maxPods", "ephemeralStorage", "nodes"}
_NODE_KEYS = {"instanceType", "capacityType", "zone", "count"}
_NS_KEYS = {"name", "labels", "annotations", "workloads"}
_WL_KEYS = {"kind", "name", "labels", "annotations", "podLabels", "podAnnotations", "selector",
            "replicas", "nodePool", "nodeSelector", "tolerations", "affinity", "hpa", "pdb",
            "containers", "initContainers", "serviceAccountName", "priorityClassName",
            "hostNetwork", "storage", "terminationGracePeriodSeconds"}
_CONTAINER_KEYS = {"name", "image", "requests", "limits", "ports", "env", "command", "args",
                   "usage", "sidecar"}
_USAGE_KEYS = {"cpu", "memory", "replicaSkew"}
_CPU_KEYS = {"base", "daily", "weekly", "noise", "peakHour", "spikes"}
_MEM_KEYS = {"base", "daily", "weekly", "noise", "peakHour", "growthPerDay", "resetEvery",
             "resetBy", "peaks", "oomAt"}
_BURST_KEYS = {"every", "duration", "height", "offset"}
_REQ_OPS = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}
_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
_TAINT_EFFECTS = {"NoSchedule", "PreferNoSchedule", "NoExecute"}


def load(path):
    """Read, validate and normalise a scenario file. Errors name the file and field."""
    name = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ValueError("%s: cannot read: %s" % (name, e.strerror or e)) from None
    return load_text(text, name=name)


def load_text(text, name="<string>"):
    # JSON is valid YAML, and json parses ~40x faster than PyYAML builds objects
    # (its constructor runs in Python even with libyaml): generated scale scenarios
    # are written as JSON for that reason.
    if text.lstrip()[:1] == "{":
        try:
            return _normalise(json.loads(text), _Checker(name))
        except json.JSONDecodeError:
            pass            # a YAML flow mapping, not JSON
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ValueError("%s: invalid YAML%s: %s" % (name, where, problem)) from None
    return _normalise(doc, _Checker(name))


def _normalise(doc, ck):
    ck.mapping(doc, "", _TOP_KEYS, required=("name",))
    sc = {"name": ck.string(doc["name"], "name", _DNS_LABEL, _DNS_WHAT, 63),
          "description": doc.get("description") or "",
          "region": ck.string(doc.get("region", "us-east-1"), "region",
                              re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$"),
                              "an AWS region such as us-east-1"),
          "seed": ck.number(doc.get("seed", 0), "seed", lo=0, integer=True),
          "kubernetesVersion": ck.string(doc.get("kubernetesVersion",
                                                 DEFAULT_KUBERNETES_VERSION),
                                         "kubernetesVersion",
                                         re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$"),
                                         "a version such as v1.31.7"),
          "_source": ck.name}
    if doc.get("start") is not None:
        try:
            sc["startEpoch"] = _parse_time(doc["start"])
        except ValueError as e:
            ck.fail("start", "expected %s, got %s" % (e, _show(doc["start"])))
        sc["start"] = _rfc3339(sc["startEpoch"])
    else:
        sc["start"], sc["startEpoch"] = None, None
    sc["history"] = ck.duration(doc.get("history", DEFAULT_HISTORY), "history")
    if sc["history"] < 3600:
        ck.fail("history", "expected at least 1h, got %s" % _show(doc.get("history")))

    pools = []
    pool_names = set()
    for i, p in enumerate(ck.seq(doc.get("nodePools"), "nodePools")):
        pool = _normalise_pool(ck, p, "nodePools[%d]" % i, sc["region"])
        if pool["name"] in pool_names:
            ck.fail("nodePools[%d].name" % i, "duplicate NodePool name %s" % _show(pool["name"]))
        pool_names.add(pool["name"])
        pools.append(pool)
    sc["nodePools"] = pools
    if not pools:
        ck.fail("nodePools", "at least one NodePool with nodes is required")
    if not any(p["nodes"] for p in pools):
        ck.fail("nodePools", "no NodePool has any nodes")

    namespaces, ns_names = [], set()
    widx = 0
    for i, n in enumerate(ck.seq(doc.get("namespaces"), "namespaces")):
        path = "namespaces[%d]" % i
        ck.mapping(n, path, _NS_KEYS, required=("name",))
        ns = {"name": ck.string(n["name"], path + ".name", _DNS_LABEL, _DNS_WHAT, 63),
              "labels": ck.labels(n.get("labels"), path + ".labels"),
              "annotations": ck.labels(n.get("annotations"), path + ".annotations"),
              "workloads": []}
        if ns["name"] in ns_names:
            ck.fail(path + ".name", "duplicate namespace %s" % _show(ns["name"]))
        ns_names.add(ns["name"])
        names, selectors = set(), {}
        for j, w in enumerate(ck.seq(n.get("workloads"), path + ".workloads")):
            wpath = "%s.workloads[%d]" % (path, j)
            wl = _normalise_workload(ck, w, wpath, ns["name"], pool_names)
            if wl["name"] in names:
                ck.fail(wpath + ".name", "duplicate workload name %s in namespace %s"
                        % (_show(wl["name"]), ns["name"]))
            names.add(wl["name"])
            skey = tuple(sorted(wl["selector"].items()))
            if skey in selectors:
                ck.fail(wpath + ".selector", "same selector as workload %s; selectors in one "
                        "namespace must not overlap" % _show(selectors[skey]))
            selectors[skey] = wl["name"]
            wl["_index"] = widx
            widx += 1
            ns["workloads"].append(wl)
        namespaces.append(ns)
    sc["namespaces"] = namespaces
    return sc


def _normalise_pool(ck, p, path, region):
    ck.mapping(p, path, _POOL_KEYS, required=("name",))
    pool = {"name": ck.string(p["name"], path + ".name", _DNS_LABEL, _DNS_WHAT, 63),
            "labels": ck.labels(p.get("labels"), path + ".labels"),
            "annotations": ck.labels(p.get("annotations"), path + ".annotations"),
            "weight": None, "requirements": [], "taints": [],
            "expireAfter": p.get("expireAfter", "720h")}
    if p.get("weight") is not None:
        pool["weight"] = ck.number(p["weight"], path + ".weight", lo=1, hi=100, integer=True)
    for i, r in enumerate(ck.seq(p.get("requirements"), path + ".requirements")):
        rp = "%s.requirements[%d]" % (path, i)
        ck.mapping(r, rp, {"key", "operator", "values", "minValues"}, required=("key", "operator"))
        key = ck.string(r["key"], rp + ".key")
        op = r["operator"]
        if op not in _REQ_OPS:
            ck.fail(rp + ".operator", "expected one of %s, got %s"
                    % (", ".join(sorted(_REQ_OPS)), _show(op)))
        vals = [str(v) for v in ck.seq(r.get("values"), rp + ".values")]
        if op in ("In", "NotIn") and not vals:
            ck.fail(rp + ".values", "operator %s needs at least one value" % op)
        if op in ("Exists", "DoesNotExist") and vals:
            ck.fail(rp + ".values", "operator %s takes no values" % op)
        if op in ("Gt", "Lt"):
            if len(vals) != 1 or not re.match(r"^-?[0-9]+$", vals[0]):
                ck.fail(rp + ".values", "operator %s needs exactly one integer value" % op)
        req = {"key": key, "operator": op}
        if vals:
            req["values"] = vals
        if r.get("minValues") is not None:
            req["minValues"] = ck.number(r["minValues"], rp + ".minValues", lo=1, integer=True)
        pool["requirements"].append(req)
    pool["taints"] = _taints(ck, p.get("taints"), path + ".taints")
    limits = p.get("limits") or {}
    ck.mapping(limits, path + ".limits", {"cpu", "memory"})
    pool["limits"] = {}
    pool["_limits"] = {}
    if "cpu" in limits:
        pool["_limits"]["cpu"] = ck.cpu(limits["cpu"], path + ".limits.cpu", positive=True)
        pool["limits"]["cpu"] = _canonical_quantity(limits["cpu"], "cpu")
    if "memory" in limits:
        pool["_limits"]["memory"] = ck.memory(limits["memory"], path + ".limits.memory", True)
        pool["limits"]["memory"] = _canonical_quantity(limits["memory"], "memory")
    dis = p.get("disruption") or {}
    ck.mapping(dis, path + ".disruption", {"consolidationPolicy", "consolidateAfter", "budgets"})
    policy = dis.get("consolidationPolicy", "WhenEmptyOrUnderutilized")
    if policy not in ("WhenEmpty", "WhenEmptyOrUnderutilized"):
        ck.fail(path + ".disruption.consolidationPolicy",
                "expected WhenEmpty or WhenEmptyOrUnderutilized, got %s" % _show(policy))
    after = dis.get("consolidateAfter", "0s")
    if after != "Never":
        ck.duration(after, path + ".disruption.consolidateAfter", positive=False)
    budgets = ck.seq(dis.get("budgets", [{"nodes": "10%"}]), path + ".disruption.budgets")
    for i, b in enumerate(budgets):
        bp = "%s.disruption.budgets[%d]" % (path, i)
        ck.mapping(b, bp, {"nodes", "schedule", "duration", "reasons"}, required=("nodes",))
        if not re.match(r"^((100|[0-9]{1,2})%|[0-9]+)$", str(b["nodes"])):
            ck.fail(bp + ".nodes", "expected a count or a percentage, got %s" % _show(b["nodes"]))
    pool["disruption"] = {"consolidationPolicy": policy, "consolidateAfter": str(after),
                          "budgets": [dict(b, nodes=str(b["nodes"])) for b in budgets]}
    ref = p.get("nodeClassRef") or {}
    ck.mapping(ref, path + ".nodeClassRef", {"group", "kind", "name"})
    pool["nodeClassRef"] = {"group": ref.get("group", "karpenter.k8s.aws"),
                            "kind": ref.get("kind", "EC2NodeClass"),
                            "name": ref.get("name", "default")}
    pool["maxPods"] = None
    if p.get("maxPods") is not None:
        pool["maxPods"] = ck.number(p["maxPods"], path + ".maxPods", lo=1, hi=1000, integer=True)
    pool["ephemeralStorage"] = ck.memory(p.get("ephemeralStorage", "20Gi"),
                                         path + ".ephemeralStorage", positive=True)

    # Expand node groups. Zones rotate over the pool's allowed zones so a group of
    # three lands in a, b and c like Karpenter's default spread would.
    zones_req = [r for r in pool["requirements"]
                 if r["key"] == "topology.kubernetes.io/zone" and r["operator"] == "In"]
    zones = zones_req[0]["values"] if zones_req else [region + z for z in "abc"]
    ct_req = [r for r in pool["requirements"]
              if r["key"] == "karpenter.sh/capacity-type" and r["operator"] == "In"]
    default_ct = "on-demand" if not ct_req or "on-demand" in ct_req[0]["values"] \
        else ct_req[0]["values"][0]
    nodes, zi = [], 0
    tot_cpu, tot_mem = 0.0, 0
    for i, n in enumerate(ck.seq(p.get("nodes"), path + ".nodes")):
        np_ = "%s.nodes[%d]" % (path, i)
        ck.mapping(n, np_, _NODE_KEYS, required=("instanceType",))
        itype = ck.string(n["instanceType"], np_ + ".instanceType")
        spec = instance_type(itype)
        if spec is None:
            ck.fail(np_ + ".instanceType", "unknown instance type %s (not in instances.csv "
                    "or the built-in table)" % _show(itype))
        ct = n.get("capacityType", default_ct)
        if ct not in ("on-demand", "spot", "reserved"):
            ck.fail(np_ + ".capacityType", "expected on-demand, spot or reserved, got %s"
                    % _show(ct))
        count = ck.number(n.get("count", 1), np_ + ".count", lo=0, integer=True)
        if n.get("zone") is not None:
            zone = ck.string(n["zone"], np_ + ".zone")
            if not zone.startswith(region):
                ck.fail(np_ + ".zone", "zone %s is not in region %s" % (_show(zone), region))
        for _ in range(count):
            z = n.get("zone") or zones[zi % len(zones)]
            zi += 1
            node = {"instanceType": itype, "capacityType": ct, "zone": z, "spec": spec,
                    "pool": pool["name"], "_path": np_}
            labels = _node_labels(node, pool, region)
            for r in pool["requirements"]:
                if not _req_match(r, labels):
                    ck.fail(np_, "a %s %s node in %s does not satisfy the NodePool requirement "
                            "%s %s %s" % (ct, itype, z, r["key"], r["operator"],
                                          r.get("values", [])))
            node["labels"] = labels
            nodes.append(node)
            tot_cpu += spec["vcpu"]
            tot_mem += spec["memoryMiB"] << 20
    if "cpu" in pool["_limits"] and tot_cpu > pool["_limits"]["cpu"] + 1e-9:
        ck.fail(path + ".limits.cpu", "the listed nodes have %g vCPU, above the limit %s"
                % (tot_cpu, pool["limits"]["cpu"]))
    if "memory" in pool["_limits"] and tot_mem > pool["_limits"]["memory"]:
        ck.fail(path + ".limits.memory", "the listed nodes have %s of memory, above the limit %s"
                % (format_memory(tot_mem), pool["limits"]["memory"]))
    pool["nodes"] = nodes
    return pool


def _taints(ck, v, path):
    out = []
    for i, t in enumerate(ck.seq(v, path)):
        tp = "%s[%d]" % (path, i)
        ck.mapping(t, tp, {"key", "value", "effect"}, required=("key", "effect"))
        if t["effect"] not in _TAINT_EFFECTS:
            ck.fail(tp + ".effect", "expected one of %s, got %s"
                    % (", ".join(sorted(_TAINT_EFFECTS)), _show(t["effect"])))
        taint = {"key": ck.string(t["key"], tp + ".key"), "effect": t["effect"]}
        if t.get("value") is not None:
            taint["value"] = str(t["value"])
        out.append(taint)
    return out


def _node_labels(node, pool, region):
    spec = node["spec"]
    it = node["instanceType"]
    labels = {
        "karpenter.k8s.aws/ec2nodeclass": pool["nodeClassRef"]["name"],
        "karpenter.k8s.aws/instance-category": spec["category"],
        "karpenter.k8s.aws/instance-cpu": str(spec["vcpu"]),
        "karpenter.k8s.aws/instance-family": spec["family"],
        "karpenter.k8s.aws/instance-generation": spec["generation"],
        "karpenter.k8s.aws/instance-hypervisor": "nitro",
        "karpenter.k8s.aws/instance-memory": str(spec["memoryMiB"]),
        "karpenter.k8s.aws/instance-size": spec["size"],
        "karpenter.sh/capacity-type": node["capacityType"],
        "karpenter.sh/initialized": "true",
        "karpenter.sh/nodepool": pool["name"],
        "karpenter.sh/registered": "true",
        "kubernetes.io/arch": spec["arch"],
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": it,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": node["zone"],
        "beta.kubernetes.io/arch": spec["arch"],
        "beta.kubernetes.io/instance-type": it,
        "beta.kubernetes.io/os": "linux",
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": node["zone"],
    }
    # Karpenter copies single-valued custom In requirements onto the node as labels.
    for r in pool["requirements"]:
        if r["operator"] == "In" and len(r.get("values", ())) == 1 and r["key"] not in labels \
                and not r["key"].startswith(("karpenter.k8s.aws/", "karpenter.sh/")):
            labels[r["key"]] = r["values"][0]
    labels.update(pool["labels"])
    return labels


def _req_match(r, labels):
    """A NodeSelectorRequirement against a label set."""
    key, op = r["key"], r["operator"]
    has = key in labels
    val = labels.get(key)
    if op == "In":
        return has and val in r["values"]
    if op == "NotIn":
        return not has or val not in r["values"]
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt"):
        try:
            x, y = int(val), int(r["values"][0])
        except (TypeError, ValueError):
            return False
        return x > y if op == "Gt" else x < y
    return False


def _normalise_workload(ck, w, path, namespace, pool_names):
    ck.mapping(w, path, _WL_KEYS, required=("kind", "name"))
    kind = w["kind"]
    if kind not in _KINDS:
        ck.fail(path + ".kind", "expected one of %s, got %s" % (", ".join(_KINDS), _show(kind)))
    name = ck.string(w["name"], path + ".name", _DNS_LABEL, _DNS_WHAT, 52)
    labels = ck.labels(w.get("labels"), path + ".labels")
    wl = {"kind": kind, "name": name, "namespace": namespace, "labels": labels,
          "annotations": ck.labels(w.get("annotations"), path + ".annotations"),
          "podLabels": ck.labels(w.get("podLabels"), path + ".podLabels"),
          "podAnnotations": ck.labels(w.get("podAnnotations"), path + ".podAnnotations"),
          "_path": path}
    if w.get("selector") is not None:
        wl["selector"] = ck.labels(w["selector"], path + ".selector")
        if not wl["selector"]:
            ck.fail(path + ".selector", "must not be empty")
    else:
        wl["selector"] = {"app": labels.get("app", name)}
    if kind == "DaemonSet":
        if w.get("replicas") is not None:
            ck.fail(path + ".replicas", "a DaemonSet runs one pod per matching node; "
                    "replicas is not allowed")
        wl["replicas"] = None
    else:
        wl["replicas"] = ck.number(w.get("replicas", 1), path + ".replicas", lo=0, integer=True)
    wl["nodePool"] = None
    if w.get("nodePool") is not None:
        if w["nodePool"] not in pool_names:
            ck.fail(path + ".nodePool", "no NodePool named %s" % _show(w["nodePool"]))
        wl["nodePool"] = w["nodePool"]
    wl["nodeSelector"] = ck.labels(w.get("nodeSelector"), path + ".nodeSelector")
    tols = []
    for i, t in enumerate(ck.seq(w.get("tolerations"), path + ".tolerations")):
        tp = "%s.tolerations[%d]" % (path, i)
        ck.mapping(t, tp, {"key", "operator", "value", "effect", "tolerationSeconds"})
        op = t.get("operator", "Equal")
        if op not in ("Equal", "Exists"):
            ck.fail(tp + ".operator", "expected Equal or Exists, got %s" % _show(op))
        if t.get("effect") is not None and t["effect"] not in _TAINT_EFFECTS:
            ck.fail(tp + ".effect", "expected one of %s, got %s"
                    % (", ".join(sorted(_TAINT_EFFECTS)), _show(t["effect"])))
        tol = {k: (str(v) if k == "value" else v) for k, v in t.items() if v is not None}
        tol["operator"] = op
        tols.append(tol)
    wl["tolerations"] = tols
    aff = w.get("affinity")
    if aff is not None and not isinstance(aff, dict):
        ck.fail(path + ".affinity", "expected a Kubernetes Affinity mapping, got %s" % _show(aff))
    wl["affinity"] = aff or None
    for k in ("serviceAccountName", "priorityClassName"):
        wl[k] = None
        if w.get(k) is not None:
            wl[k] = ck.string(w[k], _join(path, k))
    wl["hostNetwork"] = ck.boolean(w.get("hostNetwork", False), path + ".hostNetwork")
    wl["terminationGracePeriodSeconds"] = ck.number(
        w.get("terminationGracePeriodSeconds", 30), path + ".terminationGracePeriodSeconds",
        lo=0, integer=True)
    wl["storage"] = None
    if w.get("storage") is not None:
        if kind != "StatefulSet":
            ck.fail(path + ".storage", "only StatefulSets have volumeClaimTemplates")
        st = w["storage"]
        ck.mapping(st, path + ".storage", {"name", "size", "storageClassName", "mountPath"},
                   required=("size",))
        ck.memory(st["size"], path + ".storage.size", positive=True)
        wl["storage"] = {"name": st.get("name", "data"),
                         "size": _canonical_quantity(st["size"], "memory"),
                         "storageClassName": st.get("storageClassName", "gp3"),
                         "mountPath": st.get("mountPath", "/var/lib/data")}

    cnames = set()
    containers = []
    clist = ck.seq(w.get("containers"), path + ".containers")
    if not clist:
        ck.fail(path + ".containers", "at least one container is required")
    for i, c in enumerate(clist):
        containers.append(_normalise_container(ck, c, "%s.containers[%d]" % (path, i), False,
                                               cnames))
    inits = []
    for i, c in enumerate(ck.seq(w.get("initContainers"), path + ".initContainers")):
        inits.append(_normalise_container(ck, c, "%s.initContainers[%d]" % (path, i), True,
                                          cnames))
    wl["containers"], wl["initContainers"] = containers, inits
    wl["_request"] = _pod_request(containers, inits)
    wl["_qos"] = _qos(containers + inits)

    wl["hpa"] = None
    if w.get("hpa") is not None:
        hp = path + ".hpa"
        if kind == "DaemonSet":
            ck.fail(hp, "a DaemonSet cannot be scaled by an HPA")
        h = w["hpa"]
        ck.mapping(h, hp, {"minReplicas", "maxReplicas", "cpuUtilization", "memoryUtilization",
                           "behavior"}, required=("maxReplicas",))
        hpa = {"minReplicas": ck.number(h.get("minReplicas", 1), hp + ".minReplicas", lo=1,
                                        integer=True),
               "maxReplicas": ck.number(h["maxReplicas"], hp + ".maxReplicas", lo=1,
                                        integer=True),
               "cpuUtilization": None, "memoryUtilization": None,
               "behavior": h.get("behavior")}
        if hpa["minReplicas"] > hpa["maxReplicas"]:
            ck.fail(hp + ".minReplicas", "minReplicas %d is above maxReplicas %d"
                    % (hpa["minReplicas"], hpa["maxReplicas"]))
        if not hpa["minReplicas"] <= wl["replicas"] <= hpa["maxReplicas"]:
            ck.fail(path + ".replicas", "replicas %d is outside the HPA range %d..%d (replicas is "
                    "what the HPA currently runs)" % (wl["replicas"], hpa["minReplicas"],
                                                      hpa["maxReplicas"]))
        for res in ("cpu", "memory"):
            key = res + "Utilization"
            if h.get(key) is not None:
                hpa[key] = ck.number(h[key], "%s.%s" % (hp, key), lo=1, hi=1000, integer=True)
                missing = [c["name"] for c in containers if res not in c["req"]]
                if missing:
                    ck.fail("%s.%s" % (hp, key), "utilization needs %s requests on every "
                            "container; %s has none" % (res, missing[0]))
        if hpa["cpuUtilization"] is None and hpa["memoryUtilization"] is None:
            hpa["cpuUtilization"] = 80      # the HPA's own default target
            missing = [c["name"] for c in containers if "cpu" not in c["req"]]
            if missing:
                ck.fail(hp, "the default 80%% CPU target needs cpu requests; %s has none"
                        % missing[0])
        wl["hpa"] = hpa

    wl["pdb"] = None
    if w.get("pdb") is not None:
        pp = path + ".pdb"
        pdb = w["pdb"]
        ck.mapping(pdb, pp, {"minAvailable", "maxUnavailable"})
        if ("minAvailable" in pdb) == ("maxUnavailable" in pdb):
            ck.fail(pp, "set exactly one of minAvailable or maxUnavailable")
        k = "minAvailable" if "minAvailable" in pdb else "maxUnavailable"
        v = pdb[k]
        if isinstance(v, str) and re.match(r"^(100|[0-9]{1,2})%$", v):
            pass
        else:
            v = ck.number(v, "%s.%s" % (pp, k), lo=0, integer=True)
        wl["pdb"] = {k: v}
    return wl


def _normalise_container(ck, c, path, init, names):
    ck.mapping(c, path, _CONTAINER_KEYS, required=("name", "image"))
    name = ck.string(c["name"], path + ".name", _DNS_LABEL, _DNS_WHAT, 63)
    if name in names:
        ck.fail(path + ".name", "duplicate container name %s in the pod" % _show(name))
    names.add(name)
    sidecar = False
    if c.get("sidecar") is not None:
        if not init:
            ck.fail(path + ".sidecar", "only initContainers can be sidecars "
                    "(restartPolicy: Always)")
        sidecar = ck.boolean(c["sidecar"], path + ".sidecar")
    out = {"name": name, "image": ck.string(c["image"], path + ".image"), "init": init,
           "sidecar": sidecar, "requests": {}, "limits": {}, "req": {}, "lim": {}}
    for field in ("requests", "limits"):
        rv = c.get(field) or {}
        ck.mapping(rv, "%s.%s" % (path, field), {"cpu", "memory", "ephemeral-storage"})
        for res, val in rv.items():
            fp = "%s.%s.%s" % (path, field, res)
            num = ck.cpu(val, fp) if res == "cpu" else ck.memory(val, fp)
            out[field][res] = _canonical_quantity(val, res)
            out["req" if field == "requests" else "lim"][res] = num
    # API-server defaulting: a limit without a request sets the request.
    for res, val in list(out["limits"].items()):
        if res not in out["requests"]:
            out["requests"][res] = val
            out["req"][res] = out["lim"][res]
    for res in out["req"]:
        if res in out["lim"] and out["req"][res] > out["lim"][res]:
            ck.fail("%s.requests.%s" % (path, res), "request %s is above the limit %s"
                    % (out["requests"][res], out["limits"][res]))
    out["ports"] = []
    for i, pt in enumerate(ck.seq(c.get("ports"), path + ".ports")):
        pp = "%s.ports[%d]" % (path, i)
        if isinstance(pt, int) and not isinstance(pt, bool):
            pt = {"containerPort": pt}
        ck.mapping(pt, pp, {"containerPort", "name", "protocol"}, required=("containerPort",))
        port = {"containerPort": ck.number(pt["containerPort"], pp + ".containerPort", lo=1,
                                           hi=65535, integer=True),
                "protocol": pt.get("protocol", "TCP")}
        if pt.get("name"):
            port["name"] = str(pt["name"])
        out["ports"].append(port)
    env = c.get("env") or {}
    ck.mapping(env, path + ".env", set(env) if isinstance(env, dict) else set())
    out["env"] = [{"name": str(k), "value": str(v)} for k, v in env.items()]
    for k in ("command", "args"):
        v = ck.seq(c.get(k), _join(path, k))
        out[k] = [str(x) for x in v]
    runs = (not init) or sidecar
    out["usage"] = None
    if runs:
        out["usage"] = _normalise_usage(ck, c.get("usage"), path + ".usage", out)
    elif c.get("usage") is not None:
        ck.fail(path + ".usage", "a plain init container runs to completion before the pod "
                "starts; only containers and sidecars have usage")
    return out


def _burst(ck, b, path, what):
    if b is None:
        return None
    ck.mapping(b, path, _BURST_KEYS, required=("every", "duration", "height"))
    every = ck.duration(b["every"], path + ".every")
    dur = ck.duration(b["duration"], path + ".duration")
    # The model's resolution is the 60 s noise bucket and the usual sample step: a
    # shorter burst would alias (hit every sample or none) instead of averaging out.
    if dur < NOISE_BUCKET:
        ck.fail(path + ".duration", "expected at least 1m (bursts shorter than the 60 s "
                "sample step alias), got %s" % _show(b["duration"]))
    if every - dur < NOISE_BUCKET:
        ck.fail(path + ".duration", "duration %s must be at least 1m shorter than every %s"
                % (_show(b["duration"]), _show(b["every"])))
    out = {"every": every, "duration": dur,
           "height": ck.number(b["height"], path + ".height", lo=0),
           "offset": ck.duration(b.get("offset", 0), path + ".offset", positive=False)}
    if what == "cpu" and out["height"] < 1:
        ck.fail(path + ".height", "expected a number >= 1 (a multiple of base), got %s"
                % _show(b["height"]))
    return out


def _normalise_usage(ck, u, path, container):
    """Usage profile with every default filled in and every unit resolved: cores,
    bytes, seconds. Absent usage: a quiet container at 10% of its CPU request and
    50% of its memory request."""
    u = {} if u is None else u
    ck.mapping(u, path, _USAGE_KEYS)
    cpu = u.get("cpu") or {}
    mem = u.get("memory") or {}
    ck.mapping(cpu, path + ".cpu", _CPU_KEYS)
    ck.mapping(mem, path + ".memory", _MEM_KEYS)
    cp, mp = path + ".cpu", path + ".memory"

    def frac(d, k, p, hi=1.0):
        return float(ck.number(d.get(k, 0), _join(p, k), lo=0, hi=hi))

    if "base" in cpu:
        cbase = cpu["base"]
        if isinstance(cbase, (int, float)) and not isinstance(cbase, bool):
            cbase = ck.number(cbase, cp + ".base", lo=0)
        else:
            try:
                cbase = parse_cpu(cbase)
            except ValueError:
                ck.fail(cp + ".base", "expected a number >= 0, got %s" % _show(cbase))
            if cbase < 0:
                ck.fail(cp + ".base", "expected a number >= 0, got %s" % _show(cpu["base"]))
    else:
        cbase = 0.1 * container["req"].get("cpu", 0.05)
    if "base" in mem:
        mbase = ck.memory(mem["base"], mp + ".base")
    else:
        mbase = int(0.5 * container["req"].get("memory", 128 << 20))
    prof = {
        "cpu": {"base": float(cbase), "daily": frac(cpu, "daily", cp),
                "weekly": frac(cpu, "weekly", cp), "noise": frac(cpu, "noise", cp, 0.99),
                "peakHour": float(ck.number(cpu.get("peakHour", 14), cp + ".peakHour", lo=0,
                                            hi=24, hi_open=True)),
                "spikes": _burst(ck, cpu.get("spikes"), cp + ".spikes", "cpu")},
        "memory": {"base": mbase, "daily": frac(mem, "daily", mp),
                   "weekly": frac(mem, "weekly", mp), "noise": frac(mem, "noise", mp, 0.99),
                   "peakHour": float(ck.number(mem.get("peakHour", 14), mp + ".peakHour", lo=0,
                                               hi=24, hi_open=True)),
                   "growthPerDay": ck.memory(mem.get("growthPerDay", 0), mp + ".growthPerDay"),
                   "resetEvery": None,
                   "peaks": _burst(ck, mem.get("peaks"), mp + ".peaks", "memory"),
                   "oomAt": None},
        "replicaSkew": float(ck.number(u.get("replicaSkew", 0.05), path + ".replicaSkew", lo=0,
                                       hi=0.5)),
    }
    if mem.get("resetEvery") is not None:
        prof["memory"]["resetEvery"] = ck.duration(mem["resetEvery"], mp + ".resetEvery")
    elif prof["memory"]["growthPerDay"] > 0:
        prof["memory"]["resetEvery"] = WEEK
    reset_by = mem.get("resetBy", "restart")
    if reset_by not in ("restart", "release"):
        ck.fail(mp + ".resetBy", "expected restart or release, got %s" % _show(reset_by))
    prof["memory"]["resetBy"] = reset_by
    if mem.get("oomAt") is not None:
        prof["memory"]["oomAt"] = ck.memory(mem["oomAt"], mp + ".oomAt", positive=True)
    # Resolved from the container so the profile alone is enough to compute usage.
    prof["cpuLimit"] = container["lim"].get("cpu")
    prof["oomThreshold"] = prof["memory"]["oomAt"] or container["lim"].get("memory")
    prof["memoryLimit"] = container["lim"].get("memory")
    return prof


def _pod_request(containers, inits):
    """Effective pod request for scheduling (KEP-753 sidecar rules): regular
    containers plus all sidecars, or any plain init container plus the sidecars
    started before it, whichever is larger. Returns (cpu millicores, memory bytes)."""
    def rq(c):
        return (int(math.ceil(c["req"].get("cpu", 0) * 1000 - 1e-9)), c["req"].get("memory", 0))
    cpu = sum(rq(c)[0] for c in containers)
    mem = sum(rq(c)[1] for c in containers)
    side_cpu = side_mem = 0
    init_cpu = init_mem = 0
    for c in inits:
        r = rq(c)
        if c["sidecar"]:
            side_cpu += r[0]
            side_mem += r[1]
        else:
            init_cpu = max(init_cpu, r[0] + side_cpu)
            init_mem = max(init_mem, r[1] + side_mem)
    return max(cpu + side_cpu, init_cpu), max(mem + side_mem, init_mem)


def _qos(all_containers):
    """Pod QoS class as kubelet computes it (pkg/apis/core/helper/qos): only cpu and
    memory count; init containers included."""
    any_set = False
    guaranteed = True
    for c in all_containers:
        for res in ("cpu", "memory"):
            if res in c["req"] or res in c["lim"]:
                any_set = True
            if res not in c["lim"] or c["req"].get(res) != c["lim"][res]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# --------------------------------------------------------------------------------------
# Time window
# --------------------------------------------------------------------------------------

def anchor(sc, now):
    """Fix the start of a scenario that has none to now - history (on a whole minute),
    so every tool working on this scenario dict agrees on pod start times. No-op
    when the file gives a start."""
    if sc.get("startEpoch") is None:
        end = int(now) // 60 * 60
        sc["startEpoch"] = end - int(sc["history"])
        sc["_anchored"] = True
    return sc


def window(sc, now=None):
    """(start, end) epoch seconds of the history the scenario describes. With a start
    in the file: [start, start + history] unless now is given. Without one: end is
    now (the caller's, else the wall clock, on a whole minute), start = end - history."""
    hist = int(sc["history"])
    if sc.get("startEpoch") is not None:
        start = int(sc["startEpoch"])
        if now is None:
            return start, start + hist
        return start, max(start, int(now))
    end = int(time.time() if now is None else now) // 60 * 60
    return end - hist, end


# --------------------------------------------------------------------------------------
# Pods: names, identities, scheduling (shared by objects, usage and history)
# --------------------------------------------------------------------------------------

class PodInfo:
    """One pod of the scenario. node is an index into nodes(sc) or None (Pending)."""
    __slots__ = ("namespace", "workload", "name", "index", "owner_kind", "owner_name",
                 "node", "template_hash", "key", "ip")

    def __init__(self, namespace, workload, name, index, owner_kind, owner_name, template_hash):
        self.namespace = namespace
        self.workload = workload
        self.name = name
        self.index = index
        self.owner_kind = owner_kind
        self.owner_name = owner_name
        self.template_hash = template_hash
        self.node = None
        self.key = None
        self.ip = None


def _cache(sc):
    c = sc.get("_cache")
    if c is None:
        c = sc["_cache"] = {}
    return c


def _nodes(sc):
    """Expanded node list with names, IPs and numeric allocatable (cached)."""
    cache = _cache(sc)
    if "nodes" in cache:
        return cache["nodes"]
    region = sc["region"]
    zones = {}
    out = []
    for pool in sc["nodePools"]:
        for i, n in enumerate(pool["nodes"]):
            spec = n["spec"]
            z = n["zone"]
            zi = zones.setdefault(z, [len(zones), 0, 0])
            # Nodes live in one /19 subnet per zone; pods get addresses from a
            # 100.64.0.0/10 secondary range (EKS custom networking), so 50,000 pods fit.
            k = zi[1] + 10
            zi[1] += 1
            ip = "10.0.%d.%d" % (32 * zi[0] + k // 256, k % 256)
            host = "ip-" + ip.replace(".", "-")
            name = host + (".ec2.internal" if region == "us-east-1"
                           else ".%s.compute.internal" % region)
            max_pods = pool["maxPods"] or spec["eniMaxPods"] or 110
            cap, alloc = node_allocatable(spec["vcpu"], spec["memoryMiB"], max_pods, spec["arch"],
                                          pool["ephemeralStorage"])
            labels = dict(n["labels"])
            labels["kubernetes.io/hostname"] = name
            labels["topology.k8s.aws/zone-id"] = "%s-az%d" % (_region_code(region), zi[0] + 1)
            out.append({"name": name, "ip": ip, "zone": z, "zoneIndex": zi[0], "pool": pool,
                        "spec": spec, "instanceType": n["instanceType"],
                        "capacityType": n["capacityType"], "labels": labels,
                        "taints": pool["taints"], "capacity": cap, "allocatable": alloc,
                        "ordinal": len(out),
                        "instanceId": "i-0" + _hexid(16, sc["seed"], "instance", name)})
    cache["nodes"] = out
    cache["zones"] = zones
    return out


_DIRECTIONS = {"east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
               "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}


def _region_code(region):
    # us-east-1 -> use1, ap-southeast-2 -> apse2 (the prefix of AWS zone IDs).
    parts = region.split("-")
    mid = "".join(_DIRECTIONS.get(p, p[:1]) for p in parts[1:-1])
    return parts[0] + mid + parts[-1]


_DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300}]
_DS_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]


def _tolerates(tols, taint):
    for t in tols:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint["key"]:
                return True
        elif t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _node_fits_pod(wl, node):
    labels = node["labels"]
    if wl["nodePool"] and node["pool"]["name"] != wl["nodePool"]:
        return False
    for k, v in wl["nodeSelector"].items():
        if labels.get(k) != v:
            return False
    for taint in node["taints"]:
        if taint["effect"] in ("NoSchedule", "NoExecute") and \
                not _tolerates(wl["tolerations"], taint):
            return False
    req = (((wl["affinity"] or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms") or []
    if terms:
        ok_any = False
        for term in terms:
            ok = True
            for expr in term.get("matchExpressions") or []:
                if not _req_match({"key": expr.get("key"), "operator": expr.get("operator"),
                                   "values": [str(v) for v in expr.get("values") or []]},
                                  labels):
                    ok = False
                    break
            for expr in term.get("matchFields") or []:
                if expr.get("key") == "metadata.name" and not _req_match(
                        {"key": "n", "operator": expr.get("operator"),
                         "values": expr.get("values") or []}, {"n": node["name"]}):
                    ok = False
            if ok:
                ok_any = True
                break
        if not ok_any:
            return False
    return True


def _pod_template(wl):
    """The workload's pod template (without controller-added labels)."""
    labels = dict(wl["labels"])
    labels.update(wl["podLabels"])
    labels.update(wl["selector"])
    meta = {"labels": labels}
    if wl["podAnnotations"]:
        meta["annotations"] = dict(wl["podAnnotations"])
    spec = {}
    if wl["initContainers"]:
        spec["initContainers"] = [_container_spec(c, wl) for c in wl["initContainers"]]
    spec["containers"] = [_container_spec(c, wl) for c in wl["containers"]]
    spec["restartPolicy"] = "Always"
    spec["terminationGracePeriodSeconds"] = wl["terminationGracePeriodSeconds"]
    spec["dnsPolicy"] = "ClusterFirstWithHostNet" if wl["hostNetwork"] else "ClusterFirst"
    sa = wl["serviceAccountName"] or "default"
    spec["serviceAccountName"] = sa
    spec["serviceAccount"] = sa
    spec["securityContext"] = {}
    spec["schedulerName"] = "default-scheduler"
    if wl["hostNetwork"]:
        spec["hostNetwork"] = True
    ns = dict(wl["nodeSelector"])
    if wl["nodePool"]:
        ns["karpenter.sh/nodepool"] = wl["nodePool"]
    if ns:
        spec["nodeSelector"] = ns
    if wl["tolerations"]:
        spec["tolerations"] = [dict(t) for t in wl["tolerations"]]
    if wl["affinity"]:
        spec["affinity"] = json.loads(json.dumps(wl["affinity"]))
    if wl["priorityClassName"]:
        spec["priorityClassName"] = wl["priorityClassName"]
    if wl["storage"]:
        spec["containers"][0]["volumeMounts"] = [{"name": wl["storage"]["name"],
                                                  "mountPath": wl["storage"]["mountPath"]}]
    return {"metadata": meta, "spec": spec}


def _container_spec(c, wl):
    out = {"name": c["name"], "image": c["image"]}
    if c["command"]:
        out["command"] = list(c["command"])
    if c["args"]:
        out["args"] = list(c["args"])
    if c["ports"]:
        ports = [dict(p) for p in c["ports"]]
        if wl["hostNetwork"]:
            for p in ports:
                p["hostPort"] = p["containerPort"]
        out["ports"] = ports
    if c["env"]:
        out["env"] = [dict(e) for e in c["env"]]
    res = {}
    if c["limits"]:
        res["limits"] = dict(c["limits"])
    if c["requests"]:
        res["requests"] = dict(c["requests"])
    out["resources"] = res
    if c["sidecar"]:
        out["restartPolicy"] = "Always"
    out["terminationMessagePath"] = "/dev/termination-log"
    out["terminationMessagePolicy"] = "File"
    tag = c["image"].rsplit("/", 1)[-1]
    out["imagePullPolicy"] = "Always" if (":" not in tag or tag.endswith(":latest")) \
        else "IfNotPresent"
    return out


def pods(sc):
    """Every pod of the scenario as PodInfo, in scheduling order (DaemonSet pods first,
    like nodes that come up with their daemons), scheduled onto nodes (cached).

    Scheduler: for each pod, the candidate nodes (NodePool pin, nodeSelector, taints
    and tolerations, required node affinity) are scanned first-fit starting at an
    offset that rotates with the replica index, so replicas spread over nodes like
    the default topology spread; a pod fits where its effective request (cpu, memory,
    one pod slot) is within the node's remaining allocatable. No fit: Pending."""
    cache = _cache(sc)
    if "pods" in cache:
        return cache["pods"]
    nodes = _nodes(sc)
    free_cpu = [n["allocatable"]["cpu"] for n in nodes]
    free_mem = [n["allocatable"]["memory"] for n in nodes]
    free_pods = [n["allocatable"]["pods"] for n in nodes]
    seed = sc["seed"]
    result = []
    templates = {}
    candidates_cache = {}

    def candidates(wl):
        key = json.dumps([wl["nodePool"], wl["nodeSelector"], wl["tolerations"],
                          wl["affinity"]], sort_keys=True)
        c = candidates_cache.get(key)
        if c is None:
            c = candidates_cache[key] = [n["ordinal"] for n in nodes if _node_fits_pod(wl, n)]
        return c

    def place(p, wl, cands, offset):
        cpu, mem = wl["_request"]
        ncand = len(cands)
        for j in range(ncand):
            o = cands[(offset + j) % ncand]
            if free_pods[o] >= 1 and free_cpu[o] >= cpu and free_mem[o] >= mem:
                free_pods[o] -= 1
                free_cpu[o] -= cpu
                free_mem[o] -= mem
                p.node = o
                return

    workloads = [wl for ns in sc["namespaces"] for wl in ns["workloads"]]
    ordered = [wl for wl in workloads if wl["kind"] == "DaemonSet"] + \
              [wl for wl in workloads if wl["kind"] != "DaemonSet"]
    for wl in ordered:
        tmpl = _pod_template(wl)
        thash = pod_template_hash(tmpl)
        # Objects get their own copies: json.loads of a cached string is the fastest
        # deep copy for these plain structures.
        templates[(wl["namespace"], wl["name"])] = (tmpl, thash, json.dumps(tmpl))
        cands = candidates(wl)
        base = _h64(seed, "spread", wl["namespace"], wl["name"])
        if wl["kind"] == "DaemonSet":
            used = set()
            for i, o in enumerate(cands):
                node = nodes[o]
                suffix = _suffix(5, seed, wl["namespace"], wl["name"], node["name"])
                while suffix in used:
                    suffix = _suffix(5, seed, wl["namespace"], wl["name"], node["name"], suffix)
                used.add(suffix)
                p = PodInfo(wl["namespace"], wl, "%s-%s" % (wl["name"], suffix), i, "DaemonSet",
                            wl["name"], thash)
                cpu, mem = wl["_request"]
                if free_pods[o] >= 1 and free_cpu[o] >= cpu and free_mem[o] >= mem:
                    free_pods[o] -= 1
                    free_cpu[o] -= cpu
                    free_mem[o] -= mem
                    p.node = o
                result.append(p)
        elif wl["kind"] == "StatefulSet":
            for i in range(wl["replicas"]):
                p = PodInfo(wl["namespace"], wl, "%s-%d" % (wl["name"], i), i, "StatefulSet",
                            wl["name"], thash)
                if cands:
                    place(p, wl, cands, (base + i) % len(cands))
                result.append(p)
        else:
            rs = "%s-%s" % (wl["name"], thash)
            used = set()
            for i in range(wl["replicas"]):
                suffix = _suffix(5, seed, wl["namespace"], rs, i)
                while suffix in used:
                    suffix = _suffix(5, seed, wl["namespace"], rs, i, suffix)
                used.add(suffix)
                p = PodInfo(wl["namespace"], wl, "%s-%s" % (rs, suffix), i, "ReplicaSet", rs,
                            thash)
                if cands:
                    place(p, wl, cands, (base + i) % len(cands))
                result.append(p)
    zones = _cache(sc)["zones"]
    for p in result:
        p.key = _h64(seed, "pod", p.namespace, p.workload["name"], p.index)
        if p.node is None:
            continue
        node = nodes[p.node]
        if p.workload["hostNetwork"]:
            p.ip = node["ip"]
        else:
            zone = zones[node["zone"]]
            k = zone[2] + 10
            zone[2] += 1
            p.ip = "100.%d.%d.%d" % (64 + 16 * zone[0] + (k >> 16), (k >> 8) & 255, k & 255)
    cache["pods"] = result
    cache["templates"] = templates
    cache["byname"] = {(p.namespace, p.name): p for p in result}
    return result


def _pod(sc, namespace, pod_name):
    pods(sc)
    p = _cache(sc)["byname"].get((namespace, pod_name))
    if p is None:
        raise KeyError("scenario %s has no pod %s/%s" % (sc["name"], namespace, pod_name))
    return p


def _container(p, container_name):
    for c in p.workload["containers"] + p.workload["initContainers"]:
        if c["name"] == container_name:
            return c
    raise KeyError("pod %s/%s has no container %s" % (p.namespace, p.name, container_name))


# --------------------------------------------------------------------------------------
# Usage model (formulas in e2e/scenarios/README.md, "Usage model")
# --------------------------------------------------------------------------------------

_TWO_PI = 2.0 * math.pi


_BLOCK = 60      # noise buckets per generated block (one hour of 60 s buckets)


@functools.lru_cache(maxsize=65536)
def _noise_block(key, block):
    """60 uniform values in [-1, 1) for one container instance, resource and UTC hour.
    random.Random(int) is guaranteed to reproduce random() across Python versions;
    hour-sized blocks keep single-instant lookups cheap and series fast."""
    r = random.Random(key * 1000003 + block).random
    return [2.0 * r() - 1.0 for _ in range(_BLOCK)]


def _noise_at(key, t):
    k = int(t // NOISE_BUCKET)
    return _noise_block(key, k // _BLOCK)[k % _BLOCK]


def _daily(peak_hour, t):
    return math.cos(_TWO_PI * ((t % DAY) / DAY - peak_hour / 24.0))


def _weekend(t):
    # 1970-01-01 was a Thursday: Monday = 0 .. Sunday = 6.
    return (int(t // DAY) + 3) % 7 >= 5


def _level(res, t):
    """base * (1 + daily * cos(...)), times (1 - weekly) on weekends."""
    v = res["base"] * (1.0 + res["daily"] * _daily(res["peakHour"], t)) if res["daily"] \
        else float(res["base"])
    if res["weekly"] and _weekend(t):
        v = v * (1.0 - res["weekly"])
    return v


def _in_burst(b, t):
    return b is not None and (t - b["offset"]) % b["every"] < b["duration"]


class _Instance:
    """Per-pod parameters of one container's profile: the replica factor, the leak
    cycle and its phase, and the noise keys."""
    __slots__ = ("prof", "r", "cycle", "phase", "cycle_oom", "cycle_restarts", "kcpu",
                 "kmem")

    def __init__(self, prof, pod_key, cname):
        self.prof = prof
        skew = prof["replicaSkew"]
        self.r = 1.0 + skew * (2.0 * _unit(pod_key, cname, "skew") - 1.0)
        mem = prof["memory"]
        g = mem["growthPerDay"]
        self.cycle = None
        self.phase = 0.0
        self.cycle_oom = False
        self.cycle_restarts = False
        if g > 0:
            cycle = float(mem["resetEvery"])
            thr = prof["oomThreshold"]
            if thr is not None:
                # Days for the noise- and daily-free level to climb from base to the
                # threshold: the leak is cut short there by an OOM kill.
                t_oom = max(3600.0, (thr - self.r * mem["base"]) / g * DAY)
                if t_oom < cycle:
                    cycle, self.cycle_oom = t_oom, True
            self.cycle = cycle
            self.cycle_restarts = self.cycle_oom or mem["resetBy"] == "restart"
            self.phase = _unit(pod_key, cname, "leak") * cycle
        self.kcpu = _h64(pod_key, cname, "cpu") >> 24
        self.kmem = _h64(pod_key, cname, "mem") >> 24

    # The arithmetic below is done in exactly the order series() uses, so the
    # two give bit-identical numbers.
    def leak(self, t):
        if self.cycle is None:
            return 0.0
        return (self.prof["memory"]["growthPerDay"] / DAY) * ((t - self.phase) % self.cycle)

    def cpu_demand(self, t):
        c = self.prof["cpu"]
        level = _level(c, t)
        if _in_burst(c["spikes"], t):
            level = level + c["base"] * (c["spikes"]["height"] - 1.0)
        v = self.r * level
        if c["noise"]:
            v = v * (1.0 + c["noise"] * _noise_at(self.kcpu, t))
        return v if v > 0.0 else 0.0

    def mem_clean(self, t):
        m = self.prof["memory"]
        level = self.r * _level(m, t)
        if self.cycle is not None:
            level = level + self.leak(t)
        if _in_burst(m["peaks"], t):
            level = level * m["peaks"]["height"]
        return level

    def mem_demand(self, t):
        v = self.mem_clean(t)
        nz = self.prof["memory"]["noise"]
        if nz:
            v = v * (1.0 + nz * _noise_at(self.kmem, t))
        return v if v > 0.0 else 0.0

    def events(self, t0, t1):
        """Container restarts in (t0, t1]: (time, reason), sorted."""
        out = []
        prof = self.prof
        mem = prof["memory"]
        if self.cycle_restarts:
            n = math.floor((t0 - self.phase) / self.cycle) + 1
            t = self.phase + n * self.cycle
            reason = "OOMKilled" if self.cycle_oom else "Error"
            while t <= t1:
                if t > t0:
                    out.append((t, reason))
                n += 1
                t = self.phase + n * self.cycle
        peaks, thr = mem["peaks"], prof["oomThreshold"]
        if peaks is not None and thr is not None:
            every, off, dur = peaks["every"], peaks["offset"], peaks["duration"]
            k = math.floor((t0 - off) / every)
            s = off + k * every
            while s <= t1:
                if s > t0 and self.mem_clean(s + dur / 2.0) > thr:
                    out.append((s, "OOMKilled"))
                s += every
        out.sort()
        return out


def _instance(sc, p, c):
    cache = _cache(sc).setdefault("instances", {})
    key = (p.namespace, p.name, c["name"])
    inst = cache.get(key)
    if inst is None:
        if c["usage"] is None:
            raise KeyError("container %s of pod %s/%s is a plain init container and has no "
                           "usage" % (c["name"], p.namespace, p.name))
        inst = cache[key] = _Instance(c["usage"], p.key, c["name"])
    return inst


def _throttle_fraction(demand, limit):
    # Share of CFS periods throttled: none below 80% of the quota (bursts inside a
    # period are rare there), all of them at 120% and above, linear in between.
    if not limit:
        return 0.0
    x = (demand / limit - 0.8) / 0.4
    return 0.0 if x <= 0.0 else (1.0 if x >= 1.0 else x)


def usage_detail(sc, namespace, pod_name, container_name, t):
    """Everything the model says about one container at time t:
    cpuDemand (cores the app wants), cpu (what cAdvisor reports: demand capped at the
    CPU limit), throttledFraction (share of CFS periods throttled), memoryDemand,
    memory (working set: demand capped at the OOM threshold), oomThreshold, oom
    (demand above the threshold)."""
    p = _pod(sc, namespace, pod_name)
    inst = _instance(sc, p, _container(p, container_name))
    prof = inst.prof
    cd = inst.cpu_demand(t)
    lim = prof["cpuLimit"]
    md = inst.mem_demand(t)
    thr = prof["oomThreshold"]
    return {"cpuDemand": cd, "cpu": min(cd, lim) if lim else cd,
            "throttledFraction": _throttle_fraction(cd, lim),
            "memoryDemand": int(md), "memory": int(min(md, thr) if thr else md),
            "oomThreshold": thr, "oom": bool(thr and md > thr)}


def pod_usage(sc, namespace, pod_name, container_name, t):
    """(cpu cores, working-set bytes) of one container at epoch seconds t, as cAdvisor
    and metrics-server would report them. Deterministic: same scenario, same t, same
    numbers; independent of when or in which order it is called."""
    d = usage_detail(sc, namespace, pod_name, container_name, t)
    return d["cpu"], d["memory"]


def restart_events(sc, namespace, pod_name, container_name, t0, t1):
    """Restarts of one container in (t0, t1] as [(epoch, reason)], reason OOMKilled
    (memory peak or leak hit the OOM threshold) or Error (a leak reset by resetEvery,
    as a liveness probe would)."""
    p = _pod(sc, namespace, pod_name)
    c = _container(p, container_name)
    if c["usage"] is None:
        return []
    return _instance(sc, p, c).events(t0, t1)


def container_profiles(sc):
    """(namespace, workload kind, workload name, pod name, container name, profile) for
    every container that runs (regular containers and sidecars) of every pod. profile
    is the normalised usage dict (cores, bytes, seconds; see README); read-only."""
    for p in pods(sc):
        wl = p.workload
        for c in wl["initContainers"] + wl["containers"]:
            if c["usage"] is not None:
                yield (p.namespace, wl["kind"], wl["name"], p.name, c["name"], c["usage"])


class ContainerSeries:
    """Samples of one container at times = range(start, end + 1, step).

    cpu: reported cores (demand capped at the limit); cpu_demand: what it wanted;
    throttled: share of CFS periods throttled (None without a CPU limit); memory:
    working-set bytes (demand capped at the OOM threshold); events: restarts in
    (start, end] as (epoch, reason)."""
    __slots__ = ("namespace", "kind", "workload", "pod", "container", "node", "image",
                 "sidecar", "owner_kind", "owner_name", "profile", "times", "cpu",
                 "cpu_demand", "throttled", "memory", "events")


def _grid_noise(key, times):
    # Pull noise block by block instead of per sample: the common case (step divides the
    # bucket grid) becomes list slicing.
    out = []
    append = out.extend
    n = len(times)
    if n == 0:
        return out
    step = times.step if isinstance(times, range) else None
    if step and step == NOISE_BUCKET and times[0] % NOISE_BUCKET == 0:
        k = times[0] // NOISE_BUCKET
        remaining = n
        while remaining:
            block, idx = divmod(k, _BLOCK)
            take = min(_BLOCK - idx, remaining)
            append(_noise_block(key, block)[idx:idx + take])
            k += take
            remaining -= take
        return out
    return [_noise_at(key, t) for t in times]


class _Grid:
    """Per-time-grid arrays shared by every container: daily cosines by peak hour,
    weekend flags, burst masks."""

    def __init__(self, times):
        self.times = times
        self._cos = {}
        self._burst = {}
        self.weekend = [_weekend(t) for t in times]

    def cos(self, peak_hour):
        v = self._cos.get(peak_hour)
        if v is None:
            ph = peak_hour / 24.0
            v = self._cos[peak_hour] = [math.cos(_TWO_PI * ((t % DAY) / DAY - ph))
                                        for t in self.times]
        return v

    def burst(self, b):
        key = (b["every"], b["duration"], b["offset"])
        v = self._burst.get(key)
        if v is None:
            every, dur, off = key
            v = self._burst[key] = [(t - off) % every < dur for t in self.times]
        return v


def _shape(grid, res):
    """Replica-independent level for a cpu or memory profile part, without noise."""
    base = res["base"]
    cosv = grid.cos(res["peakHour"])
    daily = res["daily"]
    if daily:
        lvl = [base * (1.0 + daily * c) for c in cosv]
    else:
        lvl = [float(base)] * len(cosv)
    if res["weekly"]:
        f = 1.0 - res["weekly"]
        lvl = [v * f if w else v for v, w in zip(lvl, grid.weekend)]
    return lvl


def series(sc, start, end, step):
    """Yield a ContainerSeries for every running container of every scheduled pod,
    sampled at range(start, end + 1, step). Pending pods have no samples (nothing
    runs) and are skipped. One container's arrays at a time, so memory stays small."""
    start, end, step = int(start), int(end), int(step)
    if step <= 0 or end < start:
        raise ValueError("series needs step > 0 and end >= start")
    times = range(start, end + 1, step)
    grid = _Grid(times)
    nodes = _nodes(sc)
    shapes = {}
    for p in pods(sc):
        if p.node is None:
            continue
        wl = p.workload
        for c in wl["initContainers"] + wl["containers"]:
            prof = c["usage"]
            if prof is None:
                continue
            skey = (p.namespace, wl["name"], c["name"])
            sh = shapes.get(skey)
            if sh is None:
                shapes.clear()     # pods of one workload are contiguous
                cp = prof["cpu"]
                cpu_shape = _shape(grid, cp)
                if cp["spikes"]:
                    extra = cp["base"] * (cp["spikes"]["height"] - 1.0)
                    cpu_shape = [v + extra if b else v
                                 for v, b in zip(cpu_shape, grid.burst(cp["spikes"]))]
                mp = prof["memory"]
                sh = shapes[skey] = (cpu_shape, _shape(grid, mp))
            cpu_shape, mem_shape = sh
            inst = _instance(sc, p, c)
            r = inst.r
            cp, mp = prof["cpu"], prof["memory"]
            nz = cp["noise"]
            if nz:
                cpu_d = [(r * v) * (1.0 + nz * u)
                         for v, u in zip(cpu_shape, _grid_noise(inst.kcpu, times))]
            else:
                cpu_d = [r * v for v in cpu_shape]
            cpu_d = [v if v > 0.0 else 0.0 for v in cpu_d]
            lim = prof["cpuLimit"]
            if lim:
                cpu_r = [v if v < lim else lim for v in cpu_d]
                thr_f = [_throttle_fraction(v, lim) for v in cpu_d]
            else:
                cpu_r, thr_f = cpu_d, None
            mem = [r * v for v in mem_shape]
            if inst.cycle is not None:
                g, ph, cyc = mp["growthPerDay"] / DAY, inst.phase, inst.cycle
                mem = [v + g * ((t - ph) % cyc) for v, t in zip(mem, times)]
            if mp["peaks"]:
                hgt = mp["peaks"]["height"]
                mem = [v * hgt if b else v for v, b in zip(mem, grid.burst(mp["peaks"]))]
            nzm = mp["noise"]
            if nzm:
                mem = [v * (1.0 + nzm * u) for v, u in zip(mem, _grid_noise(inst.kmem, times))]
            thr = prof["oomThreshold"]
            if thr:
                mem = [int(v) if v < thr else thr for v in mem]
            else:
                mem = [int(v) for v in mem]
            s = ContainerSeries()
            s.namespace, s.kind, s.workload = p.namespace, wl["kind"], wl["name"]
            s.pod, s.container, s.node = p.name, c["name"], nodes[p.node]["name"]
            s.image, s.sidecar, s.profile = c["image"], c["sidecar"], prof
            s.owner_kind, s.owner_name = p.owner_kind, p.owner_name
            s.times, s.cpu, s.cpu_demand, s.throttled = times, cpu_r, cpu_d, thr_f
            s.memory = [v if v > 0 else 0 for v in mem]
            s.events = inst.events(start, end)
            yield s


# --------------------------------------------------------------------------------------
# Kubernetes objects
# --------------------------------------------------------------------------------------

def _owner(api, kind, namespace, name):
    return {"apiVersion": api, "kind": kind, "name": name,
            "uid": "scenario:%s/%s/%s" % (kind, namespace, name),
            "controller": True, "blockOwnerDeletion": True}


def _meta(name, namespace=None, labels=None, annotations=None, created=None):
    m = {"name": name}
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    ann = dict(annotations or {})
    if created is not None:
        ann[CREATED_AT_ANNOTATION] = created
    if ann:
        m["annotations"] = ann
    return m


def _node_object(sc, n, created):
    spec = n["spec"]
    arch = spec["arch"]
    kv = sc["kubernetesVersion"]
    ann = {"alpha.kubernetes.io/provided-node-ip": n["ip"],
           "karpenter.k8s.aws/ec2nodeclass-hash-version": "v4",
           "karpenter.sh/nodepool-hash-version": "v3",
           "karpenter.sh/nodepool-hash": str(_h64("nodepool", n["pool"]["name"]) % 10**19),
           "node.alpha.kubernetes.io/ttl": "0",
           "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    obj = {"apiVersion": "v1", "kind": "Node",
           "metadata": _meta(n["name"], labels=n["labels"], annotations=ann, created=created),
           "spec": {"providerID": "aws:///%s/%s" % (n["zone"], n["instanceId"])},
           "status": {
               "capacity": _quantity_list(n["capacity"]),
               "allocatable": _quantity_list(n["allocatable"]),
               "conditions": [
                   _cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                         "kubelet has sufficient memory available", created, heartbeat=True),
                   _cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                         "kubelet has no disk pressure", created, heartbeat=True),
                   _cond("PIDPressure", "False", "KubeletHasSufficientPID",
                         "kubelet has sufficient PID available", created, heartbeat=True),
                   _cond("Ready", "True", "KubeletReady", "kubelet is posting ready status",
                         created, heartbeat=True)],
               "addresses": [{"type": "InternalIP", "address": n["ip"]},
                             {"type": "InternalDNS", "address": n["name"]},
                             {"type": "Hostname", "address": n["name"]}],
               "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
               "nodeInfo": {
                   "architecture": arch,
                   "bootID": _uuid(sc["seed"], "boot", n["name"]),
                   "containerRuntimeVersion": "containerd://1.7.27",
                   "kernelVersion": "6.1.134-152.225.amzn2023.%s"
                                    % ("aarch64" if arch == "arm64" else "x86_64"),
                   "kubeProxyVersion": kv, "kubeletVersion": kv + "-eks-473151a",
                   "machineID": _hexid(32, sc["seed"], "machine", n["name"]),
                   "operatingSystem": "linux",
                   "osImage": "Amazon Linux 2023.7.20250512",
                   "systemUUID": _uuid(sc["seed"], "system", n["name"])}}}
    if n["taints"]:
        obj["spec"]["taints"] = [dict(t) for t in n["taints"]]
    return obj


def _uuid(*parts):
    h = _hexid(32, *parts)
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def _cond(ctype, status, reason, message, when, heartbeat=False):
    c = {"type": ctype, "status": status, "lastTransitionTime": when}
    if heartbeat:
        c["lastHeartbeatTime"] = when
    if reason:
        c["reason"] = reason
    # Karpenter's NodePool schema requires message, even when it is empty.
    c["message"] = message or ""
    return c


def _nodepool_object(sc, pool, nodes, created):
    mine = [n for n in nodes if n["pool"] is pool]
    res = {"cpu": 0, "memory": 0, "ephemeral-storage": 0, "pods": 0}
    for n in mine:
        for k in res:
            res[k] += n["capacity"][k]
    tmpl_spec = {"nodeClassRef": dict(pool["nodeClassRef"]),
                 "requirements": [dict(r) for r in pool["requirements"]],
                 "expireAfter": pool["expireAfter"]}
    if pool["taints"]:
        tmpl_spec["taints"] = [dict(t) for t in pool["taints"]]
    tmpl = {"spec": tmpl_spec}
    if pool["labels"]:
        tmpl["metadata"] = {"labels": dict(pool["labels"])}
    spec = {"template": tmpl,
            "disruption": json.loads(json.dumps(pool["disruption"]))}
    if pool["limits"]:
        spec["limits"] = dict(pool["limits"])
    if pool["weight"] is not None:
        spec["weight"] = pool["weight"]
    status = {"resources": dict(_quantity_list(res), nodes=str(len(mine))),
              "conditions": [_cond("ValidationSucceeded", "True", "ValidationSucceeded", "",
                                   created),
                             _cond("NodeClassReady", "True", "NodeClassReady", "", created),
                             _cond("Ready", "True", "Ready", "", created)]}
    ann = dict(pool["annotations"])
    ann["karpenter.sh/nodepool-hash"] = str(_h64("nodepool", pool["name"]) % 10**19)
    ann["karpenter.sh/nodepool-hash-version"] = "v3"
    meta = _meta(pool["name"], annotations=ann, created=created)
    meta["generation"] = 1
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": meta,
            "spec": spec, "status": status}


def _scaled(value, total):
    """IntOrString against a total, rounding up like the disruption controller."""
    if isinstance(value, str) and value.endswith("%"):
        return int(math.ceil(int(value[:-1]) * total / 100.0))
    return int(value)


def objects(sc, now=None):
    """The cluster as Kubernetes objects, in creation order (owners before what they
    own): Namespaces, NodePools, Nodes, then per namespace each workload with its
    ReplicaSet, HPA and PDB, then all Pods. uid, resourceVersion and
    creationTimestamp are left to the server; ownerReferences carry placeholder uids
    "scenario:<Kind>/<namespace>/<name>". Status is as of `now` (see window())."""
    start, end = window(sc, now)
    created = _rfc3339(start)
    nodes = _nodes(sc)
    plist = pods(sc)
    templates = _cache(sc)["templates"]
    out = []
    for ns in sc["namespaces"]:
        labels = dict(ns["labels"])
        labels["kubernetes.io/metadata.name"] = ns["name"]
        out.append({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": _meta(ns["name"], labels=labels, annotations=ns["annotations"],
                                      created=created),
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    for pool in sc["nodePools"]:
        out.append(_nodepool_object(sc, pool, nodes, created))
    for n in nodes:
        out.append(_node_object(sc, n, created))

    by_wl = {}
    for p in plist:
        by_wl.setdefault((p.namespace, p.workload["name"]), []).append(p)

    # Every scheduled pod is Running and Ready: the scenario describes a settled
    # cluster, so a workload's ready count is its scheduled pods.
    for ns in sc["namespaces"]:
        for wl in ns["workloads"]:
            mine = by_wl.get((ns["name"], wl["name"]), [])
            _, thash, tjson = templates[(ns["name"], wl["name"])]
            ready = sum(1 for p in mine if p.node is not None)
            out.extend(_workload_objects(sc, wl, tjson, thash, mine, ready, created, start, end))
    skeletons = {}
    for p in plist:
        key = (p.namespace, p.workload["name"])
        sk = skeletons.get(key)
        if sk is None:
            skeletons.clear()      # pods of one workload are contiguous
            sk = skeletons[key] = _pod_skeleton(sc, p.workload, json.loads(templates[key][2]),
                                                created, start, end)
        out.append(_pod_object(sc, p, sk, nodes, created, start, end))
    return out


def _workload_objects(sc, wl, tjson, thash, mine, ready, created, start, end):
    ns, name, kind = wl["namespace"], wl["name"], wl["kind"]
    sel = {"matchLabels": dict(wl["selector"])}
    out = []
    template = json.loads(tjson)
    desired = len(mine)
    if kind == "Deployment":
        replicas = wl["replicas"]
        max_unavail = int(math.floor(replicas * 0.25))
        avail_ok = ready >= replicas - max_unavail
        meta = _meta(name, ns, wl["labels"],
                     dict(wl["annotations"], **{"deployment.kubernetes.io/revision": "1"}),
                     created)
        meta["generation"] = 1
        status = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                  "readyReplicas": ready, "availableReplicas": ready,
                  "conditions": [
                      _cond("Available", "True" if avail_ok else "False",
                            "MinimumReplicasAvailable" if avail_ok
                            else "MinimumReplicasUnavailable",
                            "Deployment has minimum availability." if avail_ok
                            else "Deployment does not have minimum availability.", created),
                      _cond("Progressing", "True", "NewReplicaSetAvailable",
                            'ReplicaSet "%s-%s" has successfully progressed.' % (name, thash),
                            created)]}
        for c in status["conditions"]:
            c["lastUpdateTime"] = created
        if ready < replicas:
            status["unavailableReplicas"] = replicas - ready
        if not ready:
            del status["readyReplicas"], status["availableReplicas"]
        out.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                    "spec": {"replicas": replicas, "selector": sel, "template": template,
                             "strategy": {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": "25%",
                                                            "maxUnavailable": "25%"}},
                             "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
                    "status": status})
        rs = "%s-%s" % (name, thash)
        rs_tmpl = json.loads(tjson)
        rs_tmpl["metadata"]["labels"]["pod-template-hash"] = thash
        rs_labels = dict(rs_tmpl["metadata"]["labels"])
        max_rep = replicas + int(math.ceil(replicas * 0.25))
        rs_meta = _meta(rs, ns, rs_labels,
                        {"deployment.kubernetes.io/desired-replicas": str(replicas),
                         "deployment.kubernetes.io/max-replicas": str(max_rep),
                         "deployment.kubernetes.io/revision": "1"}, created)
        rs_meta["generation"] = 1
        rs_meta["ownerReferences"] = [_owner("apps/v1", "Deployment", ns, name)]
        rs_status = {"observedGeneration": 1, "replicas": replicas,
                     "fullyLabeledReplicas": replicas, "readyReplicas": ready,
                     "availableReplicas": ready}
        if not ready:
            del rs_status["readyReplicas"], rs_status["availableReplicas"]
        out.append({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": rs_meta,
                    "spec": {"replicas": replicas,
                             "selector": {"matchLabels": dict(wl["selector"],
                                                              **{"pod-template-hash": thash})},
                             "template": rs_tmpl},
                    "status": rs_status})
    elif kind == "StatefulSet":
        replicas = wl["replicas"]
        rev = "%s-%s" % (name, thash)
        meta = _meta(name, ns, wl["labels"], wl["annotations"], created)
        meta["generation"] = 1
        spec = {"replicas": replicas, "selector": sel, "template": template,
                "serviceName": name, "podManagementPolicy": "OrderedReady",
                "updateStrategy": {"type": "RollingUpdate",
                                   "rollingUpdate": {"partition": 0}},
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                         "whenScaled": "Retain"}}
        if wl["storage"]:
            st = wl["storage"]
            spec["volumeClaimTemplates"] = [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": st["name"]},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "storageClassName": st["storageClassName"],
                         "resources": {"requests": {"storage": st["size"]}},
                         "volumeMode": "Filesystem"}}]
        status = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready,
                  "currentReplicas": replicas, "updatedReplicas": replicas,
                  "availableReplicas": ready, "currentRevision": rev, "updateRevision": rev,
                  "collisionCount": 0}
        out.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta,
                    "spec": spec, "status": status})
    else:
        meta = _meta(name, ns, wl["labels"],
                     dict(wl["annotations"], **{"deprecated.daemonset.template.generation": "1"}),
                     created)
        meta["generation"] = 1
        status = {"observedGeneration": 1, "desiredNumberScheduled": desired,
                  "currentNumberScheduled": desired, "updatedNumberScheduled": desired,
                  "numberReady": ready, "numberAvailable": ready, "numberMisscheduled": 0}
        if ready < desired:
            status["numberUnavailable"] = desired - ready
        out.append({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta,
                    "spec": {"selector": sel, "template": template,
                             "updateStrategy": {"type": "RollingUpdate",
                                                "rollingUpdate": {"maxUnavailable": 1,
                                                                  "maxSurge": 0}},
                             "revisionHistoryLimit": 10},
                    "status": status})

    if wl["hpa"]:
        out.append(_hpa_object(sc, wl, mine, created, end))
    if wl["pdb"]:
        pdb = wl["pdb"]
        expected = len(mine)
        if "minAvailable" in pdb:
            desired_healthy = _scaled(pdb["minAvailable"], expected)
        else:
            desired_healthy = max(0, expected - _scaled(pdb["maxUnavailable"], expected))
        allowed = max(0, ready - desired_healthy)
        pmeta = _meta(name, ns, wl["labels"], None, created)
        pmeta["generation"] = 1
        out.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": pmeta,
                    "spec": dict({"selector": {"matchLabels": dict(wl["selector"])}}, **pdb),
                    "status": {"observedGeneration": 1, "currentHealthy": ready,
                               "desiredHealthy": desired_healthy, "expectedPods": expected,
                               "disruptionsAllowed": allowed,
                               "conditions": [_cond("DisruptionAllowed",
                                                    "True" if allowed else "False",
                                                    "SufficientPods" if allowed
                                                    else "InsufficientPods", "", created)]}})
    return out


def _hpa_object(sc, wl, mine, created, end):
    ns, name, hpa = wl["namespace"], wl["name"], wl["hpa"]
    metrics, current = [], []
    running = [p for p in mine if p.node is not None]
    proposals = []
    for res, key in (("cpu", "cpuUtilization"), ("memory", "memoryUtilization")):
        target = hpa[key]
        if target is None:
            continue
        metrics.append({"type": "Resource",
                        "resource": {"name": res, "target": {"type": "Utilization",
                                                             "averageUtilization": target}}})
        if not running:
            continue
        used = req = 0.0
        for p in running:
            for c in wl["containers"]:
                u = pod_usage(sc, p.namespace, p.name, c["name"], end)
                used += u[0] if res == "cpu" else u[1]
                req += c["req"][res]
        util = int(round(100.0 * used / req)) if req else 0
        avg = used / len(running)
        current.append({"type": "Resource",
                        "resource": {"name": res,
                                     "current": {"averageUtilization": util,
                                                 "averageValue": format_cpu(round(avg, 3))
                                                 if res == "cpu" else str(int(avg))}}})
        # The HPA controller: ceil(current * utilization / target) unless within its
        # default 10% tolerance; the largest proposal over metrics wins.
        ratio = util / float(target)
        if abs(ratio - 1.0) > 0.1:
            proposals.append(int(math.ceil(len(running) * ratio)))
        else:
            proposals.append(wl["replicas"])
    desired = max(proposals) if proposals else wl["replicas"]
    desired = min(hpa["maxReplicas"], max(hpa["minReplicas"], desired))
    limited = desired in (hpa["minReplicas"], hpa["maxReplicas"]) and desired != wl["replicas"]
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": wl["kind"], "name": name},
            "minReplicas": hpa["minReplicas"], "maxReplicas": hpa["maxReplicas"],
            "metrics": metrics}
    if hpa["behavior"]:
        spec["behavior"] = json.loads(json.dumps(hpa["behavior"]))
    meta = _meta(name, ns, wl["labels"], None, created)
    meta["generation"] = 1
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
            "spec": spec,
            "status": {"observedGeneration": 1, "currentReplicas": wl["replicas"],
                       "desiredReplicas": desired, "currentMetrics": current,
                       "conditions": [
                           _cond("AbleToScale", "True", "ReadyForNewScale",
                                 "recommended size matches current size", created),
                           _cond("ScalingActive", "True", "ValidMetricFound",
                                 "the HPA was able to successfully calculate a replica count "
                                 "from cpu resource utilization (percentage of request)",
                                 created),
                           _cond("ScalingLimited", "True" if limited else "False",
                                 "TooManyReplicas" if limited and desired == hpa["maxReplicas"]
                                 else ("TooFewReplicas" if limited else "DesiredWithinRange"),
                                 "the desired count is within the acceptable range"
                                 if not limited else "the desired replica count is at a limit",
                                 created)]}}


def _pod_skeleton(sc, wl, tmpl, created, start, end):
    """Everything a pod of this workload shares with its siblings, as a JSON string:
    each pod is one json.loads (the fastest general deep copy measured here; a
    compiled dict-literal builder is faster per copy but its compile cost is not
    repaid at a few pods per workload) plus its own few fields."""
    ns = wl["namespace"]
    meta = {"labels": dict(tmpl["metadata"]["labels"]),
            "annotations": dict(tmpl["metadata"].get("annotations") or {},
                                **{CREATED_AT_ANNOTATION: created})}
    spec = tmpl["spec"]          # the caller passes a private copy
    if wl["kind"] == "DaemonSet":
        tols = spec.setdefault("tolerations", [])
        for t in _DS_TOLERATIONS:
            if t not in tols:
                tols.append(dict(t))
        meta["ownerReferences"] = [_owner("apps/v1", "DaemonSet", ns, wl["name"])]
        meta["generateName"] = wl["name"] + "-"
    else:
        spec.setdefault("tolerations", []).extend(dict(t) for t in _DEFAULT_TOLERATIONS)
        if wl["kind"] == "StatefulSet":
            meta["ownerReferences"] = [_owner("apps/v1", "StatefulSet", ns, wl["name"])]
    spec["enableServiceLinks"] = True
    spec["preemptionPolicy"] = "PreemptLowerPriority"
    spec["priority"] = 0
    conds = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": created}
             for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                       "PodScheduled")]

    def cstatus(c, running):
        st = {"name": c["name"], "image": c["image"], "imageID": _image_id(c["image"]),
              "containerID": "", "ready": True, "restartCount": 0, "started": running}
        if running:
            st["state"] = {"running": {"startedAt": created}}
        else:
            st["state"] = {"terminated": {"exitCode": 0, "reason": "Completed",
                                          "startedAt": created, "finishedAt": created,
                                          "containerID": ""}}
        st["lastState"] = {}
        return st

    status = {"phase": "Running", "conditions": conds, "hostIP": "", "hostIPs": [],
              "podIP": "", "podIPs": [], "startTime": created, "qosClass": wl["_qos"],
              "containerStatuses": [cstatus(c, True) for c in wl["containers"]]}
    if wl["initContainers"]:
        status["initContainerStatuses"] = [cstatus(c, c["sidecar"])
                                           for c in wl["initContainers"]]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
                       "status": status})


def _container_id(p, c, restart=0):
    return "containerd://" + hashlib.blake2b(
        ("%d/%s/%d" % (p.key, c["name"], restart)).encode(), digest_size=32).hexdigest()


def _pod_object(sc, p, skeleton, nodes, created, start, end):
    wl = p.workload
    ns = p.namespace
    obj = json.loads(skeleton)
    meta, spec, status = obj["metadata"], obj["spec"], obj["status"]
    meta["name"] = p.name
    meta["namespace"] = ns
    labels = meta["labels"]
    if p.owner_kind == "ReplicaSet":
        labels["pod-template-hash"] = p.template_hash
        meta["generateName"] = p.owner_name + "-"
        meta["ownerReferences"] = [_owner("apps/v1", "ReplicaSet", ns, p.owner_name)]
    elif p.owner_kind == "StatefulSet":
        labels["controller-revision-hash"] = "%s-%s" % (wl["name"], p.template_hash)
        labels["statefulset.kubernetes.io/pod-name"] = p.name
        labels["apps.kubernetes.io/pod-index"] = str(p.index)
        spec["hostname"] = p.name
        spec["subdomain"] = wl["name"]
        if wl["storage"]:
            spec["volumes"] = [{"name": wl["storage"]["name"],
                                "persistentVolumeClaim": {"claimName": "%s-%s" % (
                                    wl["storage"]["name"], p.name)}}]
    else:
        labels["controller-revision-hash"] = p.template_hash
        labels["pod-template-generation"] = "1"
    node = nodes[p.node] if p.node is not None else None
    if node is None:
        obj["status"] = {"phase": "Pending", "qosClass": wl["_qos"],
                         "conditions": [_cond("PodScheduled", "False", "Unschedulable",
                                              "0/%d nodes are available: insufficient resources "
                                              "or no matching node." % len(nodes), created)]}
        obj["status"]["conditions"][0]["lastProbeTime"] = None
        return obj
    if wl["kind"] == "DaemonSet":
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                            {"nodeSelectorTerms": [{"matchFields": [
                                {"key": "metadata.name", "operator": "In",
                                 "values": [node["name"]]}]}]}}}
    spec["nodeName"] = node["name"]
    status["hostIP"] = node["ip"]
    status["hostIPs"] = [{"ip": node["ip"]}]
    status["podIP"] = p.ip
    status["podIPs"] = [{"ip": p.ip}]
    for st, c in zip(status.get("initContainerStatuses", ()), wl["initContainers"]):
        st["containerID"] = cid = _container_id(p, c)
        if c["sidecar"]:
            _restarts(sc, p, c, st, start, end)
        else:
            st["state"]["terminated"]["containerID"] = cid
    for st, c in zip(status["containerStatuses"], wl["containers"]):
        st["containerID"] = _container_id(p, c)
        _restarts(sc, p, c, st, start, end)
    return obj


def _can_restart(prof):
    mem = prof["memory"]
    return mem["growthPerDay"] > 0 or (mem["peaks"] is not None
                                        and prof["oomThreshold"] is not None)


def _restarts(sc, p, c, st, start, end):
    """Fill restartCount, state and lastState from the model's restarts in (start, end]."""
    if c["usage"] is None or not _can_restart(c["usage"]):
        return
    events = _instance(sc, p, c).events(start, end)
    if not events:
        return
    last_t, reason = events[-1]
    prev = events[-2][0] if len(events) > 1 else start
    st["restartCount"] = len(events)
    st["state"] = {"running": {"startedAt": _rfc3339(last_t + 1)}}
    st["lastState"] = {"terminated": {"exitCode": 137, "reason": reason,
                                      "startedAt": _rfc3339(prev),
                                      "finishedAt": _rfc3339(last_t),
                                      "containerID": _container_id(p, c, len(events) - 1)}}


@functools.lru_cache(maxsize=4096)
def _image_id(image):
    repo = image.split("@")[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[:len(repo) - len(last[-1]) + last[-1].index(":")]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    elif "." not in repo.split("/")[0] and ":" not in repo.split("/")[0]:
        repo = "docker.io/" + repo
    return "%s@sha256:%s" % (repo, hashlib.sha256(image.encode()).hexdigest())
