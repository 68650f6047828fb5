"""Termination messages on the process kubelet, against the real control plane.

Each container instance gets its own file bind-mounted at `terminationMessagePath`; after
it exits the runner reports what it wrote (or, under FallbackToLogsOnError, its log tail)
in `state.terminated.message`, and in `lastState` once it restarted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.devcluster.runner.runnerkit import (
    container_status,
    create,
    pod,
    python_container,
    wait_pod,
)
from tests.fixtures.cluster import TestCluster

pytestmark = pytest.mark.cluster


def write_and_exit(message: str, code: int, path: str = "/dev/termination-log") -> str:
    return (f"import sys\nprint('working', flush=True)\n"
            f"open({path!r}, 'w').write({message!r})\nsys.exit({code})")


def terminated(p: dict[str, Any], name: str) -> dict[str, Any]:
    statuses = p.get("status", {}).get("containerStatuses") or []
    st = next((s for s in statuses if s.get("name") == name), {})
    return st.get("state", {}).get("terminated") or {}


def all_terminated(*names: str):
    def pred(p: dict[str, Any]) -> bool:
        return all(terminated(p, n) for n in names) and p["status"].get("phase") in (
            "Succeeded", "Failed")
    return pred


def test_message_file_shows_in_the_terminated_state(cluster: TestCluster,
                                                    namespace: str) -> None:
    host = Path("/dev/termination-log")
    host_before = host.read_bytes() if host.exists() else None
    c = [python_container("fail", write_and_exit("model checksum mismatch", 3)),
         # Exit 0 is reported too (policy File), and each container has its own file.
         python_container("ok", write_and_exit("exported 3 shards\n", 0))]
    create(cluster, namespace, pod("msg", c, restartPolicy="Never"))
    p = wait_pod(cluster, namespace, "msg", all_terminated("fail", "ok"), what="terminated")
    fail, ok = terminated(p, "fail"), terminated(p, "ok")
    assert (fail["exitCode"], fail["reason"]) == (3, "Error")
    assert fail["message"] == "model checksum mismatch"
    assert (ok["exitCode"], ok["reason"]) == (0, "Completed")
    assert ok["message"] == "exported 3 shards\n"
    assert p["status"]["phase"] == "Failed"
    # Written inside the containers' mount namespaces, never to the host's file.
    assert (host.read_bytes() if host.exists() else None) == host_before


def test_fallback_to_logs_on_error_uses_the_log_tail(cluster: TestCluster,
                                                     namespace: str) -> None:
    lines = "for i in range(100): print(f'line {i}')\n"
    fallback = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    c = [python_container("crash", lines + "import sys; sys.exit(1)", **fallback),
         # An exit 0, or the policy File, never falls back to the logs ...
         python_container("clean", lines, **fallback),
         python_container("file", lines + "import sys; sys.exit(1)"),
         # ... and a written file wins over them.
         python_container("both", lines + write_and_exit("explicit", 2), **fallback)]
    create(cluster, namespace, pod("fallback", c, restartPolicy="Never"))
    p = wait_pod(cluster, namespace, "fallback", all_terminated("crash", "clean", "file", "both"),
                 what="terminated")
    crash = terminated(p, "crash")
    assert crash["exitCode"] == 1
    # The kubelet's tail: the last 80 log lines (under its 2048-byte cap here).
    assert crash["message"] == "".join(f"line {i}\n" for i in range(20, 100))
    assert "message" not in terminated(p, "clean")
    assert "message" not in terminated(p, "file")
    assert terminated(p, "both")["message"] == "explicit"


def test_custom_termination_message_path(cluster: TestCluster, namespace: str,
                                         tmp_path: Path) -> None:
    # A target missing on the host is created there (as the runtime creates it in the
    # container's root) and the instance's own file bound over it.
    target = tmp_path / "custom" / "reason.txt"
    c = python_container("c", write_and_exit("custom path works", 4, str(target)),
                         terminationMessagePath=str(target))
    create(cluster, namespace, pod("custom", [c], restartPolicy="Never"))
    p = wait_pod(cluster, namespace, "custom", all_terminated("c"), what="terminated")
    t = terminated(p, "c")
    assert t["exitCode"] == 4 and t["message"] == "custom path works"
    assert target.read_bytes() == b""  # the host placeholder stays empty


RESTARTING = """
import os, sys
p = '/state/attempt'
n = int(open(p).read()) + 1 if os.path.exists(p) else 1
open(p, 'w').write(str(n))
print('inherited', repr(open('/dev/termination-log').read()), flush=True)
open('/dev/termination-log', 'w').write(f'attempt {n} ' + ('failed' if n == 1 else 'done'))
sys.exit(3 if n == 1 else 0)
"""


def test_restarted_container_carries_the_message_in_last_state(cluster: TestCluster,
                                                                namespace: str) -> None:
    c = python_container("job", RESTARTING, volumeMounts=[{"name": "state",
                                                           "mountPath": "/state"}])
    create(cluster, namespace, pod("retry", [c], restartPolicy="OnFailure",
                                   volumes=[{"name": "state", "emptyDir": {}}]))
    p = wait_pod(cluster, namespace, "retry",
                 lambda p: bool(terminated(p, "job"))
                 and container_status(p).get("restartCount") == 1,
                 what="second attempt terminated")
    st = container_status(p, "job")
    last = st["lastState"]["terminated"]
    assert (last["exitCode"], last["message"]) == (3, "attempt 1 failed")
    now = st["state"]["terminated"]
    assert (now["exitCode"], now["reason"], now["message"]) == (0, "Completed",
                                                                 "attempt 2 done")
    assert p["status"]["phase"] == "Succeeded"
    # Each instance starts from a fresh, empty file.
    for args in ((), ("--previous",)):
        out = cluster.kubectl_run("logs", "retry", "-n", namespace, *args)
        assert out.stdout == "inherited ''\n"
