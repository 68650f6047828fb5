"""Helpers for tests that run real pods on the process kubelet (RuntimeClass fleet-local)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.fixtures.cluster import TestCluster, wait_for


def pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": spec.pop("labels", {"app": name})},
        "spec": {"runtimeClassName": "fleet-local", "terminationGracePeriodSeconds": 5,
                 "automountServiceAccountToken": False, "containers": containers, **spec},
    }


def python_container(name: str, code: str, **extra: Any) -> dict[str, Any]:
    """A `python:3.11` container running `code` (the runner maps it to the project's Python)."""
    return {"name": name, "image": "python:3.11", "command": ["python", "-u", "-c", code],
            **extra}


def create(cluster: TestCluster, ns: str, obj: dict[str, Any]) -> None:
    cluster.kubectl_run("create", "-n", ns, "-f", "-", input=json.dumps(obj))


def get_pod(cluster: TestCluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.get_json("pod", name, "-n", ns)


def container_status(p: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    statuses = p.get("status", {}).get("containerStatuses", []) or [{}]
    if name is None:
        return statuses[0]
    return next(s for s in statuses if s.get("name") == name)


def condition(p: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in p.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def wait_pod(cluster: TestCluster, ns: str, name: str, pred, timeout: float = 60.0,
             what: str = "pod state") -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        proc = cluster.kubectl_run("get", "pod", name, "-n", ns, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        p = json.loads(proc.stdout)
        return p if pred(p) else None

    return wait_for(check, timeout=timeout, what=f"{what} of {ns}/{name}")


def ready(p: dict[str, Any]) -> bool:
    return condition(p, "Ready").get("status") == "True"


def events(cluster: TestCluster, ns: str, name: str) -> list[dict[str, Any]]:
    doc = cluster.get_json("events", "-n", ns, "--field-selector",
                           f"involvedObject.name={name}")
    return sorted(doc["items"], key=lambda e: e.get("firstTimestamp") or "")


def wait_event(cluster: TestCluster, ns: str, name: str, reason: str, contains: str = "",
               timeout: float = 60.0) -> dict[str, Any]:
    return wait_for(
        lambda: next((e for e in events(cluster, ns, name)
                      if e["reason"] == reason and contains in e["message"]), None),
        timeout=timeout, what=f"event {reason} {contains!r} on {ns}/{name}")


def wait_gone(cluster: TestCluster, ns: str, name: str, timeout: float = 60.0) -> float:
    start = time.monotonic()
    wait_for(lambda: cluster.kubectl_run("get", "pod", name, "-n", ns,
                                         check=False).returncode != 0,
             timeout=timeout, what=f"{ns}/{name} deleted")
    return time.monotonic() - start


def evict(cluster: TestCluster, ns: str, name: str) -> None:
    """POST pods/NAME/eviction (policy/v1), as `kubectl drain` does for each pod."""
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": ns}}
    cluster.kubectl_run("create", "--raw", f"/api/v1/namespaces/{ns}/pods/{name}/eviction",
                        "-f", "-", input=json.dumps(body))


def pod_pid(p: dict[str, Any]) -> int:
    """The shim's pid (the container's process-group leader) from a runner containerID."""
    return int(container_status(p)["containerID"].split("//")[1].split("-")[0])


def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    out = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out += descendants(int(p.name))
    return out
