"""Reach one pod port: through the API server's port-forward, or straight to the pod IP.

Port-forward speaks the websocket protocol `v4.channel.k8s.io` that kube-apiserver 1.37 proxies
to the kubelet (data channel 0, error channel 1, each opened with a 2-byte port frame); it was
checked against the local apiserver v1.37.2 + kwok's kubelet endpoint. The connection is ours:
`KubeClient.dial` opens it like every other request (the proxy: proxy-url http/https/socks5 or
HTTPS_PROXY/NO_PROXY, fleet.proxy; TLS with tls-server-name, the client certificate), the
handshake carries the client's `Authorization` (asked from its credential provider,
fleet.credentials: exec plugins, OIDC, token files; one refresh and retry after a 401) and its
`Impersonate-*` headers, so a tunnel connects as the same user as `KubeClient`. From the
`kubernetes` package only the channel framing is used (`kubernetes.stream.ws_client.PortForward`,
over websocket-client's `WebSocket`). One websocket carries one TCP connection to the pod port
(like one `kubectl port-forward` stream), so `PodHTTP` reuses it for keep-alive requests and
opens a new tunnel when the server closes the connection.

Everything here is thread-safe per object only: give each worker its own `PodHTTP`. `close()`
may be called from another thread to abort a request in flight.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from fleet import errors

if TYPE_CHECKING:
    from fleet.credentials import Auth
    from fleet.kube import KubeClient

_HANDSHAKE = re.compile(r"Handshake status (\d+)")
# what the `kubernetes` package offers (the server picks v4 for port-forward)
SUBPROTOCOLS = "v5.channel.k8s.io,v4.channel.k8s.io"


@dataclass(frozen=True)
class HttpResponse:
    """One HTTP exchange with a pod: status, headers, body, and where the time went."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    latency_ms: float  # request written → response body read, over an open connection
    connect_ms: float  # opening the tunnel/connection for this request (0 when reused)

    def json(self) -> Any:
        return orjson.loads(self.body)


class PortForwardError(errors.FleetError):
    """The tunnel to the pod could not be opened, or the kubelet side reported an error."""


def _api_error(exc: BaseException, namespace: str, pod: str) -> errors.FleetError:
    """Map a failed websocket handshake (websocket-client's WebSocketBadStatusException, or
    the `kubernetes` package's `ApiException(status=0, reason='Handshake status 403 …')`
    wrapping one) to our errors."""
    from fleet.kube import status_error

    inner = exc if getattr(exc, "status_code", None) is not None else (
        exc.__context__ or exc.__cause__)
    status = getattr(inner, "status_code", None)
    body = getattr(inner, "resp_body", None) or b""
    if status is None:
        m = _HANDSHAKE.search(str(getattr(exc, "reason", "")) or str(exc))
        status = int(m.group(1)) if m else None
    if status is None:
        text = str(getattr(exc, "reason", "") or exc)
        return errors.Unreachable(f"port-forward to pod/{pod} in {namespace} failed: {text}")
    err = status_error(status, body if isinstance(body, bytes) else str(body).encode())
    if status == 403:
        err.message += (" (port-forward needs RBAC verbs create and get on pods/portforward "
                        f"in namespace {namespace})")
    return err


class Tunnel:
    """One open port-forward stream to `pod:port`; `socket` is the local end."""

    def __init__(self, pf: Any, port: int, connect_ms: float) -> None:
        self._pf = pf
        self.port = port
        self.connect_ms = connect_ms
        self.socket = pf.socket(port)

    def error(self) -> str:
        """Text the kubelet sent on the error channel (e.g. nothing listens on the port)."""
        return (self._pf.error(self.port) or "").strip()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pf.close()


class PortForwarder:
    """Opens port-forward tunnels as a `KubeClient`'s user.

    `PortForwarder(kubeconfig, context)` resolves the kubeconfig like every fleet command
    (fleet.kubeconfig); `PortForwarder(client=c)` (or `for_client(c)`) shares an existing
    client's credentials, impersonation included, so an exec plugin is not run again.
    """

    def __init__(self, kubeconfig: str | None = None, context: str | None = None, *,
                 client: KubeClient | None = None, connect_timeout: float = 10.0) -> None:
        if client is None:
            from fleet.kube import KubeClient

            client = KubeClient.from_kubeconfig(kubeconfig, context)
        self.client = client
        self.connect_timeout = connect_timeout

    @classmethod
    def for_client(cls, client: KubeClient) -> PortForwarder:
        return cls(client=client)

    def open(self, namespace: str, pod: str, port: int) -> Tunnel:
        from kubernetes.stream.ws_client import PortForward

        from fleet.kube import collection_path

        t0 = time.perf_counter()
        url = self.client.websocket_url(
            f"{collection_path('v1', 'pods', namespace)}/{quote(pod, safe='')}/portforward",
            {"ports": str(port)})
        ws = self._websocket(url, namespace, pod)
        return Tunnel(PortForward(ws, [port]), port, (time.perf_counter() - t0) * 1000)

    def _websocket(self, url: str, namespace: str, pod: str) -> Any:
        """The handshake as the client's user; after a 401, one refresh and one retry."""
        from websocket import WebSocketBadStatusException, WebSocketException

        creds = self.client.credentials
        auth = creds.current()
        for attempt in (0, 1):
            try:
                return self._handshake(url, auth)
            except WebSocketBadStatusException as exc:
                fresh = (creds.refresh(auth) if exc.status_code == 401 and attempt == 0
                         and creds.refreshable else None)
                if fresh is None:
                    raise _api_error(exc, namespace, pod) from exc
                auth = fresh
            except (WebSocketException, OSError) as exc:
                raise _api_error(exc, namespace, pod) from exc
        raise AssertionError("unreachable")

    def _handshake(self, url: str, auth: Auth) -> Any:
        from websocket import WebSocket

        sock = self.client.dial(auth, timeout=self.connect_timeout)
        header = [f"{k}: {v}" for k, v in self.client.identity_headers(auth)]
        header.append(f"Sec-WebSocket-Protocol: {SUBPROTOCOLS}")
        ws = WebSocket(skip_utf8_validation=False)
        try:
            ws.connect(url, socket=sock, header=header)
        except BaseException:
            with contextlib.suppress(OSError):
                sock.close()
            raise
        ws.settimeout(None)  # the tunnel's reader thread blocks in select, not in a timeout
        return ws


@dataclass
class PodHTTP:
    """HTTP/1.1 to one pod port, through port-forward (`forwarder`) or to `pod_ip` directly."""

    namespace: str
    pod: str
    port: int
    forwarder: PortForwarder | None = None
    pod_ip: str = ""
    timeout: float = 30.0
    scheme: str = "http"
    connect_total_ms: float = 0.0  # every tunnel/connection this object opened
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)
    _tunnel: Tunnel | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def via(self) -> str:
        return "port-forward" if self.forwarder is not None else f"pod IP {self.pod_ip}"

    def _connect(self) -> float:
        self.close()
        t0 = time.perf_counter()
        if self.forwarder is not None:
            tunnel = self.forwarder.open(self.namespace, self.pod, self.port)
            sock: Any = tunnel.socket
            sock.settimeout(self.timeout)
            self._tunnel = tunnel
        else:
            if not self.pod_ip:
                raise errors.FleetError(f"pod/{self.pod} has no pod IP yet")
            try:
                sock = socket.create_connection((self.pod_ip, self.port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                raise errors.Unreachable(
                    f"cannot connect to pod/{self.pod} at {self.pod_ip}:{self.port}: {exc}"
                ) from exc
        if self.scheme == "https":  # like the kubelet's prober: TLS without verification
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            raw = getattr(sock, "_socket", sock)  # port-forward hands out a wrapped socketpair
            sock = ctx.wrap_socket(raw)
        conn = http.client.HTTPConnection(self.pod_ip or "127.0.0.1", self.port,
                                          timeout=self.timeout)
        conn.sock = sock
        self._conn = conn
        elapsed = (time.perf_counter() - t0) * 1000
        self.connect_total_ms += elapsed
        return elapsed

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> HttpResponse:
        """Send one request; reconnect once if a kept-alive connection was closed meanwhile."""
        with self._lock:
            for attempt in (0, 1):
                reused = self._conn is not None
                connect_ms = 0.0 if reused else self._connect()
                conn = self._conn
                assert conn is not None
                hdrs = {"Host": f"{self.pod}:{self.port}", **(headers or {})}
                if body is not None:
                    hdrs.setdefault("Content-Type", "application/json")
                t0 = time.perf_counter()
                try:
                    conn.request(method, path, body=body, headers=hdrs)
                    resp = conn.getresponse()
                    data = resp.read()
                except (http.client.HTTPException, OSError) as exc:
                    tunnel_error = self._tunnel.error() if self._tunnel else ""
                    self.close()
                    if reused and attempt == 0 and not tunnel_error:
                        continue  # the server closed an idle keep-alive connection
                    raise self._failure(exc, tunnel_error) from exc
                latency_ms = (time.perf_counter() - t0) * 1000
                if resp.will_close:
                    self.close()
                return HttpResponse(resp.status, resp.reason, dict(resp.getheaders()), data,
                                    latency_ms, connect_ms)
        raise AssertionError("unreachable")

    def _failure(self, exc: BaseException, tunnel_error: str) -> errors.FleetError:
        where = f"pod/{self.pod} port {self.port}"
        if tunnel_error:
            return PortForwardError(f"port-forward to {where} failed: {tunnel_error}")
        where += f" via {self.via}"
        if isinstance(exc, TimeoutError | socket.timeout):
            return errors.Timeout(f"no answer from {where} within {self.timeout:g}s")
        return errors.Unreachable(f"request to {where} failed: {exc or type(exc).__name__}")

    def close(self) -> None:
        """Drop the connection (safe from another thread: aborts a request in flight)."""
        conn, tunnel = self._conn, self._tunnel
        self._conn = self._tunnel = None
        if conn is not None:
            with contextlib.suppress(Exception):
                if conn.sock is not None:
                    conn.sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                conn.close()
        if tunnel is not None:
            tunnel.close()

    def __enter__(self) -> PodHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

