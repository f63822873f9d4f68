#!/usr/bin/env python3
"""End-to-end test of the usage collector (test/test_usage_e2e.c) against a real Prometheus that
serves e2e/scenarios/small.yaml's 14 days of history (e2e/promlib.py).

The expected numbers come from the scenario's own usage model (scenario.series(), bit-identical
to pod_usage()): for every workload-container, the pods, the samples a 5-minute step gives, the
decay-weighted CPU p95 of the per-step CPU counter increase over 300 s (what rate(...[5m])
computes), the memory peak,
the OOM kills and the memory limit they hit, and the throttled share of CFS periods. They are
written to a file the C program reads (TAILOR_USAGE_EXPECTED).

Needs TAILOR_BUILD_DIR (ctest sets it). Exits with the program's status; 0 without running
anything when the program has not been built.
"""
import bisect
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import promlib  # noqa: E402
import scenario as S  # noqa: E402  (promlib puts e2e/apiserver on the path)

SCENARIO = os.path.join(HERE, "scenarios", "small.yaml")
HISTORY = "14d"
SAMPLE_STEP = "1m"      # the backfilled scrape interval
STEP = 300              # the collector's step
HALF_LIFE = 86400.0     # tl_histogram_cpu_defaults


def weighted_percentile(pairs, p):
    """Smallest value v with at least fraction p of the total weight at or below v."""
    pairs = sorted(pairs)
    total = sum(w for _, w in pairs)
    acc = 0.0
    for v, w in pairs:
        acc += w
        if acc >= p * total:
            return v
    return pairs[-1][0] if pairs else 0.0


def expectations(sc, end, history, sample_step):
    start = end - history
    per = STEP // sample_step
    acc = defaultdict(lambda: {"pods": 0, "samples": 0, "cpu": [], "mem": 0, "oom": 0,
                               "thr": 0.0, "thr_n": 0, "limited": False})
    times = range(start + sample_step, end + 1, sample_step)
    for s in S.series(sc, start + sample_step, end, sample_step):
        a = acc[(s.namespace, s.kind, s.workload, s.container)]
        a["pods"] += 1
        # CPU seconds each scrape interval adds to the counter; a container killed inside an
        # interval takes what it used since the last scrape with it, as a real cgroup does.
        inc = [c * sample_step for c in s.cpu]
        for te, _ in s.events:
            i = bisect.bisect_left(times, te)
            if i < len(times):
                inc[i] = s.cpu[i] * (times[i] - te)
        nsteps = len(s.cpu) // per
        a["samples"] += nsteps
        for k in range(nsteps):
            t = start + (k + 1) * STEP
            mean = sum(inc[k * per:(k + 1) * per]) / STEP
            a["cpu"].append((mean, 2.0 ** ((t - end) / HALF_LIFE)))
        a["mem"] = max(a["mem"], max(s.memory))
        a["oom"] += sum(1 for _, reason in s.events if reason == "OOMKilled")
        if s.throttled is not None:
            a["limited"] = True
            a["thr"] += sum(s.throttled)
            a["thr_n"] += len(s.throttled)
    limits = {}
    for p in S.pods(sc):
        for c in p.workload["containers"] + p.workload["initContainers"]:
            limits[(p.namespace, p.workload["kind"], p.workload["name"], c["name"])] = \
                c["lim"].get("memory", 0)
    lines = []
    for key in sorted(acc):
        a = acc[key]
        thr = a["thr"] / a["thr_n"] if a["limited"] else -1
        lines.append("container %s %s %s %s %d %d %.6f %d %d %d %.6f" % (
            key + (a["pods"], a["samples"], weighted_percentile(a["cpu"], 0.95), a["mem"],
                   a["oom"], limits.get(key, 0) if a["oom"] else 0, thr)))
    return lines


def main():
    build = os.environ.get("TAILOR_BUILD_DIR")
    if not build:
        print("test_usage_prometheus: TAILOR_BUILD_DIR is not set", file=sys.stderr)
        return 2
    program = os.path.join(build, "test", "test_usage_e2e")
    if not os.access(program, os.X_OK):
        print("test_usage_prometheus: %s is not built; nothing to run" % program, file=sys.stderr)
        return 0
    t0 = time.monotonic()
    with promlib.Prometheus(SCENARIO, history=HISTORY, step=SAMPLE_STEP) as prom, \
            tempfile.TemporaryDirectory(prefix="tailor-usage-e2e-") as tmp:
        t_prom = time.monotonic() - t0
        sc = S.load(SCENARIO)
        lines = ["end %d" % prom.end, "history %d" % prom.history, "step %d" % STEP]
        for ns in sc["namespaces"]:
            for wl in ns["workloads"]:
                lines.append("workload %s %s %s" % (ns["name"], wl["kind"], wl["name"]))
        lines += expectations(sc, prom.end, prom.history, prom.step)
        expected = os.path.join(tmp, "expected.txt")
        with open(expected, "w") as f:
            f.write("\n".join(lines) + "\n")
        t_model = time.monotonic() - t0 - t_prom
        env = dict(os.environ, TAILOR_PROMETHEUS_URL=prom.url, TAILOR_USAGE_EXPECTED=expected)
        t1 = time.monotonic()
        result = subprocess.run([program], env=env, timeout=600)
        t_program = time.monotonic() - t1
        if result.returncode != 0:
            sys.stderr.write("--- expected ---\n%s\n--- Prometheus log (tail) ---\n%s\n"
                             % ("\n".join(lines), prom._log_tail()))
    print("test_usage_prometheus: Prometheus ready in %.1fs (%s), model %.1fs, %s %.1fs, "
          "exit %d" % (t_prom, promlib.json.dumps(prom.timings), t_model,
                       os.path.basename(program), t_program, result.returncode),
          file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
