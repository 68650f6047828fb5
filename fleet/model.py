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
