"""Shared pieces of the end-to-end tests: the local API server, kubectl and the tailor process.

Everything listens on 127.0.0.1 and is stopped when the test ends, even on failure.
"""
import atexit
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_children = []


def _stop_all():
    for proc in list(_children):
        stop(proc)


atexit.register(_stop_all)


def stop(proc, timeout=10):
    """Stops a child with SIGTERM, then SIGKILL; returns its exit code."""
    if proc in _children:
        _children.remove(proc)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class ApiServer:
    """The local API server in a subprocess, with an admin and a ServiceAccount kubeconfig."""

    def __init__(self, scenario=None, sa="tailor-system/tailor", extra=()):
        self.dir = tempfile.mkdtemp(prefix="tailor-e2e-")
        self.admin = os.path.join(self.dir, "admin.kubeconfig")
        self.sa = os.path.join(self.dir, "sa.kubeconfig")
        self.request_log = os.path.join(self.dir, "requests.jsonl")
        args = [os.path.join(ROOT, "e2e/apiserver/serve"), "--port", "0", "--kubeconfig",
                self.admin, "--sa-kubeconfig", "%s=%s" % (sa, self.sa), "--request-log",
                self.request_log] + list(extra)
        if scenario:
            args += ["--scenario", os.path.join(ROOT, scenario)]
        self.log = open(os.path.join(self.dir, "apiserver.log"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        _children.append(self.proc)
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError("API server did not start: %s" % open(self.log.name).read())
        self.url = line.split()[1]
        self.env = dict(os.environ, KUBECONFIG=self.admin, HOME=self.dir)

    def kubectl(self, *args, kubeconfig=None, check=True, input=None):
        env = dict(self.env, KUBECONFIG=kubeconfig or self.admin)
        res = subprocess.run(["kubectl"] + list(args), env=env, capture_output=True, text=True,
                             input=input, timeout=60)
        if check and res.returncode != 0:
            raise AssertionError("kubectl %s failed: %s" % (" ".join(args), res.stderr))
        return res

    def get_json(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def requests(self):
        """The request log: one dict per request (user, verb, resource, code...)."""
        with open(self.request_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def install(self):
        """Applies config/default (CRDs, RBAC, manager) as kubectl kustomize renders it."""
        rendered = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, "config/default")],
                                  capture_output=True, text=True, check=True, env=self.env).stdout
        self.kubectl("apply", "-f", "-", input=rendered)

    def stop(self):
        stop(self.proc)
        self.proc.stdout.close()
        self.log.close()


def free_port():
    """A port free on 127.0.0.1 right now (another process could take it before use)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tailor:
    """`tailor run` as the ServiceAccount, logging to a file. With http=True it serves
    /metrics and the API on self.api_url and the probes on self.health_url."""

    def __init__(self, server, *args, http=False):
        binary = os.environ.get("TAILOR_BIN") or os.path.join(ROOT, "build/controller/tailor")
        self.log_path = os.path.join(server.dir, "tailor-%d.log" % time.time_ns())
        self.log = open(self.log_path, "w")
        api, health = ("0", "0")
        if http:
            api = "127.0.0.1:%d" % free_port()
            health = "127.0.0.1:%d" % free_port()
            self.api_url = "http://" + api
            self.health_url = "http://" + health
        self.proc = subprocess.Popen([binary, "run", "--kubeconfig", server.sa,
                                      "--metrics-bind-address", api,
                                      "--health-probe-bind-address", health] + list(args),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        _children.append(self.proc)

    def stop(self):
        code = stop(self.proc)
        self.log.close()
        return code

    def output(self):
        with open(self.log_path) as f:
            return f.read()


def wait_for(predicate, timeout=30, interval=0.2, what="condition"):
    """Polls predicate until it returns a true value, which is returned."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except AssertionError as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))
