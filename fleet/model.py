"""Plain records the UI and CLI render, derived from cached Kubernetes objects.

These dataclasses are the contract between `fleet.cache` (which fills them from raw
watch JSON) and every consumer (`tui/`, `fleet.cli`, `tuning/`). They hold no client
objects and are immutable, so a consumer may keep them across threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

MODEL_SERVER_COMPONENT = "model-server"
TRAINING_COMPONENTS = ("training", "sweep-worker")
COMPONENT_LABEL = "app.kubernetes.io/component"
NAME_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"
MODEL_URI_ENV = "MODEL_URI"
CHANGE_CAUSE = "kubernetes.io/change-cause"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


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

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


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
