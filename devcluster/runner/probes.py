"""One probe attempt (httpGet, tcpSocket, exec, grpc), judged and worded like the kubelet's.

The process kubelet probes its pods the way the real one (v1.37) does, so that what the fleet
tool shows against the dev cluster (events, readiness) reads exactly like production. The
failure texts therefore copy the kubelet's Go error strings (`Get "...": dial tcp ...`).

Everything here is cheap on purpose: ~100 pods are probed every few seconds by one process.
HTTP and TCP use plain asyncio streams (one short-lived connection per attempt, as the kubelet
does with keep-alives disabled), so there is no client state to share between event loops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

log = logging.getLogger(__name__)

USER_AGENT = "kube-probe/1.37"
DEFAULT_TIMEOUT_S = 1.0
_MAX_OUTPUT = 10 * 1024  # the kubelet keeps at most 10 KiB of exec output
_MAX_REQUESTS = 10  # Go's http.Client stops after 10 requests (9 redirects)
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_GRPC_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
_GRPC_SERVING = 1


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one attempt; `message` is "" on success, the kubelet's wording otherwise."""

    success: bool
    message: str


ExecRunner = Callable[[list[str], float], Awaitable[tuple[int, str]]]
"""Runs argv in the container's environment within a timeout (s): (exit code, combined output).

Raises TimeoutError (asyncio.TimeoutError is the same class) when the command timed out.
"""

_OK = ProbeResult(True, "")


class _PortError(Exception):
    """The probe's port cannot be resolved (the kubelet's "probe errored" case)."""


async def run_probe(
    probe: dict[str, Any], *, pod_ip: str, ports: dict[str, int], exec_runner: ExecRunner
) -> ProbeResult:
    """Run one attempt of `probe` (Kubernetes Probe JSON) and never raise (bar cancellation).

    `ports` maps the container's named ports to numbers, for `port: "http"` style probes.
    """
    timeout = probe_timeout(probe)
    try:
        if (action := probe.get("exec")) is not None:
            return await _exec_probe(action, timeout, exec_runner)
        if (action := probe.get("httpGet")) is not None:
            return await _http_probe(action, pod_ip, ports, timeout)
        if (action := probe.get("tcpSocket")) is not None:
            return await _tcp_probe(action, pod_ip, ports, timeout)
        if (action := probe.get("grpc")) is not None:
            return await _grpc_probe(action, pod_ip, timeout)
    except _PortError as exc:
        return ProbeResult(False, str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug or an odd runtime error must still read as a failure
        log.debug("probe raised", exc_info=True)
        return ProbeResult(False, str(exc) or type(exc).__name__)
    return ProbeResult(False, "probe has no handler")


async def close_shared() -> None:
    """Release shared client state. Nothing is shared today (a connection per attempt, as the
    kubelet does); kept so that callers need not change if a pooled client comes back."""


def probe_timeout(probe: dict[str, Any]) -> float:
    """timeoutSeconds, defaulted to 1 like the API does for 0 or a missing value."""
    value = probe.get("timeoutSeconds")
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_TIMEOUT_S


def timeout_message(probe: dict[str, Any], *, pod_ip: str, ports: dict[str, int]) -> str:
    """The text an attempt of `probe` fails with when it runs out of time.

    For callers that enforce the timeout from outside (the prober's safety net).
    """
    timeout = probe_timeout(probe)
    try:
        if (action := probe.get("exec")) is not None:
            return _exec_timeout_message(list(action.get("command") or []), timeout)
        if (action := probe.get("httpGet")) is not None:
            req = _HttpTarget.from_action(action, pod_ip, ports)
            return _http_timeout_message(req.url, req.addr, dialing=False)
        if (action := probe.get("tcpSocket")) is not None:
            host = action.get("host") or pod_ip
            addr = join_host_port(host, resolve_port(action.get("port"), ports))
            return f"dial tcp {addr}: i/o timeout"
        if (action := probe.get("grpc")) is not None:
            addr = join_host_port(pod_ip, int(action.get("port") or 0))
            return _grpc_connect_timeout_message(addr, timeout)
    except _PortError as exc:
        return str(exc)
    return f"probe timed out after {go_duration(timeout)}"


# --- helpers shared by the handlers -------------------------------------------------------------


def resolve_port(port: Any, ports: dict[str, int]) -> int:
    """An int port as is, a string as a named container port (as the kubelet: never a number)."""
    if isinstance(port, str):
        if port not in ports:
            raise _PortError(f"port {_go_quote(port)} not found")
        number = ports[port]
    elif isinstance(port, int) and not isinstance(port, bool):
        number = port
    else:
        number = 0
    if 0 < number < 65536:
        return number
    raise _PortError(f"invalid port number: {number}")


def join_host_port(host: str, port: int) -> str:
    """Go's net.JoinHostPort: brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String ("1s", "500ms", "1m30s"), as the kubelet prints."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{_trim(seconds * 1000, 6)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{_trim(secs, 9)}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def _trim(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _go_quote(text: str) -> str:
    """Close enough to Go's %q for command lines and URLs."""
    return json.dumps(text, ensure_ascii=False)


def _errno_text(exc: OSError) -> str:
    """Go prints syscall errors as lower-case strerror ("connection refused")."""
    if exc.errno is not None:
        text = os.strerror(exc.errno)
        return text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


def _dial_error(addr: str, host: str, exc: OSError) -> str:
    """The `dial tcp ...` part of a Go connect failure."""
    if isinstance(exc, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    if exc.errno is None and str(exc).startswith("Multiple exceptions"):
        return f"dial tcp {addr}: connect: {exc}"
    return f"dial tcp {addr}: connect: {_errno_text(exc)}"


# --- exec ---------------------------------------------------------------------------------------


def _exec_timeout_message(command: list[str], timeout: float) -> str:
    # The CRI client's wording: ErrCommandTimedOut wrapped with the command and the timeout.
    quoted = _go_quote(" ".join(command))
    return f"command timed out: {quoted} timed out after {go_duration(timeout)}"


async def _exec_probe(action: dict[str, Any], timeout: float, runner: ExecRunner) -> ProbeResult:
    command = [str(arg) for arg in action.get("command") or []]
    if not command:
        return ProbeResult(False, "exec probe has no command")
    try:
        async with asyncio.timeout(timeout):
            code, output = await runner(command, timeout)
    except TimeoutError:
        return ProbeResult(False, _exec_timeout_message(command, timeout))
    if code == 0:
        return _OK
    output = output[:_MAX_OUTPUT]
    if output:
        return ProbeResult(False, output)
    # The kubelet would show an empty message; say at least what exited how.
    return ProbeResult(False, f"command {_go_quote(' '.join(command))} exited with {code}")


# --- tcpSocket ----------------------------------------------------------------------------------


async def _tcp_probe(
    action: dict[str, Any], pod_ip: str, ports: dict[str, int], timeout: float
) -> ProbeResult:
    host = action.get("host") or pod_ip
    port = resolve_port(action.get("port"), ports)
    addr = join_host_port(host, port)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {addr}: i/o timeout")
    except OSError as exc:
        return ProbeResult(False, _dial_error(addr, host, exc))
    writer.close()
    # Closing is best effort, as in the kubelet; don't let a slow close hold the attempt.
    writer.transport.abort()
    return _OK


# --- httpGet ------------------------------------------------------------------------------------


_insecure_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """The kubelet probes HTTPS without verifying certificates (InsecureSkipVerify)."""
    global _insecure_tls
    if _insecure_tls is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _insecure_tls = ctx
    return _insecure_tls


def _canonical_header(name: str) -> str:
    """Go's CanonicalMIMEHeaderKey for token names ("x-custom" → "X-Custom")."""
    if not name or any(c in name for c in " \t:\r\n"):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


@dataclass
class _HttpTarget:
    """One request of a probe: the URL and where to connect."""

    scheme: str
    host: str
    port: int
    target: str  # request-target: path plus query
    host_header: str

    @property
    def addr(self) -> str:
        return join_host_port(self.host, self.port)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.addr}{self.target}"

    @classmethod
    def from_action(
        cls, action: dict[str, Any], pod_ip: str, ports: dict[str, int]
    ) -> _HttpTarget:
        scheme = str(action.get("scheme") or "HTTP").lower()
        host = action.get("host") or pod_ip
        port = resolve_port(action.get("port"), ports)
        path = str(action.get("path") or "")
        if not path.startswith("/"):
            path = "/" + path
        raw_path, _, query = path.partition("?")
        target = quote(raw_path, safe="/%:@!$&'()*+,;=~") + (f"?{query}" if query else "")
        return cls(scheme, host, port, target, join_host_port(host, port))

    def redirected(self, location: str) -> _HttpTarget | None:
        """Where a Location header points, or None when it is not a usable http(s) URL."""
        parts = urlsplit(urljoin(self.url, location))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rpartition("@")[2]
        return _HttpTarget(parts.scheme, parts.hostname, port, target, host_header)


def _probe_headers(action: dict[str, Any]) -> list[tuple[str, str]]:
    """httpHeaders plus the kubelet's User-Agent and Accept defaults (empty Accept: none)."""
    headers = [
        (_canonical_header(str(h.get("name", ""))), str(h.get("value", "")))
        for h in action.get("httpHeaders") or []
    ]
    names = {name.lower() for name, _ in headers}
    if "user-agent" not in names:
        headers.append(("User-Agent", USER_AGENT))
    if "accept" not in names:
        headers.append(("Accept", "*/*"))
    # Go sends no header for an empty value of these two.
    return [(n, v) for n, v in headers if v or n.lower() not in ("accept", "user-agent")]


def _http_timeout_message(url: str, addr: str, *, dialing: bool) -> str:
    if dialing:
        return f"Get {_go_quote(url)}: dial tcp {addr}: i/o timeout " \
            "(Client.Timeout exceeded while awaiting headers)"
    return f"Get {_go_quote(url)}: context deadline exceeded " \
        "(Client.Timeout exceeded while awaiting headers)"


class _HttpFailure(Exception):
    """A request failed with the text after `Get "url": `."""


class _Progress:
    """Which request, and which phase of it, the probe is in (for the timeout wording)."""

    def __init__(self, target: _HttpTarget) -> None:
        self.target = target
        self.dialing = True


async def _http_probe(
    action: dict[str, Any], pod_ip: str, ports: dict[str, int], timeout: float
) -> ProbeResult:
    first = _HttpTarget.from_action(action, pod_ip, ports)
    headers = _probe_headers(action)
    custom_host = next((v for n, v in headers if n.lower() == "host"), None)
    headers = [(n, v) for n, v in headers if n.lower() != "host"]
    progress = _Progress(first)
    try:
        async with asyncio.timeout(timeout):
            return await _http_follow(first, headers, custom_host, progress)
    except TimeoutError:
        target = progress.target
        return ProbeResult(False, _http_timeout_message(target.url, target.addr,
                                                        dialing=progress.dialing))
    except _HttpFailure as exc:
        return ProbeResult(False, f"Get {_go_quote(progress.target.url)}: {exc}")


async def _http_follow(
    first: _HttpTarget,
    headers: list[tuple[str, str]],
    custom_host: str | None,
    progress: _Progress,
) -> ProbeResult:
    """Request, following redirects only while they stay on the first request's host."""
    target, host_header = first, custom_host or first.host_header
    for count in range(1, _MAX_REQUESTS + 1):
        progress.target, progress.dialing = target, True
        status, location = await _http_get(target, host_header, headers, progress)
        if status in _REDIRECT_CODES and location:
            nxt = target.redirected(location)
            if nxt is not None and nxt.host == first.host:
                if count == _MAX_REQUESTS:
                    progress.target = nxt
                    raise _HttpFailure("stopped after 10 redirects")
                # Go keeps a custom Host header only for relative redirects.
                relative = not urlsplit(location).scheme and not location.startswith("//")
                host_header = custom_host if custom_host and relative else nxt.host_header
                target = nxt
                continue
        if 200 <= status < 400:
            # 3xx here is a redirect the kubelet does not follow (other host): a warning, a pass.
            return _OK
        return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")
    raise AssertionError("unreachable")


async def _http_get(
    target: _HttpTarget, host_header: str, headers: list[tuple[str, str]], progress: _Progress
) -> tuple[int, str | None]:
    """One GET on a fresh connection: (status, Location)."""
    try:
        reader, writer = await asyncio.open_connection(
            target.host, target.port,
            ssl=_tls_context() if target.scheme == "https" else None,
        )
    except ssl.SSLError as exc:
        raise _HttpFailure(f"remote error: tls: {exc.reason or exc}") from None
    except OSError as exc:
        raise _HttpFailure(_dial_error(target.addr, target.host, exc)) from None
    progress.dialing = False
    try:
        lines = [f"GET {target.target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
        await writer.drain()
        while True:
            status, location = await _read_head(reader)
            if not 100 <= status < 200 or status == 101:
                return status, location
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise _HttpFailure(f"remote error: tls: {exc.reason or exc}") from None
        local = writer.get_extra_info("sockname") or ("?", 0)
        where = f"{join_host_port(str(local[0]), int(local[1]))}->{target.addr}"
        raise _HttpFailure(f"read tcp {where}: read: {_errno_text(exc)}") from None
    finally:
        writer.transport.abort()  # no body needed, no keep-alive: drop the connection now


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str | None]:
    """Parse the status line and headers of one response; the body is not needed."""
    try:
        status_line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise _HttpFailure("EOF" if not exc.partial else "unexpected EOF") from None
    except asyncio.LimitOverrunError:
        raise _HttpFailure("net/http: HTTP/1.x transport connection broken: "
                           "malformed HTTP response") from None
    text = status_line.decode("latin-1").strip()
    parts = text.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _HttpFailure("net/http: HTTP/1.x transport connection broken: "
                           f"malformed HTTP response {_go_quote(text)}")
    location: str | None = None
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            raise _HttpFailure("unexpected EOF") from None
        except asyncio.LimitOverrunError:
            raise _HttpFailure("net/http: HTTP/1.x transport connection broken: "
                               "header line too long") from None
        line = line.rstrip(b"\r\n")
        if not line:
            return int(parts[1]), location
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "location":
            location = value.strip()


# --- grpc ---------------------------------------------------------------------------------------


def _grpc_connect_timeout_message(addr: str, timeout: float) -> str:
    # grpc.DialContext(WithBlock) keeps retrying until the deadline, refused or not.
    return (f"timeout: failed to connect service {_go_quote(addr)} within "
            f"{go_duration(timeout)}: context deadline exceeded")


def _encode_health_request(service: str) -> bytes:
    """grpc.health.v1.HealthCheckRequest{service}: field 1, length-delimited (proto3 omits "")."""
    data = service.encode()
    if not data:
        return b""
    return b"\x0a" + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _decode_health_status(data: bytes) -> int:
    """HealthCheckResponse.status (field 1, varint); unknown fields are skipped, absent = 0."""
    status, pos = 0, 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            if field == 1:
                status = value
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos > len(data):
        raise ValueError("truncated message")
    return status


def _go_code_name(code: Any) -> str:
    """grpc.StatusCode.NOT_FOUND → "NotFound", as Go's codes.Code.String() prints it."""
    name = getattr(code, "name", str(code))
    if name == "CANCELLED":
        return "Canceled"
    return "".join(part.capitalize() for part in name.split("_"))


async def _grpc_probe(action: dict[str, Any], pod_ip: str, timeout: float) -> ProbeResult:
    try:
        import grpc
        import grpc.aio
    except ImportError:  # pragma: no cover - grpcio ships with TensorFlow here
        return ProbeResult(False, "error: grpc probes need the grpcio package")
    port = action.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return ProbeResult(False, f"invalid port number: {port}")
    service = str(action.get("service") or "")
    addr = join_host_port(pod_ip, port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    channel = grpc.aio.insecure_channel(addr, options=[
        ("grpc.primary_user_agent", USER_AGENT),
        ("grpc.enable_http_proxy", 0),  # like trust_env=False: never go through a proxy
        ("grpc.use_local_subchannel_pool", 1),  # no backoff state shared between attempts
    ])
    try:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout)
        except TimeoutError:
            return ProbeResult(False, _grpc_connect_timeout_message(addr, timeout))
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        remaining = max(deadline - loop.time(), 0.001)
        try:
            async with asyncio.timeout(remaining + 0.5):  # grpc enforces `remaining` itself
                reply = await check(_encode_health_request(service), timeout=remaining)
        except TimeoutError:
            return ProbeResult(False, f"timeout: health rpc did not complete within "
                                      f"{go_duration(timeout)}")
        except grpc.aio.AioRpcError as exc:
            return ProbeResult(False, _grpc_error_message(exc, timeout))
        try:
            status = _decode_health_status(reply)
        except ValueError as exc:
            return ProbeResult(False, f"error: health rpc probe failed: {exc}")
        if status != _GRPC_SERVING:
            name = _GRPC_STATUS.get(status, str(status))
            return ProbeResult(False, f"service unhealthy (responded with {_go_quote(name)})")
        return _OK
    finally:
        await channel.close()


def _grpc_error_message(exc: Any, timeout: float) -> str:
    import grpc

    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return ("error: this server does not implement the grpc health protocol "
                f"(grpc.health.v1.Health): {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"timeout: health rpc did not complete within {go_duration(timeout)}"
    return f"error: health rpc probe failed: rpc error: code = {_go_code_name(code)} " \
        f"desc = {details}"


__all__ = [
    "ExecRunner",
    "ProbeResult",
    "USER_AGENT",
    "close_shared",
    "go_duration",
    "join_host_port",
    "probe_timeout",
    "resolve_port",
    "run_probe",
    "timeout_message",
]
