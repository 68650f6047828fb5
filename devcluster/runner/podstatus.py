"""The kubelet's pod status generation, as a pure function of the runner's local truth.

Mirrors kubelet v1.37.2 (`generateAPIPodStatus`, `getPhase`, `status/generate.go` and the
status manager's `updateStatusInternal`/`normalizeStatus`/`TerminatePod`) with the feature
gates at their 1.37 defaults (ContainerRestartRules, RestartAllContainersOnContainerExits,
PodReadyToStartContainersCondition, PodObservedGenerationTracking all on). The runner keeps
`PodState`; `pod_status` turns it into the complete `status` object the real kubelet would
have written, so kubectl, controllers and the TUI see exactly what a real node reports.

Deliberately not generated (the process runner has no such data): `resources`,
`allocatedResources`, `volumeMounts`, `user`, `stopSignal`, ephemeral containers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ContainerState",
    "PodState",
    "Terminated",
    "backoff_event_message",
    "backoff_message",
    "go_duration",
    "pod_status",
    "qos_class",
    "rfc3339",
    "status_changed",
    "status_patch",
    "utcnow",
]

# Condition types the kubelet owns (kubetypes.PodConditionsByKubelet plus the gated ones);
# every other type already on the pod (DisruptionTarget, readiness gates...) is kept as is.
KUBELET_CONDITIONS = frozenset(
    {
        "PodScheduled",
        "Ready",
        "Initialized",
        "ContainersReady",
        "PodResizeInProgress",
        "PodResizePending",
        "PodReadyToStartContainers",
        "AllContainersRestarting",
    }
)

# Reasons and messages exactly as the kubelet spells them.
CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"
CONTAINER_STATUS_UNKNOWN = "ContainerStatusUnknown"
LOST_ON_TERMINATION = "The container could not be located when the pod was terminated"
PODS_REJECTED_PREFIX = "Pod was rejected: "
SANDBOX_NOT_READY = "PodSandboxNotReady"
NO_SANDBOX = "no pod sandbox exists"
SANDBOX_STOPPED = "pod sandbox is not ready"

TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class Terminated:
    """One finished container instance (the CRI's exited container)."""

    exit_code: int
    reason: str  # "Completed" (exit 0), "Error", "OOMKilled", "ContainerCannotRun", "StartError"
    started_at: datetime | None
    finished_at: datetime
    signal: int | None = None
    message: str | None = None
    container_id: str | None = None


@dataclass
class ContainerState:
    """The runner's local truth about one container of the pod.

    Precedence when several fields are set: `terminated`, then `running_since`, then
    `waiting_reason`, else the kubelet's default waiting state (ContainerCreating, or
    PodInitializing when the pod has init containers).
    """

    name: str
    image: str
    container_id: str | None = None
    running_since: datetime | None = None
    terminated: Terminated | None = None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    last_terminated: Terminated | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool | None = None  # None: started as soon as it runs (no startup probe)


@dataclass
class PodState:
    """What the runner knows about one pod; the input of `pod_status`."""

    pod_ip: str | None
    host_ip: str
    start_time: datetime | None
    sandbox_ready: bool
    containers: list[ContainerState]
    init_containers: list[ContainerState] = field(default_factory=list)
    terminal: bool = False
    admission_failure: tuple[str, str] | None = None


# ---------------------------------------------------------------------------------------------
# time and text formatting


def utcnow() -> datetime:
    """Aware UTC now: every timestamp the runner writes is UTC, never local time."""
    return datetime.now(UTC)


def rfc3339(dt: datetime) -> str:
    """`metav1.Time` wire format: RFC 3339, UTC, whole seconds, `Z` (naive means UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _frac(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    tail = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{tail}" if tail else str(whole)


def go_duration(seconds: float) -> str:
    """Go's `time.Duration.String()`: `10s`, `1m20s`, `5m0s`, `1h0m0s`, `1.5s`, `500ms`.

    The kubelet prints back-off delays with it, and users grep for those exact strings.
    """
    ns = round(seconds * 1_000_000_000)
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u == 0:
        return "0s"
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_frac(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_frac(u, 6)}ms"
    secs, frac = divmod(u, 1_000_000_000)
    tail = f"{frac:09d}".rstrip("0")
    text = f"{secs % 60}{'.' + tail if tail else ''}s"
    minutes = secs // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes >= 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _pod_desc(pod_name: str, namespace: str, uid: str) -> str:
    """The kubelet's `format.Pod`: `name_namespace(uid)`."""
    return f"{pod_name}_{namespace}({uid})"


def backoff_message(delay_s: float, container: str, pod_name: str, namespace: str, uid: str) -> str:
    """Waiting message of a container in CrashLoopBackOff (kuberuntime doBackOff)."""
    pod = _pod_desc(pod_name, namespace, uid)
    return f"back-off {go_duration(delay_s)} restarting failed container={container} pod={pod}"


def backoff_event_message(container: str, pod_name: str, namespace: str, uid: str) -> str:
    """Text of the Warning `BackOff` event the kubelet records while backing off."""
    return (
        f"Back-off restarting failed container {container} in pod "
        f"{_pod_desc(pod_name, namespace, uid)}"
    )


def _go_list(names: list[str]) -> str:
    """Go's `%s`/`%v` of a []string: `[a b]`."""
    return "[" + " ".join(names) + "]"


# ---------------------------------------------------------------------------------------------
# QoS (v1qos.GetPodQOS / ComputePodQOS)

_SUFFIXES = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def _quantity(value: Any) -> Decimal:
    """Parse a resource.Quantity (`500m`, `1Gi`, `2`, `1e3`); unparseable counts as zero."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, mult = text[: -len(suffix)], _SUFFIXES[suffix]
            break
    else:
        number, mult = text, Decimal(1)
    try:
        return Decimal(number) * mult
    except InvalidOperation:
        return Decimal(0)


def _requirements_qos(resources: dict[str, Any]) -> str:
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    if not requests and not limits:
        return "BestEffort"
    qos = ""
    for res in ("cpu", "memory"):
        lim = _quantity(limits.get(res, 0))
        # The apiserver defaults a missing request to its limit; do the same for raw specs.
        req = _quantity(requests[res]) if res in requests else lim
        if req != lim:
            return "Burstable"
        res_qos = "BestEffort" if req == 0 else "Guaranteed"
        if not qos:
            qos = res_qos
        elif qos != res_qos:
            return "Burstable"
    return qos


def qos_class(pod: dict[str, Any]) -> str:
    """The pod's QoS class: the apiserver's value when set, else computed like the API does."""
    existing = (pod.get("status") or {}).get("qosClass")
    if existing:
        return existing
    spec = pod.get("spec") or {}
    pod_resources = spec.get("resources") or {}
    pod_level = any(
        res in (pod_resources.get(kind) or {})
        for kind in ("requests", "limits")
        for res in ("cpu", "memory")
    )
    if pod_level:
        return _requirements_qos(pod_resources)
    qos = ""
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        c_qos = _requirements_qos(container.get("resources") or {})
        if c_qos == "Burstable":
            return c_qos
        if not qos:
            qos = c_qos
        elif qos != c_qos:
            return "Burstable"
    return qos or "BestEffort"


# ---------------------------------------------------------------------------------------------
# container statuses


def _is_sidecar(container: dict[str, Any]) -> bool:
    """podutil.IsRestartableInitContainer: an init container with restartPolicy Always."""
    return container.get("restartPolicy") == "Always"


def _should_restart(container: dict[str, Any], spec: dict[str, Any], exit_code: int) -> bool:
    """podutil.ContainerShouldRestart: container rules, container policy, then pod policy."""
    if container.get("restartPolicy") is not None:
        for rule in container.get("restartPolicyRules") or []:
            exit_codes = rule.get("exitCodes")
            if exit_codes is None:
                continue
            matched = exit_code in (exit_codes.get("values") or [])
            operator = exit_codes.get("operator")
            if (operator == "In" and matched) or (operator == "NotIn" and not matched):
                if rule.get("action") in ("Restart", "RestartAllContainers"):
                    return True
                break  # matched a rule with another action: fall back to the policy
        policy = container["restartPolicy"]
        if policy == "Always":
            return True
        if policy == "OnFailure":
            return exit_code != 0
        if policy == "Never":
            return False
    pod_policy = spec.get("restartPolicy") or "Always"
    if pod_policy == "OnFailure":
        return exit_code != 0
    return pod_policy != "Never"


def _terminated_dict(term: Terminated, container_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"exitCode": term.exit_code}
    if term.signal:
        out["signal"] = term.signal
    if term.reason:
        out["reason"] = term.reason
    if term.message:
        out["message"] = term.message
    out["startedAt"] = rfc3339(term.started_at) if term.started_at else None
    out["finishedAt"] = rfc3339(term.finished_at) if term.finished_at else None
    cid = term.container_id or container_id
    if cid:
        out["containerID"] = cid
    return out


def _container_status(
    spec_container: dict[str, Any],
    cs: ContainerState | None,
    *,
    default_reason: str,
    init: bool,
) -> dict[str, Any]:
    """One v1.ContainerStatus, including what the prober manager adds (ready, started)."""
    name = spec_container["name"]
    if cs is None:
        cs = ContainerState(name=name, image=spec_container.get("image", ""))
    state: dict[str, Any]
    running = False
    if cs.terminated is not None:
        state = {"terminated": _terminated_dict(cs.terminated, cs.container_id)}
    elif cs.running_since is not None:
        running = True
        state = {"running": {"startedAt": rfc3339(cs.running_since)}}
    else:
        waiting: dict[str, Any] = {"reason": cs.waiting_reason or default_reason}
        if cs.waiting_message:
            waiting["message"] = cs.waiting_message
        state = {"waiting": waiting}
    last_state: dict[str, Any] = {}
    if cs.last_terminated is not None:
        last_state = {"terminated": _terminated_dict(cs.last_terminated, None)}

    started = running and (cs.started if cs.started is not None else True)
    if init and not _is_sidecar(spec_container):
        # Regular init containers are ready once they completed successfully.
        ready = cs.terminated is not None and cs.terminated.exit_code == 0
    else:
        ready = bool(started and cs.ready)
    created = cs.terminated is not None or running or cs.last_terminated is not None
    out: dict[str, Any] = {
        "name": name,
        "state": state,
        "lastState": last_state,
        "ready": ready,
        "restartCount": cs.restart_count,
        "image": cs.image or spec_container.get("image", ""),
        # No image store: the image reference stands in for the digest once it "ran".
        "imageID": (cs.image or spec_container.get("image", "")) if created else "",
    }
    if cs.container_id:
        out["containerID"] = cs.container_id
    out["started"] = started
    return out


def _lost_on_termination(status: dict[str, Any]) -> None:
    """TerminatePod: a container without a terminated state is reported as lost (137)."""
    status["state"] = {
        "terminated": {
            "exitCode": 137,
            "reason": CONTAINER_STATUS_UNKNOWN,
            "message": LOST_ON_TERMINATION,
            "startedAt": None,
            "finishedAt": None,
        }
    }
    status["ready"] = False
    status["started"] = False


def _has_pod_initialized(
    spec_inits: list[dict[str, Any]],
    init_statuses: dict[str, dict[str, Any]],
    statuses: dict[str, dict[str, Any]],
) -> bool:
    """status_manager hasPodInitialized: has the pod ever got past its init containers?"""
    if not spec_inits:
        return True
    if any(
        "terminated" in st["lastState"] or "waiting" not in st["state"] for st in statuses.values()
    ):
        return True
    last_spec = spec_inits[-1]
    last = init_statuses[last_spec["name"]]
    if _is_sidecar(last_spec):
        return "running" in last["state"] and bool(last["started"])
    return any(
        "terminated" in st and st["terminated"]["exitCode"] == 0
        for st in (last["lastState"], last["state"])
    )


def _terminate(
    spec_inits: list[dict[str, Any]],
    init_statuses: dict[str, dict[str, Any]],
    statuses: dict[str, dict[str, Any]],
) -> None:
    """TerminatePod: containers that cannot have finished cleanly are reported lost (137).

    Once the pod has initialized, every regular container without a terminated state; and
    every init container up to the last one that ever left the waiting state (at least the
    first one).
    """
    if _has_pod_initialized(spec_inits, init_statuses, statuses):
        for st in statuses.values():
            if "terminated" not in st["state"]:
                _lost_on_termination(st)
    init_list = [init_statuses[c["name"]] for c in spec_inits]
    evidence = [
        i
        for i, st in enumerate(init_list)
        if "waiting" not in st["state"] or "terminated" in st["lastState"]
    ]
    for st in init_list[: (evidence[-1] + 1) if evidence else 1]:
        if "terminated" not in st["state"]:
            _lost_on_termination(st)


# ---------------------------------------------------------------------------------------------
# phase (kubelet_pods.go getPhase, ContainerRestartRules on)


def _get_phase(
    spec: dict[str, Any],
    init_statuses: dict[str, dict[str, Any]],
    statuses: dict[str, dict[str, Any]],
    *,
    terminal: bool,
    has_initialized: bool,
) -> str:
    pending_sidecars = 0
    pending_init = 0
    failed_init_not_restartable = 0
    for c in spec.get("initContainers") or []:
        if _is_sidecar(c):
            continue
        st = init_statuses.get(c["name"])
        if st is None:
            pending_init += 1
            continue
        state = st["state"]
        if "running" in state:
            pending_init += 1
        elif "terminated" in state:
            code = state["terminated"]["exitCode"]
            if code != 0 and not _should_restart(c, spec, code):
                failed_init_not_restartable += 1
        elif "waiting" in state and "terminated" in st["lastState"]:
            code = st["lastState"]["terminated"]["exitCode"]
            if code != 0 and not _should_restart(c, spec, code):
                failed_init_not_restartable += 1
        else:
            pending_init += 1

    unknown = running = waiting = stopped = stopped_not_restartable = succeeded = 0
    for c in spec.get("initContainers") or []:
        if not _is_sidecar(c):
            continue
        st = init_statuses.get(c["name"])
        if st is None:
            unknown += 1
            continue
        state = st["state"]
        if "running" in state:
            if not st.get("started"):
                pending_sidecars += 1
            running += 1
        elif "waiting" in state and "terminated" not in st["lastState"]:
            pending_sidecars += 1
            waiting += 1
    for c in spec.get("containers") or []:
        st = statuses.get(c["name"])
        if st is None:
            unknown += 1
            continue
        state = st["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            code = state["terminated"]["exitCode"]
            if not _should_restart(c, spec, code):
                stopped_not_restartable += 1
            if code == 0:
                succeeded += 1
        elif "waiting" in state and "terminated" in st["lastState"]:
            stopped += 1
            if not _should_restart(c, spec, st["lastState"]["terminated"]["exitCode"]):
                stopped_not_restartable += 1
        else:
            waiting += 1

    if failed_init_not_restartable > 0:
        return "Failed"
    if pending_init > 0 or (pending_sidecars > 0 and not has_initialized) or waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if stopped != stopped_not_restartable:
            return "Running"  # at least one container is in the process of restarting
        return "Succeeded" if stopped == succeeded else "Failed"
    return "Pending"


# ---------------------------------------------------------------------------------------------
# conditions (status/generate.go)


def _cond(ctype: str, status: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": ctype, "status": "True" if status else "False"}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def _containers_ready(
    spec: dict[str, Any],
    init_statuses: dict[str, dict[str, Any]],
    statuses: dict[str, dict[str, Any]],
    phase: str,
) -> dict[str, Any]:
    unknown: list[str] = []
    unready: list[str] = []
    for c in spec.get("initContainers") or []:
        if not _is_sidecar(c):
            continue
        st = init_statuses.get(c["name"])
        if st is None:
            unknown.append(c["name"])
        elif not st["ready"]:
            unready.append(c["name"])
    for c in spec.get("containers") or []:
        st = statuses.get(c["name"])
        if st is None:
            unknown.append(c["name"])
        elif not st["ready"]:
            unready.append(c["name"])
    if (phase == "Succeeded" and not unknown) or phase == "Failed":
        return _cond(
            "ContainersReady", False, "PodCompleted" if phase == "Succeeded" else "PodFailed"
        )
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_go_list(unknown)}")
    if unready:
        messages.append(f"containers with unready status: {_go_list(unready)}")
    if messages:
        return _cond("ContainersReady", False, "ContainersNotReady", ", ".join(messages))
    return _cond("ContainersReady", True)


def _pod_ready(
    spec: dict[str, Any], containers_ready: dict[str, Any], conditions: list[dict[str, Any]]
) -> dict[str, Any]:
    if containers_ready["status"] != "True":
        return _cond(
            "Ready", False, containers_ready.get("reason", ""), containers_ready.get("message", "")
        )
    by_type = {c.get("type"): c for c in conditions}
    messages = []
    for gate in spec.get("readinessGates") or []:
        ctype = gate.get("conditionType", "")
        cond = by_type.get(ctype)
        if cond is None:
            messages.append(
                f'corresponding condition of pod readiness gate "{ctype}" does not exist.'
            )
        elif cond.get("status") != "True":
            messages.append(
                f'the status of pod readiness gate "{ctype}" is not "True", '
                f"but {cond.get('status')}"
            )
    if messages:
        return _cond("Ready", False, "ReadinessGatesNotReady", ", ".join(messages))
    return _cond("Ready", True)


def _initialized(
    spec: dict[str, Any],
    init_statuses: dict[str, dict[str, Any]],
    statuses: dict[str, dict[str, Any]],
    phase: str,
    old_conditions: list[dict[str, Any]],
) -> dict[str, Any]:
    unknown: list[str] = []
    incomplete: list[str] = []
    for c in spec.get("initContainers") or []:
        st = init_statuses.get(c["name"])
        if st is None:
            unknown.append(c["name"])
            continue
        done = bool(st.get("started")) if _is_sidecar(c) else st["ready"]
        if not done:
            incomplete.append(c["name"])
    if phase == "Succeeded" and not unknown:
        return _cond("Initialized", True, "PodCompleted")
    # Once a regular container has started, the pod has been initialized (sidecars may restart).
    if any("running" in st["state"] or "terminated" in st["state"] for st in statuses.values()):
        return _cond("Initialized", True)
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: {_go_list(unknown)}")
    if incomplete:
        messages.append(f"containers with incomplete status: {_go_list(incomplete)}")
    if messages:
        # An initialized pod never becomes uninitialized (in-place restart of all containers).
        if any(
            c.get("type") == "Initialized" and c.get("status") == "True" for c in old_conditions
        ):
            return _cond("Initialized", True)
        return _cond("Initialized", False, "ContainersNotInitialized", ", ".join(messages))
    return _cond("Initialized", True)


def _sandbox_condition(state: PodState) -> dict[str, Any]:
    if state.sandbox_ready:
        return _cond("PodReadyToStartContainers", True)
    had_sandbox = state.terminal or any(
        c.running_since or c.terminated or c.last_terminated
        for c in [*state.init_containers, *state.containers]
    )
    return _cond(
        "PodReadyToStartContainers",
        False,
        SANDBOX_NOT_READY,
        SANDBOX_STOPPED if had_sandbox else NO_SANDBOX,
    )


def _stamp(
    cond: dict[str, Any], old: dict[str, dict[str, Any]], now: datetime, generation: int
) -> dict[str, Any]:
    """updateLastTransitionTime: keep the old time while the status is unchanged."""
    prev = old.get(cond["type"])
    if prev is not None and prev.get("status") == cond["status"] and prev.get("lastTransitionTime"):
        ltt = prev["lastTransitionTime"]
    else:
        ltt = rfc3339(now)
    out: dict[str, Any] = {"type": cond["type"]}
    if generation:
        out["observedGeneration"] = generation
    out["status"] = cond["status"]
    out["lastTransitionTime"] = ltt
    for key in ("reason", "message"):
        if cond.get(key):
            out[key] = cond[key]
    return out


# ---------------------------------------------------------------------------------------------
# the status object


def pod_status(pod: dict[str, Any], state: PodState, *, now: datetime) -> dict[str, Any]:
    """The complete `status` the kubelet would write for `pod` given the runner's `state`.

    `pod` is the pod as last read from the apiserver; its status provides what the kubelet
    preserves (start time, condition transition times, PodScheduled, foreign conditions, a
    terminal phase, the phase's reason/message).
    """
    spec = pod.get("spec") or {}
    metadata = pod.get("metadata") or {}
    old = pod.get("status") or {}
    old_conditions: list[dict[str, Any]] = list(old.get("conditions") or [])
    old_by_type = {c.get("type"): c for c in old_conditions}
    generation = int(metadata.get("generation") or 0)
    foreign = [copy.deepcopy(c) for c in old_conditions if c.get("type") not in KUBELET_CONDITIONS]
    start_time = old.get("startTime") or rfc3339(state.start_time or now)

    if state.admission_failure is not None:
        # rejectPod: only phase, reason, message and QoS; the status manager adds startTime.
        reason, message = state.admission_failure
        rejected: dict[str, Any] = {}
        if generation:
            rejected["observedGeneration"] = generation
        rejected.update(
            {
                "phase": "Failed",
                "reason": reason,
                "message": PODS_REJECTED_PREFIX + message,
                "qosClass": qos_class(pod),
                "startTime": start_time,
            }
        )
        if foreign:
            rejected["conditions"] = foreign
        return rejected

    spec_containers = spec.get("containers") or []
    spec_inits = spec.get("initContainers") or []
    default_reason = POD_INITIALIZING if spec_inits else CONTAINER_CREATING
    by_name = {c.name: c for c in state.containers}
    init_by_name = {c.name: c for c in state.init_containers}
    statuses = {
        c["name"]: _container_status(
            c, by_name.get(c["name"]), default_reason=default_reason, init=False
        )
        for c in spec_containers
    }
    init_statuses = {
        c["name"]: _container_status(
            c, init_by_name.get(c["name"]), default_reason=default_reason, init=True
        )
        for c in spec_inits
    }
    # HasAnyActiveRegularContainerStarted: a regular container exists in the current sandbox.
    has_initialized = any(
        c.running_since or c.terminated or c.last_terminated
        for c in state.containers
        if c.name in statuses
    )

    if state.terminal:
        _terminate(spec_inits, init_statuses, statuses)

    phase = _get_phase(
        spec, init_statuses, statuses, terminal=state.terminal, has_initialized=has_initialized
    )
    old_phase = old.get("phase")
    if phase not in TERMINAL_PHASES and old_phase in TERMINAL_PHASES:
        phase = old_phase  # pods never leave a terminal phase
    if state.terminal and phase not in TERMINAL_PHASES:
        phase = "Failed"

    containers_ready = _containers_ready(spec, init_statuses, statuses, phase)
    owned = [
        _sandbox_condition(state),
        _initialized(spec, init_statuses, statuses, phase, old_conditions),
        _pod_ready(spec, containers_ready, foreign),
        containers_ready,
    ]
    conditions = foreign + [_stamp(c, old_by_type, now, generation) for c in owned]
    if "PodScheduled" in old_by_type:
        conditions.append(copy.deepcopy(old_by_type["PodScheduled"]))  # the scheduler's
    else:
        conditions.append(_stamp(_cond("PodScheduled", True), {}, now, generation))

    out: dict[str, Any] = {}
    if generation:
        out["observedGeneration"] = generation
    out["phase"] = phase
    if phase == old_phase:
        # The kubelet keeps the reason/message that came with the phase (e.g. Evicted).
        for key in ("reason", "message"):
            if old.get(key):
                out[key] = old[key]
    out["conditions"] = conditions
    out["hostIP"] = state.host_ip
    out["hostIPs"] = [{"ip": state.host_ip}]
    if state.pod_ip:
        out["podIP"] = state.pod_ip
        out["podIPs"] = [{"ip": state.pod_ip}]
    out["startTime"] = start_time
    if init_statuses:
        out["initContainerStatuses"] = [init_statuses[c["name"]] for c in spec_inits]
    # normalizeStatus sorts regular container statuses by name (init ones keep spec order).
    out["containerStatuses"] = [statuses[name] for name in sorted(statuses)]
    out["qosClass"] = qos_class(pod)
    return out


def _normalise(value: Any) -> Any:
    """Drop None-valued keys (Go's null `lastProbeTime` etc.) so absent and null compare equal."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def status_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when `new` differs from `old` beyond null-vs-absent, so writes happen on change only."""
    return _normalise(old or {}) != _normalise(new or {})


# The PodStatus lists with patchStrategy merge (k8s.io/api core/v1 types.go) and their keys;
# containerStatuses and initContainerStatuses are atomic and replaced as a whole.
MERGE_KEYS = {"conditions": "type", "podIPs": "ip", "hostIPs": "ip"}


def _keyed_list_patch(
    old_items: list[dict[str, Any]], new_items: list[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    old_by_key = {o.get(key): o for o in old_items if isinstance(o, dict)}
    seen = set()
    out: list[dict[str, Any]] = []
    for item in new_items:
        k = item.get(key)
        seen.add(k)
        prev = old_by_key.get(k)
        if prev is not None and _normalise(prev) == _normalise(item):
            continue
        entry = dict(item)
        for name in prev or {}:
            if name not in item:
                entry[name] = None  # a field the new element lost (e.g. Ready's reason)
        out.append(entry)
    out.extend({key: k, "$patch": "delete"} for k in old_by_key if k not in seen)
    return out


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The strategic-merge patch that turns the pod's `old` status (as last read) into `new`.

    Like the kubelet's two-way patch (statusutil.PatchPodStatus): merge-keyed lists carry
    only the elements that changed and delete directives for the ones that went away, so an
    element another writer added meanwhile (the apiserver's DisruptionTarget when the pod is
    evicted, a controller's readiness gate) is never overwritten by a status computed from a
    pod read just before it. Other fields are sent whole, as a merge patch would.
    """
    old = old or {}
    patch: dict[str, Any] = {name: value for name, value in new.items() if name not in MERGE_KEYS}
    for name, key in MERGE_KEYS.items():
        # A list the new status lacks lost every element the runner saw (a rejected pod keeps
        # no kubelet conditions; foreign ones are always in `new`).
        items = _keyed_list_patch(list(old.get(name) or []), list(new.get(name) or []), key)
        if items:
            patch[name] = items
    return patch
