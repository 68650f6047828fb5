"""One container of a runner pod: start, probe, restart with back-off, stop gracefully.

The loop follows the kubelet's container lifecycle: resolve the image and environment,
start the process (`Created`, `Started`), run its probes, and on exit apply the restart
policy with CrashLoopBackOff; a liveness or startup failure kills it (`Killing`) and the
same policy decides whether it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from devcluster.runner import cgroups, podstatus, termination
from devcluster.runner.crilog import CriLogWriter, LogFiles
from devcluster.runner.images import ImageNotInTable
from devcluster.runner.podenv import EnvError
from devcluster.runner.podstatus import ContainerState, Terminated, utcnow
from devcluster.runner.prober import ContainerProbes, kill_event_message, unhealthy_event_message
from devcluster.runner.probes import ProbeResult, run_probe
from devcluster.runner.process import Instance, InstanceFiles, exit_reason
from devcluster.runner.volumes import Mount, VolumeError

if TYPE_CHECKING:
    from devcluster.runner.pod import PodWorker

log = logging.getLogger(__name__)
MIN_GRACE_S = 2.0  # the kubelet's minimumGracePeriodInSeconds
LOG_POLL_S = 0.2
LOG_IDLE_POLL_S = 1.0
LOG_QUIET_S = 5.0


class LogTailer:
    """Copies an instance's raw stdout/stderr files into its CRI log file."""

    def __init__(self, instance: Instance, writer: CriLogWriter) -> None:
        self.files = instance.files
        self.writer = writer
        self._fds: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._fds = {"stdout": open(self.files.stdout, "rb"),  # noqa: SIM115
                     "stderr": open(self.files.stderr, "rb")}  # noqa: SIM115
        self._task = asyncio.create_task(self._loop())

    def _drain(self) -> bool:
        moved = False
        for stream, f in self._fds.items():
            while chunk := f.read(65536):
                self.writer.write(stream, chunk)
                moved = True
        return moved

    async def _loop(self) -> None:
        # Output is copied every 0.2 s; a container silent for 5 s is polled once a second, so
        # a hundred idle pods cost the runner little (their next line is at most 1 s late).
        quiet_since = time.monotonic()
        while True:
            now = time.monotonic()
            if self._drain():
                quiet_since = now
            idle = now - quiet_since > LOG_QUIET_S
            await asyncio.sleep(LOG_IDLE_POLL_S if idle else LOG_POLL_S)

    async def finish(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drain()
        for stream, f in self._fds.items():
            self.writer.flush_partial(stream)
            f.close()
        self.writer.close()


class ContainerWorker:
    def __init__(self, pod: PodWorker, spec: dict[str, Any], state: ContainerState,
                 init: bool = False) -> None:
        self.pod = pod
        self.spec = spec
        self.name = spec["name"]
        self.state = state
        self.init = init
        self.instance: Instance | None = None
        self.probes: ContainerProbes | None = None
        self.tailer: LogTailer | None = None
        self.logs = LogFiles(pod.dir, self.name)
        self.stopping = False
        self._wake = asyncio.Event()
        self._probe_kill: str | None = None
        self.env: dict[str, str] = {}
        self.adopt_from: dict[str, Any] | None = None

    # ---- restart policy ------------------------------------------------------------------
    def _should_restart(self, exit_code: int) -> bool:
        policy = self.spec.get("restartPolicy") or self.pod.restart_policy
        if self.init and not self.spec.get("restartPolicy"):
            # Init containers follow the pod policy, except that Always means OnFailure.
            policy = "Never" if policy == "Never" else "OnFailure"
        if policy == "Always":
            return True
        if policy == "OnFailure":
            return exit_code != 0
        return False

    # ---- main loop -------------------------------------------------------------------------
    async def run(self) -> Terminated | None:
        """Run until the container stops for good (returns its last termination) or is stopped."""
        image_backoff = 10.0
        while not self.stopping:
            try:
                if self.instance is None and self.adopt_from is not None:
                    await self._adopt()
                if self.instance is None:
                    await self._start()
            except ImageNotInTable as exc:
                await self._image_missing(str(exc), image_backoff)
                image_backoff = min(image_backoff * 2, 300.0)
                continue
            except VolumeError as exc:
                # The kubelet keeps the container in ContainerCreating and reports FailedMount.
                self.state.waiting_reason = "ContainerCreating"
                self.state.waiting_message = None
                self.pod.changed()
                await self.pod.event("Warning", "FailedMount", str(exc))
                await self._sleep(10.0)
                continue
            except EnvError as exc:
                self.state.waiting_reason = "CreateContainerConfigError"
                self.state.waiting_message = str(exc)
                self.pod.changed()
                await self.pod.event("Warning", "Failed", f"Error: {exc}", self.name)
                await self._sleep(10.0)
                continue
            except OSError as exc:
                self.state.waiting_reason = "CreateContainerError"
                self.state.waiting_message = str(exc)
                self.pod.changed()
                await self.pod.event("Warning", "Failed", f"Error: {exc}", self.name)
                await self._sleep(10.0)
                continue
            term = await self._wait_exit()
            if self.stopping or not self._should_restart(term.exit_code):
                self.state.terminated = term
                self.state.waiting_reason = self.state.waiting_message = None
                self.pod.changed()
                return term
            await self._back_off(term)
        return self.state.terminated

    async def _image_missing(self, message: str, delay: float) -> None:
        image = self.spec.get("image", "")
        first = self.state.waiting_reason != "ImagePullBackOff"
        self.state.waiting_reason = "ErrImagePull"
        self.state.waiting_message = message
        self.pod.changed()
        if first:
            await self.pod.event("Normal", "Pulling", f'Pulling image "{image}"', self.name)
        await self.pod.event("Warning", "Failed",
                             f'Failed to pull image "{image}": {message}', self.name)
        await self.pod.event("Warning", "Failed", "Error: ErrImagePull", self.name)
        await self._sleep(1.0)
        if self.stopping:
            return
        self.state.waiting_reason = "ImagePullBackOff"
        self.state.waiting_message = f'Back-off pulling image "{image}": {message}'
        self.pod.changed()
        await self.pod.event("Normal", "BackOff", f'Back-off pulling image "{image}"', self.name)
        await self.pod.event("Warning", "Failed", "Error: ImagePullBackOff", self.name)
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _start(self) -> None:
        pw = self.pod
        argv, env, mounts = await pw.container_launch_spec(self.spec)
        self.env = env
        files = InstanceFiles(pw.dir / "instances" / self.name, self.state.restart_count)
        message_path = termination.message_path(self.spec)
        if message_path is not None:
            # A fresh file per instance, bound at terminationMessagePath (kubelet makeMounts).
            termination.create_file(files.termination_log)
            mounts = [*mounts, Mount(files.termination_log, message_path, False)]
        cg = cgroups.container_cgroups(pw.ctx.cgroups, pw.uid, self.spec)
        cwd = self.spec.get("workingDir") or str(pw.dir)
        log_path = self.logs.start_instance(self.state.restart_count)
        guard = pw.ctx.bind_guard
        self.instance = await Instance.start(argv, env, cwd, mounts, pw.hosts_path, files, cg,
                                             protect=[str(guard.parent)] if guard else None)
        self._began(log_path, first_start=True)
        pw.spawn(self._start_events())

    async def _start_events(self) -> None:
        pw = self.pod
        await pw.event("Normal", "Pulled",
                       f'Container image "{self.spec.get("image", "")}" already present on '
                       "machine", self.name)
        await pw.event("Normal", "Created", "Container created", self.name)
        await pw.event("Normal", "Started", "Container started", self.name)

    async def _adopt(self) -> None:
        rec, self.adopt_from = self.adopt_from, None
        assert rec is not None
        files = InstanceFiles(self.pod.dir / "instances" / self.name, rec["restart_count"])
        self.state.restart_count = rec["restart_count"]
        inst = Instance.adopt(rec["pid"], rec["start_time"], files)
        started = datetime.fromisoformat(rec["started_at"].replace("Z", "+00:00"))
        if inst is None:
            # It ended while no runner watched: report how it ended, then apply the policy.
            try:
                code = int(files.exit_file.read_text().strip())
            except (OSError, ValueError):
                code = 128 + signal.SIGKILL
            reason = exit_reason(code, False)
            term = Terminated(exit_code=code, reason=reason,
                              started_at=started, finished_at=utcnow(),
                              message=termination.combine(
                                  "container ended while the runner was restarting",
                                  self._termination_message(files, code, reason)))
            self.state.last_terminated = term
            if not self._should_restart(code):
                self.state.terminated = term
                self.stopping = True
            else:
                self.state.restart_count += 1
            self.pod.changed()
            return
        self.env = rec.get("env", {})
        self.instance = inst
        self.state.running_since = started
        self._began(self.logs.current, first_start=False)
        log.info("adopted %s/%s pid %d", self.pod.key, self.name, inst.pid)

    def _began(self, log_path: Any, first_start: bool) -> None:
        assert self.instance is not None
        inst = self.instance
        if first_start:
            self.state.running_since = utcnow()
        self.state.container_id = f"process://{inst.pid}-{inst.start_time}"
        self.state.waiting_reason = self.state.waiting_message = None
        self.state.terminated = None
        self.state.ready = False
        self.tailer = LogTailer(inst, CriLogWriter(log_path))
        self.tailer.start()
        self.pod.record_instance(self.name, inst, self.state, self.env)
        if not self.init:
            self.probes = ContainerProbes(
                self.spec, run=self._probe, started_at=time.monotonic(), listener=self)
            self.state.started = self.probes.started
            self.state.ready = self.probes.ready
            self.probes.start()
        self.pod.changed()

    async def _wait_exit(self) -> Terminated:
        assert self.instance is not None
        inst = self.instance
        code = await inst.wait()
        finished = utcnow()
        if self.probes is not None:
            await self.probes.stop()
            self.probes = None
        if self.tailer is not None:
            await self.tailer.finish()
            self.tailer = None
        oom = code == 128 + signal.SIGKILL and cgroups.oom_killed(
            self.pod.ctx.cgroups, self.pod.uid, self.name)
        message = None
        try:
            recorded = inst.files.exit_file.read_text().strip()
        except OSError:
            recorded = ""
        if not recorded:  # the shim failed before the program ran (mount, cgroup, hostname)
            shim_log = inst.files.directory / f"{inst.files.restart_count}.shim"
            with contextlib.suppress(OSError):
                message = shim_log.read_text(errors="replace").strip()[-500:] or None
        reason = exit_reason(code, oom)
        if message and not inst.files.stdout.stat().st_size and code != 0 \
                and inst.signalled is None:
            reason = "StartError"
        message = termination.combine(
            message, self._termination_message(inst.files, code, reason))
        term = Terminated(exit_code=code, reason=reason, started_at=self.state.running_since,
                          finished_at=finished, message=message,
                          signal=(code - 128) if inst.signalled and code > 128 else None,
                          container_id=self.state.container_id)
        self.instance = None
        self.state.running_since = None
        self.state.ready = False
        self.state.started = False
        return term

    def _termination_message(self, files: InstanceFiles, code: int, reason: str) -> str:
        """What the instance left at terminationMessagePath, or its log tail (policy
        FallbackToLogsOnError), as the kubelet reads it once a container has exited."""
        return termination.container_message(
            self.spec, code, reason, files.termination_log,
            self.logs.instance(files.restart_count))

    async def _back_off(self, term: Terminated) -> None:
        pw = self.pod
        key = f"{pw.uid}/{self.name}"
        delay = pw.ctx.backoff.next_delay(key, time.monotonic())
        self.state.last_terminated = term
        self.state.terminated = None
        if delay > 0:
            meta = pw.pod["metadata"]
            self.state.waiting_reason = "CrashLoopBackOff"
            self.state.waiting_message = podstatus.backoff_message(
                delay, self.name, meta["name"], meta["namespace"], meta["uid"])
            pw.changed()
            await pw.event("Warning", "BackOff", podstatus.backoff_event_message(
                self.name, meta["name"], meta["namespace"], meta["uid"]), self.name)
            await self._sleep(delay)
        if not self.stopping:
            self.state.restart_count += 1
            self.state.waiting_reason = None

    # ---- probes ------------------------------------------------------------------------
    async def _probe(self, kind: str, spec: dict[str, Any]) -> ProbeResult:
        return await run_probe(spec, pod_ip=self.pod.pod_ip or "", ports=self.pod.named_ports(
            self.spec), exec_runner=self.exec_in_container)

    async def exec_in_container(self, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run argv inside the container's mount namespace with its environment."""
        inst = self.instance
        if inst is None:
            return 1, "container is not running"
        proc = await asyncio.create_subprocess_exec(
            "nsenter", "--target", str(inst.pid), "--mount", "--", *argv,
            env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, cwd=str(self.pod.dir))
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode(errors="replace")

    def probe_changed(self) -> None:
        if self.probes is not None:
            self.state.started = self.probes.started
            self.state.ready = self.probes.ready
            self.pod.changed()

    def unhealthy(self, kind: str, message: str) -> None:
        self.pod.spawn(self.pod.event("Warning", "Unhealthy",
                                      unhealthy_event_message(kind, message), self.name))

    def kill_requested(self, kind: str, message: str) -> None:
        if self._probe_kill is not None or self.instance is None:
            return
        self._probe_kill = kind
        self.pod.spawn(self._probe_restart(kind))

    async def _probe_restart(self, kind: str) -> None:
        try:
            await self.pod.event("Normal", "Killing", kill_event_message(kind, self.name),
                                 self.name)
            probe = self.spec.get(f"{kind}Probe") or {}
            grace = probe.get("terminationGracePeriodSeconds")
            if grace is None:
                grace = self.pod.pod["spec"].get("terminationGracePeriodSeconds", 30)
            await self.kill(float(grace), announce=False)
        finally:
            self._probe_kill = None

    # ---- stopping ----------------------------------------------------------------------
    def set_terminating(self) -> None:
        if self.probes is not None:
            self.probes.set_terminating()

    async def stop(self, grace: float) -> None:
        """Stop for good (pod deletion): no restart afterwards."""
        self.stopping = True
        self._wake.set()
        await self.kill(grace, announce=True)

    async def kill(self, grace: float, announce: bool) -> None:
        inst = self.instance
        if inst is None or not inst.alive():
            return
        if announce:
            await self.pod.event("Normal", "Killing", f"Stopping container {self.name}",
                                 self.name)
        started = time.monotonic()
        pre_stop = (self.spec.get("lifecycle") or {}).get("preStop")
        if pre_stop:
            try:
                await asyncio.wait_for(self._run_pre_stop(pre_stop), max(grace, 0.1))
            except Exception as exc:  # noqa: BLE001 - any hook failure is reported the same way
                await self.pod.event("Warning", "FailedPreStopHook",
                                     f"PreStopHook failed: {exc or type(exc).__name__}",
                                     self.name)
        remaining = max(grace - (time.monotonic() - started), MIN_GRACE_S)
        inst.kill(signal.SIGTERM)
        deadline = time.monotonic() + remaining
        while inst.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if inst.alive():
            inst.kill(signal.SIGKILL)

    async def _run_pre_stop(self, hook: dict[str, Any]) -> None:
        if "exec" in hook:
            code, out = await self.exec_in_container(hook["exec"].get("command", []), 3600)
            if code != 0:
                raise RuntimeError(f"exec hook exited {code}: {out.strip()[:200]}")
        elif "httpGet" in hook:
            g = hook["httpGet"]
            port = g.get("port")
            if isinstance(port, str) and not port.isdigit():
                port = self.pod.named_ports(self.spec).get(port)
            url = (f"{g.get('scheme', 'HTTP').lower()}://{g.get('host') or self.pod.pod_ip}:"
                   f"{port}{g.get('path', '/')}")
            async with httpx.AsyncClient(trust_env=False, verify=False) as client:  # noqa: S501
                r = await client.get(url)
            if r.status_code >= 400:
                raise RuntimeError(f"HTTP lifecycle hook ({g.get('path')}) for Container "
                                   f"\"{self.name}\" failed - error: statuscode {r.status_code}")
        elif "sleep" in hook:
            await asyncio.sleep(float(hook["sleep"].get("seconds", 0)))
