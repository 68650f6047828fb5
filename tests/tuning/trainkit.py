"""Helpers for tests that run training Jobs on the process kubelet with data on HDFS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fixtures.cluster import TestCluster, wait_for

REPO = Path(__file__).resolve().parents[2]


def fleet(cluster: TestCluster, hdfs: Any, *args: str, timeout: float = 600
          ) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "FLEET_WEBHDFS_URL": hdfs.webhdfs_url,
           "FLEET_RUNTIME_CLASS": "fleet-local", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def job(cluster: TestCluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.get_json("job", name, "-n", ns)


def job_pods(cluster: TestCluster, ns: str, name: str) -> list[dict[str, Any]]:
    return cluster.get_json("pods", "-n", ns, "-l",
                            f"batch.kubernetes.io/job-name={name}")["items"]


def progress(j: dict[str, Any]) -> dict[str, Any]:
    raw = (j["metadata"].get("annotations") or {}).get("modelfleet.io/progress", "{}")
    return json.loads(raw)


def wait_progress(cluster: TestCluster, ns: str, name: str, pred, timeout: float = 240,
                  what: str = "progress") -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        p = progress(job(cluster, ns, name))
        return p if pred(p) else None

    return wait_for(check, timeout=timeout, interval=0.5, what=f"{what} of job {ns}/{name}")


def condition(j: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (j.get("status") or {}).get("conditions") or []
                 if c["type"] == type_ and c["status"] == "True"), {})


def wait_job_done(cluster: TestCluster, ns: str, name: str, timeout: float = 300
                  ) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        j = job(cluster, ns, name)
        return j if condition(j, "Complete") or condition(j, "Failed") else None

    return wait_for(check, timeout=timeout, interval=0.5, what=f"job {ns}/{name} to finish")


def logs(cluster: TestCluster, ns: str, pod: str) -> str:
    return cluster.kubectl_run("logs", "-n", ns, pod, check=False).stdout
