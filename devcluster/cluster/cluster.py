"""The embedded cluster: bring the control plane up, report on it, tear it down.

Everything one cluster owns lives in its state dir (PKI, etcd data, logs,
kubeconfig, `state.json` with ports and pids). `down` stops exactly the pids it
recorded; `up` reuses a healthy running cluster.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from devcluster import hdfs as hdfs_mod
from devcluster import postgres as postgres_mod
from devcluster.cluster import binaries as binaries_mod
from devcluster.cluster import components, kubeconfig, processes
from devcluster.cluster import pki as pki_mod
from devcluster.cluster.apiclient import ApiClient, insecure_health
from devcluster.cluster.components import Layout, Ports
from devcluster.cluster.errors import ClusterError
from devcluster.cluster.nodes import (
    metrics_annotation,
    names_of,
    node_manifest,
    planned_nodes,
    summarize,
)
from devcluster.cluster.ports import free_port, in_use
from devcluster.hdfs import HdfsCluster

STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
# Start order; `down` uses the reverse.
ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
         "kwok-runner", "runner", "metrics-server")
# Components a cluster may lack (--local-nodes 0, or a state from before they existed).
OPTIONAL = ("kwok-runner", "runner", "metrics-server")
RUNTIME_CLASS = {
    "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
    "metadata": {"name": "fleet-local"},
    "handler": "process",
    # The scheduler places opted-in pods on runner nodes; nothing else tolerates their taint.
    "scheduling": {
        "nodeSelector": {"fleet.local/runner": "true"},
        "tolerations": [{"key": "fleet.local/runner", "operator": "Equal", "value": "true",
                         "effect": "NoSchedule"}],
    },
}
# Gateway API: no implementation can route to loopback pod IPs here (EndpointSlices reject
# 127.0.0.0/8), so the class names no running controller; routes are stored, never programmed.
GATEWAY_NAMESPACE, GATEWAY_NAME, GATEWAY_CLASS = "fleet-system", "fleet-gateway", "fleet"
GATEWAY_OBJECTS: tuple[tuple[dict[str, Any], str], ...] = (
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE}},
     "/api/v1/namespaces"),
    ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
      "metadata": {"name": GATEWAY_CLASS},
      "spec": {"controllerName": "modelfleet.io/none",
               "description": "local cluster: routes are stored but nothing routes them"}},
     "/apis/gateway.networking.k8s.io/v1/gatewayclasses"),
    ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
      "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
      "spec": {"gatewayClassName": GATEWAY_CLASS,
               "listeners": [{"name": "http", "protocol": "HTTP", "port": 80,
                              "allowedRoutes": {"namespaces": {"from": "All"}}}]}},
     f"/apis/gateway.networking.k8s.io/v1/namespaces/{GATEWAY_NAMESPACE}/gateways"),
)
# metrics-server as an aggregated API. The Service is an ExternalName naming 127.0.0.1: the
# apiserver (without aggregator routing) dials it as named; EndpointSlices reject loopback.
METRICS_NAMESPACE = "kube-system"
# Simulated usage of kwok's pods (runner pods get their measured usage as ResourceUsage
# objects, which win over this); the annotations set it per pod, as in kwok's
# kustomize/metrics/usage.
SIMULATED_USAGE = {
    "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterResourceUsage",
    "metadata": {"name": "simulated-usage"},
    "spec": {"usages": [{"usage": {
        "cpu": {"expression": '"kwok.x-k8s.io/usage-cpu" in pod.metadata.annotations'
                              ' ? Quantity(pod.metadata.annotations["kwok.x-k8s.io/usage-cpu"])'
                              ' : Quantity("2m")'},
        "memory": {"expression": '"kwok.x-k8s.io/usage-memory" in pod.metadata.annotations'
                                 ' ? Quantity(pod.metadata.annotations['
                                 '"kwok.x-k8s.io/usage-memory"]) : Quantity("16Mi")'},
    }}]},
}
KWOK_USAGE = "/apis/kwok.x-k8s.io/v1alpha1"


def metrics_objects(port: int, ca_bundle: str) -> list[tuple[dict[str, Any], str]]:
    """The Service, APIService and reader ClusterRole that make metrics.k8s.io answer."""
    return [
        ({"apiVersion": "v1", "kind": "Service",
          "metadata": {"name": "metrics-server", "namespace": METRICS_NAMESPACE,
                       "labels": {"k8s-app": "metrics-server"}},
          "spec": {"type": "ExternalName", "externalName": "127.0.0.1",
                   "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}},
         f"/api/v1/namespaces/{METRICS_NAMESPACE}/services"),
        ({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
          "metadata": {"name": "v1beta1.metrics.k8s.io",
                       "labels": {"k8s-app": "metrics-server"}},
          "spec": {"group": "metrics.k8s.io", "version": "v1beta1",
                   "service": {"name": "metrics-server", "namespace": METRICS_NAMESPACE,
                               "port": port},
                   "caBundle": ca_bundle, "groupPriorityMinimum": 100,
                   "versionPriority": 100}},
         "/apis/apiregistration.k8s.io/v1/apiservices"),
        # As metrics-server's own manifests: `kubectl top` for anyone who may view pods.
        ({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
          "metadata": {"name": "system:aggregated-metrics-reader", "labels": {
              "rbac.authorization.k8s.io/aggregate-to-admin": "true",
              "rbac.authorization.k8s.io/aggregate-to-edit": "true",
              "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
          "rules": [{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"],
                     "verbs": ["get", "list", "watch"]}]},
         "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
    ]


Progress = Callable[[str], None]


def _is_quantity(value: str) -> bool:
    from devcluster.runner.podenv import parse_quantity

    try:
        return parse_quantity(value) > 0
    except (ValueError, ArithmeticError):
        return False


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("MODELFLEET_CLUSTER_DIR") or Path(base) / "modelfleet" / "cluster")


@dataclass(frozen=True)
class ClusterInfo:
    state_dir: Path
    kubeconfig: Path
    kubectl: Path
    server: str
    ca_cert: Path
    ca_key: Path
    hdfs_url: str = ""  # hdfs://127.0.0.1:<rpc>, with `up --hdfs`
    webhdfs_url: str = ""  # http://127.0.0.1:<http>
    runtime_class: str = ""  # "fleet-local" when the process kubelet runs pods
    # postgresql+psycopg://USER:PASS@127.0.0.1:<port>/optuna, with `up --postgres`
    optuna_storage: str = ""


@dataclass
class ComponentStatus:
    name: str
    pid: int | None
    running: bool
    healthy: bool
    log: Path


@dataclass
class ClusterStatus:
    state_dir: Path
    components: list[ComponentStatus] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    server: str = ""

    @property
    def healthy(self) -> bool:
        return bool(self.components) and all(c.healthy for c in self.components)


class LocalCluster:
    def __init__(self, state_dir: Path | str | None = None):
        self.layout = Layout(Path(state_dir) if state_dir else default_state_dir())

    # ---- state ---------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.layout.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self.layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.layout.state_file)

    def _ports(self, state: dict[str, Any]) -> Ports:
        return Ports(**state["ports"])

    def info(self) -> ClusterInfo:
        state = self._load_state()
        if not state:
            raise ClusterError(
                f"no local cluster in {self.layout.root}; start one with `fleet cluster up`."
            )
        pki = pki_mod.Pki(self.layout.pki)
        pg = self._postgres_record() if "postgres" in state else None
        return ClusterInfo(
            state_dir=self.layout.root,
            kubeconfig=self.layout.kubeconfig,
            kubectl=Path(state["binaries"]["kubectl"]),
            server=f"https://127.0.0.1:{state['ports']['apiserver']}",
            ca_cert=pki.ca_cert,
            ca_key=pki.ca_key,
            hdfs_url=state.get("hdfs", {}).get("url", ""),
            webhdfs_url=state.get("hdfs", {}).get("webhdfs", ""),
            runtime_class="fleet-local" if state.get("localNodes") else "",
            optuna_storage=pg.url if pg is not None else "",
        )

    def hdfs(self) -> HdfsCluster | None:
        """The cluster's HDFS minicluster (`up --hdfs`) when it runs and answers."""
        if "hdfs" not in self._load_state():
            return None
        return hdfs_mod.attach(self.layout.root / "hdfs")

    @property
    def postgres_dir(self) -> Path:
        return self.layout.root / "postgres"

    def _postgres_record(self) -> postgres_mod.PostgresServer | None:
        return postgres_mod.load(self.postgres_dir)

    def postgres(self) -> postgres_mod.PostgresServer | None:
        """The cluster's PostgreSQL (`up --postgres`) when it runs and accepts its role."""
        if "postgres" not in self._load_state():
            return None
        return postgres_mod.attach(self.postgres_dir)

    def pids(self) -> dict[str, int]:
        return dict(self._load_state().get("pids", {}))

    def client(self, timeout: float = 5.0) -> ApiClient:
        info = self.info()
        pki = pki_mod.Pki(self.layout.pki)
        return ApiClient(info.server, pki.ca_cert, pki.cert("admin"), pki.key("admin"), timeout)

    # ---- health --------------------------------------------------------------------------
    def _healthy(self, name: str, ports: Ports) -> bool:
        if name == "etcd":
            try:
                r = httpx.get(f"http://127.0.0.1:{ports.etcd_client}/health",
                              timeout=2, trust_env=False)
            except httpx.HTTPError:
                return False
            return r.status_code == 200 and '"true"' in r.text
        if name == "kube-apiserver":
            try:
                with self.client(timeout=2) as c:
                    return c.get("/readyz").status_code == 200
            except (httpx.HTTPError, OSError, ClusterError):
                return False
        if name == "runner":
            try:
                r = httpx.get(f"http://127.0.0.1:{ports.runner}/healthz", timeout=2,
                              trust_env=False)
            except httpx.HTTPError:
                return False
            return r.status_code == 200
        port = {
            "kube-controller-manager": ports.controller_manager,
            "kube-scheduler": ports.scheduler,
            "kwok": ports.kwok,
            "kwok-runner": ports.kwok_runner,
            "metrics-server": ports.metrics_server,
        }[name]
        return insecure_health(f"https://127.0.0.1:{port}/healthz")

    def _wait_healthy(self, name: str, ports: Ports, pid: int, binary: str,
                      timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not processes.alive(pid, binary):
                log = self.layout.logs / f"{name}.log"
                raise ClusterError(
                    f"{name} exited during start (exit status {processes.exit_code(pid)}). "
                    f"Last lines of {log}:\n"
                    f"{processes.log_tail(log)}"
                )
            if self._healthy(name, ports):
                return
            time.sleep(0.1)
        log = self.layout.logs / f"{name}.log"
        raise ClusterError(
            f"{name} did not become healthy within {timeout:.0f}s. Last lines of {log}:\n"
            f"{processes.log_tail(log)}"
        )

    def status(self) -> ClusterStatus:
        state = self._load_state()
        result = ClusterStatus(state_dir=self.layout.root)
        if not state:
            return result
        ports = self._ports(state)
        result.server = f"https://127.0.0.1:{ports.apiserver}"
        for name in ORDER:
            pid = state.get("pids", {}).get(name)
            running = bool(pid) and processes.alive(pid, state["binaries"].get(name))
            if name in OPTIONAL and name not in state.get("argv", {}):
                continue  # a cluster started with --local-nodes 0, or before metrics-server
            result.components.append(
                ComponentStatus(name, pid, running, running and self._healthy(name, ports),
                                self.layout.logs / f"{name}.log")
            )
        if "hdfs" in state:
            pid = state["hdfs"].get("pid")
            up = self.hdfs()
            result.components.append(ComponentStatus(
                "hdfs", pid, bool(pid) and processes.alive(pid), up is not None,
                self.layout.root / "hdfs" / "minicluster.log"))
        if "postgres" in state:
            rec = self._postgres_record()
            running = rec is not None and rec.alive()
            result.components.append(ComponentStatus(
                "postgres", rec.pid if rec else state["postgres"].get("pid"), running,
                running and rec is not None and rec.ready(), self.postgres_dir / "postgres.log"))
        if result.healthy:
            with self.client() as c:
                r = c.get("/api/v1/nodes")
                if r.status_code == 200:
                    result.nodes = [summarize(n) for n in r.json().get("items", [])]
        return result

    # ---- up ------------------------------------------------------------------------------
    def up(
        self,
        *,
        nodes: int = 2,
        gpu_nodes: int = 1,
        gpus_per_node: int = 4,
        local_nodes: int = 1,
        local_gpus: int = 0,
        local_cpu: str | None = None,
        local_memory: str | None = None,
        enable_exec: bool = False,
        hdfs: bool = False,
        postgres: bool = False,
        postgres_max_connections: int | None = None,
        apiserver_port: int | None = None,
        progress: Progress | None = None,
        timeout: float = 120.0,
    ) -> ClusterInfo:
        say = progress or (lambda _msg: None)
        if min(nodes, gpu_nodes, gpus_per_node, local_nodes, local_gpus) < 0:
            raise ClusterError("--nodes, --gpu-nodes, --gpus-per-node, --local-nodes and "
                               "--local-gpus must be 0 or more.")
        if nodes + gpu_nodes + local_nodes == 0:
            raise ClusterError("a cluster needs at least one node: use --nodes 1 or more.")
        for flag, value in (("--local-cpu", local_cpu), ("--local-memory", local_memory)):
            if value is not None and not _is_quantity(value):
                raise ClusterError(f"{flag} {value!r} is not a Kubernetes quantity "
                                   "(e.g. 4, 500m, 8Gi).")
        if local_nodes > 128:
            raise ClusterError("--local-nodes is at most 128 (one /24 of 127.1.128.0/17 each).")
        if postgres:  # fail before starting anything when the server cannot be found
            try:
                postgres_mod.find_binaries()
            except postgres_mod.PostgresError as exc:
                raise ClusterError(f"PostgreSQL: {exc}") from exc
            if postgres_max_connections is not None and postgres_max_connections < 5:
                raise ClusterError("--postgres-max-connections must be at least 5.")
        status = self.status()
        # PostgreSQL is restarted on its own below; it does not make the control plane stale.
        core = [c for c in status.components if c.name != "postgres"]
        if core and all(c.healthy for c in core):
            say(f"reusing the healthy cluster in {self.layout.root}")
            self._install_gateway(binaries_mod.gateway_crds(say), timeout)
            self._ensure_nodes(nodes, gpu_nodes, gpus_per_node, say, timeout)
            self._wait_runner_nodes(len(self._load_state().get("localNodes", [])), timeout)
            if hdfs:
                self._start_hdfs(say)
            if postgres:
                self._start_postgres(say, postgres_max_connections)
            return self.info()
        if status.components and any(c.running for c in status.components):
            say("a previous cluster is partly running; stopping it first")
            self._stop_all()
        bins = binaries_mod.require()
        crds = binaries_mod.kwok_crds(say)
        metric_file = binaries_mod.kwok_metric(say)
        gateway_crds = binaries_mod.gateway_crds(say)
        started = time.monotonic()
        self.layout.root.mkdir(parents=True, exist_ok=True)
        pki = pki_mod.ensure(self.layout.pki)
        ports = self._choose_ports(apiserver_port)
        state: dict[str, Any] = {
            "ports": ports.as_dict(),
            "pids": {},
            "binaries": {n: str(getattr(bins, n.replace("-", "_"))) for n in ORDER
                         if n not in OPTIONAL}
            | {"kubectl": str(bins.kubectl), "metrics-server": str(bins.metrics_server)},
            "argv": {},
            "localNodes": [f"local-{i}" for i in range(local_nodes)],
        }
        server = f"https://127.0.0.1:{ports.apiserver}"
        kubeconfig.write(self.layout.kubeconfig, server=server, ca_cert=pki.ca_cert,
                         client_cert=pki.cert("admin"), client_key=pki.key("admin"))
        self.layout.authn_webhook_kubeconfig.write_text(components.authn_webhook_kubeconfig(ports))
        self.layout.scheduler_config.write_text(components.scheduler_config(self.layout))
        self.layout.kwok_config.write_text(
            components.kwok_config(STAGES_FILE.read_text(), enable_exec=enable_exec))
        self.layout.kwok_home.mkdir(exist_ok=True)
        self.layout.kwok_runner_config.write_text(
            components.kwok_runner_config(enable_exec=enable_exec))
        self.layout.kwok_runner_home.mkdir(exist_ok=True)
        argv = {
            "etcd": components.etcd(bins, self.layout, ports),
            "kube-apiserver": components.apiserver(bins, self.layout, ports, pki),
            "kube-controller-manager": components.controller_manager(bins, self.layout, ports,
                                                                      pki),
            "kube-scheduler": components.scheduler(bins, self.layout, ports),
            "kwok": components.kwok(bins, self.layout, ports, pki),
            "metrics-server": components.metrics_server(bins, self.layout, ports, pki),
        }
        if local_nodes:
            argv["kwok-runner"] = components.kwok_runner(bins, self.layout, ports, pki)
            state["binaries"]["kwok-runner"] = str(bins.kwok)
            argv["runner"] = components.runner(self.layout, ports, pki, nodes=local_nodes,
                                               gpus=local_gpus, enable_exec=enable_exec,
                                               cpu=local_cpu, memory=local_memory)
            state["binaries"]["runner"] = argv["runner"][0]
        state["argv"] = argv
        self._save_state(state)
        try:
            for name in ("etcd", "kube-apiserver"):
                self._start(name, state, say, timeout, started)
            # kwok reads Logs/PortForward objects; their CRDs must exist before it starts.
            self._install_crds(crds, timeout)
            self._install_gateway(gateway_crds, timeout)
            self._install_metrics(metric_file, ports, pki)
            later = ["kube-controller-manager", "kube-scheduler", "kwok"]
            if local_nodes:
                later += ["kwok-runner", "runner"]
                self._create(RUNTIME_CLASS, "/apis/node.k8s.io/v1/runtimeclasses")
            later.append("metrics-server")
            for name in later:
                self._spawn(name, state)
            for name in later:
                self._wait_healthy(name, ports, state["pids"][name], state["binaries"][name],
                                   timeout)
                say(f"  {name} ready ({time.monotonic() - started:.1f}s)")
            self._ensure_nodes(nodes, gpu_nodes, gpus_per_node, say, timeout)
            self._wait_runner_nodes(local_nodes, timeout)
            if local_nodes:
                say(f"  {local_nodes} runner node(s) Ready ({local_gpus} GPUs each); "
                    "pods with runtimeClassName: fleet-local run as processes")
            self._wait_default_service_account(timeout)
            if hdfs:
                self._start_hdfs(say)
            if postgres:
                self._start_postgres(say, postgres_max_connections)
        except BaseException:
            self._stop_all()
            raise
        say(f"cluster up in {time.monotonic() - started:.1f}s; kubeconfig {self.layout.kubeconfig}")
        return self.info()

    def _start_hdfs(self, say: Progress) -> None:
        """The HDFS minicluster as one more recorded component (its own process group)."""
        base = self.layout.root / "hdfs"
        running = self.hdfs()
        if running is None:
            base.mkdir(parents=True, exist_ok=True)
            say("  hdfs: resolving the minicluster jars (Maven; cached after the first run)")
            try:
                hdfs_mod.fetch()
                t0 = time.monotonic()
                running, proc = hdfs_mod.start(base, detach=True)
            except hdfs_mod.HdfsStartError as exc:
                raise ClusterError(f"HDFS minicluster: {exc}") from exc
            state = self._load_state()
            state["hdfs"] = {"pid": proc.pid, "url": running.url,
                             "webhdfs": running.webhdfs_url}
            self._save_state(state)
            say(f"  hdfs ready ({time.monotonic() - t0:.1f}s): {running.url}, "
                f"WebHDFS {running.webhdfs_url}")
        else:
            say(f"  reusing HDFS at {running.url}")

    def _start_postgres(self, say: Progress, max_connections: int | None) -> None:
        """PostgreSQL (Optuna's RDB storage) as one more recorded component: re-attached when
        it runs, else started again on its data (a first start runs initdb)."""
        base = self.postgres_dir
        running = postgres_mod.attach(base)
        if running is not None and max_connections in (None, running.max_connections):
            say(f"  reusing PostgreSQL at {postgres_mod.HOST}:{running.port} "
                f"(database {running.database})")
            server = running
        else:
            if running is not None:
                say(f"  postgres: restarting with max_connections={max_connections}")
            elif self._postgres_record() is not None:
                say("  postgres: starting the recorded server again (data kept)")
            t0 = time.monotonic()
            try:
                server = postgres_mod.start(base, max_connections=max_connections,
                                            progress=say)
            except postgres_mod.PostgresError as exc:
                raise ClusterError(f"PostgreSQL: {exc}") from exc
            say(f"  postgres ready ({time.monotonic() - t0:.1f}s): {postgres_mod.HOST}:"
                f"{server.port}, database {server.database}, role {server.user}, "
                f"max_connections {server.max_connections}, running as {server.os_user}")
        state = self._load_state()
        state["postgres"] = {"pid": server.pid, "port": server.port, "dir": str(base)}
        self._save_state(state)

    def _stop_postgres(self, state: dict[str, Any]) -> bool:
        if "postgres" not in state:
            return False
        rec = self._postgres_record()
        return rec is not None and rec.stop()

    def _stop_hdfs(self, state: dict[str, Any]) -> bool:
        pid = state.get("hdfs", {}).get("pid")
        if not pid or not processes.alive(pid):
            return False
        for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and processes.alive(pid):
                time.sleep(0.1)
            if not processes.alive(pid):
                break
        return True

    def _choose_ports(self, apiserver_port: int | None) -> Ports:
        if apiserver_port is not None and in_use(apiserver_port):
            raise ClusterError(
                f"port {apiserver_port} on 127.0.0.1 is already in use; pick another with "
                "--apiserver-port, or leave it out to choose a free one."
            )
        picked: set[int] = set()

        def pick() -> int:
            while True:
                p = free_port()
                if p not in picked and p != apiserver_port:
                    picked.add(p)
                    return p

        return Ports(
            etcd_client=pick(), etcd_peer=pick(),
            apiserver=apiserver_port or pick(),
            controller_manager=pick(), scheduler=pick(), kwok=pick(), runner=pick(),
            kwok_runner=pick(), metrics_server=pick(), authn_webhook=pick(),
        )

    def _spawn(self, name: str, state: dict[str, Any]) -> int:
        env = ({"HOME": str(self.layout.kwok_home)} if name == "kwok" else
               {"HOME": str(self.layout.kwok_runner_home)} if name == "kwok-runner" else None)
        pid = processes.start(name, state["argv"][name], self.layout.logs, env)
        state["pids"][name] = pid
        self._save_state(state)
        return pid

    def _start(self, name: str, state: dict[str, Any], say: Progress, timeout: float,
               started: float) -> None:
        pid = self._spawn(name, state)
        self._wait_healthy(name, self._ports(state), pid, state["binaries"][name], timeout)
        say(f"  {name} ready ({time.monotonic() - started:.1f}s)")

    def _ensure_nodes(self, nodes: int, gpu_nodes: int, gpus_per_node: int, say: Progress,
                      timeout: float) -> None:
        wanted = planned_nodes(nodes, gpu_nodes, gpus_per_node)
        with self.client() as c:
            existing = {n["metadata"]["name"] for n in c.get("/api/v1/nodes").json()["items"]}
            for name, gpus in wanted:
                if name in existing:
                    continue
                r = c.post("/api/v1/nodes", node_manifest(name, gpus=gpus))
                if r.status_code not in (200, 201, 409):
                    raise ClusterError(f"creating node {name} failed: {r.status_code} {r.text}")
            for name in names_of(wanted) & existing:
                # Nodes of a cluster from before metrics-server: the scrape path annotation.
                c.patch(f"/api/v1/nodes/{name}", {"metadata": {"annotations":
                                                                 metrics_annotation(name)}})
            deadline = time.monotonic() + timeout
            names = {n for n, _ in wanted}
            while True:
                items = c.get("/api/v1/nodes").json()["items"]
                ready = {s["name"] for s in map(summarize, items) if s["ready"]}
                if names <= ready:
                    break
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"nodes not Ready after {timeout:.0f}s: {sorted(names - ready)}; "
                        f"see {self.layout.logs / 'kwok.log'}"
                    )
                time.sleep(0.2)
        say(f"  {len(wanted)} node(s) Ready ({gpu_nodes} with {gpus_per_node} GPUs each)")

    def _create(self, obj: dict[str, Any], collection: str) -> None:
        with self.client() as c:
            r = c.post(collection, obj)
            if r.status_code not in (200, 201, 409):
                raise ClusterError(f"creating {obj['kind']} {obj['metadata']['name']} failed: "
                                   f"{r.status_code} {r.text[:300]}")

    def _install_crds(self, files: list[Path], timeout: float) -> None:
        names = []
        for f in files:
            doc = yaml.safe_load(f.read_text())
            self._create(doc, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
            names.append(doc["metadata"]["name"])
        deadline = time.monotonic() + timeout
        with self.client() as c:
            for name in names:
                while True:
                    r = c.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                    conds = {x["type"]: x["status"]
                             for x in r.json().get("status", {}).get("conditions", [])}
                    if conds.get("Established") == "True":
                        break
                    if time.monotonic() > deadline:
                        raise ClusterError(f"CRD {name} was not Established within "
                                           f"{timeout:.0f}s")
                    time.sleep(0.1)

    def _install_metrics(self, metric_file: Path, ports: Ports, pki: pki_mod.Pki) -> None:
        """kwok's Metric and the simulated usage (both kwoks read them), then the APIService
        of metrics-server; idempotent."""
        self._create(yaml.safe_load(metric_file.read_text()), f"{KWOK_USAGE}/metrics")
        self._create(SIMULATED_USAGE, f"{KWOK_USAGE}/clusterresourceusages")
        ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
        for obj, collection in metrics_objects(ports.metrics_server, ca):
            self._create(obj, collection)

    def _install_gateway(self, crds: list[Path], timeout: float) -> None:
        """Gateway API standard CRDs, then a GatewayClass and the Gateway `fleet deploy` routes
        to by default (fleet-system/fleet-gateway, routes from every namespace). Idempotent."""
        self._install_crds(crds, timeout)
        for obj, collection in GATEWAY_OBJECTS:
            self._create(obj, collection)

    def _wait_runner_nodes(self, count: int, timeout: float) -> None:
        wanted = {f"local-{i}" for i in range(count)}
        if not wanted:
            return
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                items = c.get("/api/v1/nodes").json()["items"]
                ready = {s["name"] for s in map(summarize, items) if s["ready"]}
                if wanted <= ready:
                    return
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"runner nodes not Ready after {timeout:.0f}s: {sorted(wanted - ready)}; "
                        f"see {self.layout.logs / 'runner.log'}")
                time.sleep(0.2)

    def runner_capabilities(self) -> dict[str, Any]:
        try:
            return json.loads((self.layout.runner_dir / "capabilities.json").read_text())
        except (OSError, ValueError):
            return {}

    def _wait_default_service_account(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while c.get("/api/v1/namespaces/default/serviceaccounts/default").status_code != 200:
                if time.monotonic() > deadline:
                    raise ClusterError("ServiceAccount default/default was never created; "
                                       "see the kube-controller-manager log.")
                time.sleep(0.1)

    # ---- single components (tests restart the apiserver mid-watch) -------------------------
    def stop_component(self, name: str) -> None:
        state = self._load_state()
        pid = state.get("pids", {}).get(name)
        if pid:
            processes.stop(pid, state["binaries"].get(name))

    def start_component(self, name: str, timeout: float = 60.0) -> None:
        state = self._load_state()
        if not state:
            raise ClusterError("no cluster state; run `fleet cluster up` first.")
        self._start(name, state, lambda _m: None, timeout, time.monotonic())

    def restart_component(self, name: str, timeout: float = 60.0) -> None:
        self.stop_component(name)
        self.start_component(name, timeout)

    # ---- down ----------------------------------------------------------------------------
    def _stop_all(self) -> list[str]:
        state = self._load_state()
        stopped = []
        if self._stop_postgres(state):
            stopped.append("postgres")
        if self._stop_hdfs(state):
            stopped.append("hdfs")
        for name in reversed(ORDER):
            pid = state.get("pids", {}).get(name)
            if pid and processes.alive(pid, state["binaries"].get(name)):
                processes.stop(pid, state["binaries"].get(name))
                stopped.append(name)
            if name == "runner":
                # Like a node shutdown: the runner leaves its containers, so stop them here.
                from devcluster.runner.cleanup import stop_all_pods

                if stop_all_pods(self.layout.runner_dir):
                    stopped.append("runner pods")
        if state:
            state["pids"] = {}
            self._save_state(state)
        return stopped

    def down(self, keep: bool = False) -> list[str]:
        """Stop the processes this cluster started; remove the state dir unless `keep`."""
        if not self.layout.root.exists():
            return []
        stopped = self._stop_all()
        if not keep:
            shutil.rmtree(self.layout.root, ignore_errors=True)
        return stopped

    # ---- users (RBAC tests, read-only demo users) -----------------------------------------
    def token_webhook_url(self) -> str | None:
        """Where the apiserver sends TokenReviews for bearer tokens it does not know (nothing
        listens there unless a test serves it); None for a cluster started without one."""
        state = self._load_state()
        if not state or not state.get("ports", {}).get("authn_webhook"):
            return None
        return components.authn_webhook_url(self._ports(state))

    def user_kubeconfig(self, user: str, path: Path, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for `user` (client cert signed by the cluster CA) in `groups`."""
        info = self.info()
        pki = pki_mod.Pki(self.layout.pki)
        safe = "".join(ch if ch.isalnum() else "-" for ch in user)
        cert, key = pki_mod.issue(pki, f"user-{safe}", user, organizations=groups, client=True)
        return kubeconfig.write(path, server=info.server, ca_cert=pki.ca_cert,
                                client_cert=cert, client_key=key, user=user)


