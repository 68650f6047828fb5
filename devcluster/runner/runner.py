"""The process kubelet: owns its nodes, watches the pods bound to them, runs each one.

One asyncio loop; one `PodWorker` per pod. Pods reach a runner node only through the
scheduler (the `fleet-local` RuntimeClass adds the node selector and toleration), so the
runner never places pods itself. After a restart it lists its pods, adopts the processes
recorded in each pod's checkpoint, and stops processes of pods that no longer exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devcluster.runner import bindguard, cgroups, node, process, usage
from devcluster.runner.api import ApiError, AsyncApi
from devcluster.runner.backoff import CrashLoopBackoff
from devcluster.runner.events import EventRecorder
from devcluster.runner.gpus import GpuAllocator, discover
from devcluster.runner.images import ImageTable
from devcluster.runner.pod import Checkpoint, PodWorker, pod_dir_name

log = logging.getLogger(__name__)


class PeerDirectory:
    """Pods of a namespace by subdomain, listed at most once a second per namespace."""

    def __init__(self, api: AsyncApi) -> None:
        self.api = api
        self._cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def subdomain_peers(self, namespace: str, subdomain: str) -> list[tuple[str, str]]:
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            at, pods = self._cache.get(namespace, (0.0, []))
            if time.monotonic() - at > 0.9:
                pods = (await self.api.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]
                self._cache[namespace] = (time.monotonic(), pods)
        peers = []
        for p in pods:
            spec, status = p["spec"], p.get("status", {})
            if spec.get("subdomain") == subdomain and status.get("podIP") \
                    and not p["metadata"].get("deletionTimestamp"):
                peers.append((status["podIP"], spec.get("hostname") or p["metadata"]["name"]))
        return sorted(peers, key=lambda x: x[1])


@dataclass
class RunnerContext:
    """What every pod worker of one node shares."""

    api: AsyncApi
    node: node.NodeSpec
    state_dir: Path
    images: ImageTable
    gpus: GpuAllocator
    ips: node.PodIps
    cgroups: cgroups.CgroupSupport
    events: EventRecorder
    backoff: CrashLoopBackoff
    peers: PeerDirectory
    apiserver_port: int
    mountns_error: str | None
    enable_exec: bool = False
    # The compiled bind guard preloaded into every container (None only in unit tests).
    bind_guard: Path | None = None
    pods: dict[str, PodWorker] = field(default_factory=dict)


@dataclass(frozen=True)
class RunnerConfig:
    server: str
    ca: Path
    cert: Path
    key: Path
    state_dir: Path
    nodes: int = 1
    gpus: int = 0
    kwok_port: int = 0
    health_port: int = 0
    cpu: str | None = None
    memory: str | None = None
    images: Path | None = None
    enable_exec: bool = False


class Runner:
    def __init__(self, cfg: RunnerConfig) -> None:
        self.cfg = cfg
        self.api = AsyncApi(cfg.server, cfg.ca, cfg.cert, cfg.key)
        self.contexts: list[RunnerContext] = []
        self._stop = asyncio.Event()

    def _capabilities(self, support: cgroups.CgroupSupport, mountns: str | None) -> None:
        """Written for `fleet cluster status`: what this runner can enforce here."""
        info = {"limits": support.summary,
                "mountNamespaces": "ok" if mountns is None else mountns,
                "pid": os.getpid()}
        path = self.cfg.state_dir / "capabilities.json"
        path.write_text(json.dumps(info))

    async def run(self) -> None:
        cfg = self.cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        # Before anything registers: without the guard no pod may start (raises with the fix).
        guard = bindguard.build(cfg.state_dir)
        support = cgroups.detect()
        mountns = process.check_mount_namespaces()
        self._capabilities(support, mountns)
        images = ImageTable.load(cfg.images)
        host = node.host_capacity()
        capacity = {**host, **({"cpu": cfg.cpu} if cfg.cpu else {}),
                    **({"memory": cfg.memory} if cfg.memory else {})}
        backoff = CrashLoopBackoff()
        peers = PeerDirectory(self.api)
        port = int(cfg.server.rsplit(":", 1)[1])
        self.blocks = node.IpBlocks()
        for i in range(cfg.nodes):
            devices = discover(cfg.gpus if cfg.gpus else None) if cfg.gpus else []
            existing = await self.api.get_or_none(f"/api/v1/nodes/{node.node_name(i)}")
            block = self.blocks.claim(node.block_of((existing or {}).get("spec", {})
                                                    .get("podCIDR")))
            spec = node.NodeSpec(i, len(devices), cfg.kwok_port, capacity, block)
            await node.register(self.api, spec)
            self.contexts.append(RunnerContext(
                api=self.api, node=spec, state_dir=cfg.state_dir / spec.name, images=images,
                gpus=GpuAllocator(devices), ips=node.PodIps(block), cgroups=support,
                events=EventRecorder(self.api, spec.name), backoff=backoff, peers=peers,
                apiserver_port=port, mountns_error=mountns, enable_exec=cfg.enable_exec,
                bind_guard=guard))
        tasks = [asyncio.create_task(node.heartbeat(self.api, c.node)) for c in self.contexts]
        tasks += [asyncio.create_task(self._watch(c)) for c in self.contexts]
        tasks.append(asyncio.create_task(usage.UsageReporter(
            self.api, {c.node.name: c.state_dir for c in self.contexts}, support).run()))
        health = await asyncio.start_server(self._health, "127.0.0.1", cfg.health_port)
        log.info("runner up: %d node(s), %s", len(self.contexts), support.summary)
        try:
            await self._stop.wait()
        finally:
            health.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.api.close()

    def stop(self) -> None:
        """Stop the runner, leaving pod processes running (a restart adopts them)."""
        self._stop.set()

    async def _health(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    # ---- the pod watch -----------------------------------------------------------------
    async def _watch(self, ctx: RunnerContext) -> None:
        selector = {"fieldSelector": f"spec.nodeName={ctx.node.name}"}
        first = True
        while True:
            try:
                listed = await self.api.get("/api/v1/pods", **selector)
                uids = set()
                for pod in listed["items"]:
                    uids.add(pod["metadata"]["uid"])
                    self._apply(ctx, "MODIFIED", pod)
                for uid in [u for u in ctx.pods if u not in uids]:
                    ctx.pods[uid].removed()
                if first:
                    self._stop_orphans(ctx, listed["items"])
                    first = False
                rv = listed["metadata"]["resourceVersion"]
                while True:
                    async for ev in self.api.watch("/api/v1/pods",
                                                   {**selector, "resourceVersion": rv,
                                                    "timeoutSeconds": 300}):
                        kind = ev["type"]
                        obj = ev["object"]
                        if kind == "ERROR":
                            raise ApiError(obj.get("code", 500), obj.get("message", ""), "watch")
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if kind != "BOOKMARK":
                            self._apply(ctx, kind, obj)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status != 410:
                    log.warning("pod watch on %s: %s", ctx.node.name, exc)
                    await asyncio.sleep(1.0)
            except Exception as exc:  # noqa: BLE001 - the API went away: relist when back
                log.warning("pod watch on %s: %s", ctx.node.name, exc)
                await asyncio.sleep(1.0)

    def _apply(self, ctx: RunnerContext, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        worker = ctx.pods.get(uid)
        if kind == "DELETED":
            if worker is not None:
                worker.removed()
            return
        if worker is None:
            worker = PodWorker(ctx, pod)
            ctx.pods[uid] = worker
            worker.task.add_done_callback(lambda _t, u=uid: ctx.pods.pop(u, None))
        else:
            worker.update(pod)

    def _stop_orphans(self, ctx: RunnerContext, pods: list[dict[str, Any]]) -> None:
        """Processes recorded for pods that no longer exist are stopped, never left behind."""
        known = {pod_dir_name(p) for p in pods}
        root = ctx.state_dir / "pods"
        if not root.is_dir():
            return
        for d in root.iterdir():
            if d.name in known:
                continue
            cp = Checkpoint.load(d / "checkpoint.json")
            for rec in (cp.containers.values() if cp else []):
                if "pid" in rec and process.proc_start_time(rec["pid"]) == rec["start_time"]:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(rec["pid"], signal.SIGKILL)
            if cp:
                cgroups.remove_pod(ctx.cgroups, cp.uid)
            shutil.rmtree(d, ignore_errors=True)
