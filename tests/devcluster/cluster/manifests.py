"""Small manifests for the cluster tests."""

from __future__ import annotations

from typing import Any


def deployment(name: str, *, image: str = "registry.invalid/model:1", replicas: int = 1,
               sim: str | None = None, extra_labels: dict[str, str] | None = None
               ) -> dict[str, Any]:
    pod_labels = {"app": name, **({"fleet.test/sim": sim} if sim else {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name, **(extra_labels or {})}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": "server", "image": image}]},
            },
        },
    }


def job(name: str, *, gpus: int = 0, complete_after: str | None = None,
        sim: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "train", "image": "registry.invalid/train:1"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    meta: dict[str, Any] = {"labels": {"job": name, **({"fleet.test/sim": sim} if sim else {})}}
    if complete_after:
        meta["annotations"] = {"fleet.test/complete-after": complete_after}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"metadata": meta,
                         "spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }
