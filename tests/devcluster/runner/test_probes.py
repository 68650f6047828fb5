"""One probe attempt against real tiny servers on 127.0.0.1, with the kubelet's wording."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from devcluster.runner import probes
from devcluster.runner.probes import ProbeResult, run_probe, timeout_message

LOOPBACK = "127.0.0.1"


async def no_exec(argv: list[str], timeout: float) -> tuple[int, str]:
    raise AssertionError(f"exec_runner must not be called, got {argv}")


async def probe(spec: dict[str, Any], ports: dict[str, int] | None = None) -> ProbeResult:
    return await run_probe(spec, pod_ip=LOOPBACK, ports=ports or {}, exec_runner=no_exec)


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# --- a tiny HTTP server -------------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass
class Request:
    line: str
    headers: dict[str, str]  # lower-cased names


@dataclass
class HttpServer:
    routes: dict[str, Route]
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for header in header_lines:
                if header:
                    name, _, value = header.partition(":")
                    headers[name.strip().lower()] = value.strip()
            self.requests.append(Request(line, headers))
            path = line.split(" ")[1]
            route = self.routes.get(path, Route(404))
            if route.hang:
                await self.release.wait()
                return
            extra = "".join(f"{k}: {v}\r\n" for k, v in route.headers.items())
            writer.write(f"HTTP/1.1 {route.status} X\r\n{extra}Content-Length: 2\r\n"
                         "Connection: close\r\n\r\nok".encode())
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def http_server(routes: dict[str, Route],
                      tls: ssl.SSLContext | None = None) -> AsyncIterator[HttpServer]:
    srv = HttpServer(routes)
    server = await asyncio.start_server(srv.handle, LOOPBACK, 0, ssl=tls)
    srv.port = server.sockets[0].getsockname()[1]
    try:
        yield srv
    finally:
        srv.release.set()
        server.close()
        await server.wait_closed()


def http(port: int | str, path: str = "/healthz", **extra: Any) -> dict[str, Any]:
    return {"httpGet": {"port": port, "path": path, **extra}, "timeoutSeconds": 1}


# --- httpGet ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_http_200_is_success_with_kubelet_headers() -> None:
    async with http_server({"/healthz": Route(200)}) as srv:
        assert await probe(http(srv.port)) == ProbeResult(True, "")
    [req] = srv.requests
    assert req.line == "GET /healthz HTTP/1.1"
    assert req.headers["user-agent"] == "kube-probe/1.37"
    assert req.headers["accept"] == "*/*"
    assert req.headers["host"] == f"127.0.0.1:{srv.port}"


@pytest.mark.asyncio
async def test_http_500_fails_with_the_status_code() -> None:
    async with http_server({"/healthz": Route(500)}) as srv:
        assert await probe(http(srv.port)) == ProbeResult(
            False, "HTTP probe failed with statuscode: 500")


@pytest.mark.asyncio
async def test_http_399_passes_and_400_fails() -> None:
    async with http_server({"/a": Route(399), "/b": Route(400)}) as srv:
        assert (await probe(http(srv.port, "/a"))).success is True
        assert await probe(http(srv.port, "/b")) == ProbeResult(
            False, "HTTP probe failed with statuscode: 400")


@pytest.mark.asyncio
async def test_http_refused_reads_like_go() -> None:
    port = free_port()
    assert await probe(http(port)) == ProbeResult(
        False, f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: '
               "connect: connection refused")


@pytest.mark.asyncio
async def test_http_slow_handler_times_out() -> None:
    async with http_server({"/slow": Route(hang=True)}) as srv:
        spec = http(srv.port, "/slow") | {"timeoutSeconds": 0.2}
        began = time.monotonic()
        result = await probe(spec)
        elapsed = time.monotonic() - began
    assert result == ProbeResult(
        False, f'Get "http://127.0.0.1:{srv.port}/slow": context deadline exceeded '
               "(Client.Timeout exceeded while awaiting headers)")
    assert 0.15 <= elapsed < 1.0
    assert result.message == timeout_message(spec, pod_ip=LOOPBACK, ports={})


@pytest.mark.asyncio
async def test_http_named_port_and_unknown_name() -> None:
    async with http_server({"/healthz": Route(200)}) as srv:
        assert await probe(http("web"), ports={"web": srv.port}) == ProbeResult(True, "")
        assert await probe(http("nope"), ports={"web": srv.port}) == ProbeResult(
            False, 'port "nope" not found')
    assert len(srv.requests) == 1
    assert await probe(http(0)) == ProbeResult(False, "invalid port number: 0")


@pytest.mark.asyncio
async def test_http_custom_headers_arrive_and_override_defaults() -> None:
    headers = [
        {"name": "x-probe-token", "value": "s3cret"},
        {"name": "User-Agent", "value": "my-agent"},
        {"name": "Accept", "value": ""},  # empty Accept: the kubelet drops the header
        {"name": "Host", "value": "example.test"},
    ]
    async with http_server({"/healthz": Route(200)}) as srv:
        assert (await probe(http(srv.port, httpHeaders=headers))).success is True
    [req] = srv.requests
    assert req.headers["x-probe-token"] == "s3cret"
    assert req.headers["user-agent"] == "my-agent"
    assert "accept" not in req.headers
    assert req.headers["host"] == "example.test"


@pytest.mark.asyncio
async def test_http_host_field_and_path_without_slash() -> None:
    async with http_server({"/ok?x=1": Route(200)}) as srv:
        spec = {"httpGet": {"host": "127.0.0.1", "port": srv.port, "path": "ok?x=1"}}
        result = await run_probe(spec, pod_ip="127.9.9.9", ports={}, exec_runner=no_exec)
    assert result == ProbeResult(True, "")
    assert [r.line for r in srv.requests] == ["GET /ok?x=1 HTTP/1.1"]


@pytest.mark.asyncio
async def test_http_same_host_redirects_are_followed() -> None:
    routes = {
        "/to-ok": Route(302, {"Location": "/ok"}),
        "/to-fail": Route(301, {"Location": "/fail"}),
        "/ok": Route(200),
        "/fail": Route(503),
    }
    async with http_server(routes) as srv:
        assert await probe(http(srv.port, "/to-ok")) == ProbeResult(True, "")
        assert await probe(http(srv.port, "/to-fail")) == ProbeResult(
            False, "HTTP probe failed with statuscode: 503")
    assert [r.line.split()[1] for r in srv.requests] == ["/to-ok", "/ok", "/to-fail", "/fail"]


@pytest.mark.asyncio
async def test_http_redirect_to_another_host_passes_without_following() -> None:
    async with http_server({"/away": Route(302), "/fail": Route(500)}) as srv:
        srv.routes["/away"].headers["Location"] = f"http://localhost:{srv.port}/fail"
        assert await probe(http(srv.port, "/away")) == ProbeResult(True, "")
    assert [r.line.split()[1] for r in srv.requests] == ["/away"]


@pytest.mark.asyncio
async def test_http_redirect_loop_stops_after_ten_requests() -> None:
    async with http_server({"/loop": Route(307, {"Location": "/loop"})}) as srv:
        result = await probe(http(srv.port, "/loop"))
    assert result == ProbeResult(
        False, f'Get "http://127.0.0.1:{srv.port}/loop": stopped after 10 redirects')
    assert len(srv.requests) == 10


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@pytest.mark.asyncio
async def test_https_with_self_signed_cert_is_not_verified(tmp_path: Path) -> None:
    async with http_server({"/healthz": Route(200), "/bad": Route(500)},
                           tls=self_signed(tmp_path)) as srv:
        assert await probe(http(srv.port, scheme="HTTPS")) == ProbeResult(True, "")
        assert await probe(http(srv.port, "/bad", scheme="HTTPS")) == ProbeResult(
            False, "HTTP probe failed with statuscode: 500")
    assert len(srv.requests) == 2


@pytest.mark.asyncio
async def test_http_connection_closed_without_response_is_eof() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(slam, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await probe(http(port)) == ProbeResult(
            False, f'Get "http://127.0.0.1:{port}/healthz": EOF')


# --- tcpSocket ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tcp_open_and_refused() -> None:
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await probe({"tcpSocket": {"port": "svc"}}, {"svc": port}) == ProbeResult(True, "")
        for _ in range(50):
            if accepted:
                break
            await asyncio.sleep(0.01)
    assert accepted == [1]
    closed = free_port()
    assert await probe({"tcpSocket": {"port": closed}}) == ProbeResult(
        False, f"dial tcp 127.0.0.1:{closed}: connect: connection refused")


@pytest.mark.asyncio
async def test_tcp_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(probes.asyncio, "open_connection", never)
    spec = {"tcpSocket": {"port": 8080, "host": "127.1.128.5"}, "timeoutSeconds": 0.1}
    assert await probe(spec) == ProbeResult(False, "dial tcp 127.1.128.5:8080: i/o timeout")


# --- exec ---------------------------------------------------------------------------------------


def fake_runner(code: int, output: str, calls: list[tuple[list[str], float]]) -> probes.ExecRunner:
    async def runner(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append((argv, timeout))
        return code, output

    return runner


@pytest.mark.asyncio
async def test_exec_exit_codes() -> None:
    calls: list[tuple[list[str], float]] = []
    spec = {"exec": {"command": ["cat", "/tmp/healthy"]}, "timeoutSeconds": 3}
    ok = await run_probe(spec, pod_ip=LOOPBACK, ports={}, exec_runner=fake_runner(0, "x", calls))
    assert ok == ProbeResult(True, "")
    failed = await run_probe(spec, pod_ip=LOOPBACK, ports={},
                             exec_runner=fake_runner(1, "cat: /tmp/healthy: No such file\n", calls))
    assert failed == ProbeResult(False, "cat: /tmp/healthy: No such file\n")
    silent = await run_probe(spec, pod_ip=LOOPBACK, ports={},
                             exec_runner=fake_runner(2, "", calls))
    assert silent == ProbeResult(False, 'command "cat /tmp/healthy" exited with 2')
    assert calls == [(["cat", "/tmp/healthy"], 3.0)] * 3


@pytest.mark.asyncio
async def test_exec_timeouts_from_runner_and_from_a_hung_runner() -> None:
    spec = {"exec": {"command": ["sh", "-c", "sleep 9"]}, "timeoutSeconds": 0.1}
    expected = ProbeResult(False, 'command timed out: "sh -c sleep 9" timed out after 100ms')

    async def raises(argv: list[str], timeout: float) -> tuple[int, str]:
        raise TimeoutError

    async def hangs(argv: list[str], timeout: float) -> tuple[int, str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    assert await run_probe(spec, pod_ip=LOOPBACK, ports={}, exec_runner=raises) == expected
    began = time.monotonic()
    assert await run_probe(spec, pod_ip=LOOPBACK, ports={}, exec_runner=hangs) == expected
    assert time.monotonic() - began < 1.0


@pytest.mark.asyncio
async def test_exec_runner_error_is_a_failure_and_no_handler_too() -> None:
    async def broken(argv: list[str], timeout: float) -> tuple[int, str]:
        raise FileNotFoundError(2, "No such file or directory", "nsenter")

    result = await run_probe({"exec": {"command": ["true"]}}, pod_ip=LOOPBACK, ports={},
                             exec_runner=broken)
    assert result == ProbeResult(False, "[Errno 2] No such file or directory: 'nsenter'")
    assert await probe({"periodSeconds": 3}) == ProbeResult(False, "probe has no handler")


# --- grpc ---------------------------------------------------------------------------------------


@dataclass
class GrpcServer:
    port: int
    services: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def grpc_health_server(statuses: dict[str, int] | None) -> AsyncIterator[GrpcServer]:
    """A grpc.aio server on 127.0.0.1 answering Health/Check from `statuses` (None: no health)."""
    server = grpc.aio.server()
    port = server.add_insecure_port(f"{LOOPBACK}:0")
    state = GrpcServer(port)

    async def check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        service = request[2:2 + request[1]].decode() if request else ""
        state.services.append(service)
        state.agents += [v for k, v in context.invocation_metadata() if k == "user-agent"]
        if statuses is None or service not in statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        status = statuses[service]
        return bytes([0x08, status]) if status else b""

    if statuses is not None:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}),))
    await server.start()
    try:
        yield state
    finally:
        await server.stop(None)


def grpc_probe(port: int, service: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"port": port}
    if service is not None:
        action["service"] = service
    return {"grpc": action, "timeoutSeconds": 2}


@pytest.mark.asyncio
async def test_grpc_health_check() -> None:
    async with grpc_health_server({"": 1, "db": 2, "odd": 0}) as srv:
        assert await probe(grpc_probe(srv.port)) == ProbeResult(True, "")
        assert await probe(grpc_probe(srv.port, "db")) == ProbeResult(
            False, 'service unhealthy (responded with "NOT_SERVING")')
        assert await probe(grpc_probe(srv.port, "odd")) == ProbeResult(
            False, 'service unhealthy (responded with "UNKNOWN")')
        assert await probe(grpc_probe(srv.port, "gone")) == ProbeResult(
            False, "error: health rpc probe failed: rpc error: code = NotFound "
                   "desc = unknown service")
    assert srv.services == ["", "db", "odd", "gone"]
    assert srv.agents and all(a.startswith("kube-probe/1.37") for a in srv.agents)


@pytest.mark.asyncio
async def test_grpc_server_without_health_service() -> None:
    async with grpc_health_server(None) as srv:
        result = await probe(grpc_probe(srv.port))
    assert result.success is False
    assert result.message.startswith(
        "error: this server does not implement the grpc health protocol "
        "(grpc.health.v1.Health): ")


@pytest.mark.asyncio
async def test_grpc_nothing_listening_times_out_connecting() -> None:
    port = free_port()
    spec = {"grpc": {"port": port}, "timeoutSeconds": 0.3}
    began = time.monotonic()
    result = await probe(spec)
    assert time.monotonic() - began < 1.5
    assert result == ProbeResult(
        False, f'timeout: failed to connect service "127.0.0.1:{port}" within 300ms: '
               "context deadline exceeded")


def test_health_codec_round_trip() -> None:
    assert probes._encode_health_request("") == b""
    assert probes._encode_health_request("db") == b"\x0a\x02db"
    assert probes._encode_health_request("x" * 200)[:3] == b"\x0a\xc8\x01"
    # unknown fields (a string field 2, a fixed32 field 3) are skipped
    assert probes._decode_health_status(b"\x12\x01z\x1d\x00\x00\x00\x00\x08\x02") == 2
    assert probes._decode_health_status(b"") == 0
    with pytest.raises(ValueError):
        probes._decode_health_status(b"\x08")


def test_go_duration_and_timeout_messages() -> None:
    assert [probes.go_duration(s) for s in (1, 2, 0.25, 1.5, 60, 90, 3600)] == [
        "1s", "2s", "250ms", "1.5s", "1m0s", "1m30s", "1h0m0s"]
    assert timeout_message({"tcpSocket": {"port": "p"}}, pod_ip="127.1.128.5",
                           ports={"p": 8080}) == "dial tcp 127.1.128.5:8080: i/o timeout"
    assert timeout_message({"grpc": {"port": 9000}}, pod_ip="127.1.128.5", ports={}) == (
        'timeout: failed to connect service "127.1.128.5:9000" within 1s: '
        "context deadline exceeded")
    assert timeout_message({"httpGet": {"port": 8080, "path": "/healthz"}, "timeoutSeconds": 0},
                           pod_ip="127.1.128.5", ports={}) == (
        'Get "http://127.1.128.5:8080/healthz": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)")
