"""The runner as a cluster component: exec behind its flag, and `down` leaves no process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devcluster.cluster import LocalCluster, processes
from tests.devcluster.runner.runnerkit import container_status, pod, python_container, ready
from tests.fixtures.cluster import wait_for

pytestmark = pytest.mark.cluster


def _kubectl(local: LocalCluster, *args: str, input: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    info = local.info()
    return subprocess.run([str(info.kubectl), "--kubeconfig", str(info.kubeconfig), *args],
                          input=input, capture_output=True, text=True, timeout=60)


def test_exec_flag_and_down_leaves_no_pod_process(tmp_path: Path, cluster) -> None:  # noqa: ANN001, ARG001
    local = LocalCluster(tmp_path / "state")
    try:
        local.up(nodes=1, gpu_nodes=0, local_nodes=1, enable_exec=True, local_cpu="3",
                 local_memory="5Gi")
        node = json.loads(_kubectl(local, "get", "node", "local-0", "-o", "json").stdout)
        assert node["status"]["capacity"]["cpu"] == "3"
        assert node["status"]["capacity"]["memory"] == "5Gi"
        # (the node controller may still hold its own not-ready taint for a moment)
        assert {"key": "fleet.local/runner", "value": "true",
                "effect": "NoSchedule"} in node["spec"]["taints"]
        caps = local.runner_capabilities()
        assert caps["mountNamespaces"] == "ok"
        assert "limits" in caps
        obj = pod("sleeper", [python_container("main", "import time\nwhile True: time.sleep(1)",
                                               env=[{"name": "GREETING", "value": "hi"}])])
        obj["metadata"]["namespace"] = "default"
        assert _kubectl(local, "create", "-f", "-", input=json.dumps(obj)).returncode == 0

        def running() -> dict | None:
            out = _kubectl(local, "get", "pod", "sleeper", "-o", "json")
            p = json.loads(out.stdout) if out.returncode == 0 else {}
            return p if p and ready(p) else None

        p = wait_for(running, timeout=60, what="sleeper Ready")
        pid = int(container_status(p)["containerID"].split("//")[1].split("-")[0])
        out = wait_for(lambda: _kubectl(local, "exec", "sleeper", "--", "sh", "-c",
                                        "echo $GREETING").stdout.strip() or None,
                       timeout=20, what="kubectl exec output")
        assert out == "hi"
        pids = local.pids()
        stopped = local.down()
        assert "runner pods" in stopped and "runner" in stopped
        assert not processes.alive(pid)
        assert not any(processes.alive(p) for p in pids.values())
    finally:
        local.down()


def test_exec_is_off_by_default(cluster, namespace: str) -> None:  # noqa: ANN001
    obj = pod("noexec", [python_container("main", "import time\nwhile True: time.sleep(1)")])
    cluster.kubectl_run("create", "-n", namespace, "-f", "-", input=json.dumps(obj))
    wait_for(lambda: ready(cluster.get_json("pod", "noexec", "-n", namespace)), timeout=60,
             what="Ready")
    proc = cluster.kubectl_run("exec", "-n", namespace, "noexec", "--", "true", check=False)
    assert proc.returncode != 0
