"""`rollout_status` watch mode against the in-memory API, and API error mapping."""

from __future__ import annotations

import threading

import pytest

from fleet import errors
from fleet.kube import collection_path, deployment_path, status_error
from fleet.ops.status import rollout_status
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import deployment


def _progressing(updated: int, available: int) -> dict:
    d = deployment(replicas=2)
    d["status"].update(updatedReplicas=updated, replicas=2, availableReplicas=available)
    return d


def _api() -> FakeApi:
    api = FakeApi()
    api.objects[deployment_path("ns1", "resnet")] = _progressing(1, 1)
    return api


def test_watch_prints_each_observation_until_done():
    api = _api()
    q_path = collection_path("apps/v1", "deployments", "ns1")
    seen: list[str] = []

    def feed():
        api.watch_opened.wait(5)
        q = api.watch_queues[q_path]
        q.put({"type": "MODIFIED", "object": _progressing(2, 1)})
        q.put({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
        q.put({"type": "MODIFIED", "object": _progressing(2, 2)})

    threading.Thread(target=feed, daemon=True).start()
    res = rollout_status(api, "ns1", "resnet", watch=True, timeout=10, on_message=seen.append)
    assert res.done and list(res.messages) == seen
    assert seen == [
        'Waiting for deployment "resnet" rollout to finish: 1 out of 2 new replicas have been '
        "updated...",
        'Waiting for deployment "resnet" rollout to finish: 1 of 2 updated replicas are '
        "available...",
        'deployment "resnet" successfully rolled out',
    ]


def test_no_watch_prints_once_and_deleted_is_an_error():
    api = _api()
    res = rollout_status(api, "ns1", "resnet", watch=False)
    assert not res.done and len(res.messages) == 1
    q_path = collection_path("apps/v1", "deployments", "ns1")

    def feed():
        api.watch_opened.wait(5)
        api.watch_queues[q_path].put({"type": "DELETED", "object": _progressing(1, 1)})

    threading.Thread(target=feed, daemon=True).start()
    with pytest.raises(errors.NotFound, match="^object has been deleted$"):
        rollout_status(api, "ns1", "resnet", watch=True, timeout=10)


def test_status_error_mapping_uses_kubectl_wording():
    body = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"deployments.apps'
            b' \\"x\\" is forbidden: User \\"viewer\\" cannot patch resource \\"deployments\\"",'
            b'"reason":"Forbidden","code":403}')
    err = status_error(403, body)
    assert isinstance(err, errors.Forbidden)
    assert err.message.startswith('Error from server (Forbidden): deployments.apps "x" is forb')
    assert err.wrap("failed restoring revision 1").message.startswith(
        'failed restoring revision 1: deployments.apps "x" is forbidden')
    assert isinstance(status_error(409, b""), errors.Conflict)
    assert isinstance(status_error(410, b"{}"), errors.Gone)
    assert status_error(401, b"").message == (
        "error: You must be logged in to the server (Unauthorized)")
    assert status_error(500, b"oops").message == "Error from server: oops"


def test_ls_watch_interrupt_returns_within_a_second_with_the_api_black_holed(tmp_path):
    """^C on `fleet ls -w` while every LIST hangs (the API accepts and never answers)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.tui.blackhole import BlackHole
    from tests.waiting import eventually

    with BlackHole() as hole:
        env = {**os.environ, "KUBECONFIG": str(hole.kubeconfig(tmp_path)),
               "NO_PROXY": "127.0.0.1,localhost"}
        proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "ls", "-w", "-A"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert eventually(lambda: hole.accepted >= 5, timeout=30), "no LIST reached the hole"
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            proc.kill()
            proc.wait()
        assert rc == 130
        assert elapsed < 1.0, elapsed
