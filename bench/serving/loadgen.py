"""A closed-loop HTTP/1.1 keep-alive load generator on raw asyncio streams (loopback only).

Each of `concurrency` connections sends one request, reads the whole response, and sends
the next. It is far cheaper per request than an HTTP client library, so one core can
drive a Python server on the other core. Latency is measured with perf_counter_ns.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadResult:
    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    error_latencies_ms: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.codes.get("200", 0)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else float("nan")

        errs = sorted(self.error_latencies_ms)
        return {"concurrency": self.concurrency, "rps": round(self.ok / self.seconds, 1),
                "error_p50_ms": round(errs[len(errs) // 2], 3) if errs else None,
                "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
                "mean_ms": round(statistics.fmean(lat), 3) if lat else float("nan"),
                "requests": sum(self.codes.values()), "codes": dict(self.codes)}


def build_request(path: str, body: bytes, host: str = "127.0.0.1") -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _connection(host: str, port: int, request: bytes, t_start: float, t_end: float,
                      out: LoadResult) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            t0 = time.perf_counter_ns()
            if t0 / 1e9 >= t_end:
                return
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                out.codes["conn_error"] += 1 if t0 / 1e9 >= t_start else 0
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            status = head[9:12].decode()
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                low = line.lower()
                if low.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                elif low.startswith(b"connection:") and b"close" in low:
                    close = True
            await reader.readexactly(length)
            t1 = time.perf_counter_ns()
            if t0 / 1e9 >= t_start:
                out.codes[status] += 1
                (out.latencies_ms if status == "200" else out.error_latencies_ms).append(
                    (t1 - t0) / 1e6)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def run_load(host: str, port: int, request: bytes, concurrency: int, warmup_s: float,
                   duration_s: float) -> LoadResult:
    now = time.perf_counter()
    t_start, t_end = now + warmup_s, now + warmup_s + duration_s
    out = LoadResult(concurrency, duration_s)
    await asyncio.gather(*(_connection(host, port, request, t_start, t_end, out)
                           for _ in range(concurrency)))
    return out


def load(host: str, port: int, request: bytes, concurrency: int, warmup_s: float,
         duration_s: float) -> LoadResult:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    return runner(run_load(host, port, request, concurrency, warmup_s, duration_s))
