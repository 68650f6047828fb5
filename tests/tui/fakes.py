"""An in-memory backend with the KubeBackend interface, for app and snapshot tests.

Real behaviour is covered by the cluster tests in test_tui_cluster.py. The fake records what
the app passes (generation, undo candidates) so tests can check it, refuses a stale
generation like `fleet.ops.rollback`, and builds history with fleet core's `revisions_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fleet.events import FleetChange
from fleet.model import (
    ConnectionState,
    EventRecord,
    JobState,
    ModelDeployment,
    OpResult,
    ProbeHealth,
    ProbeReport,
    ProbeSpec,
    RolloutState,
    TrainingJob,
)

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def deployment(i: int, ns: str = "team-a", **kw) -> ModelDeployment:
    base = dict(
        namespace=ns, name=f"model-{i:04d}", uid=f"uid-{ns}-{i}", model=f"model-{i % 7}",
        model_uri=f"hdfs://nn/models/model-{i % 7}/v{1 + i % 3}", version=f"v{1 + i % 3}",
        image="registry.local/serving:1.4", revision=1 + i % 3, desired=2, updated=2, ready=2,
        available=2, rollout_state=RolloutState.COMPLETE, probe_health=ProbeHealth.OK,
        created=NOW - timedelta(days=3, minutes=i), change_cause=f"release v{1 + i % 3}",
        resource_version=str(100 + i), labels={"team": ns, "tier": "prod" if i % 2 else "canary"},
    )
    base.update(kw)
    return ModelDeployment(**base)


def job(i: int, ns: str = "team-a", **kw) -> TrainingJob:
    base = dict(namespace=ns, name=f"train-{i:03d}", uid=f"job-{i}", kind="training",
                completions=1, active=1, succeeded=0, failed=0, gpus=4, state=JobState.RUNNING,
                created=NOW - timedelta(hours=2))
    base.update(kw)
    return TrainingJob(**base)


class FakeBackend:
    """Records calls; `emit` pushes a change to the app like the watch cache would."""

    def __init__(self, deployments: list[ModelDeployment], jobs: list[TrainingJob] | None = None,
                 denied: dict[tuple[str, str], str] | None = None) -> None:
        self.records = {d.key: d for d in deployments}
        self.job_records = {j.key: j for j in (jobs or [])}
        self.denied = denied or {}
        self.calls: list[tuple] = []
        self.on_change: Callable[[FleetChange], None] | None = None
        self.context = "fake-context"
        self.kubeconfig = None
        self.generations: dict[tuple[str, str], int] = {}  # current metadata.generation
        self.sidecars: set[tuple[str, str]] = set()
        self.candidates: list = []  # what undo_candidates answers
        self.stopped = 0

    def connect(self) -> None:
        pass

    def start(self, on_change: Callable[[FleetChange], None]) -> None:
        self.on_change = on_change

    def snapshot(self) -> FleetChange:
        return FleetChange(list(self.records.values()), [], list(self.job_records.values()), [],
                           ConnectionState.SYNCED)

    def stop(self) -> None:
        self.stopped += 1
        self.on_change = None

    def emit(self, change: FleetChange) -> None:
        assert self.on_change is not None
        self.on_change(change)

    def update(self, key, **kw) -> None:
        rec = replace(self.records[key], **kw)
        self.records[key] = rec
        self.emit(FleetChange(deployments_upserted=[rec]))

    def contexts(self) -> list[str]:
        return ["fake-context"]

    def list_namespaces(self) -> list[str]:
        return sorted({k[0] for k in self.records})

    def can_i(self, action: str, namespace: str) -> tuple[bool, str]:
        why = self.denied.get((namespace, action))
        return (why is None, why or "")

    def raw_objects(self, ns: str, name: str) -> tuple[dict, list[dict]]:
        """The Deployment and its ReplicaSets as the API returns them (revisions 1..current);
        `sidecars` puts an istio proxy first in the pod template, as the injector does."""
        d = self.records[(ns, name)]
        sidecar = [{"name": "istio-proxy", "image": "istio/proxyv2:1.24"}] if (
            d.key in self.sidecars) else []

        def template(rev: int) -> dict:
            return {"metadata": {"labels": {"app.kubernetes.io/version": f"v{rev}",
                                            "pod-template-hash": f"h{rev}"}},
                    "spec": {"containers": [*sidecar, {
                        "name": "server", "image": d.image, "env": [
                            {"name": "MODEL_URI",
                             "value": f"hdfs://nn/models/{d.model}/v{rev}"}]}]}}

        rss = [{"metadata": {"name": f"{name}-rs{rev}", "namespace": ns,
                             "creationTimestamp": "2026-11-24T04:00:00Z",
                             "ownerReferences": [{"controller": True, "uid": d.uid}],
                             "annotations": {"deployment.kubernetes.io/revision": str(rev),
                                             "kubernetes.io/change-cause": f"release v{rev}"}},
                "spec": {"template": template(rev)}} for rev in range(1, d.revision + 1)]
        dep = {"metadata": {"name": name, "namespace": ns, "uid": d.uid,
                            "generation": self.generation(d.key)},
               "spec": {"template": template(d.revision)}}
        return dep, rss

    def generation(self, key) -> int:
        return self.generations.get(key, self.records[key].generation or 10)

    def history(self, ns: str, name: str) -> tuple[int, list]:
        """Fleet core's history (`revisions_of`) over the fake's raw objects."""
        from fleet.ops.history import revisions_of

        self.calls.append(("history", ns, name, {}))
        dep, rss = self.raw_objects(ns, name)
        return self.generation((ns, name)), revisions_of(dep, rss)

    def pods(self, ns: str, name: str) -> list:
        return []

    def events(self, ns: str, name: str) -> list:
        return [EventRecord(ns, f"{name}.1", "Warning", "Unhealthy", "Readiness probe failed: "
                            "HTTP probe failed with statuscode: 503", 4, NOW, NOW, "Pod",
                            f"{name}-abc", "uid")]

    def probes(self, ns: str, name: str) -> ProbeReport:
        spec = ProbeSpec("server", "readiness", "http-get", "http://:8080/v1/models/m", 5, 1, 10,
                         1, 3, "")
        return ProbeReport(ns, name, (spec,), (), tuple(self.events(ns, name)), ProbeHealth.OK)

    def _op(self, what: str, ns: str, name: str, **kw) -> OpResult:
        self.calls.append((what, ns, name, kw))
        return OpResult(ns, name, f"deployment.apps/{name} {what}", True)

    def rollback(self, ns, name, to_revision=0, generation=None):
        """Like `fleet.ops.rollback`: refused when `generation` is given and the spec moved."""
        if generation is not None and generation != self.generation((ns, name)):
            from fleet.errors import Conflict

            self.calls.append(("refused", ns, name, {"to_revision": to_revision,
                                                     "generation": generation}))
            raise Conflict(f'deployments.apps "{name}" was changed after it was read '
                           f"(generation {generation} -> {self.generation((ns, name))}); "
                           "nothing was rolled back", status=409)
        return self._op("rolled back", ns, name, to_revision=to_revision, generation=generation)

    def rollout(self, ns, name, model_uri, image, reason, version=None):
        return self._op("rolled out", ns, name, model_uri=model_uri, image=image)

    def scale(self, ns, name, replicas, current=None):
        return self._op("scaled", ns, name, replicas=replicas)

    def restart(self, ns, name):
        return self._op("restarted", ns, name)

    def pause(self, ns, name):
        return self._op("paused", ns, name)

    def resume(self, ns, name):
        return self._op("resumed", ns, name)

    def undo_candidates(self, within):
        self.calls.append(("undo_candidates", "", "", {"within": within}))
        return list(self.candidates)

    def undo_wave(self, candidates):
        """Records the candidates it is handed, then rolls each back with its generation."""
        from fleet.ops.bulk import run_bulk

        self.calls.append(("undo_wave", "", "", {"candidates": list(candidates)}))
        by_key = {(c.namespace, c.name): c for c in candidates}
        return run_bulk(lambda ns, name: self.rollback(
            ns, name, by_key[(ns, name)].previous_revision, by_key[(ns, name)].generation),
            list(by_key))

    def run_bulk(self, operation, targets):
        from fleet.ops.bulk import run_bulk

        return run_bulk(operation, targets)
