"""A minimal HTTPS client for the embedded cluster's own bootstrap calls.

`fleet.kube` is the project's API layer; this module exists so that the cluster
launcher (which must work before anything else does) has no dependency on it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx


class ApiClient:
    def __init__(self, server: str, ca: Path, cert: Path, key: Path, timeout: float = 5.0):
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        self._http = httpx.Client(base_url=server, verify=ctx, timeout=timeout, trust_env=False)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self._http.get(path, params=params or None)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self._http.post(path, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """JSON merge patch."""
        return self._http.patch(path, json=body,
                                headers={"Content-Type": "application/merge-patch+json"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def insecure_health(url: str, timeout: float = 2.0) -> bool:
    """Health of a loopback component with a self-signed serving cert (KCM, scheduler, kwok)."""
    try:
        r = httpx.get(url, verify=False, timeout=timeout, trust_env=False)  # noqa: S501 - loopback
    except httpx.HTTPError:
        return False
    return r.status_code == 200
