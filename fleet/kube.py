"""A small raw-JSON Kubernetes client: TLS from kubeconfig, orjson decoding, typed errors.

No generated models: every call returns plain dicts, so listing thousands of objects costs
one orjson parse instead of model deserialization (kubernetes-client/python #1921).
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import orjson
import urllib3
import urllib3.connection

from fleet import errors
from fleet.credentials import Auth, CredentialProvider, StaticCredentials
from fleet.kubeconfig import Credentials, load_credentials
from fleet.proxy import ProxyRefused, env_proxy, open_tunnel, refused
from fleet.proxy import display as proxy_display

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


def _ssl_context(creds: Credentials, cert_pem: bytes | None = None,
                 key_pem: bytes | None = None) -> ssl.SSLContext:
    # The system CA store is loaded only when no kubeconfig CA replaces it: loading it is the
    # slowest step of a CLI command's start-up (a context built and thrown away before).
    if creds.ca_pem and not creds.insecure:
        ctx = ssl.create_default_context(cadata=creds.ca_pem.decode())
    else:
        ctx = ssl.create_default_context()
    if creds.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_pem and key_pem:
        # load_cert_chain only reads files: write a private temp file and remove it at once.
        fd, path = tempfile.mkstemp(prefix="fleet-cred-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
    return ctx


def _static_provider(creds: Credentials) -> CredentialProvider:
    """Credentials built by hand (no provider): their token, basic auth or certificate."""
    cert, key = creds.client_cert_pem, creds.client_key_pem
    if creds.token:
        return StaticCredentials(Auth(f"Bearer {creds.token}", cert, key))
    if creds.username is not None:
        raw = f"{creds.username}:{creds.password or ''}".encode()
        return StaticCredentials(Auth("Basic " + base64.b64encode(raw).decode(), cert, key))
    return StaticCredentials(Auth(None, cert, key))


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


class _Socks5Mixin:
    """SOCKS5 (RFC 1928, user/password RFC 1929) for a `socks5://` proxy-url, as Go's
    golang.org/x/net/proxy dials it: the server's host name is resolved by the proxy."""

    def __init__(self, *args: Any, _socks: tuple[str, int, str | None, str | None],
                 **kwargs: Any) -> None:
        self._socks = _socks
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        from urllib3.exceptions import NewConnectionError
        from urllib3.util.connection import create_connection

        phost, pport, user, password = self._socks
        target = f"{self.host}:{self.port}"  # type: ignore[attr-defined]
        try:
            sock = create_connection((phost, pport), self.timeout)  # type: ignore[attr-defined]
        except OSError as exc:
            raise NewConnectionError(self, f"socks connect tcp {phost}:{pport}->{target}: "  # type: ignore[arg-type]
                                     f"dial tcp {phost}:{pport}: {exc}") from exc
        try:
            _socks5_connect(sock, self.host, self.port, user, password)  # type: ignore[attr-defined]
        except OSError as exc:
            sock.close()
            raise NewConnectionError(self, f"socks connect tcp {phost}:{pport}->{target}: "  # type: ignore[arg-type]
                                     f"{exc}") from exc
        return sock


_SOCKS_REPLIES = {1: "general SOCKS server failure", 2: "connection not allowed by ruleset",
                  3: "network unreachable", 4: "host unreachable", 5: "connection refused",
                  6: "TTL expired", 7: "command not supported", 8: "address type not supported"}


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("unexpected EOF")
        buf += chunk
    return buf


def _socks5_connect(sock: socket.socket, host: str, port: int, user: str | None,
                    password: str | None) -> None:
    import ipaddress

    methods = b"\x00\x02" if user is not None else b"\x00"
    sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
    ver, method = _recv_exact(sock, 2)
    if ver != 5:
        raise OSError(f"unexpected protocol version {ver}")
    if method == 2:
        u, p = (user or "").encode(), (password or "").encode()
        sock.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        if _recv_exact(sock, 2)[1] != 0:
            raise OSError("username/password authentication failed")
    elif method != 0:
        raise OSError("no acceptable authentication methods")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        addr = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    except ValueError:
        name = host.encode("idna")
        addr = b"\x03" + bytes([len(name)]) + name
    sock.sendall(b"\x05\x01\x00" + addr + port.to_bytes(2, "big"))
    _, rep, _, atyp = _recv_exact(sock, 4)
    if rep != 0:
        raise OSError(_SOCKS_REPLIES.get(rep, f"unknown error {rep}"))
    _recv_exact(sock, {1: 4, 4: 16}.get(atyp) or _recv_exact(sock, 1)[0])
    _recv_exact(sock, 2)


class _SocksHTTPSConnection(_Socks5Mixin, urllib3.connection.HTTPSConnection):
    pass


class _SocksHTTPConnection(_Socks5Mixin, urllib3.connection.HTTPConnection):
    pass


class _SocksHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _SocksHTTPSConnection


class _SocksHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _SocksHTTPConnection  # type: ignore[assignment]


class KubeClient:
    """Raw-JSON requests against one API server, as one kubeconfig context's user.

    Credentials come from `self.credentials` (fleet.credentials), asked for every request:
    exec-plugin and OIDC tokens refresh while the client lives, and a 401 triggers one refresh
    and one retry of the request. A new client certificate (an exec plugin's) gets a new
    connection pool; requests and watches already running keep their connection.
    """

    def __init__(self, creds: Credentials, *, timeout: float = 30.0, max_connections: int = 32,
                 credentials: CredentialProvider | None = None):
        self.creds = creds
        self.namespace = creds.namespace
        self.context = creds.context
        self.timeout = timeout
        self.credentials: CredentialProvider = (
            credentials or creds.provider or _static_provider(creds))
        self._refreshable = self.credentials.refreshable
        url = urlsplit(creds.server)
        self._scheme = url.scheme or "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if self._scheme == "https" else 80)
        self._prefix = url.path.rstrip("/")
        self._headers: dict[str, str] = {"Accept": JSON, "User-Agent": "fleet/0.1 (modelfleet)"}
        self._groups: tuple[str, ...] = ()
        self._extra: list[tuple[str, str]] = []
        imp = creds.impersonate
        if imp is not None:
            self._headers["Impersonate-User"] = imp.user
            if imp.uid:
                self._headers["Impersonate-Uid"] = imp.uid
            self._groups = imp.groups
            self._extra = [(f"Impersonate-Extra-{quote(k, safe='')}", v)
                           for k, vs in imp.extra for v in vs]
        self._max_connections = max_connections
        self._proxy = creds.proxy_url or env_proxy(self._scheme, self._host, self._port)
        self._absolute = ""  # scheme://host:port before paths: plain http through a proxy
        self._proxy_headers: dict[str, str] | None = None  # Proxy-Authorization, if any
        self._pool_lock = threading.Lock()
        self._managers: list[urllib3.PoolManager] = []
        self._pool_cert: tuple[bytes | None, bytes | None] = (
            creds.client_cert_pem, creds.client_key_pem)
        self._pool = self._make_pool(*self._pool_cert)

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, namespace: str | None = None,
        *, as_user: str | None = None, as_groups: Sequence[str] | None = None,
        as_uid: str | None = None,
    ) -> KubeClient:
        """Build a client like kubectl does (`--kubeconfig`, `KUBECONFIG`, `--context`, `-n`,
        `--as`, `--as-group`, `--as-uid`; the user's `as`, `as-groups`, `as-uid` and
        `as-user-extra` otherwise). Impersonation belongs to this client only."""
        return cls(load_credentials(path, context, namespace, as_user=as_user,
                                    as_groups=as_groups, as_uid=as_uid))

    @property
    def server(self) -> str:
        return self.creds.server

    def _make_pool(self, cert: bytes | None, key: bytes | None) -> urllib3.HTTPConnectionPool:
        kw: dict[str, Any] = {"maxsize": self._max_connections, "block": False,
                              "retries": False}
        https = self._scheme == "https"
        if https and self.creds.insecure:
            # The kubeconfig asked for it (kubectl says nothing either): no warning per request.
            import warnings

            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        if https:
            try:
                kw["ssl_context"] = _ssl_context(self.creds, cert, key)
            except ssl.SSLError as exc:
                if cert is self.creds.client_cert_pem:
                    raise
                raise errors.CredentialError(
                    "Unable to connect to the server: getting credentials: failed parsing "
                    f"client key/certificate: {exc}") from exc
            if self.creds.tls_server_name:
                kw["server_hostname"] = self.creds.tls_server_name
        proxy = self._proxy
        if proxy and urlsplit(proxy).scheme == "socks5":
            p = urlsplit(proxy)
            kw["_socks"] = (p.hostname or "127.0.0.1", p.port or 1080,
                            unquote(p.username) if p.username is not None else None,
                            unquote(p.password) if p.password is not None else None)
            cls = _SocksHTTPSPool if https else _SocksHTTPPool
            return cls(self._host, self._port, **kw)
        if proxy:
            p = urlsplit(proxy)
            headers = None
            if p.username is not None:
                headers = urllib3.make_headers(
                    proxy_basic_auth=f"{unquote(p.username)}:{unquote(p.password or '')}")
            plain = p._replace(netloc=p.hostname + (f":{p.port}" if p.port else "")).geturl() \
                if p.hostname else proxy
            self._proxy_headers = headers
            # An https proxy is verified like the API server (Go reuses the TLS config).
            mgr = urllib3.ProxyManager(plain, proxy_headers=headers,
                                       proxy_ssl_context=kw.get("ssl_context"))
            self._managers.append(mgr)
            if not https:
                self._absolute = f"http://{self._host}:{self._port}"
            return mgr.connection_from_host(self._host, self._port, self._scheme,
                                            pool_kwargs=kw)
        if https:
            return urllib3.HTTPSConnectionPool(self._host, self._port, **kw)
        return urllib3.HTTPConnectionPool(self._host, self._port, **kw)

    def _pool_for(self, auth: Auth) -> urllib3.HTTPConnectionPool:
        cert, key = auth.cert_pem, auth.key_pem
        if not cert:
            cert, key = self.creds.client_cert_pem, self.creds.client_key_pem
        current = self._pool_cert
        if cert is current[0] and key is current[1]:
            return self._pool
        with self._pool_lock:
            if (cert, key) != self._pool_cert:
                old = self._pool
                self._pool = self._make_pool(cert, key)
                old.close()  # idle connections now; busy ones close when they come back
            self._pool_cert = (cert, key)
            return self._pool

    def _auth(self) -> Auth:
        return self.credentials.current()

    # -- upgraded connections (port-forward's websocket) ----------------------------------
    def identity_headers(self, auth: Auth) -> list[tuple[str, str]]:
        """The headers that name the user on every request: `auth`'s `Authorization` and this
        client's `Impersonate-*` (User, Uid, one Group each, Extra-*)."""
        out = [("Authorization", auth.authorization)] if auth.authorization else []
        out += [(k, v) for k, v in self._headers.items() if k.startswith("Impersonate-")]
        out += [("Impersonate-Group", g) for g in self._groups]
        return out + self._extra

    def websocket_url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """`wss://SERVER/PATH?QUERY` (`ws://` for a plain-http server)."""
        scheme = "wss" if self._scheme == "https" else "ws"
        return f"{scheme}://{urlsplit(self.creds.server).netloc}{self._url(path, query)}"

    def dial(self, auth: Auth, *, timeout: float = 10.0) -> socket.socket:
        """A new connection to the API server for a protocol upgrade (a websocket), opened
        like this client's requests: through its proxy (HTTP CONNECT to an http or https
        proxy, SOCKS5), with its TLS (CA, tls-server-name) and `auth`'s client certificate.
        The caller owns the socket."""
        pool = self._pool_for(auth)
        if self._proxy and urlsplit(self._proxy).scheme in ("http", "https"):
            return self._dial_connect(pool, timeout)
        conn: Any = pool._new_conn()  # direct, or SOCKS5 (the pool's connection class)
        conn.timeout = timeout
        try:
            conn.connect()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            with contextlib.suppress(Exception):
                conn.close()
            raise self._unreachable(exc) from exc
        sock: socket.socket = conn.sock
        conn.sock = None  # the socket is the caller's now
        return sock

    def _dial_connect(self, pool: urllib3.HTTPConnectionPool, timeout: float) -> socket.socket:
        """CONNECT through the http(s) proxy, then TLS to the API server inside the tunnel
        (client-go's SPDY and websocket dialers do the same). The proxy's TLS uses the
        cluster's context (Go reuses the TLS config), checked against the proxy's name."""
        assert self._proxy is not None
        ctx: ssl.SSLContext | None = pool.conn_kw.get("ssl_context")
        sock: socket.socket | None = None
        try:
            sock = open_tunnel(self._proxy, self._host, self._port, timeout=timeout,
                               proxy_tls=ctx)
            if self._scheme == "https":
                assert ctx is not None
                sock = ctx.wrap_socket(
                    sock, server_hostname=self.creds.tls_server_name or self._host)
            return sock
        except ProxyRefused:
            raise
        except OSError as exc:  # ssl.SSLError included
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
            raise self._unreachable(exc) from exc

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
              timeout: urllib3.Timeout, preload: bool) -> urllib3.BaseHTTPResponse:
        auth = self._auth()
        resp = self._urlopen(auth, method, url, headers, body, timeout, preload)
        if resp.status == 401 and self._refreshable:
            fresh = self.credentials.refresh(auth)
            if fresh is not None:
                if not preload:
                    with contextlib.suppress(Exception):
                        resp.drain_conn()
                    resp.release_conn()
                resp = self._urlopen(fresh, method, url, headers, body, timeout, preload)
        return resp

    def _urlopen(self, auth: Auth, method: str, url: str, headers: dict[str, str],
                 body: bytes | None, timeout: urllib3.Timeout,
                 preload: bool) -> urllib3.BaseHTTPResponse:
        pool = self._pool_for(auth)
        h: Any = dict(headers)
        if auth.authorization:
            h["Authorization"] = auth.authorization
        if self._groups or self._extra:
            h = urllib3.HTTPHeaderDict(h)
            for g in self._groups:
                h.add("Impersonate-Group", g)
            for k, v in self._extra:
                h.add(k, v)
        try:
            return pool.request(method, self._absolute + url, body=body, headers=h,
                                timeout=timeout, preload_content=preload,
                                assert_same_host=not self._absolute)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unreachable(exc) from exc

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        url = self._prefix + path
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                url += "?" + urlencode(q)
        return url

    def _unreachable(self, exc: Exception) -> errors.Unreachable:
        hostport = f"{self._host}:{self._port}"
        if isinstance(exc, urllib3.exceptions.ProxyError) and self._proxy:
            return self._proxy_error(exc, hostport)
        text = str(exc)
        if "refused" in text.lower() and not self._proxy:
            msg = (
                f"The connection to the server {hostport} was refused - "
                "did you specify the right host or port?"
            )
        else:
            msg = f"Unable to connect to the server: {text}"
        return errors.Unreachable(msg)

    def _proxy_error(self, exc: urllib3.exceptions.ProxyError,
                     hostport: str) -> errors.Unreachable:
        """urllib3's ProxyError, said like `dial` says it: the proxy, and its status when it
        refused the CONNECT (`Tunnel connection failed: 407 Proxy Authentication Required`)."""
        assert self._proxy is not None
        inner = exc.original_error if exc.original_error is not None else exc
        text = str(inner)
        marker = "Tunnel connection failed: "
        if marker in text:
            return ProxyRefused(refused(self._proxy, hostport,
                                        text.split(marker, 1)[1].strip()))
        return errors.Unreachable(
            f"Unable to connect to the server: proxy {proxy_display(self._proxy)}: {text}")

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
        headers = self._headers
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers = {**headers, "Content-Type": content_type}
        resp = self._send(method, self._url(path, query), headers, data,
                          urllib3.Timeout(connect=5.0, read=timeout or self.timeout), True)
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
        resp = self._send("GET", self._url(path, query), headers, None,
                          urllib3.Timeout(connect=5.0, read=read_timeout), False)
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
        for mgr in self._managers:
            mgr.clear()


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
