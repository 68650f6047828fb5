"""Kubeconfig files for the embedded cluster (certificates embedded, one context)."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    client_cert: Path,
    client_key: Path,
    user: str = "admin",
    cluster: str = "modelfleet-local",
    namespace: str | None = None,
) -> Path:
    context: dict[str, str] = {"cluster": cluster, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster,
             "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)}}
        ],
        "users": [
            {"name": user,
             "user": {"client-certificate-data": _b64(client_cert),
                      "client-key-data": _b64(client_key)}}
        ],
        "contexts": [{"name": cluster, "context": context}],
        "current-context": cluster,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
