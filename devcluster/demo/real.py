"""The demo's real serving deployments: the digits model in HDFS, served by pods that really run.

Beside the simulated fleet, `make demo` publishes two trained versions of the digits model to
the HDFS minicluster, deploys a latency-mode server (LiteRT) and a throughput-mode server
(micro-batching, with an HPA) on the process kubelet, and rolls a candidate whose version 3
fails its checksum out on the latency one: the on-call user finds a really stalled rollout and
rolls it back in the TUI. Every step is idempotent, so a second `make demo` is quick.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devcluster.hdfs import HdfsCluster
from fleet import errors
from fleet.kube import collection_path, deployment_path
from fleet.ops import deploy as deploy_ops
from fleet.ops.rollout import rollout

NAMESPACE = "models-live"
BASE = "/models/digits"
CANDIDATE = "/models/digits-candidate"
VERSIONS = ((1, 2), (2, 4))  # (version, epochs): two really different trainings
Say = Callable[[str], None]


@dataclass(frozen=True)
class LiveModel:
    name: str
    mode: str
    runtime: str
    hpa: bool


LIVE = (LiveModel("digits-latency", "latency", "tflite-fp32", hpa=False),
        LiveModel("digits-throughput", "throughput", "savedmodel", hpa=True))


def _exists(hdfs: HdfsCluster, path: str) -> bool:
    return hdfs.client().status(path, strict=False) is not None


def publish(hdfs: HdfsCluster, say: Say) -> tuple[str, str]:
    """Versions 1 and 2 under BASE; CANDIDATE = the same plus a version 3 with a bad checksum."""
    for version, epochs in VERSIONS:
        if _exists(hdfs, f"{BASE}/{version}/metadata.json"):
            continue
        say(f"  training digits version {version} ({epochs} epochs) into {hdfs.uri(BASE)}")
        res = subprocess.run(
            [sys.executable, "-m", "fleet.cli", "model", "demo", "--output", hdfs.uri(BASE),
             "--version", str(version), "--epochs", str(epochs),
             "--webhdfs-url", hdfs.webhdfs_url],
            capture_output=True, text=True, timeout=900, check=False,
            env=_quiet_env())
        if res.returncode != 0:
            raise RuntimeError(f"training digits version {version} failed:\n{res.stderr[-2000:]}")
    if not _exists(hdfs, f"{CANDIDATE}/3/metadata.json"):
        say(f"  publishing a candidate with a corrupt version 3 at {hdfs.uri(CANDIDATE)}")
        client = hdfs.client()
        for version in (1, 2, 3):
            src = f"{BASE}/{min(version, 2)}"
            for root, _dirs, files in client.walk(src):
                for f in files:
                    with client.read(f"{root}/{f}") as r:
                        data = r.read()
                    if version == 3 and f in ("saved_model.pb", "model_fp32.tflite"):
                        data = data[: len(data) // 2]  # truncated upload: sha256 mismatch
                    dst = f"{CANDIDATE}/{version}{root[len(src):]}/{f}"
                    client.write(dst, data, overwrite=True)
    return hdfs.uri(BASE), hdfs.uri(CANDIDATE)


def _quiet_env() -> dict[str, str]:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}


def _ensure_namespace(client: Any) -> None:
    try:
        client.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NAMESPACE}})
    except errors.FleetError as exc:
        if exc.status != 409:
            raise


def _deployment(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.get(deployment_path(NAMESPACE, name))
    except errors.FleetError as exc:
        if exc.status == 404:
            return None
        raise


def seed_live(client: Any, hdfs: HdfsCluster, say: Say) -> list[str]:
    """Deploy the live models and the stalled candidate rollout; returns what was done."""
    base, candidate = publish(hdfs, say)
    _ensure_namespace(client)
    done = []
    for m in LIVE:
        if _deployment(client, m.name) is not None:
            continue
        spec = deploy_ops.DeploySpec(
            name=m.name, namespace=NAMESPACE, model_uri=base, version="2", replicas=1,
            mode=m.mode, runtime=m.runtime, runtime_class="fleet-local", cpu="250m",
            memory="1Gi",
            min_replicas=1 if m.hpa else None, max_replicas=2 if m.hpa else None,
            cpu_target=60 if m.hpa else None,
            env=(("WEBHDFS_URL", hdfs.webhdfs_url), ("SERVING_WORKERS", "1"),
                 ("TF_CPP_MIN_LOG_LEVEL", "2")))
        say(f"  deploying {NAMESPACE}/{m.name} ({m.mode}, {m.runtime}) on the process kubelet")
        result, _ = deploy_ops.deploy(client, spec, timeout=300,
                                      on_progress=lambda line: say(f"    {line}"))
        if not result.available:
            raise RuntimeError(f"{m.name} did not become Available: {result.failure}")
        done.append(f"deployed {m.name}")
    dep = _deployment(client, LIVE[0].name)
    uri = next((e.get("value") for c in dep["spec"]["template"]["spec"]["containers"]
                for e in c.get("env", []) if e.get("name") == "MODEL_URI"), None)
    if uri != candidate:
        say(f"  rolling {LIVE[0].name} out to {candidate} (its version 3 is corrupt: the "
            "rollout stalls, the old pod keeps serving)")
        rollout(client, NAMESPACE, LIVE[0].name, model_uri=candidate, version="3",
                reason="demo: candidate from the nightly retrain (version 3)")
        done.append(f"stalled rollout on {LIVE[0].name}")
    return done


def live_pods(client: Any) -> list[dict[str, Any]]:
    return client.get(collection_path("v1", "pods", NAMESPACE)).get("items", [])
