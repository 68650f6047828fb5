"""Command lines of the control-plane components, every listener on 127.0.0.1."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from devcluster.cluster.binaries import Binaries
from devcluster.cluster.pki import Pki

# kwok allocates simulated pod IPs here; the process kubelet uses 127.1.128.0/17 (one /24 per
# runner node), so the two ranges are disjoint by construction. Both stay inside loopback.
POD_CIDR = "127.1.0.0/17"
RUNNER_POD_CIDR = "127.1.128.0/17"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    runner: int = 0
    # 0 in the state of a cluster started before they existed.
    kwok_runner: int = 0
    metrics_server: int = 0
    # A bearer-token authentication webhook the apiserver asks (TokenReview, HTTP on
    # 127.0.0.1) for tokens no built-in authenticator knows. Nothing serves it by default, so
    # such tokens are simply rejected; tests serve it to issue their own tokens.
    authn_webhook: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Layout:
    """Where everything of one cluster lives inside its state dir."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def kwok_home(self) -> Path:
        return self.root / "kwok-home"

    @property
    def kwok_config(self) -> Path:
        return self.root / "kwok.yaml"

    @property
    def kwok_runner_home(self) -> Path:
        return self.root / "kwok-runner-home"

    @property
    def kwok_runner_config(self) -> Path:
        return self.root / "kwok-runner.yaml"

    @property
    def authn_webhook_kubeconfig(self) -> Path:
        return self.root / "authn-webhook.kubeconfig"

    @property
    def scheduler_config(self) -> Path:
        return self.root / "scheduler.yaml"

    @property
    def runner_dir(self) -> Path:
        return self.root / "runner"

    def cert_dir(self, component: str) -> Path:
        return self.root / "certs" / component


def etcd(b: Binaries, layout: Layout, ports: Ports) -> list[str]:
    client = f"http://{LOOPBACK}:{ports.etcd_client}"
    peer = f"http://{LOOPBACK}:{ports.etcd_peer}"
    return [
        str(b.etcd),
        "--name=node0",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=node0={peer}",
        "--listen-metrics-urls=",
        "--unsafe-no-fsync=true",
        "--auto-compaction-retention=1",
        "--quota-backend-bytes=4294967296",
        "--log-level=warn",
    ]


def authn_webhook_url(ports: Ports) -> str:
    return f"http://{LOOPBACK}:{ports.authn_webhook}/authenticate"


def authn_webhook_kubeconfig(ports: Ports) -> str:
    """The kubeconfig the apiserver uses to call the token webhook."""
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: webhook\n"
        f"clusters:\n- name: webhook\n  cluster:\n    server: {authn_webhook_url(ports)}\n"
        "users:\n- name: kube-apiserver\n  user: {}\n"
        "contexts:\n- name: webhook\n  context: {cluster: webhook, user: kube-apiserver}\n"
    )


def _authn_webhook_flags(layout: Layout, ports: Ports) -> list[str]:
    if not ports.authn_webhook:
        return []
    return [
        f"--authentication-token-webhook-config-file={layout.authn_webhook_kubeconfig}",
        "--authentication-token-webhook-version=v1",
        # No webhook cache: a test's token is valid exactly while the test says so.
        "--authentication-token-webhook-cache-ttl=0s",
    ]


def apiserver(b: Binaries, layout: Layout, ports: Ports, pki: Pki) -> list[str]:
    return [
        str(b.kube_apiserver),
        f"--etcd-servers=http://{LOOPBACK}:{ports.etcd_client}",
        f"--bind-address={LOOPBACK}",
        f"--advertise-address={LOOPBACK}",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={layout.cert_dir('apiserver')}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--client-ca-file={pki.ca_cert}",
        f"--kubelet-client-certificate={pki.cert('kwok')}",
        f"--kubelet-client-key={pki.key('kwok')}",
        f"--kubelet-certificate-authority={pki.ca_cert}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        *_authn_webhook_flags(layout, ports),
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        # The default reconciler would write 127.0.0.1 into Endpoints, which validation rejects.
        "--endpoint-reconciler-type=none",
        "--kubelet-preferred-address-types=InternalIP",
        # Aggregated APIs (metrics-server): the apiserver dials the APIService's Service. With
        # aggregator routing it would pick an EndpointSlice address, and EndpointSlices reject
        # 127.0.0.0/8; without it an ExternalName Service (127.0.0.1) is dialled as named.
        "--enable-aggregator-routing=false",
        f"--requestheader-client-ca-file={pki.front_proxy_ca}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.cert('front-proxy-client')}",
        f"--proxy-client-key-file={pki.key('front-proxy-client')}",
        "--max-requests-inflight=800",
        "--max-mutating-requests-inflight=400",
        "--profiling=false",
        "--v=1",
    ]


HPA_SYNC_PERIOD = "5s"
HPA_DOWNSCALE_STABILIZATION = "30s"
# metrics-server's scrape interval (its minimum is 10s; the runner samples usage as often).
METRIC_RESOLUTION = "10s"


def _common_component(layout: Layout, name: str, port: int) -> list[str]:
    kc = str(layout.kubeconfig)
    return [
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={port}",
        f"--cert-dir={layout.cert_dir(name)}",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
    ]


def controller_manager(b: Binaries, layout: Layout, ports: Ports, pki: Pki) -> list[str]:
    return [
        str(b.kube_controller_manager),
        *_common_component(layout, "controller-manager", ports.controller_manager),
        "--leader-elect=false",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        "--use-service-account-credentials=false",
        "--node-monitor-period=5s",
        "--node-monitor-grace-period=40s",
        # Tuned for hundreds of Deployments on 2 cores (see docs/benchmarks.md).
        "--kube-api-qps=300",
        "--kube-api-burst=600",
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
        "--concurrent-job-syncs=10",
        # The local cluster autoscales within a minute (defaults: 15s sync, 5m stabilization).
        f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
        f"--horizontal-pod-autoscaler-downscale-stabilization={HPA_DOWNSCALE_STABILIZATION}",
        "--v=1",
    ]


def scheduler_config(layout: Layout) -> str:
    kc = layout.kubeconfig
    return (
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        f"clientConnection:\n  kubeconfig: {kc}\n  qps: 300\n  burst: 600\n"
        "leaderElection:\n  leaderElect: false\n"
    )


def scheduler(b: Binaries, layout: Layout, ports: Ports) -> list[str]:
    return [
        str(b.kube_scheduler),
        f"--config={layout.scheduler_config}",
        *_common_component(layout, "scheduler", ports.scheduler),
        "--v=1",
    ]


def kwok(b: Binaries, layout: Layout, ports: Ports, pki: Pki) -> list[str]:
    return [
        str(b.kwok),
        f"--kubeconfig={layout.kubeconfig}",
        f"--config={layout.kwok_config}",
        # kwok simulates only its own nodes; runner nodes (type=local) belong to the runner.
        "--manage-nodes-with-label-selector=type=kwok",
        f"--cidr={POD_CIDR}",
        f"--node-ip={LOOPBACK}",
        f"--node-port={ports.kwok}",
        f"--server-address={LOOPBACK}:{ports.kwok}",
        f"--tls-cert-file={pki.cert('kwok')}",
        f"--tls-private-key-file={pki.key('kwok')}",
        "--node-lease-duration-seconds=40",
        "-v=WARN",
    ]


# Defaults are spelled out: kwok leaves them at 0 when options come from a config file.
KWOK_CONFIG_HEADER = """apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
metadata:
  name: modelfleet
options:
  cidr: {cidr}
  nodeIP: {ip}
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  podPlayStageParallelism: 8
  nodePlayStageParallelism: 4
  podsOnNodeSyncParallelism: 4
  enablePodsOnNodeSyncListPager: true
  enablePodsOnNodeSyncStreamWatch: true
  # Off unless set when a config file is given: without them `kubectl logs` answers 405.
  enableDebuggingHandlers: true
  enableProfilingHandler: false
  enableCRDs: [{crds}]
---
"""


# kwok serves `Metric` objects (the kubelet's /metrics/resource for metrics-server) from the
# `ResourceUsage`/`ClusterResourceUsage` objects, for the nodes and pods it manages.
METRIC_CRDS = ["Metric", "ResourceUsage", "ClusterResourceUsage"]


def kwok_config(stages_yaml: str, enable_exec: bool = False) -> str:
    """kwok's options and stages; `Exec` only on request (kwok does not authenticate callers)."""
    crds = ["Logs", "PortForward"] + (["Exec"] if enable_exec else []) + METRIC_CRDS
    return KWOK_CONFIG_HEADER.format(cidr=POD_CIDR, ip=LOOPBACK, crds=", ".join(crds)) + \
        stages_yaml


# kwok needs stages; these never match, so the runner's nodes and pods are left to the runner
# entirely. The pod stage matters: without one kwok tracks no pods, and its Metric handler
# answers "pods not found" for every node.
KWOK_RUNNER_NOOP_STAGES = """apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: runner-nodes-are-the-runners
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchLabels: {fleet.local/kwok-never: "true"}
  next: {}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: runner-pods-are-the-runners
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchLabels: {fleet.local/kwok-never: "true"}
  next: {}
"""


def kwok_runner_config(enable_exec: bool = False) -> str:
    """The second kwok: the kubelet API (logs, port-forward, exec, /metrics/resource) of the
    runner's nodes. It plays no stages and holds no leases: the runner does all of that; kwok
    only keeps the runner's nodes and pods in its caches, which its Metric handler reads."""
    crds = ["Logs", "PortForward"] + (["Exec"] if enable_exec else []) + METRIC_CRDS
    return KWOK_CONFIG_HEADER.format(cidr=RUNNER_POD_CIDR, ip=LOOPBACK,
                                     crds=", ".join(crds)).replace(
        "nodeLeaseDurationSeconds: 40", "nodeLeaseDurationSeconds: 0") + KWOK_RUNNER_NOOP_STAGES


def kwok_runner(b: Binaries, layout: Layout, ports: Ports, pki: Pki) -> list[str]:
    return [
        str(b.kwok),
        f"--kubeconfig={layout.kubeconfig}",
        f"--config={layout.kwok_runner_config}",
        "--manage-nodes-with-label-selector=type=local",
        f"--cidr={RUNNER_POD_CIDR}",
        f"--node-ip={LOOPBACK}",
        f"--node-port={ports.kwok_runner}",
        f"--server-address={LOOPBACK}:{ports.kwok_runner}",
        f"--tls-cert-file={pki.cert('kwok')}",
        f"--tls-private-key-file={pki.key('kwok')}",
        "--node-lease-duration-seconds=0",
        "-v=WARN",
    ]


def metrics_server(b: Binaries, layout: Layout, ports: Ports, pki: Pki) -> list[str]:
    """metrics-server on loopback; it scrapes each node's kubelet endpoint (kwok, or the
    runner's kwok) at the path of the node's `metrics.k8s.io/resource-metrics-path`."""
    kc = str(layout.kubeconfig)
    return [
        str(b.metrics_server),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--bind-address={LOOPBACK}",
        f"--secure-port={ports.metrics_server}",
        f"--cert-dir={layout.cert_dir('metrics-server')}",
        f"--tls-cert-file={pki.cert('metrics-server')}",
        f"--tls-private-key-file={pki.key('metrics-server')}",
        f"--requestheader-client-ca-file={pki.front_proxy_ca}",
        "--requestheader-allowed-names=front-proxy-client",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        f"--kubelet-certificate-authority={pki.ca_cert}",
        f"--kubelet-client-certificate={pki.cert('metrics-server')}",
        f"--kubelet-client-key={pki.key('metrics-server')}",
        f"--metric-resolution={METRIC_RESOLUTION}",
        "--kubelet-request-timeout=5s",
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        "--profiling=false",
        "--v=1",
    ]


def runner(layout: Layout, ports: Ports, pki: Pki, *, nodes: int, gpus: int,
           enable_exec: bool = False, cpu: str | None = None,
           memory: str | None = None) -> list[str]:
    """The process kubelet (devcluster.runner) as one more recorded component."""
    return [
        sys.executable, "-m", "devcluster.runner",
        f"--server=https://{LOOPBACK}:{ports.apiserver}",
        f"--ca={pki.ca_cert}", f"--cert={pki.cert('admin')}", f"--key={pki.key('admin')}",
        f"--state-dir={layout.runner_dir}",
        f"--nodes={nodes}", f"--gpus={gpus}",
        # The runner's nodes name the second kwok as their kubelet endpoint (an old state
        # without one: the first kwok, which then cannot serve their /metrics/resource).
        f"--kwok-port={ports.kwok_runner or ports.kwok}", f"--health-port={ports.runner}",
        *(["--enable-exec"] if enable_exec else []),
        *([f"--cpu={cpu}"] if cpu else []), *([f"--memory={memory}"] if memory else []),
    ]
