"""A real Prometheus on 127.0.0.1 serving a scenario's usage history, for e2e tests and the demo.

    from promlib import Prometheus, start_prometheus

    with Prometheus("e2e/scenarios/small.yaml", history="14d", step="1m") as prom:
        prom.url, prom.end          # http://127.0.0.1:PORT, epoch of the last sample

    url, stop = start_prometheus("e2e/scenarios/small.yaml")   # same, without `with`
    ...
    stop()

The history is written by e2e/scenarios/promhistory (cAdvisor and kube-state-metrics series,
README.md there) and backfilled with promtool into TSDB blocks that end at "now" rounded down to
5 minutes, so Prometheus keeps them and queries near now find them. The blocks are cached under
$TAILOR_BUILD_DIR/e2e-cache/prometheus (else the system temp directory), keyed by the scenario
file, the generator's code, history and step; an entry is reused while its end is at most
max_age old (default 1h), and Prometheus' lookback is widened by that age so instant queries at
the wall clock's now still see the last samples. Each run copies the blocks into its own temp
directory (Prometheus writes to its data directory) and removes it on stop.

step is the sample interval of the backfilled series, i.e. the scrape interval. The default 1m is
what kubelets are scraped at, and keeps rate(x[5m]) meaningful on every Prometheus version
(Prometheus 3 range selectors exclude the window's left edge, so 5m samples leave a [5m]
window one sample, too few for rate). "5m" is five times faster to generate and still works on
Prometheus 2 (closed windows): use it for big scenarios where 1m is slow (demo.yaml: about 2 min
at 1m, 20 s at 5m, the first time).

No Prometheus outlives the process that started it: stop() kills it, and so do an atexit hook,
SIGTERM/SIGINT/SIGHUP handlers and, on Linux, the child's parent-death signal. Temp directories
left by a process that was SIGKILLed are removed by the next start.

Command line (for a manual look):  python3 e2e/promlib.py SCENARIO [--history 14d] [--step 1m]
"""

import argparse
import atexit
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROMHISTORY = os.path.join(HERE, "scenarios", "promhistory")
SCENARIO_PY = os.path.join(HERE, "apiserver", "scenario.py")
sys.path.insert(0, os.path.join(HERE, "apiserver"))

import scenario as S  # noqa: E402

ALIGN = 300                 # the history ends on a multiple of this many seconds
READY_TIMEOUT = 60.0
TEMP_PREFIX = "tailor-prometheus-"
CACHE_FORMAT = 1            # bump when the layout of a cache entry changes

__all__ = ["Prometheus", "Started", "start_prometheus", "stop_all"]

_running = set()
_lock = threading.Lock()
_handlers_installed = False


def stop_all():
    """Stops every Prometheus this process started and has not stopped yet."""
    for prom in list(_running):
        prom.stop()


def _on_signal(signum, frame, previous):
    stop_all()
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _handlers_installed
    with _lock:
        if _handlers_installed:
            return
        _handlers_installed = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous = signal.getsignal(signum)
        if previous is None:
            continue        # installed from C: leave it alone
        signal.signal(signum, lambda s, f, p=previous: _on_signal(s, f, p))


def _die_with_parent():
    """preexec_fn: ask Linux to SIGKILL the child when the parent dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _remove_orphans():
    """Removes temp directories of runs whose process died without cleaning up (SIGKILL)."""
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if not name.startswith(TEMP_PREFIX):
            continue
        path = os.path.join(root, name)
        try:
            with open(os.path.join(path, "owner.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, ValueError):
            continue        # not ours to judge: being created, or another user's


def _seconds(value):
    return int(S.parse_duration(value))


def _tool(name):
    env = os.environ.get("TAILOR_" + name.upper())
    path = env or shutil.which(name)
    if not path:
        raise RuntimeError("%s is not installed (or set TAILOR_%s)" % (name, name.upper()))
    return path


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cache_root(cache_dir):
    if cache_dir:
        return cache_dir
    build = os.environ.get("TAILOR_BUILD_DIR")
    if build:
        return os.path.join(build, "e2e-cache", "prometheus")
    return os.path.join(tempfile.gettempdir(), "tailor-e2e-cache", "prometheus")


def _cache_key(scenario_path, history, step):
    h = hashlib.sha256()
    h.update(b"format %d\n" % CACHE_FORMAT)
    for path in (scenario_path, PROMHISTORY, SCENARIO_PY):
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    h.update(("history %d step %d" % (history, step)).encode())
    name = os.path.splitext(os.path.basename(scenario_path))[0]
    return "%s-%s" % (name, h.hexdigest()[:16])


def _entries(root, key):
    """Cached entries of a key as (end, path), newest first."""
    out = []
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return out
    for name in names:
        if not name.startswith(key + "-end"):
            continue
        path = os.path.join(root, name)
        try:
            with open(os.path.join(path, "tailor-cache.json")) as f:
                out.append((int(json.load(f)["end"]), path))
        except (OSError, ValueError, KeyError):
            continue
    out.sort(reverse=True)
    return out


def _generate(scenario_path, history, step, end, root, key):
    """promhistory + promtool into a new cache entry; returns its path."""
    work = tempfile.mkdtemp(prefix=".gen-", dir=root)
    try:
        om = os.path.join(work, "history.om")
        blocks = os.path.join(work, "blocks")
        os.mkdir(blocks)
        cmd = [sys.executable, PROMHISTORY, scenario_path, "--out", om, "--step", "%ds" % step,
               "--history", "%ds" % history, "--end", str(end), "--tsdb", blocks]
        env = dict(os.environ)
        promtool = shutil.which("promtool") or os.environ.get("TAILOR_PROMTOOL")
        if promtool:
            env["PATH"] = os.path.dirname(promtool) + os.pathsep + env.get("PATH", "")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError("promhistory failed (%d): %s" % (res.returncode, res.stderr[-4000:]))
        os.unlink(om)
        with open(os.path.join(blocks, "tailor-cache.json"), "w") as f:
            json.dump({"end": end, "history": history, "step": step,
                       "scenario": os.path.basename(scenario_path)}, f)
        final = os.path.join(root, "%s-end%d" % (key, end))
        os.rename(blocks, final)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Prometheus:
    """One Prometheus serving a scenario's history. Attributes after start(): url, port, end
    (epoch seconds of the last sample), start_time (end - history), history and step (seconds),
    data_dir, log_path. Usable as a context manager."""

    def __init__(self, scenario_path, history="14d", step="1m", max_age="1h", cache_dir=None,
                 retention=None):
        self.scenario_path = os.path.abspath(scenario_path)
        self.history = _seconds(history)
        self.step = _seconds(step)
        self.max_age = _seconds(max_age)
        if self.step <= 0 or self.history < self.step or ALIGN % self.step and self.step % ALIGN:
            raise ValueError("need 0 < step <= history, and step dividing 5m or a multiple of it")
        self.cache_dir = _cache_root(cache_dir)
        self.retention = retention
        self.proc = None
        self.url = None
        self.port = None
        self.end = None
        self.start_time = None
        self.dir = None
        self.data_dir = None
        self.log_path = None
        self.timings = {}

    # ---- history ----

    def _blocks(self):
        """Copies fresh cached blocks (generated if needed) into self.data_dir; returns end."""
        os.makedirs(self.cache_dir, exist_ok=True)
        key = _cache_key(self.scenario_path, self.history, self.step)
        align = max(ALIGN, self.step)
        with open(os.path.join(self.cache_dir, key + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)      # one generator per key, even across processes
            now = time.time()
            entries = _entries(self.cache_dir, key)
            fresh = [(end, path) for end, path in entries if 0 <= now - end <= self.max_age]
            t0 = time.monotonic()
            if fresh:
                end, path = fresh[0]
                self.timings["cache"] = "hit"
            else:
                end = int(now) // align * align
                path = _generate(self.scenario_path, self.history, self.step, end,
                                 self.cache_dir, key)
                self.timings["cache"] = "miss"
                self.timings["generate_s"] = round(time.monotonic() - t0, 2)
            for old_end, old in entries:
                if old != path and now - old_end > self.max_age:
                    shutil.rmtree(old, ignore_errors=True)
            for name in os.listdir(path):
                src = os.path.join(path, name)
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(self.data_dir, name))
        return end

    # ---- the server ----

    def start(self):
        if self.proc is not None:
            return self
        _install_handlers()
        _remove_orphans()
        self.dir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        try:
            with open(os.path.join(self.dir, "owner.pid"), "w") as f:
                f.write("%d\n" % os.getpid())
            self.data_dir = os.path.join(self.dir, "data")
            os.mkdir(self.data_dir)
            self.end = self._blocks()
            self.start_time = self.end - self.history
            config = os.path.join(self.dir, "prometheus.yml")
            with open(config, "w") as f:
                f.write("global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n"
                        "scrape_configs: []\n")
            age = max(0, int(time.time()) - self.end)
            lookback = 300 + -(-age // 60) * 60
            retention = self.retention or "%dd" % (max(30, self.history // 86400 + 2))
            self.log_path = os.path.join(self.dir, "prometheus.log")
            t0 = time.monotonic()
            for attempt in range(5):
                self.port = _free_port()
                cmd = [_tool("prometheus"), "--config.file=" + config,
                       "--storage.tsdb.path=" + self.data_dir,
                       "--storage.tsdb.retention.time=" + retention,
                       "--web.listen-address=127.0.0.1:%d" % self.port,
                       "--query.lookback-delta=%ds" % lookback, "--log.level=warn"]
                with open(self.log_path, "a") as log:
                    self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL,
                                                 preexec_fn=_die_with_parent)
                _running.add(self)
                self.url = "http://127.0.0.1:%d" % self.port
                if self._wait_ready():
                    break
                self._kill()
                if "address already in use" not in self._log_tail():
                    raise RuntimeError("Prometheus did not become ready:\n" + self._log_tail())
            else:
                raise RuntimeError("Prometheus found no free port:\n" + self._log_tail())
            self.timings["ready_s"] = round(time.monotonic() - t0, 2)
            return self
        except BaseException:
            self.stop()
            raise

    def _log_tail(self, size=4000):
        try:
            with open(self.log_path) as f:
                return f.read()[-size:]
        except (OSError, TypeError):
            return ""

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def _kill(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self):
        """Stops Prometheus and removes its temp directory. Safe to call twice."""
        self._kill()
        _running.discard(self)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def query(self, expr, time_=None):
        """An instant query; returns data.result. For tests' own checks."""
        data = {"query": expr}
        if time_ is not None:
            data["time"] = str(time_)
        body = urllib.parse.urlencode(data).encode()
        with urllib.request.urlopen(self.url + "/api/v1/query", body, timeout=30) as r:
            answer = json.load(r)
        if answer.get("status") != "success":
            raise RuntimeError("query %r failed: %s" % (expr, answer))
        return answer["data"]["result"]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Started(tuple):
    """(url, stop) as start_prometheus returns it; .prometheus has the rest (end, step...)."""

    def __new__(cls, prom):
        self = super().__new__(cls, (prom.url, prom.stop))
        self.prometheus = prom
        return self

    def __getattr__(self, name):
        return getattr(self.prometheus, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.prometheus.stop()
        return False


def start_prometheus(scenario_path, history="14d", step="1m", **kwargs):
    """Starts a Prometheus with the scenario's history; returns (url, stop_fn), which also has
    the Prometheus' attributes (.end, .history, ...) and works as a context manager."""
    return Started(Prometheus(scenario_path, history=history, step=step, **kwargs).start())


def main(argv=None):
    ap = argparse.ArgumentParser(description="Serve a scenario's history from a real Prometheus.")
    ap.add_argument("scenario")
    ap.add_argument("--history", default="14d")
    ap.add_argument("--step", default="1m")
    ap.add_argument("--max-age", default="1h")
    args = ap.parse_args(argv)
    with Prometheus(args.scenario, args.history, args.step, max_age=args.max_age) as prom:
        print("ready %s end=%d %s" % (prom.url, prom.end, json.dumps(prom.timings)), flush=True)
        try:
            while prom.proc and prom.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
