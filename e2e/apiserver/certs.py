"""TLS material: a throwaway CA and a server certificate for 127.0.0.1 /
localhost, generated with the openssl command line into a temp directory.
"""
import os
import ssl
import subprocess
import tempfile


def _run(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def generate(directory=None):
    """Returns (ssl.SSLContext, ca_pem_bytes, directory)."""
    d = directory or tempfile.mkdtemp(prefix="tailor-apiserver-tls-")
    _run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
          "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=tailor-apiserver-ca",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    _run(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
          "-subj", "/CN=kube-apiserver"], d)
    _run(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
          "-CAcreateserial", "-out", "server.crt", "-days", "30", "-extfile", "server.ext"], d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    ctx.set_alpn_protocols(["http/1.1"])
    with open(os.path.join(d, "ca.crt"), "rb") as f:
        ca = f.read()
    return ctx, ca, d
