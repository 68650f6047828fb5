"""One pod on a runner node: admission, sandbox, containers, status, graceful deletion.

Mirrors the kubelet's pod worker: admit (GPUs), set up the sandbox (pod IP, volumes, the
managed /etc/hosts, kwok's Logs/PortForward objects), run init containers in order and then
the containers, keep the status in the API current (only on change), and on deletion run
preStop, SIGTERM, SIGKILL after the grace period, write a terminal phase and only then delete
the pod with grace 0 and a UID precondition.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devcluster.runner import bindguard, cgroups, hostsfile, kwokobjects, podenv, volumes
from devcluster.runner.api import ApiError
from devcluster.runner.container import ContainerWorker
from devcluster.runner.gpus import AllocationError, gpu_limit, visible_devices_env
from devcluster.runner.podstatus import (
    ContainerState,
    PodState,
    Terminated,
    pod_status,
    rfc3339,
    status_changed,
    status_patch,
    utcnow,
)
from devcluster.runner.process import Instance

if TYPE_CHECKING:
    from devcluster.runner.runner import RunnerContext

log = logging.getLogger(__name__)
STATUS_DEBOUNCE_S = 0.05


@dataclass
class Checkpoint:
    """What a restarted runner needs to find a pod's processes again."""

    uid: str
    ip: str | None = None
    gpus: list[int] = field(default_factory=list)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        try:
            data = json.loads(path.read_text())
            return cls(data["uid"], data.get("ip"), data.get("gpus", []),
                       data.get("containers", {}))
        except (OSError, ValueError, KeyError):
            return None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__))
        tmp.replace(path)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def pod_dir_name(pod: dict[str, Any]) -> str:
    m = pod["metadata"]
    return f"{m['namespace']}_{m['name']}_{m['uid']}"


class PodWorker:
    def __init__(self, ctx: RunnerContext, pod: dict[str, Any]) -> None:
        self.ctx = ctx
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.key = f"{meta['namespace']}/{meta['name']}"
        self.dir = ctx.state_dir / "pods" / pod_dir_name(pod)
        self.checkpoint_path = self.dir / "checkpoint.json"
        spec = pod["spec"]
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.state = PodState(
            pod_ip=None, host_ip="127.0.0.1", start_time=None, sandbox_ready=False,
            containers=[ContainerState(c["name"], c.get("image", ""),
                                       waiting_reason="ContainerCreating")
                        for c in spec.get("containers", [])],
            init_containers=[ContainerState(c["name"], c.get("image", ""),
                                            waiting_reason="PodInitializing")
                             for c in spec.get("initContainers", []) or []],
        )
        self._seed_from_api_status()
        self.pod_ip: str | None = None
        self.gpus: list[Any] = []
        self.hosts_path: Path | None = None
        self.workers: list[ContainerWorker] = []
        self.checkpoint = Checkpoint(self.uid)
        self._dirty = asyncio.Event()
        self._deleting = asyncio.Event()
        self._gone = False
        self._written: dict[str, Any] | None = None
        self._status_lock = asyncio.Lock()  # one status write at a time, computed in order
        self._background: set[asyncio.Task[Any]] = set()
        self.done = asyncio.Event()
        self.task = asyncio.create_task(self._main(), name=f"pod {self.key}")
        self.status_task = asyncio.create_task(self._status_loop(), name=f"status {self.key}")

    def _seed_from_api_status(self) -> None:
        """After a runner restart, keep what the API already shows (restarts, last exits)."""
        reported = {c["name"]: c for c in self.pod.get("status", {})
                    .get("containerStatuses", []) or []}
        for st in self.state.containers:
            old = reported.get(st.name)
            if not old:
                continue
            st.restart_count = int(old.get("restartCount", 0))
            last = (old.get("lastState") or {}).get("terminated")
            if last:
                st.last_terminated = Terminated(
                    exit_code=int(last.get("exitCode", 0)), reason=last.get("reason", "Error"),
                    started_at=_parse_time(last.get("startedAt")),
                    finished_at=_parse_time(last.get("finishedAt")) or utcnow(),
                    signal=last.get("signal"), message=last.get("message"),
                    container_id=last.get("containerID"))

    # ---- inputs from the watch ---------------------------------------------------------
    def update(self, pod: dict[str, Any]) -> None:
        if pod["metadata"]["uid"] != self.uid:
            return
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self._deleting.set()

    def removed(self) -> None:
        """The pod object is gone from the API (deleted with grace 0 by someone)."""
        self._gone = True
        self._deleting.set()

    # ---- helpers for the containers ----------------------------------------------------
    def changed(self) -> None:
        self._dirty.set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        t = asyncio.create_task(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    async def event(self, type_: str, reason: str, message: str,
                    container: str | None = None) -> None:
        await self.ctx.events.emit(self.pod, type_, reason, message, container)

    def named_ports(self, container: dict[str, Any]) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in container.get("ports", []) or []
                if p.get("name")}

    def record_instance(self, name: str, inst: Instance, state: ContainerState,
                        env: dict[str, str]) -> None:
        self.checkpoint.containers[name] = {
            "pid": inst.pid, "start_time": inst.start_time,
            "restart_count": state.restart_count,
            "started_at": rfc3339(state.running_since or utcnow()), "env": env,
        }
        self.checkpoint.save(self.checkpoint_path)
        if self.ctx.enable_exec:
            envs = {n: c.get("env", {}) for n, c in self.checkpoint.containers.items()
                    if "pid" in c}
            self.spawn(self._ensure_exec(envs))

    async def _ensure_exec(self, envs: dict[str, dict[str, str]]) -> None:
        try:
            await kwokobjects.ensure(self.ctx.api,
                                     kwokobjects.exec_object(self.pod, self.dir, envs))
        except ApiError as exc:
            log.warning("Exec object for %s: %s", self.key, exc)

    async def container_launch_spec(self, container: dict[str, Any]
                                    ) -> tuple[list[str], dict[str, str], list[volumes.Mount]]:
        """argv, environment and mounts of one container start (objects read fresh)."""
        (configmaps, secrets), token = await asyncio.gather(self._fetch_refs(), self._token())
        extra = {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.ctx.apiserver_port),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir / "home"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        }
        if container in self.pod["spec"].get("containers", []) and self.gpus is not None:
            wants = int(((container.get("resources") or {}).get("limits") or {})
                        .get("nvidia.com/gpu", 0))
            extra |= visible_devices_env(self.gpus if wants else [])
        (self.dir / "home").mkdir(exist_ok=True)
        ctx = podenv.PodContext(pod=self.pod, pod_ip=self.pod_ip or "", host_ip="127.0.0.1",
                                node_name=self.ctx.node.name, configmaps=configmaps,
                                secrets=secrets, extra=extra)
        env = podenv.container_env(ctx, container)
        argv = self.ctx.images.argv(container, env)
        if self.ctx.bind_guard is not None and self.pod_ip:
            # Wildcard binds mean the pod IP, as in the pod's own netns (after $(VAR)
            # expansion: the pod's own LD_PRELOAD is kept and loaded first).
            env = bindguard.preload_env(env, self.ctx.bind_guard, self.pod_ip)
        paths = volumes.materialize(
            self.pod, self.dir, volumes.VolumeSources(configmaps, secrets, token),
            pod_ip=self.pod_ip or "")
        mounts = volumes.container_mounts(self.pod, container, paths, env=env)
        return argv, env, mounts

    async def _fetch_refs(self) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        refs = podenv.references(self.pod)
        ns = self.pod["metadata"]["namespace"]
        configmaps: dict[str, dict[str, str]] = {}
        secrets: dict[str, dict[str, str]] = {}
        cm_names, secret_names = sorted(refs.configmaps), sorted(refs.secrets)
        fetched = await asyncio.gather(
            *(self.ctx.api.get_or_none(f"/api/v1/namespaces/{ns}/configmaps/{n}")
              for n in cm_names),
            *(self.ctx.api.get_or_none(f"/api/v1/namespaces/{ns}/secrets/{n}")
              for n in secret_names))
        for name, obj in zip(cm_names, fetched[:len(cm_names)], strict=True):
            if obj is not None:
                configmaps[name] = dict(obj.get("data") or {})
        for name, obj in zip(secret_names, fetched[len(cm_names):], strict=True):
            if obj is not None:
                secrets[name] = {k: base64.b64decode(v).decode(errors="replace")
                                 for k, v in (obj.get("data") or {}).items()}
        return configmaps, secrets

    async def _token(self) -> str | None:
        vols = self.pod["spec"].get("volumes", []) or []
        wants = any(s.get("serviceAccountToken") for v in vols
                    for s in (v.get("projected") or {}).get("sources", []) or [])
        if not wants:
            return None
        meta = self.pod["metadata"]
        sa = self.pod["spec"].get("serviceAccountName", "default")
        try:
            r = await self.ctx.api.post(
                f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                 "spec": {"expirationSeconds": 3607,
                          "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                             "name": meta["name"], "uid": meta["uid"]}}})
        except ApiError as exc:
            log.warning("token for %s: %s", self.key, exc)
            return None
        return r.get("status", {}).get("token")

    # ---- the pod's life ----------------------------------------------------------------
    async def _main(self) -> None:
        try:
            await self._life()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s failed in the runner", self.key)
        finally:
            self.done.set()

    async def _life(self) -> None:
        phase = self.pod.get("status", {}).get("phase")
        restored = Checkpoint.load(self.checkpoint_path)
        if phase in ("Succeeded", "Failed") and restored is None:
            # Finished before this runner saw it (or by another runner): nothing to run.
            await self._deleting.wait()
            await self._finish_deletion(write_status=False)
            return
        if restored is not None and restored.uid == self.uid:
            self.checkpoint = restored
        elif self.pod["metadata"].get("deletionTimestamp"):
            # Deleted before anything started: nothing to stop.
            await self._finish_deletion()
            return
        if not await self._admit():
            await self._deleting.wait()
            await self._finish_deletion()
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pod_ip = self.checkpoint.ip or self.ctx.ips.allocate(self.uid)
        self.ctx.ips.restore(self.uid, self.pod_ip)
        self.checkpoint.ip = self.pod_ip
        self.checkpoint.save(self.checkpoint_path)
        self.state.pod_ip = self.pod_ip
        self.state.start_time = utcnow()
        if self.ctx.mountns_error:
            await self.event("Warning", "FailedCreatePodSandBox",
                             "Failed to create pod sandbox: mount namespaces are not permitted "
                             f"here ({self.ctx.mountns_error})")
            self.changed()
            await self._deleting.wait()
            await self._finish_deletion()
            return
        await self._setup_sandbox()
        self.state.sandbox_ready = True
        self.changed()
        run = asyncio.create_task(self._run_containers())
        deleting = asyncio.create_task(self._deleting.wait())
        await asyncio.wait({run, deleting}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            await self._terminate()
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await run
        else:
            deleting.cancel()
            self.state.terminal = True
            # Like the kubelet's device manager, which counts only active pods: a finished
            # pod's GPUs are free now, not when its object is deleted (Jobs keep theirs).
            self.ctx.gpus.release(self.uid)
            self.changed()
            await self._deleting.wait()
        await self._finish_deletion()

    async def _admit(self) -> bool:
        want = gpu_limit(self.pod)
        try:
            if self.checkpoint.gpus:
                self.ctx.gpus.restore(self.uid, self.checkpoint.gpus)
            self.gpus = self.ctx.gpus.allocate(self.uid, want)
        except AllocationError as exc:
            self.state.admission_failure = ("UnexpectedAdmissionError", str(exc))
            self.state.terminal = True
            await self.event("Warning", "UnexpectedAdmissionError", str(exc))
            self.changed()
            return False
        self.checkpoint.gpus = [d.index for d in self.gpus]
        return True

    async def _setup_sandbox(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        spec = self.pod["spec"]
        self.hosts_path = self.dir / "etc-hosts"
        self._write_hosts([])
        if spec.get("subdomain"):
            self.spawn(self._keep_peers_current())
        log_dirs = {c["name"]: self.dir / "logs" / c["name"]
                    for c in spec.get("containers", []) + (spec.get("initContainers") or [])}
        for d in log_dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        # Off the start path: logs and port-forward objects are needed only once it runs.
        self.spawn(self._ensure_kwok_objects(log_dirs))

    async def _ensure_kwok_objects(self, log_dirs: dict[str, Path]) -> None:
        try:
            await asyncio.gather(
                kwokobjects.ensure(self.ctx.api, kwokobjects.logs_object(self.pod, log_dirs)),
                kwokobjects.ensure(self.ctx.api, kwokobjects.port_forward_object(
                    self.pod, self.pod_ip or "")))
        except ApiError as exc:
            log.warning("kwok objects for %s: %s", self.key, exc)

    def _write_hosts(self, peers: list[tuple[str, str]]) -> bool:
        spec = self.pod["spec"]
        meta = self.pod["metadata"]
        content = hostsfile.hosts_file(
            pod_ip=self.pod_ip or "", hostname=spec.get("hostname") or meta["name"],
            subdomain=spec.get("subdomain"), namespace=meta["namespace"], peers=peers,
            host_aliases=spec.get("hostAliases") or [])
        assert self.hosts_path is not None
        return hostsfile.write_hosts_file(self.hosts_path, content)

    async def _keep_peers_current(self) -> None:
        """No cluster DNS here: the pod's /etc/hosts lists every pod of its subdomain."""
        ns = self.pod["metadata"]["namespace"]
        sub = self.pod["spec"]["subdomain"]
        while not self._deleting.is_set():
            try:
                peers = await self.ctx.peers.subdomain_peers(ns, sub)
                self._write_hosts([p for p in peers if p[0] != self.pod_ip])
            except Exception as exc:  # noqa: BLE001 - keep the last file on API errors
                log.debug("peers for %s: %s", self.key, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deleting.wait(), 1.0)

    async def _run_containers(self) -> None:
        spec = self.pod["spec"]
        restored = self.checkpoint.containers
        init_specs = spec.get("initContainers") or []
        for c, st in zip(init_specs, self.state.init_containers, strict=True):
            if restored.get(c["name"], {}).get("done"):
                st.terminated = None
                continue
            w = ContainerWorker(self, c, st, init=True)
            self.workers = [w]
            st.waiting_reason = None
            term = await w.run()
            if term is None or term.exit_code != 0:
                self.state.terminal = True
                self.changed()
                return
            self.checkpoint.containers[c["name"]] = {"done": True}
            self.checkpoint.save(self.checkpoint_path)
        self.workers = []
        for c, st in zip(spec.get("containers", []), self.state.containers, strict=True):
            w = ContainerWorker(self, c, st)
            if c["name"] in restored and "pid" in restored[c["name"]]:
                w.adopt_from = restored[c["name"]]
            self.workers.append(w)
        await asyncio.gather(*(w.run() for w in self.workers))

    async def _terminate(self) -> None:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        for w in self.workers:
            w.set_terminating()
        await asyncio.gather(*(w.stop(float(grace)) for w in self.workers),
                             return_exceptions=True)

    async def _finish_deletion(self, write_status: bool = True) -> None:
        """Terminal status first (Jobs read the exit codes), then delete with grace 0."""
        self.state.terminal = True
        # Devices and the IP are free once the processes are gone (before the pod object is),
        # so a pod the scheduler places next is admitted.
        self.ctx.gpus.release(self.uid)
        self.ctx.ips.release(self.uid)
        if write_status and not self._gone:
            await self._write_status(force=True)
        self.status_task.cancel()
        if not self._gone:
            meta = self.pod["metadata"]
            try:
                await self.ctx.api.delete(
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}})
            except ApiError as exc:
                if exc.status not in (404, 409):
                    log.warning("deleting %s: %s", self.key, exc)
        self.cleanup()

    def cleanup(self) -> None:
        for t in list(self._background):
            t.cancel()
        self.ctx.gpus.release(self.uid)
        self.ctx.ips.release(self.uid)
        self.ctx.events.forget(self.uid)
        self.ctx.backoff.gc()
        cgroups.remove_pod(self.ctx.cgroups, self.uid)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- status ------------------------------------------------------------------------
    async def _status_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(STATUS_DEBOUNCE_S)
            self._dirty.clear()
            try:
                await self._write_status()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retry on the next change or tick
                log.warning("status of %s: %s", self.key, exc)
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def _write_status(self, force: bool = False) -> None:
        async with self._status_lock:
            new = pod_status(self.pod, self.state, now=utcnow())
            if not force and self._written is not None \
                    and not status_changed(self._written, new):
                return
            meta = self.pod["metadata"]
            # A strategic-merge patch against the status last read: conditions another writer
            # added since (DisruptionTarget on eviction) survive, as with the kubelet.
            patch = status_patch(self.pod.get("status") or {}, new)
            try:
                updated = await self.ctx.api.strategic_patch(
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                    {"metadata": {"uid": self.uid}, "status": patch})
            except ApiError as exc:
                if exc.status in (404, 409, 422):
                    log.info("status of %s not written: %s", self.key, exc)
                    return
                raise
            self._written = new
            self.update(updated)
