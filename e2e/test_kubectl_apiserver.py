#!/usr/bin/env python3
"""End-to-end check of the local API server with the real kubectl.

Starts e2e/apiserver/serve on a free port (HTTPS, generated CA), then drives
`kubectl` (found on PATH) with the admin kubeconfig and a ServiceAccount
kubeconfig: CRD + custom resource with printer columns, -o yaml, the three
patch types, server-side apply with a conflict and with --force-conflicts,
owner deletion with garbage collection, wait, get -w, auth can-i and a 403.
Exits non-zero on failure.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVE = os.path.join(HERE, "apiserver", "serve")

CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: rightsizingpolicies.tailor.dev
    spec:
      group: tailor.dev
      scope: Namespaced
      names: {kind: RightsizingPolicy, plural: rightsizingpolicies,
              singular: rightsizingpolicy, shortNames: [rsp]}
      versions:
      - name: v1alpha1
        served: true
        storage: true
        subresources: {status: {}}
        additionalPrinterColumns:
        - {name: Mode, type: string, jsonPath: .spec.mode}
        - {name: Percentile, type: integer, jsonPath: .spec.resources.cpu.percentile}
        - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
        - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                required: [mode]
                properties:
                  mode: {type: string, enum: ["Off", Recommend, Auto]}
                  resources:
                    type: object
                    properties:
                      cpu:
                        type: object
                        properties:
                          percentile: {type: integer, minimum: 1, maximum: 100}
              status:
                type: object
                properties:
                  conditions:
                    type: array
                    items:
                      type: object
                      properties:
                        type: {type: string}
                        status: {type: string}
    """)

CR = textwrap.dedent("""\
    apiVersion: tailor.dev/v1alpha1
    kind: RightsizingPolicy
    metadata: {name: shop-policy, namespace: shop}
    spec:
      mode: Auto
      resources: {cpu: {percentile: %d}}
    """)

DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop, labels: {app: web}}
    spec:
      replicas: %d
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
          - name: nginx
            image: nginx:1.25
            resources: {requests: {cpu: 100m, memory: 128Mi}}
    """)


def read(path):
    with open(path) as f:
        return f.read()


class KubectlAgainstLocalAPIServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kubectl = shutil.which("kubectl")
        if not cls.kubectl:
            raise unittest.SkipTest("kubectl not found on PATH")
        cls.tmp = tempfile.mkdtemp(prefix="kubectl-apiserver-")
        cls.admin_kc = os.path.join(cls.tmp, "admin.kubeconfig")
        cls.sa_kc = os.path.join(cls.tmp, "tailor.kubeconfig")
        cls.server_log = open(os.path.join(cls.tmp, "server.log"), "w")
        cls.server = subprocess.Popen(
            [sys.executable, SERVE, "--port", "0", "--kubeconfig", cls.admin_kc,
             "--sa-kubeconfig", f"tailor-system/tailor={cls.sa_kc}"],
            stdout=subprocess.PIPE, stderr=cls.server_log, text=True)
        line = cls.server.stdout.readline()
        if not line.startswith("ready "):
            cls.server.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        cls.url = line.split()[1]
        cls.kubectl_cmd(["create", "namespace", "shop"])

    @classmethod
    def tearDownClass(cls):
        server = getattr(cls, "server", None)
        if server is not None:
            server.terminate()
            try:
                code = server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                code = None
            server.stdout.close()
            cls.server_log.close()
            assert code == 0, f"serve exited with {code}"
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)

    @classmethod
    def kubectl_cmd(cls, args, kubeconfig=None, stdin=None, check=True):
        env = dict(os.environ, KUBECONFIG=kubeconfig or cls.admin_kc, HOME=cls.tmp)
        proc = subprocess.run([cls.kubectl, "--cache-dir", os.path.join(cls.tmp, "cache")] + args,
                              input=stdin, capture_output=True, text=True, env=env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def k(self, *args, **kw):
        return self.kubectl_cmd(list(args), **kw)

    # --- tests (named so they run in this order) ---------------------------------------
    def test_01_crd_custom_resource_and_printer_columns(self):
        self.k("apply", "-f", "-", stdin=CRD)
        self.k("wait", "--for=condition=Established",
               "crd/rightsizingpolicies.tailor.dev", "--timeout=10s")
        out = self.k("apply", "-f", "-", stdin=CR % 90).stdout
        self.assertIn("rightsizingpolicy.tailor.dev/shop-policy created", out)
        lines = self.k("get", "rsp", "-n", "shop").stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "MODE", "PERCENTILE", "READY", "AGE"])
        # READY has no value yet: kubectl prints an empty cell for null
        header = lines[0]
        ready_col = header.index("READY")
        self.assertEqual(lines[1][ready_col:header.index("AGE")].strip(), "")
        cells = lines[1].split()
        self.assertEqual(cells[:3], ["shop-policy", "Auto", "90"])
        self.assertRegex(cells[3], r"^\d+s$")
        yaml_out = self.k("get", "rightsizingpolicies.tailor.dev", "shop-policy", "-n", "shop",
                          "-o", "yaml").stdout
        self.assertIn("kind: RightsizingPolicy", yaml_out)
        self.assertIn("percentile: 90", yaml_out)
        self.assertRegex(yaml_out, r'resourceVersion: "\d+"')
        self.assertIn("uid: ", yaml_out)

    def test_02_schema_validation_error(self):
        proc = self.k("apply", "-f", "-", stdin=CR % 150, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("spec.resources.cpu.percentile: Invalid value: 150: "
                      "spec.resources.cpu.percentile in body should be less than or equal to "
                      "100", proc.stderr)

    def test_03_patch_types(self):
        self.k("apply", "-f", "-", stdin=DEPLOYMENT % 2)
        self.k("patch", "rsp", "shop-policy", "-n", "shop", "--type", "merge",
               "-p", '{"spec":{"mode":"Recommend"}}')
        self.k("patch", "rsp", "shop-policy", "-n", "shop", "--type", "json",
               "-p", '[{"op":"replace","path":"/spec/resources/cpu/percentile","value":80}]')
        out = self.k("get", "rsp", "shop-policy", "-n", "shop", "--no-headers").stdout.split()
        self.assertEqual(out[1:3], ["Recommend", "80"])
        self.k("patch", "deployment", "web", "-n", "shop", "--type", "strategic", "-p",
               '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}')
        names = self.k("get", "deploy", "web", "-n", "shop", "-o",
                       "jsonpath={.spec.template.spec.containers[*].name}").stdout
        self.assertEqual(names.split(), ["nginx", "sidecar"])    # merged by name, not replaced
        proc = self.k("patch", "rsp", "shop-policy", "-n", "shop", "--type", "strategic",
                      "-p", '{"spec":{"mode":"Off"}}', check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("strategic-merge-patch+json is not supported", proc.stderr)

    def test_04_server_side_apply_conflict_and_force(self):
        self.k("apply", "--server-side", "--field-manager=ops-a", "-f", "-",
               stdin=DEPLOYMENT % 2)
        proc = self.k("apply", "--server-side", "--field-manager=ops-b", "-f", "-",
                      stdin=DEPLOYMENT % 4, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn('Apply failed with 1 conflict: conflict with "ops-a": .spec.replicas',
                      proc.stderr)
        self.k("apply", "--server-side", "--field-manager=ops-b", "--force-conflicts", "-f", "-",
               stdin=DEPLOYMENT % 4)
        replicas = self.k("get", "deploy", "web", "-n", "shop", "-o",
                          "jsonpath={.spec.replicas}").stdout
        self.assertEqual(replicas, "4")
        managed = self.k("get", "deploy", "web", "-n", "shop", "--show-managed-fields", "-o",
                         "yaml").stdout
        self.assertIn("manager: ops-b", managed)
        self.assertIn("operation: Apply", managed)

    def test_05_wait_for_condition(self):
        self.k("patch", "rsp", "shop-policy", "-n", "shop", "--subresource=status",
               "--type", "merge", "-p",
               '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
        out = self.k("wait", "--for=condition=Ready", "rsp/shop-policy", "-n", "shop",
                     "--timeout=10s").stdout
        self.assertIn("condition met", out)
        cells = self.k("get", "rsp", "-n", "shop", "--no-headers").stdout.split()
        self.assertEqual(cells[3], "True")

    def test_06_get_watch_sees_change(self):
        env = dict(os.environ, KUBECONFIG=self.admin_kc, HOME=self.tmp)
        log_path = os.path.join(self.tmp, "watch.out")
        with open(log_path, "w") as log:
            watcher = subprocess.Popen(
                [self.kubectl, "--cache-dir", os.path.join(self.tmp, "cache"), "get", "deploy",
                 "-n", "shop", "-w", "--output-watch-events"], stdout=log,
                stderr=subprocess.STDOUT, env=env)
            try:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and "web" not in read(log_path):
                    time.sleep(0.1)
                self.k("scale", "deploy", "web", "-n", "shop", "--replicas=6")
                while time.monotonic() < deadline and "MODIFIED" not in read(log_path):
                    time.sleep(0.1)
            finally:
                watcher.kill()
                watcher.wait()
        text = read(log_path)
        self.assertIn("ADDED", text)
        modified = [line for line in text.splitlines() if line.startswith("MODIFIED")]
        self.assertTrue(modified, text)
        self.assertIn("0/6", modified[-1])

    def test_07_delete_owner_garbage_collects_dependents(self):
        uid = self.k("get", "deploy", "web", "-n", "shop", "-o",
                     "jsonpath={.metadata.uid}").stdout
        for i in range(2):
            self.k("apply", "-f", "-", stdin=textwrap.dedent(f"""\
                apiVersion: v1
                kind: Pod
                metadata:
                  name: web-{i}
                  namespace: shop
                  labels: {{app: web}}
                  ownerReferences:
                  - {{apiVersion: apps/v1, kind: Deployment, name: web, uid: {uid},
                     controller: true}}
                spec:
                  containers: [{{name: nginx, image: "nginx:1.25"}}]
                """))
        self.assertEqual(len(self.k("get", "pods", "-n", "shop", "--no-headers")
                             .stdout.splitlines()), 2)
        self.k("delete", "deploy", "web", "-n", "shop")
        deadline = time.monotonic() + 5
        remaining = None
        while time.monotonic() < deadline:
            remaining = self.k("get", "pods", "-n", "shop", "-o", "name").stdout.strip()
            if not remaining:
                break
            time.sleep(0.2)
        self.assertEqual(remaining, "")

    def test_08_service_account_rbac(self):
        self.k("create", "role", "deploy-reader", "-n", "shop", "--verb=get,list,watch",
               "--resource=deployments")
        self.k("create", "rolebinding", "tailor-reader", "-n", "shop", "--role=deploy-reader",
               "--serviceaccount=tailor-system:tailor")
        yes = self.k("auth", "can-i", "list", "deployments", "-n", "shop",
                     kubeconfig=self.sa_kc)
        self.assertEqual(yes.stdout.strip(), "yes")
        no = self.k("auth", "can-i", "patch", "deployments", "-n", "shop",
                    kubeconfig=self.sa_kc, check=False)
        self.assertEqual(no.stdout.strip(), "no")
        self.assertNotEqual(no.returncode, 0)
        self.k("apply", "-f", "-", stdin=DEPLOYMENT % 1)
        denied = self.k("patch", "deployment", "web", "-n", "shop", "-p",
                        '{"spec":{"replicas":3}}', kubeconfig=self.sa_kc, check=False)
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn('Error from server (Forbidden): deployments.apps "web" is forbidden: User '
                      '"system:serviceaccount:tailor-system:tailor" cannot patch resource '
                      '"deployments" in API group "apps" in the namespace "shop"', denied.stderr)
        listed = self.k("get", "deploy", "-n", "shop", kubeconfig=self.sa_kc).stdout
        self.assertIn("web", listed)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
