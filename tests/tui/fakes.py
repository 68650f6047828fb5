"""An in-memory backend with the KubeBackend interface, for app and snapshot tests.

Real behaviour is covered by the cluster tests in test_tui_cluster.py. The fake records what
the app passes (generation, undo candidates) so tests can check it, refuses a stale
generation like `fleet.ops.rollback`, and builds history with fleet core's `revisions_of`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fleet.events import FleetChange
from fleet.model import (
    ConnectionState,
    EventRecord,
    JobState,
    ModelDeployment,
    OpResult,
    PodSummary,
    ProbeHealth,
    ProbeReport,
    ProbeSpec,
    Promotion,
    RetrainSchedule,
    RolloutState,
    SweepSummary,
    SweepTrials,
    TrainingJob,
    TrainingProgress,
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


def progress(epoch: int | None = 3, epochs: int | None = 10, **kw) -> TrainingProgress:
    base = dict(phase="training", epoch=epoch, epochs=epochs, metric="accuracy", value=0.931,
                loss=0.21, updated=NOW - timedelta(seconds=20))
    base.update(kw)
    return TrainingProgress(**base)


def schedule(i: int, ns: str = "team-a", **kw) -> RetrainSchedule:
    base = dict(namespace=ns, name=f"retrain-{i:02d}", model=f"model-{i % 7}",
                deployment=f"model-{i:04d}", schedule="0 3 * * *",
                last_schedule=NOW - timedelta(hours=1), last_successful=NOW - timedelta(hours=1),
                next_run=NOW + timedelta(hours=23),
                last_promotion=Promotion("promoted", "accuracy 0.962 > 0.948 (live)",
                                         f"retrain-{i:02d}-29001", NOW - timedelta(minutes=50),
                                         f"hdfs://nn/models/model-{i % 7}/v4"),
                uid=f"cj-{i}", resource_version=str(500 + i), created=NOW - timedelta(days=10))
    base.update(kw)
    return RetrainSchedule(**base)


PARAMS = ("learning_rate", "batch_size", "conv1", "dense", "dropout")


def sweep(i: int, ns: str = "team-a", summary: dict | None = None, **kw) -> TrainingJob:
    """A sweep's Job record: 100 trials, 4 worker pods, maximizing val_accuracy."""
    s = dict(state="running", max_trials=100, started=48, complete=41, running=3, pruned=3,
             failed=1, metric="val_accuracy", direction="maximize", best_value=0.9712,
             best_trial=37, updated=NOW - timedelta(seconds=3), params=PARAMS, parallelism=4,
             gpus=1, deployment="digits-latency")
    s.update(summary or {})
    base = dict(namespace=ns, name=f"sweep-{i:02d}", uid=f"sweep-{i}", kind="sweep-worker",
                completions=4, active=4, ready=3, succeeded=0, failed=0, gpus=4,
                state=JobState.RUNNING, created=NOW - timedelta(hours=3),
                resource_version=str(700 + i), sweep=SweepSummary(**s))
    base.update(kw)
    return TrainingJob(**base)


def trial_row(n: int, state: str = "complete", epochs: int = 5, **kw) -> dict:
    """One `trials.json` row as the workers write it (deterministic synthetic values)."""
    value = round(0.80 + ((n * 37) % 100) / 600, 6)
    steps = [[e, round(value - (epochs - e) * 0.02 - (n % 7) * 0.001, 6)]
             for e in range(1, (epochs if state != "pruned" else 2) + 1)]
    start = NOW - timedelta(minutes=2 + n % 5 if state == "running"
                            else 2 * (200 - n % 200) + 5)
    row = {"n": n, "state": state, "value": value if state == "complete" else None,
           "params": {"learning_rate": round(1e-4 * (1 + n % 97), 8),
                      "batch_size": (32, 64, 128)[n % 3], "conv1": 8 * (1 + n % 4),
                      "dense": 32 + (n * 13) % 224, "dropout": round((n % 6) / 10, 1)},
           "pod": f"sweep-01-{n % 4}-x{n % 4}bc", "index": n % 4,
           "steps": steps if state != "waiting" else [],
           "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
           "end": None if state in ("running", "waiting")
           else (start + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "model_uri": f"hdfs://nn/models/digits/{n + 1}" if state == "complete" else "",
           "holdout": None, "reason": "CUDA error: out of memory" if state == "fail" else "",
           "retry_of": None}
    row.update(kw)
    return row


def trial_states(count: int, running: int = 3) -> list[str]:
    states = []
    for n in range(count):
        if n >= count - running:
            states.append("running")
        elif n % 13 == 5:
            states.append("pruned")
        elif n % 29 == 11:
            states.append("fail")
        else:
            states.append("complete")
    return states


def trials_configmap(name: str, ns: str, rows: list[dict], importances: dict | None = None,
                     rv: str = "1") -> dict:
    import json

    return {"metadata": {"name": f"{name}-trials", "namespace": ns, "resourceVersion": rv},
            "data": {"trials.json": json.dumps(rows, separators=(",", ":")),
                     "importances.json": json.dumps(importances or {})}}


def synthetic_trials(name: str, ns: str, count: int, running: int = 3, rv: str = "1",
                     importances: dict | None = None) -> SweepTrials:
    """`count` trials through the same derivation as the real ConfigMap read."""
    from fleet import derive

    rows = [trial_row(n, st) for n, st in enumerate(trial_states(count, running))]
    imp = {"learning_rate": 0.52, "dropout": 0.21, "dense": 0.14, "conv1": 0.08,
           "batch_size": 0.05} if importances is None else importances
    return derive.sweep_trials(trials_configmap(name, ns, rows, imp, rv))


def sweep_pod(name: str, ns: str = "team-a", phase: str = "Running", gpu_starved: bool = False,
              job: str = "sweep-01") -> PodSummary:
    from fleet.model import PodCondition

    conds = (PodCondition("PodScheduled", "False", "Unschedulable",
                          "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."),) \
        if gpu_starved else (PodCondition("Ready", "True" if phase == "Running" else "False"),)
    return PodSummary(ns, name, f"u-{name}", phase, phase == "Running", phase == "Running",
                      "" if gpu_starved else "gpu-node-0", "10.0.0.7", job,
                      NOW - timedelta(hours=3), conditions=conds)


class FakeBackend:
    """Records calls; `emit` pushes a change to the app like the watch cache would."""

    def __init__(self, deployments: list[ModelDeployment], jobs: list[TrainingJob] | None = None,
                 denied: dict[tuple[str, str], str] | None = None,
                 schedules: list[RetrainSchedule] | None = None) -> None:
        self.records = {d.key: d for d in deployments}
        self.job_records = {j.key: j for j in (jobs or [])}
        self.schedule_records = {s.key: s for s in (schedules or [])}
        self.denied = denied or {}
        self.calls: list[tuple] = []
        self.on_change: Callable[[FleetChange], None] | None = None
        self.context = "fake-context"
        self.kubeconfig: str | None = None
        self.scope = None  # no `fleet.scope.WatchScope`: every namespace, nothing forbidden
        self.generations: dict[tuple[str, str], int] = {}  # current metadata.generation
        self.sidecars: set[tuple[str, str]] = set()
        self.candidates: list = []  # what undo_candidates answers
        self.stopped = 0
        self.pod_list: dict[tuple[str, str], list[PodSummary]] = {}  # (ns, deployment) -> pods
        self.containers: dict[str, list[str]] = {}  # pod -> containers (default: ["server"])
        # (pod, container, previous) -> one list of lines per stream opening, in order; a
        # stream ends after its lines (the server closed it), unless `hold` keeps it open
        self.logs: dict[tuple[str, str, bool], list[list[str]]] = {}
        self.log_errors: dict[tuple[str, str, bool], Exception] = {}
        self.log_opens: list[tuple[str, str, str, object]] = []  # (ns, pod, container, opts)
        self.streams: list[FakeLogStream] = []
        self.hold = True  # follow streams stay open after their lines until closed
        self.hpas: dict[tuple[str, str], object] = {}  # (ns, deployment) -> Autoscaler
        self.scaling_events: list[EventRecord] = []
        self.probe_answer: object = None  # a ProbeResult, or an Exception to raise
        self.predict_answer: object = None  # a PredictResult, or an Exception to raise
        self.deploy_error: Exception | None = None  # raised by the dry run (pre-flight)
        self.deploy_steps: list[tuple[str, str]] = [  # what deploy() reports, in order
            ("message", "service/{name} created (server-side apply)"),
            ("message", "deployment.apps/{name} created (server-side apply)"),
            ("progress", "pods created 0/{n}, ready 0/{n}"),
            ("progress", "pods created {n}/{n}, ready {n}/{n}")]
        self.deploy_gate: threading.Event | None = None  # deploy() waits for it mid-way
        # sweeps: (ns, name) -> what sweep_trials answers (an Exception is raised), pods
        self.trials: dict[tuple[str, str], object] = {}
        self.trial_reads = 0
        self._parsed: dict[tuple[str, str], SweepTrials] = {}
        self.sweep_pod_list: dict[tuple[str, str], list[PodSummary]] = {}
        # `fleet …` subprocesses: what run_cli prints (stream, line) and its exit status
        self.cli_lines: list[tuple[str, str]] = [("stderr", "job.batch/{name} suspended: its "
                                                  "worker pods hand back their running trials"),
                                                 ("stdout", "sweep {name} stopped")]
        self.cli_exit = 0
        self.cli_gate: threading.Event | None = None  # run_cli waits for it after line 1

    def connect(self) -> None:
        pass

    def start(self, on_change: Callable[[FleetChange], None]) -> None:
        self.on_change = on_change

    def snapshot(self) -> FleetChange:
        return FleetChange(list(self.records.values()), [], list(self.job_records.values()), [],
                           ConnectionState.SYNCED,
                           schedules_upserted=list(self.schedule_records.values()))

    def stop(self) -> None:
        self.stopped += 1
        self.on_change = None

    def forbidden_lines(self) -> list[str]:
        return []

    def rows_shown(self) -> None:
        pass

    def hold_events(self, namespace: str) -> Callable[[], None]:
        return lambda: None  # the fake's events are always there

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

    def events(self, ns: str, name: str) -> list:
        return [EventRecord(ns, f"{name}.1", "Warning", "Unhealthy", "Readiness probe failed: "
                            "HTTP probe failed with statuscode: 503", 4, NOW, NOW, "Pod",
                            f"{name}-abc", "uid")]

    def pods(self, ns: str, name: str) -> list:
        return list(self.pod_list.get((ns, name), []))

    def scaling(self, ns: str, name: str):
        self.calls.append(("scaling", ns, name, {}))
        return self.hpas.get((ns, name)), list(self.scaling_events)

    def log_containers(self, ns: str, pod: str) -> tuple[list[str], str]:
        names = self.containers.get(pod, ["server"])
        return names, names[0]

    def open_log(self, ns: str, pod: str, container: str, options) -> FakeLogStream:
        """Like `fleet.ops.logs.open_stream`: records the options, raises the configured error
        (a container still waiting, no previous instance), else the next scripted stream."""
        self.log_opens.append((ns, pod, container, options))
        key = (pod, container, options.previous)
        if key in self.log_errors:
            raise self.log_errors[key]
        scripted = self.logs.get(key, [])
        lines = scripted.pop(0) if scripted else []
        stream = FakeLogStream(lines, hold=self.hold and options.follow and not scripted)
        self.streams.append(stream)
        return stream

    def probe_now(self, ns: str, pod: str, container: str | None = None):
        self.calls.append(("probe_now", ns, pod, {"container": container}))
        if isinstance(self.probe_answer, Exception):
            raise self.probe_answer
        return self.probe_answer

    def predict(self, ns: str, name: str, pod: str | None = None):
        self.calls.append(("predict", ns, name, {"pod": pod}))
        if isinstance(self.predict_answer, Exception):
            raise self.predict_answer
        return self.predict_answer

    def deploy(self, spec, *, dry_run=False, timeout=300.0, on_message=None, on_progress=None):
        """Records the spec; the dry run raises `deploy_error` (a refused pre-flight), the real
        run reports `deploy_steps`, then the Deployment appears in the watch like a new one."""
        from fleet.ops.deploy import DeployObject, DeployResult

        self.calls.append(("deploy", spec.namespace, spec.name,
                           {"spec": spec, "dry_run": dry_run}))
        if dry_run and self.deploy_error is not None:
            raise self.deploy_error
        n = spec.replicas if spec.replicas is not None else 1
        result = DeployResult(spec.namespace, spec.name, route=f"/models/{spec.name} on "
                              "fleet-system/fleet-gateway", dry_run=dry_run,
                              objects=[DeployObject(k, spec.name) for k in (
                                  "Service", "Deployment", "PodDisruptionBudget",
                                  "HorizontalPodAutoscaler", "HTTPRoute")])
        if dry_run:
            return result
        for i, (kind, line) in enumerate(self.deploy_steps):
            text = line.format(name=spec.name, n=n)
            (on_message if kind == "message" else on_progress)(text)
            if i == 1:
                rec = deployment(0, ns=spec.namespace, name=spec.name, model_uri=spec.model_uri,
                                 version=spec.version or "", desired=n, ready=0, available=0,
                                 updated=0, revision=1,
                                 rollout_state=RolloutState.PROGRESSING)
                self.records[rec.key] = rec
                self.emit(FleetChange(deployments_upserted=[rec]))
            if i == 2 and self.deploy_gate is not None:  # waiting for the pods
                self.deploy_gate.wait(10)
        self.update((spec.namespace, spec.name), ready=n, available=n, updated=n,
                    rollout_state=RolloutState.COMPLETE)
        result.available, result.ready, result.replicas, result.elapsed_s = True, n, n, 3.0
        return result

    def sweep_trials(self, ns: str, name: str):
        """A stored `SweepTrials`, or a ConfigMap dict parsed like `fleet.ops.sweeps` does
        (the same object again while its resourceVersion is unchanged)."""
        self.trial_reads += 1
        got = self.trials.get((ns, name), SweepTrials(found=False))
        if isinstance(got, Exception):
            raise got
        if isinstance(got, dict):
            from fleet.ops import sweeps

            class OneConfigMap:  # the API answering GET with `got`
                def get(self, path, query=None):
                    return got

            known = self._parsed.get((ns, name))
            known = self._parsed[(ns, name)] = sweeps.sweep_trials(OneConfigMap(), ns, name,
                                                                    known=known)
            return known
        return got

    def sweep_pods(self, ns: str, name: str) -> list:
        return list(self.sweep_pod_list.get((ns, name), []))

    def run_cli(self, args, on_line=None, cancel=None):
        """Records the argv; says `cli_lines` ({name} is the sweep) and exits `cli_exit`."""
        from tui.cli_actions import CliResult

        self.calls.append(("cli", "", "", {"args": list(args)}))
        name = args[2] if len(args) > 2 else ""
        out, err = [], []
        for i, (stream, line) in enumerate(self.cli_lines):
            text = line.format(name=name)
            (out if stream == "stdout" else err).append(text)
            if on_line is not None:
                on_line(stream, text)
            if i == 0 and self.cli_gate is not None:
                self.cli_gate.wait(10)
        return CliResult(("fleet", *args), self.cli_exit, tuple(out), tuple(err), 1.5)

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


class FakeLogStream:
    """A `LogStream` stand-in: yields its lines, then ends (the server closed it) or, with
    `hold`, blocks like a followed log until `close()` (from any thread) or `more()` lines."""

    def __init__(self, lines: list[str], hold: bool = False) -> None:
        self._lines = list(lines)
        self._hold = hold
        self._cond = threading.Condition()
        self.closed = False

    def more(self, lines: list[str], end: bool = False) -> None:
        with self._cond:
            self._lines.extend(lines)
            if end:
                self._hold = False
            self._cond.notify_all()

    def __iter__(self) -> Iterator[str]:
        while True:
            with self._cond:
                while not self._lines and self._hold and not self.closed:
                    self._cond.wait(0.5)
                if self.closed or not self._lines:
                    return
                line = self._lines.pop(0)
            yield line

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
