"""Pod status generation matches what kubelet v1.37.2 writes, field for field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from devcluster.runner.podstatus import (
    ContainerState,
    PodState,
    Terminated,
    backoff_event_message,
    backoff_message,
    go_duration,
    pod_status,
    qos_class,
    rfc3339,
    status_changed,
    status_patch,
    utcnow,
)

NOW = datetime(2026, 12, 1, 19, 43, 13, 665420, tzinfo=UTC)
NOW_S = "2026-12-01T19:43:13Z"
T0 = datetime(2026, 12, 1, 19, 40, 0, tzinfo=UTC)
T0_S = "2026-12-01T19:40:00Z"
T1 = datetime(2026, 12, 1, 19, 42, 30, tzinfo=UTC)
T1_S = "2026-12-01T19:42:30Z"
EARLIER_S = "2026-12-01T19:00:00Z"
SCHEDULED = {
    "type": "PodScheduled",
    "status": "True",
    "lastProbeTime": None,
    "lastTransitionTime": "2026-12-01T19:39:59Z",
}


def make_pod(
    containers: tuple[str, ...] = ("server",),
    init: tuple[str, ...] = (),
    restart_policy: str | None = None,
    status: dict[str, Any] | None = None,
    **spec_extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n, "image": f"{n}:1"} for n in containers]}
    if init:
        spec["initContainers"] = [{"name": n, "image": f"{n}:1"} for n in init]
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    spec.update(spec_extra)
    if status is None:
        status = {
            "phase": "Pending",
            "qosClass": "BestEffort",
            "conditions": [copy.deepcopy(SCHEDULED)],
        }
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
        "spec": spec,
        "status": status,
    }


def make_state(
    containers: list[ContainerState],
    init: list[ContainerState] | None = None,
    **kw: Any,
) -> PodState:
    args: dict[str, Any] = {
        "pod_ip": "10.0.0.5",
        "host_ip": "127.0.0.1",
        "start_time": T0,
        "sandbox_ready": True,
        "containers": containers,
        "init_containers": init or [],
    }
    args.update(kw)
    return PodState(**args)


def waiting(name: str = "server", reason: str | None = None) -> ContainerState:
    return ContainerState(name=name, image=f"{name}:1", waiting_reason=reason)


def running(name: str = "server", ready: bool = True) -> ContainerState:
    return ContainerState(
        name=name,
        image=f"{name}:1",
        container_id=f"process://{name}",
        running_since=T0,
        ready=ready,
    )


def exited(name: str = "server", code: int = 0, restarts: int = 0) -> ContainerState:
    return ContainerState(
        name=name,
        image=f"{name}:1",
        container_id=f"process://{name}",
        terminated=Terminated(code, "Completed" if code == 0 else "Error", T0, T1),
        restart_count=restarts,
    )


def crashloop(name: str = "server", code: int = 1) -> ContainerState:
    return ContainerState(
        name=name,
        image=f"{name}:1",
        container_id=f"process://{name}",
        waiting_reason="CrashLoopBackOff",
        waiting_message=backoff_message(10, name, "web", "ns", "u1"),
        last_terminated=Terminated(code, "Completed" if code == 0 else "Error", T0, T1),
        restart_count=1,
    )


def conds(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


# ------------------------------------------------------------------------------------ phase

SCENARIOS = {
    "waiting": lambda: waiting(),
    "running": lambda: running(),
    "exited0": lambda: exited(code=0),
    "exited1": lambda: exited(code=1),
    "crashloop": lambda: crashloop(code=1),
    "crashloop0": lambda: crashloop(code=0),
}
PHASES = {
    # (restartPolicy, scenario): phase, per getPhase with ContainerRestartRules on
    ("Always", "waiting"): "Pending",
    ("Always", "running"): "Running",
    ("Always", "exited0"): "Running",
    ("Always", "exited1"): "Running",
    ("Always", "crashloop"): "Running",
    ("Always", "crashloop0"): "Running",
    ("OnFailure", "waiting"): "Pending",
    ("OnFailure", "running"): "Running",
    ("OnFailure", "exited0"): "Succeeded",
    ("OnFailure", "exited1"): "Running",
    ("OnFailure", "crashloop"): "Running",
    ("OnFailure", "crashloop0"): "Failed",  # exited 0 will not restart, yet not "succeeded"
    ("Never", "waiting"): "Pending",
    ("Never", "running"): "Running",
    ("Never", "exited0"): "Succeeded",
    ("Never", "exited1"): "Failed",
    ("Never", "crashloop"): "Failed",
    ("Never", "crashloop0"): "Failed",
}


@pytest.mark.parametrize(("policy", "scenario"), sorted(PHASES))
def test_phase_table(policy: str, scenario: str) -> None:
    status = pod_status(
        make_pod(restart_policy=policy), make_state([SCENARIOS[scenario]()]), now=NOW
    )
    assert status["phase"] == PHASES[(policy, scenario)]


def test_default_restart_policy_is_always() -> None:
    status = pod_status(make_pod(), make_state([exited(code=0)]), now=NOW)
    assert status["phase"] == "Running"


def test_multi_container_phases() -> None:
    pod = make_pod(containers=("a", "b"), restart_policy="Never")
    assert pod_status(pod, make_state([running("a"), exited("b", 0)]), now=NOW)["phase"] == (
        "Running"
    )
    assert pod_status(pod, make_state([exited("a", 0), exited("b", 0)]), now=NOW)["phase"] == (
        "Succeeded"
    )
    assert pod_status(pod, make_state([exited("a", 0), exited("b", 2)]), now=NOW)["phase"] == (
        "Failed"
    )
    # One container not started yet keeps the pod Pending even while another runs.
    assert pod_status(pod, make_state([running("a"), waiting("b")]), now=NOW)["phase"] == (
        "Pending"
    )


def test_container_restart_policy_overrides_pod_policy() -> None:
    pod = make_pod(restart_policy="Always")
    pod["spec"]["containers"][0]["restartPolicy"] = "Never"
    assert pod_status(pod, make_state([exited(code=1)]), now=NOW)["phase"] == "Failed"
    pod["spec"]["containers"][0]["restartPolicyRules"] = [
        {"action": "Restart", "exitCodes": {"operator": "In", "values": [42]}}
    ]
    assert pod_status(pod, make_state([exited(code=42)]), now=NOW)["phase"] == "Running"
    assert pod_status(pod, make_state([exited(code=1)]), now=NOW)["phase"] == "Failed"


def test_terminal_override_succeeded_and_failed() -> None:
    pod = make_pod(restart_policy="Always")
    ok = pod_status(pod, make_state([exited(code=0)], terminal=True, sandbox_ready=False), now=NOW)
    assert ok["phase"] == "Succeeded"
    bad = pod_status(pod, make_state([exited(code=1)], terminal=True, sandbox_ready=False), now=NOW)
    assert bad["phase"] == "Failed"
    assert conds(ok)["Ready"] == {
        "type": "Ready",
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "PodCompleted",
    }
    assert conds(ok)["ContainersReady"]["reason"] == "PodCompleted"
    assert conds(ok)["Initialized"] == {
        "type": "Initialized",
        "status": "True",
        "lastTransitionTime": NOW_S,
        "reason": "PodCompleted",
    }
    assert conds(bad)["Ready"] == {
        "type": "Ready",
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "PodFailed",
    }
    assert conds(bad)["ContainersReady"] == {
        "type": "ContainersReady",
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "PodFailed",
    }
    assert conds(bad)["PodReadyToStartContainers"] == {
        "type": "PodReadyToStartContainers",
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "PodSandboxNotReady",
        "message": "pod sandbox is not ready",
    }


def test_terminal_with_unfinished_containers_reports_them_lost() -> None:
    pod = make_pod(containers=("a", "b"), restart_policy="Always")
    state = make_state([exited("a", 0), crashloop("b", code=0)], terminal=True)
    status = pod_status(pod, state, now=NOW)
    assert status["phase"] == "Failed"
    b = status["containerStatuses"][1]
    assert b["name"] == "b"
    assert b["state"] == {
        "terminated": {
            "exitCode": 137,
            "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated",
            "startedAt": None,
            "finishedAt": None,
        }
    }
    assert b["lastState"]["terminated"]["exitCode"] == 0  # the real last exit is kept


def test_terminal_pod_that_never_ran_is_failed() -> None:
    status = pod_status(
        make_pod(), make_state([waiting()], terminal=True, sandbox_ready=False), now=NOW
    )
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == (
        "ContainerStatusUnknown"
    )


def test_terminal_phase_is_never_left() -> None:
    pod = make_pod(
        restart_policy="Always",
        status={"phase": "Succeeded", "qosClass": "BestEffort", "conditions": [SCHEDULED]},
    )
    assert pod_status(pod, make_state([running()]), now=NOW)["phase"] == "Succeeded"


def test_phase_reason_kept_while_phase_unchanged() -> None:
    pod = make_pod(
        status={
            "phase": "Running",
            "reason": "Custom",
            "message": "kept",
            "qosClass": "BestEffort",
            "conditions": [SCHEDULED],
        }
    )
    status = pod_status(pod, make_state([running()]), now=NOW)
    assert (status["reason"], status["message"]) == ("Custom", "kept")
    pending = pod_status(pod, make_state([waiting()]), now=NOW)
    assert "reason" not in pending
    assert "message" not in pending


# ---------------------------------------------------------------------------- init containers


def test_init_container_running_keeps_pod_pending() -> None:
    pod = make_pod(init=("init-a", "init-b"))
    state = make_state([], init=[running("init-a", ready=False)])
    status = pod_status(pod, state, now=NOW)
    assert status["phase"] == "Pending"
    assert conds(status)["Initialized"] == {
        "type": "Initialized",
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [init-a init-b]",
    }
    assert status["containerStatuses"] == [
        {
            "name": "server",
            "state": {"waiting": {"reason": "PodInitializing"}},
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "image": "server:1",
            "imageID": "",
            "started": False,
        }
    ]
    assert [s["state"] for s in status["initContainerStatuses"]] == [
        {"running": {"startedAt": T0_S}},
        {"waiting": {"reason": "PodInitializing"}},
    ]
    assert conds(status)["Ready"]["message"] == "containers with unready status: [server]"


def test_init_containers_completed_then_running() -> None:
    pod = make_pod(init=("init-a",))
    status = pod_status(pod, make_state([running()], init=[exited("init-a", 0)]), now=NOW)
    assert status["phase"] == "Running"
    assert conds(status)["Initialized"]["status"] == "True"
    assert status["initContainerStatuses"] == [
        {
            "name": "init-a",
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": T0_S,
                    "finishedAt": T1_S,
                    "containerID": "process://init-a",
                }
            },
            "lastState": {},
            "ready": True,
            "restartCount": 0,
            "image": "init-a:1",
            "imageID": "init-a:1",
            "containerID": "process://init-a",
            "started": False,
        }
    ]


def test_failed_init_container() -> None:
    never = pod_status(
        make_pod(init=("init-a",), restart_policy="Never"),
        make_state([], init=[exited("init-a", 1)]),
        now=NOW,
    )
    assert never["phase"] == "Failed"
    assert conds(never)["Initialized"]["message"] == ("containers with incomplete status: [init-a]")
    always = pod_status(
        make_pod(init=("init-a",)), make_state([], init=[exited("init-a", 1)]), now=NOW
    )
    assert always["phase"] == "Pending"  # it will be retried
    backoff = pod_status(
        make_pod(init=("init-a",), restart_policy="OnFailure"),
        make_state([], init=[crashloop("init-a")]),
        now=NOW,
    )
    assert backoff["phase"] == "Pending"


def test_sidecar_init_container() -> None:
    pod = make_pod(init=("proxy",))
    pod["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    proxy = running("proxy", ready=False)
    status = pod_status(pod, make_state([running()], init=[proxy]), now=NOW)
    assert status["phase"] == "Running"
    assert conds(status)["ContainersReady"]["message"] == "containers with unready status: [proxy]"
    proxy_status = status["initContainerStatuses"][0]
    assert (proxy_status["ready"], proxy_status["started"]) == (False, True)


# -------------------------------------------------------------------------------- conditions


def test_running_ready_pod_exact_conditions() -> None:
    status = pod_status(make_pod(), make_state([running()]), now=NOW)
    assert status["conditions"] == [
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": NOW_S},
        {"type": "Initialized", "status": "True", "lastTransitionTime": NOW_S},
        {"type": "Ready", "status": "True", "lastTransitionTime": NOW_S},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": NOW_S},
        SCHEDULED,
    ]


def test_unready_names_in_spec_order() -> None:
    pod = make_pod(containers=("web", "sidecar", "api"))
    state = make_state([running("web"), running("sidecar", ready=False), waiting("api")])
    status = pod_status(pod, state, now=NOW)
    expected = {
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "ContainersNotReady",
        "message": "containers with unready status: [sidecar api]",
    }
    assert conds(status)["ContainersReady"] == {"type": "ContainersReady", **expected}
    assert conds(status)["Ready"] == {"type": "Ready", **expected}


def test_sandbox_not_created_yet() -> None:
    status = pod_status(make_pod(), make_state([waiting()], sandbox_ready=False), now=NOW)
    assert conds(status)["PodReadyToStartContainers"] == {
        "type": "PodReadyToStartContainers",
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "PodSandboxNotReady",
        "message": "no pod sandbox exists",
    }


def test_last_transition_time_preserved_or_changed() -> None:
    old = {
        "phase": "Running",
        "qosClass": "BestEffort",
        "conditions": [
            {
                "type": "PodReadyToStartContainers",
                "status": "True",
                "lastTransitionTime": EARLIER_S,
            },
            {"type": "Initialized", "status": "True", "lastTransitionTime": EARLIER_S},
            {
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": EARLIER_S,
                "reason": "ContainersNotReady",
                "message": "containers with unready status: [server]",
            },
            {"type": "ContainersReady", "status": "False", "lastTransitionTime": EARLIER_S},
            SCHEDULED,
        ],
    }
    pod = make_pod(status=old)
    still = pod_status(pod, make_state([running(ready=False)]), now=NOW)
    assert [c["lastTransitionTime"] for c in still["conditions"]] == [EARLIER_S] * 4 + [
        SCHEDULED["lastTransitionTime"]
    ]
    flipped = pod_status(pod, make_state([running(ready=True)]), now=NOW)
    assert {c["type"]: c["lastTransitionTime"] for c in flipped["conditions"]} == {
        "PodReadyToStartContainers": EARLIER_S,
        "Initialized": EARLIER_S,
        "Ready": NOW_S,
        "ContainersReady": NOW_S,
        "PodScheduled": SCHEDULED["lastTransitionTime"],
    }


def test_foreign_conditions_and_pod_scheduled_untouched() -> None:
    disruption = {
        "type": "DisruptionTarget",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": EARLIER_S,
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }
    gate = {"type": "example.com/lb", "status": "True", "lastTransitionTime": EARLIER_S}
    scheduled = {**SCHEDULED, "observedGeneration": 1}
    pod = make_pod(
        status={
            "phase": "Running",
            "qosClass": "BestEffort",
            "conditions": [scheduled, disruption, gate],
        }
    )
    status = pod_status(pod, make_state([running()]), now=NOW)
    assert status["conditions"][:2] == [disruption, gate]
    assert status["conditions"][-1] == scheduled
    assert [c["type"] for c in status["conditions"]] == [
        "DisruptionTarget",
        "example.com/lb",
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]


def test_pod_scheduled_added_when_missing() -> None:
    pod = make_pod(status={})
    status = pod_status(pod, make_state([running()]), now=NOW)
    assert status["conditions"][-1] == {
        "type": "PodScheduled",
        "status": "True",
        "lastTransitionTime": NOW_S,
    }


def test_readiness_gates() -> None:
    gates = [{"conditionType": "example.com/lb"}]
    missing = pod_status(make_pod(readinessGates=gates), make_state([running()]), now=NOW)
    assert conds(missing)["ContainersReady"]["status"] == "True"
    assert conds(missing)["Ready"] == {
        "type": "Ready",
        "status": "False",
        "lastTransitionTime": NOW_S,
        "reason": "ReadinessGatesNotReady",
        "message": 'corresponding condition of pod readiness gate "example.com/lb" does not exist.',
    }
    false_gate = {"type": "example.com/lb", "status": "False", "lastTransitionTime": EARLIER_S}
    pod = make_pod(
        readinessGates=gates,
        status={"qosClass": "BestEffort", "conditions": [SCHEDULED, false_gate]},
    )
    not_true = pod_status(pod, make_state([running()]), now=NOW)
    assert conds(not_true)["Ready"]["message"] == (
        'the status of pod readiness gate "example.com/lb" is not "True", but False'
    )
    assert conds(not_true)["example.com/lb"] == false_gate
    pod["status"]["conditions"][1] = {**false_gate, "status": "True"}
    ready = pod_status(pod, make_state([running()]), now=NOW)
    assert conds(ready)["Ready"] == {"type": "Ready", "status": "True", "lastTransitionTime": NOW_S}
    # Unready containers win over the gates.
    unready = pod_status(pod, make_state([running(ready=False)]), now=NOW)
    assert conds(unready)["Ready"]["reason"] == "ContainersNotReady"


def test_observed_generation() -> None:
    pod = make_pod()
    pod["metadata"]["generation"] = 3
    status = pod_status(pod, make_state([running()]), now=NOW)
    assert status["observedGeneration"] == 3
    assert [c.get("observedGeneration") for c in status["conditions"][:4]] == [3, 3, 3, 3]


# ------------------------------------------------------------------------- container statuses


def test_running_container_status_exact() -> None:
    status = pod_status(make_pod(), make_state([running()]), now=NOW)
    assert status["containerStatuses"] == [
        {
            "name": "server",
            "state": {"running": {"startedAt": T0_S}},
            "lastState": {},
            "ready": True,
            "restartCount": 0,
            "image": "server:1",
            "imageID": "server:1",
            "containerID": "process://server",
            "started": True,
        }
    ]


def test_started_false_until_startup_probe_passes() -> None:
    c = running(ready=True)
    c.started = False
    cs = pod_status(make_pod(), make_state([c]), now=NOW)["containerStatuses"][0]
    assert (cs["started"], cs["ready"]) == (False, False)


def test_crashloop_container_status_exact() -> None:
    c = crashloop()
    c.restart_count = 3
    c.last_terminated = Terminated(
        137, "OOMKilled", T0, T1, signal=9, message="oom", container_id="process://old"
    )
    cs = pod_status(make_pod(), make_state([c]), now=NOW)["containerStatuses"][0]
    assert cs == {
        "name": "server",
        "state": {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off 10s restarting failed container=server pod=web_ns(u1)",
            }
        },
        "lastState": {
            "terminated": {
                "exitCode": 137,
                "signal": 9,
                "reason": "OOMKilled",
                "message": "oom",
                "startedAt": T0_S,
                "finishedAt": T1_S,
                "containerID": "process://old",
            }
        },
        "ready": False,
        "restartCount": 3,
        "image": "server:1",
        "imageID": "server:1",
        "containerID": "process://server",
        "started": False,
    }


def test_terminated_container_status_exact() -> None:
    c = exited(code=1, restarts=2)
    c.ready = True  # stale readiness of an exited container is never reported
    cs = pod_status(make_pod(restart_policy="Never"), make_state([c]), now=NOW)[
        "containerStatuses"
    ][0]
    assert cs == {
        "name": "server",
        "state": {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": T0_S,
                "finishedAt": T1_S,
                "containerID": "process://server",
            }
        },
        "lastState": {},
        "ready": False,
        "restartCount": 2,
        "image": "server:1",
        "imageID": "server:1",
        "containerID": "process://server",
        "started": False,
    }


def test_waiting_with_reason_and_default() -> None:
    c = waiting(reason="ErrImagePull")
    c.waiting_message = "no such image"
    pod = make_pod(containers=("server", "other"))
    status = pod_status(pod, make_state([c]), now=NOW)  # "other" has no state yet
    assert [s["state"] for s in status["containerStatuses"]] == [
        {"waiting": {"reason": "ContainerCreating"}},
        {"waiting": {"reason": "ErrImagePull", "message": "no such image"}},
    ]


def test_container_statuses_sorted_by_name_like_normalize_status() -> None:
    pod = make_pod(containers=("zeta", "alpha", "mid"))
    status = pod_status(
        pod, make_state([running("zeta"), running("alpha"), running("mid")]), now=NOW
    )
    assert [s["name"] for s in status["containerStatuses"]] == ["alpha", "mid", "zeta"]


def test_ips_times_and_qos() -> None:
    status = pod_status(make_pod(), make_state([running()]), now=NOW)
    assert status["hostIP"] == "127.0.0.1"
    assert status["hostIPs"] == [{"ip": "127.0.0.1"}]
    assert status["podIP"] == "10.0.0.5"
    assert status["podIPs"] == [{"ip": "10.0.0.5"}]
    assert status["startTime"] == T0_S
    assert status["qosClass"] == "BestEffort"
    no_ip = pod_status(make_pod(), make_state([waiting()], pod_ip=None, start_time=None), now=NOW)
    assert "podIP" not in no_ip
    assert "podIPs" not in no_ip
    assert no_ip["startTime"] == NOW_S
    kept = make_pod()
    kept["status"]["startTime"] = EARLIER_S
    assert pod_status(kept, make_state([running()]), now=NOW)["startTime"] == EARLIER_S


def test_admission_failure_status() -> None:
    gpu_msg = (
        "Allocate failed due to requested number of devices unavailable for nvidia.com/gpu. "
        "Requested: 2, Available: 0, which is unexpected"
    )
    state = make_state(
        [], admission_failure=("UnexpectedAdmissionError", gpu_msg), sandbox_ready=False
    )
    status = pod_status(make_pod(), state, now=NOW)
    assert status == {
        "phase": "Failed",
        "reason": "UnexpectedAdmissionError",
        "message": "Pod was rejected: " + gpu_msg,
        "qosClass": "BestEffort",
        "startTime": T0_S,
    }


# ----------------------------------------------------------------------------------- helpers


def test_qos_class() -> None:
    def pod(*resources: dict[str, Any]) -> dict[str, Any]:
        p = make_pod(containers=tuple(f"c{i}" for i in range(len(resources))), status={})
        for c, r in zip(p["spec"]["containers"], resources, strict=True):
            c["resources"] = r
        return p

    guaranteed = {"limits": {"cpu": "500m", "memory": "1Gi"}}
    assert qos_class(pod(guaranteed)) == "Guaranteed"
    assert qos_class(pod({"requests": {"cpu": "0.5", "memory": "1024Mi"}, **guaranteed})) == (
        "Guaranteed"
    )
    assert qos_class(pod({"requests": {"cpu": "100m"}})) == "Burstable"
    assert qos_class(pod({})) == "BestEffort"
    assert qos_class(pod({"limits": {"nvidia.com/gpu": "1"}})) == "BestEffort"
    assert qos_class(pod(guaranteed, {})) == "Burstable"
    existing = pod({})
    existing["status"]["qosClass"] = "Guaranteed"
    assert qos_class(existing) == "Guaranteed"


def test_rfc3339_and_utcnow() -> None:
    assert rfc3339(NOW) == "2026-12-01T19:43:13Z"
    plus2 = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 12, 1, 21, 43, 13, tzinfo=plus2)) == "2026-12-01T19:43:13Z"
    assert rfc3339(datetime(2026, 12, 1, 19, 43, 13)) == "2026-12-01T19:43:13Z"
    now = utcnow()
    assert now.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (10, "10s"),
        (20, "20s"),
        (40, "40s"),
        (80, "1m20s"),
        (160, "2m40s"),
        (300, "5m0s"),
        (0, "0s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (3600, "1h0m0s"),
        (3661, "1h1m1s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_backoff_messages() -> None:
    assert backoff_message(20, "server", "web", "ns", "uid") == (
        "back-off 20s restarting failed container=server pod=web_ns(uid)"
    )
    assert backoff_message(300, "server", "web", "ns", "uid") == (
        "back-off 5m0s restarting failed container=server pod=web_ns(uid)"
    )
    assert backoff_event_message("server", "web", "ns", "uid") == (
        "Back-off restarting failed container server in pod web_ns(uid)"
    )


def test_status_changed() -> None:
    pod = make_pod()
    first = pod_status(pod, make_state([running()]), now=NOW)
    again = pod_status(pod, make_state([running()]), now=NOW)
    assert not status_changed(first, again)
    with_nulls = copy.deepcopy(first)
    for c in with_nulls["conditions"]:
        c["lastProbeTime"] = None
    assert not status_changed(first, with_nulls)
    unready = pod_status(pod, make_state([running(ready=False)]), now=NOW)
    assert status_changed(first, unready)
    restarted = copy.deepcopy(first)
    restarted["containerStatuses"][0]["restartCount"] = 1
    assert status_changed(first, restarted)


# ---- the strategic-merge status patch ------------------------------------------------------


def _apply_smp(server: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The apiserver's strategic merge for PodStatus's fields (merge-keyed lists by key)."""
    keys = {"conditions": "type", "podIPs": "ip", "hostIPs": "ip"}
    out = copy.deepcopy(server)
    for name, value in patch.items():
        if name not in keys:
            out[name] = copy.deepcopy(value)
            continue
        key = keys[name]
        items = out.setdefault(name, [])
        for entry in value:
            idx = next((i for i, c in enumerate(items) if c.get(key) == entry[key]), None)
            if entry.get("$patch") == "delete":
                if idx is not None:
                    del items[idx]
                continue
            if idx is None:
                items.append({k: v for k, v in entry.items() if v is not None})
            else:
                merged = {**items[idx], **entry}
                items[idx] = {k: v for k, v in merged.items() if v is not None}
    return out


def test_status_patch_keeps_a_condition_added_after_the_pod_was_read() -> None:
    seen = make_pod(status={"phase": "Pending", "qosClass": "BestEffort",
                            "conditions": [copy.deepcopy(SCHEDULED)]})
    first = pod_status(seen, make_state([waiting()]), now=NOW)
    seen["status"] = first
    # The apiserver's eviction handler adds DisruptionTarget; the runner has not seen it yet.
    disruption = {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": NOW_S,
                  "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}
    server = copy.deepcopy(first)
    server["conditions"].append(disruption)
    new = pod_status(seen, make_state([exited(code=143)], terminal=True), now=NOW)
    patch = status_patch(seen["status"], new)
    assert all(c["type"] != "DisruptionTarget" for c in patch["conditions"])
    result = _apply_smp(server, patch)
    assert result["phase"] == "Failed"
    assert disruption in result["conditions"]
    # Everything else is exactly what the runner computed (order aside).
    others = sorted((c for c in result["conditions"] if c["type"] != "DisruptionTarget"),
                    key=lambda c: c["type"])
    assert others == sorted(new["conditions"], key=lambda c: c["type"])
    assert result["containerStatuses"] == new["containerStatuses"]


def test_status_patch_sends_only_changed_conditions_and_clears_lost_fields() -> None:
    pod = make_pod()
    old = pod_status(pod, make_state([running(ready=False)]), now=NOW)
    pod["status"] = old
    new = pod_status(pod, make_state([running(ready=True)]), now=NOW)
    patch = status_patch(old, new)
    by_type = {c["type"]: c for c in patch["conditions"]}
    assert set(by_type) == {"Ready", "ContainersReady"}  # the others did not change
    assert by_type["Ready"]["status"] == "True"
    assert by_type["Ready"]["reason"] is None and by_type["Ready"]["message"] is None
    assert "podIPs" not in patch and "hostIPs" not in patch  # unchanged merge lists
    assert _apply_smp(old, patch)["conditions"] == new["conditions"]
    assert status_patch(new, new).keys() == new.keys() - {"conditions", "podIPs", "hostIPs"}


def test_status_patch_deletes_owned_conditions_the_new_status_drops() -> None:
    pod = make_pod()
    old = pod_status(pod, make_state([running()]), now=NOW)
    pod["status"] = old
    rejected = pod_status(pod, make_state([waiting()],
                                          admission_failure=("UnexpectedAdmissionError", "x")),
                          now=NOW)
    patch = status_patch(old, rejected)
    deletes = {c["type"] for c in patch["conditions"] if c.get("$patch") == "delete"}
    assert deletes == {c["type"] for c in old["conditions"]}
    assert "conditions" not in _apply_smp(old, patch) or \
        _apply_smp(old, patch)["conditions"] == []
