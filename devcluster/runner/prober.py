"""Per-container probe workers following the kubelet's prober/worker.go.

One asyncio task per (container instance, probe kind). The rules are the kubelet's: initial
results (readiness fails, liveness passes, startup unknown), startup gating of the other two,
`successThreshold`/`failureThreshold` runs of equal results before a result flips, and liveness
or startup failures asking for a restart and then putting the worker on hold until the
container is replaced. Time comes from an injectable clock and sleep so tests run in virtual
time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from devcluster.runner.probes import ProbeResult, timeout_message

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Monotonic seconds; time.monotonic unless a test injects its own."""

Sleep = Callable[[float], Awaitable[None]]
RunProbe = Callable[[str, dict[str, Any]], Awaitable[ProbeResult]]

STARTUP, READINESS, LIVENESS = "startup", "readiness", "liveness"
KINDS = (STARTUP, READINESS, LIVENESS)
_SPEC_KEYS = {STARTUP: "startupProbe", READINESS: "readinessProbe", LIVENESS: "livenessProbe"}

# The outer timeout guard waits this much longer than timeoutSeconds, so that a handler's own
# (better worded) timeout normally wins and the guard only catches a probe that ignores it.
TIMEOUT_GRACE_S = 0.5


class ProbeListener(Protocol):
    """What the integrator hears from the workers (all calls are synchronous and quick)."""

    def probe_changed(self) -> None:
        """`started` or `ready` changed: rewrite the pod status."""

    def unhealthy(self, kind: str, message: str) -> None:
        """An attempt failed: the kubelet's Warning event "Unhealthy"."""

    def kill_requested(self, kind: str, message: str) -> None:
        """Liveness or startup reached failureThreshold: restart the container."""


def unhealthy_event_message(kind: str, message: str) -> str:
    """The "Unhealthy" event text: `Readiness probe failed: HTTP probe failed with ...`."""
    return f"{kind.capitalize()} probe failed: {message}"


def kill_event_message(kind: str, container_name: str) -> str:
    """The "Killing" event text when a probe restarts a container."""
    return f"Container {container_name} failed {kind} probe, will be restarted"


def _positive(spec: dict[str, Any], key: str, default: float) -> float:
    value = spec.get(key)
    return float(value) if isinstance(value, int | float) and value > 0 else default


@dataclass(frozen=True)
class ProbeSettings:
    """A probe's timing with the API's defaults (0 or missing means the default)."""

    period: float
    timeout: float
    success_threshold: int
    failure_threshold: int
    initial_delay: float

    @classmethod
    def from_spec(cls, kind: str, spec: dict[str, Any]) -> ProbeSettings:
        delay = spec.get("initialDelaySeconds")
        success = int(_positive(spec, "successThreshold", 1))
        return cls(
            period=_positive(spec, "periodSeconds", 10),
            timeout=_positive(spec, "timeoutSeconds", 1),
            # Validation insists on 1 for liveness and startup; enforce rather than trust.
            success_threshold=success if kind == READINESS else 1,
            failure_threshold=int(_positive(spec, "failureThreshold", 3)),
            initial_delay=float(delay) if isinstance(delay, int | float) and delay > 0 else 0.0,
        )


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned attempt's outcome so asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


class ContainerProbes:
    """Every probe of one running container instance (a restart makes a new instance)."""

    def __init__(
        self,
        container: dict[str, Any],
        *,
        run: RunProbe,
        started_at: float,
        listener: ProbeListener,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        pod_ip: str = "",
    ) -> None:
        """`run(kind, spec)` performs one attempt; `started_at` is on `clock`'s scale.

        `pod_ip` only improves the wording when the outer timeout guard fires.
        """
        self._container = container
        self._run = run
        self._started_at = started_at
        self._listener = listener
        self._clock = clock
        self._sleep = sleep
        self._pod_ip = pod_ip
        self._ports = {
            str(p["name"]): int(p["containerPort"])
            for p in container.get("ports") or []
            if p.get("name") and p.get("containerPort")
        }
        self._specs: dict[str, dict[str, Any]] = {
            kind: container[key] for kind, key in _SPEC_KEYS.items() if container.get(key)
        }
        self._started = STARTUP not in self._specs
        self._readiness_ok = False  # the readiness worker's initial result is Failure
        self._started_event = asyncio.Event()
        if self._started:
            self._started_event.set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._terminating = False
        self._stopped = False

    @property
    def name(self) -> str:
        return str(self._container.get("name", ""))

    @property
    def started(self) -> bool:
        """True once the startup probe passed, or from the start without a startup probe."""
        return self._started

    @property
    def ready(self) -> bool:
        """The readiness result once started; without a readiness probe, `started` itself."""
        if not self._started:
            return False
        return self._readiness_ok if READINESS in self._specs else True

    def start(self) -> None:
        """Create one worker task per probe; a second call does nothing."""
        if self._tasks or self._stopped:
            return
        for kind, spec in self._specs.items():
            if self._terminating and kind != READINESS:
                continue
            settings = ProbeSettings.from_spec(kind, spec)
            self._tasks[kind] = asyncio.create_task(
                self._worker(kind, spec, settings), name=f"probe:{self.name}:{kind}")

    async def stop(self) -> None:
        """Cancel the workers and wait for them; an attempt in flight is abandoned, not awaited,
        so this returns promptly even when a probe ignores cancellation. Idempotent."""
        self._stopped = True
        current = asyncio.current_task()
        tasks = [t for t in self._tasks.values() if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def set_terminating(self) -> None:
        """The pod is being deleted: liveness and startup stop, readiness keeps probing.

        Like the kubelet (which records Success "to ensure quiet shutdown"), a container whose
        startup probe had not passed yet now counts as started, so readiness can still run.
        """
        if self._terminating:
            return
        self._terminating = True
        for kind in (LIVENESS, STARTUP):
            task = self._tasks.get(kind)
            if task is not None:
                task.cancel()
        if not self._started:
            self._change(self._mark_started)

    # ---- the worker ----------------------------------------------------------------------

    async def _worker(self, kind: str, spec: dict[str, Any], settings: ProbeSettings) -> None:
        try:
            await self._probe_loop(kind, spec, settings)
        except asyncio.CancelledError:
            raise
        except Exception:  # never expected: _attempt already turns errors into failures
            log.exception("%s probe worker of %s died", kind, self.name)

    async def _probe_loop(self, kind: str, spec: dict[str, Any], settings: ProbeSettings) -> None:
        wait = self._started_at + settings.initial_delay - self._clock()
        if wait > 0:
            await self._sleep(wait)
        if kind != STARTUP:
            # Disabled until the container has started; then probe at once (the kubelet
            # triggers readiness manually when a started container is not ready yet).
            await self._started_event.wait()
        last: bool | None = None
        run = 0  # how many attempts in a row gave `last` (the kubelet's resultRun)
        while True:
            began = self._clock()
            result = await self._attempt(kind, spec, settings.timeout)
            if not result.success:
                self._notify(self._listener.unhealthy, kind, result.message)
            if result.success == last:
                run += 1
            else:
                last, run = result.success, 1
            threshold = settings.success_threshold if result.success \
                else settings.failure_threshold
            if run >= threshold and self._record(kind, result):
                return  # on hold until a new container instance (a new ContainerProbes)
            await self._sleep(max(0.0, began + settings.period - self._clock()))

    async def _attempt(self, kind: str, spec: dict[str, Any], timeout: float) -> ProbeResult:
        """One attempt, bounded by timeoutSeconds (plus grace) on the injected sleep."""
        try:
            attempt = asyncio.ensure_future(self._run(kind, spec))
        except Exception as exc:
            return ProbeResult(False, str(exc) or type(exc).__name__)
        timer = asyncio.ensure_future(self._sleep(timeout + TIMEOUT_GRACE_S))
        try:
            await asyncio.wait({attempt, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not attempt.done():
                attempt.cancel()
                attempt.add_done_callback(_consume)
        if not attempt.done():
            return ProbeResult(False, timeout_message(spec, pod_ip=self._pod_ip,
                                                      ports=self._ports))
        if attempt.cancelled():
            return ProbeResult(False, "probe was cancelled")
        exc = attempt.exception()
        if exc is not None:
            return ProbeResult(False, str(exc) or type(exc).__name__)
        result = attempt.result()
        if not isinstance(result, ProbeResult):
            return ProbeResult(False, f"probe returned {result!r}")
        return result

    def _record(self, kind: str, result: ProbeResult) -> bool:
        """Apply a result that reached its threshold; True puts the worker on hold."""
        if kind == READINESS:
            if self._readiness_ok != result.success:
                self._change(lambda: setattr(self, "_readiness_ok", result.success))
            return False
        if kind == LIVENESS:
            if result.success:
                return False
            self._notify(self._listener.kill_requested, kind, result.message)
            return True
        # startup: either way it is done with this instance
        if result.success:
            self._change(self._mark_started)
        else:
            self._notify(self._listener.kill_requested, kind, result.message)
        return True

    def _mark_started(self) -> None:
        self._started = True
        self._started_event.set()

    def _change(self, mutate: Callable[[], None]) -> None:
        """Mutate state and tell the listener only when started/ready really changed."""
        before = (self.started, self.ready)
        mutate()
        if (self.started, self.ready) != before:
            self._notify(self._listener.probe_changed)

    def _notify(self, callback: Callable[..., None], *args: str) -> None:
        """Listener errors are logged, never allowed to kill a worker."""
        try:
            callback(*args)
        except Exception:
            log.exception("probe listener %s failed", getattr(callback, "__name__", callback))


__all__ = [
    "KINDS",
    "Clock",
    "ContainerProbes",
    "ProbeListener",
    "ProbeSettings",
    "kill_event_message",
    "unhealthy_event_message",
]
