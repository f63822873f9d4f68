#!/usr/bin/env python3
"""End-to-end test of the kube client and informers (test/test_kube_e2e.c) against the local
API server: starts e2e/apiserver/serve on a free port, then runs the cmocka program with
TAILOR_APISERVER_KUBECONFIG pointing at the server's admin kubeconfig.

Needs TAILOR_BUILD_DIR (the cmake build directory; ctest sets it). Exits with the program's
status; 0 without running anything when the program has not been built.
"""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVE = os.path.join(HERE, "apiserver", "serve")


def main():
    build = os.environ.get("TAILOR_BUILD_DIR")
    if not build:
        print("test_kube_client: TAILOR_BUILD_DIR is not set", file=sys.stderr)
        return 2
    program = os.path.join(build, "test", "test_kube_e2e")
    if not os.access(program, os.X_OK):
        print(f"test_kube_client: {program} is not built; nothing to run", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="tailor-kube-e2e-") as tmp:
        kubeconfig = os.path.join(tmp, "admin.kubeconfig")
        server = subprocess.Popen(
            [sys.executable, SERVE, "--port", "0", "--kubeconfig", kubeconfig,
             "--bookmark-interval", "1"],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "serve.log"), "w"), text=True)
        try:
            line = server.stdout.readline()
            if not line.startswith("ready "):
                print(f"test_kube_client: the API server did not start: {line!r}",
                      file=sys.stderr)
                with open(os.path.join(tmp, "serve.log")) as log:
                    sys.stderr.write(log.read())
                return 1
            env = dict(os.environ, TAILOR_APISERVER_KUBECONFIG=kubeconfig)
            started = time.monotonic()
            result = subprocess.run([program], env=env, timeout=600)
            print(f"test_kube_client: {program} exited {result.returncode} after "
                  f"{time.monotonic() - started:.1f}s", file=sys.stderr)
            if result.returncode != 0:
                with open(os.path.join(tmp, "serve.log")) as log:
                    tail = log.read()[-4000:]
                sys.stderr.write("--- API server log (tail) ---\n" + tail)
            return result.returncode
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    sys.exit(main())
