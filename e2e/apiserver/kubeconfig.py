"""Writing kubeconfig files (admin and per-ServiceAccount) for the server."""
import base64
import os

import yaml


def render(url, token, user_name, ca_pem=None, cluster="tailor-local"):
    cluster_entry = {"server": url}
    if ca_pem:
        cluster_entry["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": user_name, "user": {"token": token}}],
        "contexts": [{"name": f"{user_name}@{cluster}",
                      "context": {"cluster": cluster, "user": user_name}}],
        "current-context": f"{user_name}@{cluster}",
        "preferences": {},
    }


def write(path, url, token, user_name, ca_pem=None):
    doc = render(url, token, user_name, ca_pem)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
