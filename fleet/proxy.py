"""Proxies as client-go picks and dials them.

- `env_proxy`: with no `proxy-url`, `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY` with Go's rules
  (golang.org/x/net/http/httpproxy, which client-go uses): upper-case names first, `NO_PROXY`
  entries `*`, IPs, CIDRs, `host`, `.host`, `*.host`, each optionally with `:port`; loopback
  and `localhost` are never proxied. A kubeconfig `proxy-url` is used as it is (client-go's
  `http.ProxyURL`: `NO_PROXY` does not apply to it).
- `open_tunnel`: an HTTP CONNECT tunnel through an `http://` or `https://` proxy for the
  connections fleet opens itself (port-forward's websocket); the caller puts its TLS to the
  API server on top. Through an https proxy that is TLS inside TLS: the tunnel's far end is
  relayed by a thread to a socketpair, so the caller still gets a real socket (the
  `kubernetes` package's port-forward reader selects on it and asks an `ssl.SSLSocket` for
  `pending()`, which a userspace TLS-in-TLS object could not answer).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import selectors
import socket
import ssl
import threading
from urllib.parse import unquote, urlsplit

from fleet import errors

DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080}
MAX_RESPONSE_HEAD = 64 * 1024  # bytes of a CONNECT response head we read at most


class ProxyRefused(errors.Unreachable):
    """The proxy answered the CONNECT with something other than 200 (e.g. 407, 403)."""


def _getenv(*names: str) -> str:
    """Go's `getEnvAny`: the first of `names` that is set and not empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return ""


def env_proxy(scheme: str, host: str, port: int | None = None) -> str | None:
    """The proxy URL Go's `http.ProxyFromEnvironment` picks for `scheme://host:port`, or None
    (kubectl's default when the cluster sets no `proxy-url`)."""
    if scheme == "https":
        url = _getenv("HTTPS_PROXY", "https_proxy")
    elif scheme == "http":
        url = _getenv("HTTP_PROXY", "http_proxy")
    else:
        return None
    if not url or not use_proxy(host, port or DEFAULT_PORTS.get(scheme, 443),
                                _getenv("NO_PROXY", "no_proxy")):
        return None
    return url if "://" in url else f"http://{url}"


def use_proxy(host: str, port: int, no_proxy: str) -> bool:
    """httpproxy's `useProxy`: False for loopback, `localhost` and `NO_PROXY` matches."""
    host = host.strip().strip("[]").lower()
    if not host or host == "localhost":
        return False
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return False
    return not any(_matches(entry.strip().lower(), host, str(port), ip)
                   for entry in no_proxy.split(","))


def _matches(entry: str, host: str, port: str,
             ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
    if not entry:
        return False
    if entry == "*":
        return True
    if "/" in entry:  # a CIDR matches IPs only, on any port
        try:
            return ip is not None and ip in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    phost, pport = entry, ""
    if entry.startswith("["):  # [IPv6]:port or [IPv6]
        close = entry.find("]")
        phost, rest = entry[1:close], entry[close + 1:]
        pport = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        phost, pport = entry.split(":")
        if not phost:
            return False  # `:port`: malformed, ignored like Go
    if pport and pport != port:
        return False
    try:
        pip = ipaddress.ip_address(phost)
    except ValueError:
        pip = None
    if pip is not None:
        return ip is not None and ip == pip
    if phost.startswith("*."):
        phost = phost[1:]
    if phost.startswith("."):  # `.example.com`: subdomains only
        return host.endswith(phost)
    return host == phost or host.endswith("." + phost)  # `example.com`: itself and below


def display(proxy_url: str) -> str:
    """The proxy URL without its user and password (for messages)."""
    p = urlsplit(proxy_url)
    if p.hostname is None:
        return proxy_url
    host = f"[{p.hostname}]" if ":" in p.hostname else p.hostname
    return p._replace(netloc=host + (f":{p.port}" if p.port else "")).geturl()


def authorization(proxy_url: str) -> str | None:
    """`Proxy-Authorization` (Basic) for a proxy URL with a user, as Go sends it."""
    p = urlsplit(proxy_url)
    if p.username is None:
        return None
    raw = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def open_tunnel(proxy_url: str, host: str, port: int, *, timeout: float,
                proxy_tls: ssl.SSLContext | None = None) -> socket.socket:
    """A socket whose bytes reach `host:port` through the proxy's CONNECT. An `https://` proxy
    is spoken to over TLS with `proxy_tls` (client-go reuses the cluster's TLS config: its CA,
    client certificate, insecure-skip-tls-verify), checked against the proxy's host name.
    Raises ProxyRefused for a non-200 answer, OSError/ssl.SSLError for the connection."""
    p = urlsplit(proxy_url)
    if p.scheme not in ("http", "https") or not p.hostname:
        raise ValueError(f"not an http(s) proxy URL: {display(proxy_url)}")
    phost, pport = p.hostname, p.port or DEFAULT_PORTS[p.scheme]
    raw = socket.create_connection((phost, pport), timeout)
    sock: socket.socket = raw
    try:
        if p.scheme == "https":
            sock = (proxy_tls or ssl.create_default_context()).wrap_socket(
                raw, server_hostname=phost)
        _connect(sock, proxy_url, host, port)
    except BaseException:
        sock.close()
        raise
    if isinstance(sock, ssl.SSLSocket):
        return _relayed(sock, timeout)
    return sock


def _connect(sock: socket.socket, proxy_url: str, host: str, port: int) -> None:
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    auth = authorization(proxy_url)
    if auth:
        head += f"Proxy-Authorization: {auth}\r\n"
    sock.sendall((head + "\r\n").encode())
    # byte by byte up to the blank line: what follows it is the API server's, not ours to read
    buf = b""
    while not buf.endswith(b"\r\n\r\n") and not buf.endswith(b"\n\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise OSError(f"proxy {display(proxy_url)} closed the connection during CONNECT "
                          f"to {target}")
        buf += chunk
        if len(buf) > MAX_RESPONSE_HEAD:
            raise OSError(f"proxy {display(proxy_url)} sent an oversized CONNECT response")
    status_line = buf.split(b"\n", 1)[0].decode("latin-1").strip()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise OSError(f"proxy {display(proxy_url)} answered CONNECT with {status_line!r}")
    if parts[1] != "200":
        raise ProxyRefused(refused(proxy_url, target, " ".join(parts[1:])))


def refused(proxy_url: str, target: str, status: str) -> str:
    """`Unable to connect to the server: proxy URL refused to tunnel to HOST:PORT: STATUS`,
    with what to do for the usual statuses."""
    text = (f"Unable to connect to the server: proxy {display(proxy_url)} refused to tunnel "
            f"to {target}: {status}")
    code = status.split(" ", 1)[0]
    if code == "407":
        text += (" (the proxy wants credentials: put them in the kubeconfig's proxy-url, "
                 "http://USER:PASSWORD@HOST:PORT)" if authorization(proxy_url) is None
                 else " (the proxy refused the user and password of proxy-url)")
    elif code == "403":
        text += " (the proxy does not allow this destination)"
    return text


def _relayed(outer: ssl.SSLSocket, timeout: float) -> socket.socket:
    """One end of a socketpair whose other end a daemon thread pumps to and from `outer`;
    closing either side closes both."""
    mine, theirs = socket.socketpair()
    mine.settimeout(timeout)
    outer.settimeout(None)
    threading.Thread(target=_pump, args=(outer, theirs), name="fleet-proxy-relay",
                     daemon=True).start()
    return mine


def _pump(outer: ssl.SSLSocket, inner: socket.socket) -> None:
    sel = selectors.DefaultSelector()
    sel.register(outer, selectors.EVENT_READ)
    sel.register(inner, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in sel.select():
                if key.fileobj is outer:
                    data = outer.recv(65536)
                    while data and outer.pending():  # decrypted bytes select cannot see
                        data += outer.recv(outer.pending())
                    dest: socket.socket = inner
                else:
                    data = inner.recv(65536)
                    dest = outer
                if not data:
                    return
                dest.sendall(data)
    except OSError:
        return
    finally:
        sel.close()
        for s in (inner, outer):
            with contextlib.suppress(OSError):
                s.close()
