#!/usr/bin/env python3
"""`make demo`: the demo cluster on the local API server, a real Prometheus holding the
scenario's usage history, and `tailor run` as its ServiceAccount; prints the Recommendations.

DEMO_ONESHOT=1  print and exit 0, stopping everything started
DEMO_KEEP=1     leave everything running in the background and say how to stop it
otherwise       keep running until Ctrl-C, then stop everything started
"""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import promlib  # noqa: E402

SCENARIO = "e2e/scenarios/demo.yaml"


def say(text=""):
    print(text, flush=True)


def main():
    oneshot = os.environ.get("DEMO_ONESHOT") == "1"
    started = time.time()
    say("== Tailor demo: a 40-workload company on a local Kubernetes API server")
    say("   generating usage history and starting Prometheus (the first run takes a minute)...")
    prom = promlib.Prometheus(os.path.join(harness.ROOT, SCENARIO), history="7d", step="1m")
    prom.__enter__()
    server = harness.ApiServer(scenario=SCENARIO)
    server.install()
    server.kubectl("apply", "-k", os.path.join(harness.ROOT, "config/samples"))
    tailor = harness.Tailor(server, "--prometheus-url", prom.url)

    def analyzed():
        items = server.get_json("rec", "-A")["items"]
        done = [r for r in items if r.get("status", {}).get("confidence") not in (None, "None")]
        return len(items) >= 35 and len(done) == len(items)

    try:
        harness.wait_for(analyzed, timeout=180, interval=1, what="the Recommendations")
    except AssertionError:
        say("the Recommendations did not appear in time; the operator's log:")
        say(tailor.output()[-4000:])
        return 1
    say("   ready in %.0f s\n" % (time.time() - started))
    say("$ kubectl get optpol,rec -A")
    say(server.kubectl("get", "optpol,rec", "-A").stdout)
    say("$ kubectl get rec deployment-web -n shop -o jsonpath='{.status.explanation}'")
    say(server.kubectl("get", "rec", "deployment-web", "-n", "shop", "-o",
                       "jsonpath={.status.explanation}").stdout + "\n")
    say("To explore:")
    say("  export KUBECONFIG=%s" % server.admin)
    say("  kubectl get rec -A            # or: kubectl get rec deployment-web -n shop -o yaml")
    say("  kubectl patch rec deployment-web -n shop --type merge "
        "-p '{\"spec\":{\"approval\":{\"approvedRevision\":N}}}'")
    say("  Prometheus: %s   operator log: %s" % (prom.url, tailor.log_path))
    if oneshot:
        return 0
    if os.environ.get("DEMO_KEEP") == "1":
        pid_file = os.path.join(harness.ROOT, "build", "demo.pid")
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
        say("\nRunning in the background. Stop it with: kill $(cat %s)" % pid_file)
    else:
        say("\nPress Ctrl-C to stop everything.")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    say("\nstopping...")
    tailor.stop()
    server.stop()
    prom.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    if os.environ.get("DEMO_KEEP") == "1" and os.environ.get("DEMO_CHILD") != "1":
        # Detach: the child keeps running after make returns; its first lines are shown here.
        log = os.path.join(harness.ROOT, "build", "demo.log")
        os.makedirs(os.path.dirname(log), exist_ok=True)
        child = subprocess.Popen([sys.executable, __file__], env=dict(os.environ, DEMO_CHILD="1"),
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        harness.wait_for(lambda: "Stop it with" in open(log).read() or child.poll() is not None,
                         timeout=400, interval=1, what="the demo")
        sys.stdout.write(open(log).read())
        sys.exit(0 if child.poll() is None else 1)
    sys.exit(main())
