"""The kubelet's probe worker algorithm, run in virtual time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from devcluster.runner.prober import (
    ContainerProbes,
    ProbeSettings,
    kill_event_message,
    unhealthy_event_message,
)
from devcluster.runner.probes import ProbeResult

T0 = 1000.0
OK = ProbeResult(True, "")


def fail(text: str = "HTTP probe failed with statuscode: 500") -> ProbeResult:
    return ProbeResult(False, text)


class VirtualTime:
    """A clock and a sleep that only move when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._seq), fut))
        await fut

    @staticmethod
    async def settle() -> None:
        """Let every runnable task run until it blocks again."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers in order and letting each wake-up play out."""
        target = self.now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            wake, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self.now = wake
            fut.set_result(None)
            await self.settle()
        self.now = target
        await self.settle()


class Recorder:
    """A ProbeListener that remembers everything, with the virtual time of each call."""

    def __init__(self, vt: VirtualTime) -> None:
        self.vt = vt
        self.probes: ContainerProbes | None = None
        self.changes: list[tuple[float, bool, bool]] = []
        self.unhealthy_calls: list[tuple[float, str, str]] = []
        self.kills: list[tuple[float, str, str]] = []

    def probe_changed(self) -> None:
        assert self.probes is not None
        self.changes.append((self.vt.now - T0, self.probes.started, self.probes.ready))

    def unhealthy(self, kind: str, message: str) -> None:
        self.unhealthy_calls.append((self.vt.now - T0, kind, message))

    def kill_requested(self, kind: str, message: str) -> None:
        self.kills.append((self.vt.now - T0, kind, message))


class Script:
    """`run(kind, spec)`: pops scripted results per kind (last one repeats), logs call times."""

    def __init__(self, vt: VirtualTime, **results: Iterable[ProbeResult | BaseException]) -> None:
        self.vt = vt
        self.results = {kind: list(r) for kind, r in results.items()}
        self.calls: dict[str, list[float]] = {kind: [] for kind in results}

    async def __call__(self, kind: str, spec: dict[str, Any]) -> ProbeResult:
        self.calls.setdefault(kind, []).append(self.vt.now - T0)
        queue = self.results[kind]
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, BaseException):
            raise item
        return item


def container(**probes: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "server", "ports": [{"name": "http", "containerPort": 8080}]}
    for kind, probe in probes.items():
        spec[f"{kind}Probe"] = {"httpGet": {"port": "http", "path": "/healthz"}, **probe}
    return spec


def make(
    spec: dict[str, Any], script: Callable[..., Any], vt: VirtualTime,
    started_at: float = T0,
) -> tuple[ContainerProbes, Recorder]:
    rec = Recorder(vt)
    probes = ContainerProbes(spec, run=script, started_at=started_at, listener=rec,
                             clock=vt.clock, sleep=vt.sleep, pod_ip="127.1.128.5")
    rec.probes = probes
    return probes, rec


@pytest.mark.asyncio
async def test_readiness_false_until_first_success() -> None:
    vt = VirtualTime()
    script = Script(vt, readiness=[fail(), fail(), OK])
    probes, rec = make(container(readiness={}), script, vt)
    assert (probes.started, probes.ready) == (True, False)
    probes.start()
    await vt.advance(19)
    assert probes.ready is False
    await vt.advance(1)
    assert probes.ready is True
    await vt.advance(25)
    assert script.calls["readiness"] == [0, 10, 20, 30, 40]
    assert rec.changes == [(20, True, True)]
    msg = "HTTP probe failed with statuscode: 500"
    assert rec.unhealthy_calls == [(0, "readiness", msg), (10, "readiness", msg)]
    await probes.stop()


@pytest.mark.asyncio
async def test_failure_threshold_three_flips_only_on_the_third_failure() -> None:
    vt = VirtualTime()
    script = Script(vt, readiness=[OK, fail("a"), fail("b"), fail("c"), fail("d")])
    probes, rec = make(container(readiness={"periodSeconds": 5}), script, vt)
    probes.start()
    await vt.advance(10)  # t=0 ok, t=5 a, t=10 b
    assert probes.ready is True
    await vt.advance(5)  # t=15 c: third in a row
    assert probes.ready is False
    assert rec.changes == [(0, True, True), (15, True, False)]
    assert rec.unhealthy_calls == [(5, "readiness", "a"), (10, "readiness", "b"),
                                   (15, "readiness", "c")]
    assert rec.kills == []
    await probes.stop()


@pytest.mark.asyncio
async def test_failures_interrupted_by_a_success_start_counting_again() -> None:
    vt = VirtualTime()
    script = Script(vt, readiness=[OK, fail(), fail(), OK, fail(), fail(), fail()])
    probes, rec = make(container(readiness={"periodSeconds": 1}), script, vt)
    probes.start()
    await vt.advance(5)
    assert probes.ready is True
    await vt.advance(1)
    assert rec.changes == [(0, True, True), (6, True, False)]
    await probes.stop()


@pytest.mark.asyncio
async def test_success_threshold_two() -> None:
    vt = VirtualTime()
    script = Script(vt, readiness=[OK, fail(), OK, OK, fail()])
    probes, rec = make(container(readiness={"periodSeconds": 2, "successThreshold": 2}),
                       script, vt)
    probes.start()
    await vt.advance(4)  # ok, fail, ok: never two in a row yet
    assert probes.ready is False
    await vt.advance(2)  # t=6: second ok in a row
    assert probes.ready is True
    await vt.advance(2)  # one failure below failureThreshold 3: still ready
    assert rec.changes == [(6, True, True)]
    assert probes.ready is True
    await probes.stop()


@pytest.mark.asyncio
async def test_initial_delay_counts_from_started_at() -> None:
    vt = VirtualTime()
    script = Script(vt, readiness=[OK], liveness=[OK])
    spec = container(readiness={"initialDelaySeconds": 15},
                     liveness={"initialDelaySeconds": 4, "periodSeconds": 3})
    # The container started 5 s before the workers were created.
    probes, rec = make(spec, script, vt, started_at=T0 - 5)
    probes.start()
    await vt.advance(9.5)
    assert script.calls == {"readiness": [], "liveness": [0, 3, 6, 9]}
    assert probes.ready is False
    await vt.advance(0.5)  # started_at + 15
    assert script.calls["readiness"] == [10]
    assert probes.ready is True
    await vt.advance(20)
    assert script.calls["readiness"] == [10, 20, 30]
    assert rec.changes == [(10, True, True)]
    await probes.stop()


@pytest.mark.asyncio
async def test_startup_gates_readiness_and_liveness() -> None:
    vt = VirtualTime()
    script = Script(vt, startup=[fail("s1"), fail("s2"), OK], readiness=[OK], liveness=[OK])
    spec = container(startup={"periodSeconds": 5, "failureThreshold": 10},
                     readiness={"periodSeconds": 3}, liveness={"periodSeconds": 4})
    probes, rec = make(spec, script, vt)
    assert (probes.started, probes.ready) == (False, False)
    probes.start()
    await vt.advance(9)
    assert script.calls == {"startup": [0, 5], "readiness": [], "liveness": []}
    assert (probes.started, probes.ready) == (False, False)
    await vt.advance(1)  # t=10 startup passes; the others start right away
    assert (probes.started, probes.ready) == (True, True)
    await vt.advance(20)
    assert script.calls == {
        "startup": [0, 5, 10],  # no more startup probes once started
        "readiness": [10, 13, 16, 19, 22, 25, 28],
        "liveness": [10, 14, 18, 22, 26, 30],
    }
    # started and ready flip together (readiness ran in the same instant): two notifications
    assert rec.changes == [(10, True, False), (10, True, True)]
    assert rec.unhealthy_calls == [(0, "startup", "s1"), (5, "startup", "s2")]
    await probes.stop()


@pytest.mark.asyncio
async def test_without_readiness_probe_ready_follows_started() -> None:
    vt = VirtualTime()
    script = Script(vt, startup=[fail(), OK])
    probes, rec = make(container(startup={"periodSeconds": 2}), script, vt)
    probes.start()
    await vt.advance(1)
    assert (probes.started, probes.ready) == (False, False)
    await vt.advance(1)
    assert (probes.started, probes.ready) == (True, True)
    assert rec.changes == [(2, True, True)]
    await probes.stop()


@pytest.mark.asyncio
async def test_no_probes_at_all_is_started_and_ready_at_once() -> None:
    vt = VirtualTime()
    probes, rec = make(container(), Script(vt), vt)
    assert (probes.started, probes.ready) == (True, True)
    probes.start()
    await vt.advance(100)
    assert rec.changes == [] and rec.unhealthy_calls == []
    await probes.stop()


@pytest.mark.asyncio
async def test_liveness_failure_kills_once_then_holds() -> None:
    vt = VirtualTime()
    script = Script(vt, liveness=[OK, fail("x1"), fail("x2"), fail("x3")], readiness=[OK])
    spec = container(liveness={"periodSeconds": 10}, readiness={"periodSeconds": 10})
    probes, rec = make(spec, script, vt)
    probes.start()
    await vt.advance(30)
    assert rec.kills == [(30, "liveness", "x3")]
    await vt.advance(100)
    assert rec.kills == [(30, "liveness", "x3")]
    assert script.calls["liveness"] == [0, 10, 20, 30]
    assert script.calls["readiness"] == [10 * i for i in range(14)]  # readiness keeps going
    assert [c[1:] for c in rec.unhealthy_calls] == [
        ("liveness", "x1"), ("liveness", "x2"), ("liveness", "x3")]
    assert probes.ready is True  # liveness does not touch readiness
    await probes.stop()


@pytest.mark.asyncio
async def test_startup_failure_threshold_kills_and_never_starts() -> None:
    vt = VirtualTime()
    script = Script(vt, startup=[fail("not yet")], readiness=[OK])
    spec = container(startup={"periodSeconds": 1, "failureThreshold": 4}, readiness={})
    probes, rec = make(spec, script, vt)
    probes.start()
    await vt.advance(10)
    assert rec.kills == [(3, "startup", "not yet")]
    assert script.calls == {"startup": [0, 1, 2, 3], "readiness": []}
    assert len(rec.unhealthy_calls) == 4
    assert (probes.started, probes.ready) == (False, False)
    assert rec.changes == []
    await probes.stop()


@pytest.mark.asyncio
async def test_success_threshold_is_forced_to_one_for_liveness_and_startup() -> None:
    spec = {"successThreshold": 5, "periodSeconds": 0, "failureThreshold": 0}
    assert ProbeSettings.from_spec("liveness", spec) == ProbeSettings(10, 1, 1, 3, 0)
    assert ProbeSettings.from_spec("startup", spec).success_threshold == 1
    assert ProbeSettings.from_spec("readiness", spec).success_threshold == 5


@pytest.mark.asyncio
async def test_set_terminating_stops_liveness_keeps_readiness() -> None:
    vt = VirtualTime()
    script = Script(vt, liveness=[fail()], readiness=[OK, OK, fail()])
    spec = container(liveness={"periodSeconds": 5}, readiness={"periodSeconds": 5})
    probes, rec = make(spec, script, vt)
    probes.start()
    await vt.advance(5)  # liveness failed twice, one short of a kill
    probes.set_terminating()
    await vt.advance(30)
    assert script.calls["liveness"] == [0, 5]
    assert rec.kills == []
    assert script.calls["readiness"] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert rec.changes == [(0, True, True), (20, True, False)]  # third failure at t=20
    await probes.stop()


@pytest.mark.asyncio
async def test_set_terminating_before_startup_passed_counts_as_started() -> None:
    vt = VirtualTime()
    script = Script(vt, startup=[fail()], readiness=[fail(), OK])
    spec = container(startup={"periodSeconds": 2, "failureThreshold": 30},
                     readiness={"periodSeconds": 2})
    probes, rec = make(spec, script, vt)
    probes.start()
    await vt.advance(3)
    assert script.calls == {"startup": [0, 2], "readiness": []}
    probes.set_terminating()  # the kubelet records startup Success "for a quiet shutdown"
    await vt.settle()
    assert (probes.started, probes.ready) == (True, False)
    await vt.advance(2)
    assert script.calls == {"startup": [0, 2], "readiness": [3, 5]}
    assert rec.changes == [(3, True, False), (5, True, True)]
    await probes.stop()


@pytest.mark.asyncio
async def test_stop_cancels_a_hung_attempt_promptly_and_is_idempotent() -> None:
    vt = VirtualTime()
    entered = asyncio.Event()

    async def stubborn(kind: str, spec: dict[str, Any]) -> ProbeResult:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.Event().wait()  # ignores the first cancel; the loop's teardown ends it
        raise AssertionError("unreachable")

    probes, rec = make(container(readiness={}, liveness={}), stubborn, vt)
    probes.start()
    await asyncio.wait_for(entered.wait(), 1)
    began = time.monotonic()
    await asyncio.wait_for(probes.stop(), 1)
    await asyncio.wait_for(probes.stop(), 1)
    assert time.monotonic() - began < 0.5
    assert all(t.done() for t in probes._tasks.values())
    assert rec.unhealthy_calls == [] and rec.changes == []


@pytest.mark.asyncio
async def test_hung_attempt_fails_at_timeout_with_the_handler_message() -> None:
    vt = VirtualTime()
    calls: list[float] = []

    async def hang(kind: str, spec: dict[str, Any]) -> ProbeResult:
        calls.append(vt.now - T0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    spec = container(readiness={"timeoutSeconds": 2, "periodSeconds": 10})
    probes, rec = make(spec, hang, vt)
    probes.start()
    await vt.advance(2)
    assert rec.unhealthy_calls == []  # timeoutSeconds plus the grace has not passed yet
    await vt.advance(0.5)
    text = ('Get "http://127.1.128.5:8080/healthz": context deadline exceeded '
            "(Client.Timeout exceeded while awaiting headers)")
    assert rec.unhealthy_calls == [(2.5, "readiness", text)]
    await vt.advance(10)
    assert calls == [0, 10]  # the period counts from the start of the attempt
    await probes.stop()


@pytest.mark.asyncio
async def test_exceptions_in_run_and_in_the_listener_count_as_failures() -> None:
    vt = VirtualTime()
    script = Script(vt, liveness=[RuntimeError("boom"), ValueError(), OK])
    probes, rec = make(container(liveness={"periodSeconds": 1}), script, vt)

    def flaky_unhealthy(kind: str, message: str) -> None:
        rec.unhealthy_calls.append((vt.now - T0, kind, message))
        raise RuntimeError("listener bug")

    rec.unhealthy = flaky_unhealthy  # type: ignore[method-assign]
    probes.start()
    await vt.advance(4)
    assert rec.unhealthy_calls == [(0, "liveness", "boom"), (1, "liveness", "ValueError")]
    assert script.calls["liveness"] == [0, 1, 2, 3, 4]
    assert rec.kills == []
    await probes.stop()


def test_event_messages() -> None:
    assert unhealthy_event_message("readiness", "HTTP probe failed with statuscode: 500") == (
        "Readiness probe failed: HTTP probe failed with statuscode: 500")
    assert unhealthy_event_message("liveness", "x") == "Liveness probe failed: x"
    assert unhealthy_event_message("startup", "y") == "Startup probe failed: y"
    assert kill_event_message("liveness", "server") == (
        "Container server failed liveness probe, will be restarted")
    assert kill_event_message("startup", "server") == (
        "Container server failed startup probe, will be restarted")
