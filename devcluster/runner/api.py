"""The runner's async client of the Kubernetes API (JSON over HTTPS with the admin certificate).

`fleet.kube` is the product's synchronous client; the runner needs hundreds of concurrent
pod tasks on one asyncio loop, so it keeps this small async client of its own.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, body: str, what: str) -> None:
        super().__init__(f"{what}: {status} {body[:300]}")
        self.status = status


class AsyncApi:
    def __init__(self, server: str, ca: Path, cert: Path, key: Path,
                 timeout: float = 15.0) -> None:
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        self.server = server
        self._http = httpx.AsyncClient(
            base_url=server, verify=ctx, timeout=timeout, trust_env=False,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        # Watches hold a connection each; they get their own client so they never starve writes.
        self._watch_http = httpx.AsyncClient(base_url=server, verify=ctx, trust_env=False,
                                             timeout=httpx.Timeout(timeout, read=None))

    async def close(self) -> None:
        await self._http.aclose()
        await self._watch_http.aclose()

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Mapping[str, Any] | None = None,
                      content_type: str = "application/json",
                      ok: tuple[int, ...] = (200, 201)) -> dict[str, Any]:
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else None
        r = await self._http.request(method, path, content=content, params=params,
                                     headers=headers)
        if r.status_code not in ok:
            raise ApiError(r.status_code, r.text, f"{method} {path}")
        return r.json() if r.content else {}

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return await self.request("GET", path, params=params or None)

    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def post(self, path: str, body: Any, **params: Any) -> dict[str, Any]:
        return await self.request("POST", path, body=body, params=params or None)

    async def put(self, path: str, body: Any) -> dict[str, Any]:
        return await self.request("PUT", path, body=body)

    async def merge_patch(self, path: str, body: Any) -> dict[str, Any]:
        return await self.request("PATCH", path, body=body,
                                  content_type="application/merge-patch+json")

    async def strategic_patch(self, path: str, body: Any) -> dict[str, Any]:
        return await self.request("PATCH", path, body=body,
                                  content_type="application/strategic-merge-patch+json")

    async def apply(self, path: str, body: Any, manager: str = "fleet-runner") -> dict[str, Any]:
        return await self.request("PATCH", path, body=body,
                                  params={"fieldManager": manager, "force": "true"},
                                  content_type="application/apply-patch+yaml")

    async def delete(self, path: str, body: Any = None) -> dict[str, Any]:
        return await self.request("DELETE", path, body=body, ok=(200, 202))

    async def watch(self, path: str, params: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield watch events until the server ends the stream (callers resume)."""
        q = {**params, "watch": "true", "allowWatchBookmarks": "true"}
        async with self._watch_http.stream("GET", path, params=q) as r:
            if r.status_code != 200:
                body = (await r.aread()).decode(errors="replace")
                raise ApiError(r.status_code, body, f"WATCH {path}")
            async for line in r.aiter_lines():
                if line:
                    yield json.loads(line)


async def retry(coro_factory: Any, attempts: int = 5, delay: float = 0.2) -> Any:
    """Retry transient API failures (connection errors, 5xx, 429) with a short back-off."""
    for i in range(attempts):
        try:
            return await coro_factory()
        except ApiError as exc:
            if exc.status < 500 and exc.status != 429 or i == attempts - 1:
                raise
        except httpx.TransportError:
            if i == attempts - 1:
                raise
        await asyncio.sleep(delay * (2 ** i))
    raise AssertionError("unreachable")
