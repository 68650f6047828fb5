"""kwokctl (binary runtime) as the side-by-side peer for the cluster benchmarks.

It is built from the Go module proxy into the user cache (never the repo) and runs the
same control-plane binaries as `fleet cluster`, with `bindAddress: 127.0.0.1`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from devcluster.cluster import binaries, versions
from devcluster.cluster.apiclient import ApiClient
from devcluster.cluster.nodes import node_manifest, planned_nodes, summarize

PEER_DIR = binaries.cache_root() / "peers"
KWOKCTL = PEER_DIR / f"kwokctl-{versions.KWOK}"


def ensure_kwokctl() -> Path:
    if KWOKCTL.exists():
        return KWOKCTL
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        run = lambda *a: subprocess.run(a, cwd=work, check=True, capture_output=True)  # noqa: E731
        run("go", "mod", "init", "example.invalid/kwokctlbin")
        run("go", "get", f"sigs.k8s.io/kwok@{versions.KWOK}")
        run("go", "mod", "edit", "-tool=sigs.k8s.io/kwok/cmd/kwokctl")
        run("go", "mod", "tidy")
        run("go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(KWOKCTL),
            "sigs.k8s.io/kwok/cmd/kwokctl")
    return KWOKCTL


def _config(b: binaries.Binaries) -> str:
    return f"""apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeApiserverBinary: {b.kube_apiserver}
  kubeControllerManagerBinary: {b.kube_controller_manager}
  kubeSchedulerBinary: {b.kube_scheduler}
  kubectlBinary: {b.kubectl}
  etcdBinary: {b.etcd}
  kwokControllerBinary: {b.kwok}
  kubeVersion: {versions.KUBERNETES}
  etcdVersion: {versions.ETCD.lstrip('v')}
"""


class KwokctlCluster:
    """One kwokctl cluster in a throwaway workdir."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mf-kwokctl-"))
        self.env = {**os.environ, "HOME": str(self.home),
                    "KWOK_WORKDIR": str(self.home / "w")}
        self.kubeconfig = self.home / "kubeconfig"
        (self.home / "cfg.yaml").write_text(_config(binaries.require()))

    def _kwokctl(self, *args: str) -> None:
        subprocess.run([str(ensure_kwokctl()), "--config", str(self.home / "cfg.yaml"), *args],
                       env=self.env, check=True, capture_output=True, timeout=300)

    def up(self, nodes: int, gpu_nodes: int, gpus_per_node: int = 4) -> None:
        """Same end state as `fleet cluster up`: components ready, nodes Ready, default SA."""
        self._kwokctl("create", "cluster", "--name", "peer", "--kubeconfig",
                      str(self.kubeconfig), "--wait", "120s")
        with self.client() as c:
            wanted = planned_nodes(nodes, gpu_nodes, gpus_per_node)
            for name, gpus in wanted:
                c.post("/api/v1/nodes", node_manifest(name, gpus=gpus))
            while True:
                items = c.get("/api/v1/nodes").json()["items"]
                if sum(1 for s in map(summarize, items) if s["ready"]) >= len(wanted):
                    break
                time.sleep(0.1)
            while c.get("/api/v1/namespaces/default/serviceaccounts/default").status_code != 200:
                time.sleep(0.1)

    def client(self, timeout: float = 5.0) -> ApiClient:
        import yaml

        pki = self.home / "w" / "clusters" / "peer" / "pki"
        server = yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        return ApiClient(server, pki / "ca.crt", pki / "admin.crt", pki / "admin.key", timeout)

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-f", str(self.home / "w")], capture_output=True,
                             text=True)
        return [int(p) for p in out.stdout.split()]

    def down(self) -> None:
        try:
            self._kwokctl("delete", "cluster", "--name", "peer")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)
