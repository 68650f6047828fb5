"""A small raw-JSON Kubernetes client: TLS from kubeconfig, orjson decoding, typed errors.

No generated models: every call returns plain dicts, so listing thousands of objects costs
one orjson parse instead of model deserialization (kubernetes-client/python #1921).
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
import urllib3

from fleet import errors
from fleet.kubeconfig import Credentials, load_credentials

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

_ERROR_BY_STATUS: dict[int, type[errors.FleetError]] = {
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    410: errors.Gone,
    422: errors.Invalid,
}


def status_error(status: int, body: bytes) -> errors.FleetError:
    """Map an API error response to a typed error carrying kubectl's wording."""
    reason, message = "", ""
    try:
        doc = orjson.loads(body) if body else {}
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            reason, message = doc.get("reason", ""), doc.get("message", "")
    except orjson.JSONDecodeError:
        message = body.decode(errors="replace").strip()
    if not message:
        message = f"the server responded with status {status}"
    cls = _ERROR_BY_STATUS.get(status, errors.FleetError)
    if status == 401:
        text = f"error: You must be logged in to the server ({reason or 'Unauthorized'})"
    elif reason:
        text = f"Error from server ({reason}): {message}"
    else:
        text = f"Error from server: {message}"
    return cls(text, status=status, reason=reason, detail=message)


def _ssl_context(creds: Credentials) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if creds.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif creds.ca_pem:
        ctx = ssl.create_default_context(cadata=creds.ca_pem.decode())
    if creds.client_cert_pem and creds.client_key_pem:
        # load_cert_chain only reads files: write a private temp file and remove it at once.
        fd, path = tempfile.mkstemp(prefix="fleet-cred-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(creds.client_cert_pem.rstrip(b"\n") + b"\n" + creds.client_key_pem)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
    return ctx


class WatchStream:
    """An open watch: iterate for decoded events; `close()` from any thread interrupts it."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._resp = response
        self._closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        buf = b""
        try:
            for chunk in self._resp.stream(None, decode_content=True):
                buf += chunk
                while not self._closed:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    line, buf = buf[:nl], buf[nl + 1 :]
                    if line.strip():
                        yield self._decode(line)
                if self._closed:
                    return
            if buf.strip() and not self._closed:
                yield self._decode(buf)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if not self._closed:
                raise errors.Unreachable(f"watch connection lost: {exc}") from exc
        finally:
            self._resp.release_conn()

    def _decode(self, line: bytes) -> dict[str, Any]:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError as exc:  # a torn stream: resume like a dropped one
            raise errors.Unreachable(f"watch stream corrupted: {exc}") from exc

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):  # best effort from another thread
            self._resp.shutdown()
        with contextlib.suppress(Exception):
            self._resp.close()


class KubeClient:
    """Raw-JSON requests against one API server, as one kubeconfig context's user."""

    def __init__(self, creds: Credentials, *, timeout: float = 30.0, max_connections: int = 32):
        self.creds = creds
        self.namespace = creds.namespace
        self.context = creds.context
        self.timeout = timeout
        url = urlsplit(creds.server)
        self._scheme = url.scheme or "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._scheme == "https" else 80)
        self._prefix = url.path.rstrip("/")
        self._headers = {"Accept": JSON, "User-Agent": "fleet/0.1 (modelfleet)"}
        if creds.token:
            self._headers["Authorization"] = f"Bearer {creds.token}"
        elif creds.username is not None:
            raw = f"{creds.username}:{creds.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        kw: dict[str, Any] = {"maxsize": max_connections, "block": False, "retries": False}
        if self._scheme == "https":
            kw["ssl_context"] = _ssl_context(creds)
            if creds.tls_server_name:
                kw["server_hostname"] = creds.tls_server_name
            self._pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
                self._host, self._port, **kw
            )
        else:
            self._pool = urllib3.HTTPConnectionPool(self._host, self._port, **kw)

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, namespace: str | None = None
    ) -> KubeClient:
        """Build a client like kubectl does (`--kubeconfig`, `KUBECONFIG`, `--context`, `-n`)."""
        return cls(load_credentials(path, context, namespace))

    @property
    def server(self) -> str:
        return self.creds.server

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        url = self._prefix + path
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                url += "?" + urlencode(q)
        return url

    def _unreachable(self, exc: Exception) -> errors.Unreachable:
        hostport = f"{self._host}:{self._port}"
        text = str(exc)
        if "refused" in text.lower():
            msg = (
                f"The connection to the server {hostport} was refused - "
                "did you specify the right host or port?"
            )
        else:
            msg = f"Unable to connect to the server: {text}"
        return errors.Unreachable(msg)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the decoded JSON body or raise a typed `FleetError`."""
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        try:
            resp = self._pool.request(
                method,
                self._url(path, query),
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(connect=5.0, read=timeout or self.timeout),
                preload_content=True,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        if resp.status >= 400:
            raise status_error(resp.status, resp.data)
        return orjson.loads(resp.data) if resp.data else {}

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, query=query)

    def list_pages(
        self, path: str, query: Mapping[str, Any] | None = None, *, limit: int = 500
    ) -> Iterator[dict[str, Any]]:
        """LIST in pages of `limit` (kubectl's chunking), yielding each decoded page."""
        q = dict(query or {})
        q["limit"] = limit
        while True:
            page = self.get(path, q)
            yield page
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                return
            q["continue"] = cont

    def list_all(
        self, path: str, query: Mapping[str, Any] | None = None, *, limit: int = 500
    ) -> dict[str, Any]:
        """LIST with pagination (kubectl's `FollowContinue`); returns one merged list object."""
        items: list[dict[str, Any]] = []
        page: dict[str, Any] = {}
        for page in self.list_pages(path, query, limit=limit):
            items.extend(page.get("items") or [])
        page["items"] = items
        return page

    def patch(
        self,
        path: str,
        body: Any,
        content_type: str,
        query: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self.request("PATCH", path, query=query, body=body, content_type=content_type)

    def put(self, path: str, body: Any, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("PUT", path, query=query, body=body)

    def post(self, path: str, body: Any, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("POST", path, query=query, body=body)

    def delete(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("DELETE", path, query=query)

    def stream(
        self, path: str, query: Mapping[str, Any] | None = None, *,
        read_timeout: float | None = 330.0, accept: str | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """GET with the body left unread (logs, watches); non-200 raises a typed error.

        `read_timeout=None` waits forever between chunks (a followed log); the caller
        releases the response (`release_conn()`), or closes it to stop reading.
        """
        headers = {**self._headers, **({"Accept": accept} if accept else {})}
        try:
            resp = self._pool.request(
                "GET",
                self._url(path, query),
                headers=headers,
                timeout=urllib3.Timeout(connect=5.0, read=read_timeout),
                preload_content=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc
        if resp.status >= 400:
            data = resp.read()
            resp.release_conn()
            raise status_error(resp.status, data)
        return resp

    def watch(
        self, path: str, query: Mapping[str, Any] | None = None, *, read_timeout: float = 330.0
    ) -> WatchStream:
        """Open a watch (`?watch=1`); raises typed errors for non-200 responses."""
        q = dict(query or {})
        q["watch"] = "1"
        return WatchStream(self.stream(path, q, read_timeout=read_timeout))

    def close(self) -> None:
        self._pool.close()


def deployment_path(namespace: str, name: str | None = None, sub: str | None = None) -> str:
    """`/apis/apps/v1/namespaces/NS/deployments[/NAME[/SUB]]` with kubectl's path escaping."""
    p = f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/deployments"
    if name is not None:
        p += "/" + quote(name, safe="")
        if sub:
            p += "/" + sub
    return p


def collection_path(group_version: str, resource: str, namespace: str | None = None) -> str:
    """Path of a (namespaced or cluster-wide) collection, e.g. ("apps/v1", "replicasets", "ns")."""
    root = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    if namespace:
        return f"{root}/namespaces/{quote(namespace, safe='')}/{resource}"
    return f"{root}/{resource}"
