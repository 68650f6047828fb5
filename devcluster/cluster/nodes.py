"""Simulated nodes: plain ones and ones advertising `nvidia.com/gpu`."""

from __future__ import annotations

from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
# metrics-server scrapes this path of the node's kubelet endpoint (kwok's Metric object).
METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"


def metrics_annotation(name: str) -> dict[str, str]:
    return {METRICS_PATH_ANNOTATION: f"/metrics/nodes/{name}/metrics/resource"}


def names_of(wanted: list[tuple[str, int]]) -> set[str]:
    return {n for n, _ in wanted}


def node_manifest(name: str, *, gpus: int = 0) -> dict[str, Any]:
    capacity = {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "1Ti", "pods": "1000"}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        "modelfleet.dev/simulated": "true",
    }
    if gpus:
        capacity[GPU_RESOURCE] = str(gpus)
        labels["nvidia.com/gpu.present"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"kwok.x-k8s.io/node": "fake", **metrics_annotation(name)}},
        "spec": {},
        # Nodes accept status on create; kwok's node-initialize keeps capacity/allocatable.
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def planned_nodes(nodes: int, gpu_nodes: int, gpus_per_node: int) -> list[tuple[str, int]]:
    """(name, GPUs) of every node a cluster of this shape has."""
    return [(f"node-{i}", 0) for i in range(nodes)] + [
        (f"gpu-node-{i}", gpus_per_node) for i in range(gpu_nodes)
    ]


def summarize(node: dict[str, Any]) -> dict[str, Any]:
    conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
    cap = node.get("status", {}).get("capacity", {})
    return {
        "name": node["metadata"]["name"],
        "ready": conds.get("Ready") == "True",
        "gpus": int(cap.get(GPU_RESOURCE, 0)),
        "cpu": cap.get("cpu", "?"),
    }
