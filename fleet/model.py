"""Plain records the UI and CLI render, derived from cached Kubernetes objects.

These dataclasses are the contract between `fleet.cache` (which fills them from raw
watch JSON) and every consumer (`tui/`, `fleet.cli`, `tuning/`). They hold no client
objects and are immutable, so a consumer may keep them across threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

MODEL_SERVER_COMPONENT = "model-server"
GPU_RESOURCE = "nvidia.com/gpu"
TRAINING_COMPONENTS = ("training", "sweep-worker")
RETRAINING_COMPONENT = "retraining"  # CronJobs that re-train and promote a model
COMPONENT_LABEL = "app.kubernetes.io/component"
NAME_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MODEL_URI_ENV = "MODEL_URI"
SERVING_MODES = ("latency", "throughput")  # manifests/overlays/<mode>
SERVING_RUNTIMES = ("auto", "savedmodel", "tflite-fp32", "tflite-int8")  # serving/config.py
SERVER_PORT = 8080  # the model server's container port (manifests/base, serving/config.py)
CHANGE_CAUSE = "kubernetes.io/change-cause"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# written by the trainer pod on its own Job (tuning/progress.py), JSON
PROGRESS_ANNOTATION = "modelfleet.io/progress"
FAILURE_ANNOTATION = "modelfleet.io/failure"  # one line: why the trainer failed for good
# on a re-training CronJob: the Deployment it promotes into, and what its last run did (JSON)
DEPLOYMENT_ANNOTATION = "modelfleet.io/deployment"
LAST_PROMOTION_ANNOTATION = "modelfleet.io/last-promotion"
# hyperparameter sweeps (tuning/sweep_summary.py writes these; fleet only reads them)
SWEEP_COMPONENT = "sweep-worker"
SWEEP_LABEL = "modelfleet.io/sweep"  # on the Job, its pods and its trials ConfigMap
SWEEP_ANNOTATION = "modelfleet.io/sweep"  # the summary on the Job (JSON)
SWEEP_SPEC_ANNOTATION = "modelfleet.io/sweep-spec"  # the validated spec on the Job (JSON)
TRIALS_KEY = "trials.json"  # ConfigMap `<sweep>-trials`: the trials table (JSON list)
IMPORTANCES_KEY = "importances.json"  # and the parameter importances (JSON object)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # the Job controller's label on its pods
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # stands in for a missing timestamp (older than any)


class RolloutState(StrEnum):
    PROGRESSING = "progressing"
    COMPLETE = "complete"
    STALLED = "stalled"  # Progressing=False, reason ProgressDeadlineExceeded
    PAUSED = "paused"


class ProbeHealth(StrEnum):
    OK = "ok"  # every pod ready
    UNREADY = "unready"  # some pod Running but not Ready (readiness failing)
    CRASHLOOP = "crashloop"  # some container waiting in CrashLoopBackOff
    PENDING = "pending"  # pods not started yet
    NONE = "-"  # no pods


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    SUSPENDED = "suspended"


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    SYNCED = "synced"
    RECONNECTING = "reconnecting"  # the API went away; retrying with backoff


@dataclass(frozen=True, slots=True)
class Autoscaler:
    """A HorizontalPodAutoscaler (autoscaling/v2) whose scaleTargetRef is a Deployment."""

    name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int
    desired_replicas: int
    targets: tuple[str, ...] = ()  # kubectl's TARGETS, e.g. "cpu: 12%/70%"
    last_scale: datetime | None = None
    conditions: tuple[PodCondition, ...] = ()  # AbleToScale, ScalingActive, ScalingLimited


@dataclass(frozen=True, slots=True)
class ModelDeployment:
    namespace: str
    name: str
    uid: str
    model: str
    model_uri: str
    version: str
    image: str
    revision: int
    desired: int
    updated: int
    ready: int
    available: int
    rollout_state: RolloutState
    probe_health: ProbeHealth
    created: datetime
    change_cause: str
    resource_version: str
    paused: bool = False
    unready_pods: int = 0
    crashlooping_pods: int = 0
    restarts: int = 0
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    generation: int = 0  # metadata.generation: pass as `expected_generation` to ops
    hpa: Autoscaler | None = None  # the HPA scaling this Deployment, if any

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """What the trainer last reported in `modelfleet.io/progress`; every field may be unset
    ("" / None). `phase`: installing, staging, training, exporting, publishing, done, failed."""

    phase: str = ""
    epoch: int | None = None
    epochs: int | None = None
    metric: str = ""  # the name of `value`, e.g. "accuracy"
    value: float | None = None
    loss: float | None = None
    updated: datetime | None = None
    message: str = ""  # one line
    model_uri: str = ""  # the published version, once done

    @property
    def fraction(self) -> float | None:
        """Epochs done as a fraction in [0, 1], when both counts are known."""
        if self.epoch is None or not self.epochs:
            return None
        return min(1.0, max(0.0, self.epoch / self.epochs))

    @property
    def epoch_text(self) -> str:
        """"3/10", "3" (total unknown), or "" (no epoch reported)."""
        if self.epoch is None:
            return ""
        return f"{self.epoch}/{self.epochs}" if self.epochs else str(self.epoch)

    @property
    def metric_text(self) -> str:
        """"accuracy 0.931"; the loss when no metric value was reported; else ""."""
        if self.value is not None:
            return f"{self.metric} {_number(self.value)}".strip()
        if self.loss is not None:
            return f"loss {_number(self.loss)}"
        return ""


def _number(v: float) -> str:
    return f"{v:.3f}" if v == 0 or 0.001 <= abs(v) < 1000 else f"{v:.3g}"


@dataclass(frozen=True, slots=True)
class SweepSummary:
    """A sweep as its workers last published it on its Job (`modelfleet.io/sweep`), with the
    facts of its spec (`modelfleet.io/sweep-spec`). Every field may be unset: a sweep whose
    worker 0 has not published yet has only the spec's facts."""

    state: str = ""  # running | stopped | aborted | complete ("": nothing published yet)
    reason: str = ""  # one line: why it stopped / aborted
    max_trials: int | None = None
    started: int = 0  # trials started (slots reserved) so far
    complete: int = 0
    running: int = 0
    pruned: int = 0
    failed: int = 0
    waiting: int = 0
    metric: str = ""
    direction: str = ""  # maximize | minimize ("" unknown)
    best_value: float | None = None
    best_trial: int | None = None
    promotion: Promotion | None = None  # the sweep's (auto-)promotion outcome
    updated: datetime | None = None
    # from the spec annotation
    params: tuple[str, ...] = ()  # the search space's parameter names, in spec order
    parallelism: int | None = None
    gpus: int | None = None  # nvidia.com/gpu per worker pod
    deployment: str = ""  # promotion.deployment: where `fleet sweep promote` promotes to

    @property
    def done(self) -> int:
        """Trials that finished one way or another."""
        return self.complete + self.pruned + self.failed

    @property
    def maximize(self) -> bool:
        return self.direction != "minimize"


@dataclass(frozen=True, slots=True)
class SweepTrial:
    """One row of a sweep's trials ConfigMap (untrusted input, cleaned by `fleet.derive`)."""

    n: int
    state: str  # complete | running | pruned | fail | waiting (Optuna's names)
    value: float | None = None
    params: tuple[tuple[str, float | int | str | bool | None], ...] = ()
    pod: str = ""
    index: int | None = None  # the worker's Job completion index
    steps: tuple[tuple[int, float], ...] = ()  # intermediate values (epoch, value), ascending
    start: datetime | None = None
    end: datetime | None = None
    model_uri: str = ""
    holdout: float | None = None
    reason: str = ""  # why it failed (one line)
    retry_of: int | None = None  # the failed trial this one retries

    @property
    def key(self) -> int:
        return self.n

    def param(self, name: str) -> float | int | str | bool | None:
        for k, v in self.params:
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class SweepTrials:
    """What `fleet.ops.sweeps.sweep_trials` read: the trials (by number) and the parameter
    importances; `found` False when the ConfigMap does not exist (yet)."""

    trials: tuple[SweepTrial, ...] = ()
    importances: tuple[tuple[str, float], ...] = ()  # largest first
    resource_version: str = ""
    found: bool = True
    problems: int = 0  # rows that were not trials (malformed) and were left out


@dataclass(frozen=True, slots=True)
class TrainingJob:
    namespace: str
    name: str
    uid: str
    kind: str  # "training" | "sweep-worker"
    completions: int | None
    active: int
    succeeded: int
    failed: int
    gpus: int  # GPUs requested per pod times parallelism
    state: JobState
    created: datetime
    resource_version: str = ""
    progress: TrainingProgress | None = None  # None: no (valid) progress annotation
    failure: str = ""  # `modelfleet.io/failure`: why the trainer gave up (one line)
    ready: int | None = None  # status.ready (None: the API server does not report it)
    suspended: bool = False  # spec.suspend
    sweep: SweepSummary | None = None  # sweep-worker Jobs: the published summary and spec
    # pods the scheduler cannot place (PodScheduled=False), from the pod watch, and its message
    unschedulable: int = 0
    pending_reason: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def pending(self) -> int:
        """Pods not running yet: status.active counts Pending pods too."""
        return 0 if self.ready is None else max(0, self.active - self.ready)

    @property
    def running_pods(self) -> int:
        return self.active if self.ready is None else min(self.ready, self.active)

    @property
    def gpu_starved(self) -> bool:
        """Pods wait because no node has the GPUs they ask for."""
        return self.unschedulable > 0 and GPU_RESOURCE in self.pending_reason

    @property
    def sweep_state(self) -> str:
        """What the sweeps view shows: the published state, corrected by the Job's own (a
        suspended Job is stopped even before the workers said so; a failed Job failed)."""
        s = self.sweep.state if self.sweep is not None else ""
        if self.state is JobState.FAILED and s not in ("complete", "aborted"):
            return "failed"
        if self.suspended and s in ("", "running"):
            return "stopped"
        if not s:
            return "complete" if self.state is JobState.COMPLETE else "pending"
        return s

    @property
    def reason(self) -> str:
        """Why the job failed: the trainer's failure annotation, else its last message when
        it reported phase "failed"; "" for a job that has not failed."""
        if self.failure:
            return self.failure
        p = self.progress
        if p is not None and p.phase == "failed" and p.message:
            return p.message
        return ""


@dataclass(frozen=True, slots=True)
class Promotion:
    """What a re-training run last did (`modelfleet.io/last-promotion` on its CronJob)."""

    result: str = ""  # promoted | kept | rolled-back | skipped | failed
    detail: str = ""  # one line
    job: str = ""  # the Job that ran it
    time: datetime | None = None
    model_uri: str = ""


@dataclass(frozen=True, slots=True)
class RetrainSchedule:
    """A re-training CronJob (label `app.kubernetes.io/component: retraining`)."""

    namespace: str
    name: str
    model: str = ""  # app.kubernetes.io/name, else the CronJob's name
    deployment: str = ""  # `modelfleet.io/deployment` as written: "ns/name" or "name"
    schedule: str = ""  # spec.schedule
    time_zone: str = ""  # spec.timeZone ("" = the controller's, UTC)
    suspended: bool = False
    last_schedule: datetime | None = None  # status.lastScheduleTime
    last_successful: datetime | None = None  # status.lastSuccessfulTime
    next_run: datetime | None = None  # None: suspended, or a schedule we cannot evaluate
    active: int = 0  # Jobs running now
    last_promotion: Promotion | None = None
    uid: str = ""
    resource_version: str = ""
    created: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def deployment_key(self) -> tuple[str, str] | None:
        """(namespace, name) of the target Deployment; a bare name is in this namespace."""
        if not self.deployment:
            return None
        ns, _, name = self.deployment.rpartition("/")
        return (ns or self.namespace, name)


@dataclass(frozen=True, slots=True)
class Termination:
    """A container's last (or current) termination."""

    reason: str
    exit_code: int
    finished_at: datetime | None
    signal: int = 0
    message: str = ""


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    name: str
    ready: bool
    started: bool
    restart_count: int
    state: str  # "running" | "waiting" | "terminated" | "unknown"
    state_reason: str = ""  # waiting/terminated reason, e.g. CrashLoopBackOff
    last_termination: Termination | None = None


@dataclass(frozen=True, slots=True)
class PodCondition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class PodSummary:
    """The slice of a Pod the fleet views need (no spec beyond the node)."""

    namespace: str
    name: str
    uid: str
    phase: str
    ready: bool
    containers_ready: bool
    node: str
    pod_ip: str
    owner: str  # controlling ReplicaSet/Job name
    created: datetime | None
    deleting: bool = False
    containers: tuple[ContainerStatus, ...] = ()
    conditions: tuple[PodCondition, ...] = ()

    @property
    def restarts(self) -> int:
        return sum(c.restart_count for c in self.containers)

    @property
    def crashlooping(self) -> bool:
        return any(c.state_reason == "CrashLoopBackOff" for c in self.containers)


@dataclass(frozen=True, slots=True)
class EventRecord:
    namespace: str
    name: str
    type: str  # Normal | Warning
    reason: str
    message: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    involved_kind: str
    involved_name: str
    involved_uid: str
    field_path: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class Revision:
    """One `rollout history` row, with what an on-call engineer needs to pick it."""

    revision: int
    change_cause: str
    replicaset: str
    created: datetime | None
    replicas: int
    image: str
    model_uri: str
    version: str
    current: bool = False
    # the ReplicaSet's pod template without pod-template-hash: what a rollback restores
    template: dict = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    container: str
    kind: str  # liveness | readiness | startup
    handler: str  # http-get | tcp-socket | exec | grpc
    target: str  # kubectl-describe style target, e.g. http://:8080/healthz
    initial_delay: int
    timeout: int
    period: int
    success_threshold: int
    failure_threshold: int
    describe: str  # the full kubectl 1.37 `describe` line text


@dataclass(frozen=True, slots=True)
class ProbeReport:
    namespace: str
    name: str
    probes: tuple[ProbeSpec, ...]
    pods: tuple[PodSummary, ...]
    events: tuple[EventRecord, ...]  # Unhealthy / BackOff / Killing, newest first
    health: ProbeHealth = ProbeHealth.NONE


@dataclass(frozen=True, slots=True)
class OpResult:
    """The outcome of one operation on one Deployment; `message` is kubectl's line."""

    namespace: str
    name: str
    message: str
    changed: bool
    revision: int | None = None
    resource_version: str = ""
    warning: str = ""


@dataclass(frozen=True, slots=True)
class StatusResult:
    namespace: str
    name: str
    messages: tuple[str, ...]
    done: bool

    @property
    def message(self) -> str:
        return self.messages[-1] if self.messages else ""
