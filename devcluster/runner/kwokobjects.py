"""kwok's per-pod Logs and PortForward objects, so `kubectl logs` and `port-forward` reach our
processes through kwok's kubelet server (see the pod-runner notes: kwok matches them by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devcluster.runner.api import ApiError, AsyncApi

GROUP = "/apis/kwok.x-k8s.io/v1alpha1"


def _meta(pod: dict[str, Any]) -> dict[str, Any]:
    m = pod["metadata"]
    return {"name": m["name"], "namespace": m["namespace"],
            "labels": {"fleet.local/runner": "true"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": m["name"],
                                 "uid": m["uid"], "blockOwnerDeletion": False}]}


def logs_object(pod: dict[str, Any], log_dirs: dict[str, Path]) -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": _meta(pod),
        "spec": {"logs": [
            {"containers": [name], "logsFile": str(d / "current.log"),
             "previousLogsFile": str(d / "previous.log"), "follow": True}
            for name, d in sorted(log_dirs.items())
        ]},
    }


def port_forward_object(pod: dict[str, Any], pod_ip: str) -> dict[str, Any]:
    ports = sorted({p["containerPort"]
                    for c in pod["spec"].get("containers", [])
                    for p in c.get("ports", []) or []
                    if p.get("protocol", "TCP") == "TCP"})
    forwards = [{"ports": [p], "target": {"port": p, "address": pod_ip}} for p in ports]
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
            "metadata": _meta(pod), "spec": {"forwards": forwards}}


def exec_object(pod: dict[str, Any], work_dir: Path,
                envs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """`kubectl exec` through kwok: runs on the host with the container's environment (not in
    the pod's mount namespace, which kwok cannot enter); only with `--enable-exec`."""
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Exec", "metadata": _meta(pod),
            "spec": {"execs": [
                {"containers": [name], "local": {
                    "workDir": str(work_dir),
                    "envs": [{"name": k, "value": v} for k, v in sorted(env.items())]}}
                for name, env in sorted(envs.items())]}}


async def ensure(api: AsyncApi, obj: dict[str, Any]) -> None:
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    plural = {"Logs": "logs", "PortForward": "portforwards", "Exec": "execs"}[obj["kind"]]
    await api.apply(f"{GROUP}/namespaces/{ns}/{plural}/{name}", obj)


async def remove(api: AsyncApi, pod: dict[str, Any]) -> None:
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    for plural in ("logs", "portforwards", "execs"):
        try:
            await api.delete(f"{GROUP}/namespaces/{ns}/{plural}/{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise
