"""`rollout_status` watch mode against the in-memory API, and API error mapping."""

from __future__ import annotations

import queue
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


def test_without_watch_it_reads_once_by_default():
    api = _api()
    dropped: queue.Queue = queue.Queue()
    dropped.put(None)  # a watch, if opened, fails at once instead of waiting
    api.watch_queues[collection_path("apps/v1", "deployments", "ns1")] = dropped
    res = rollout_status(api, "ns1", "resnet")
    assert not res.done and len(res.messages) == 1
    assert [c[0] for c in api.calls] == ["GET"]


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


# --- the watch loop: what it asks the server, where it resumes, when it gives up -------------

DEP = deployment_path("ns1", "resnet")
WATCH = collection_path("apps/v1", "deployments", "ns1")


class _Clock:
    """`time` for fleet.ops.status: `monotonic()` starts at 1000 and moves `step` per call."""

    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step = 1000.0, step

    def monotonic(self) -> float:
        now = self.now
        self.now += self.step
        return now


def _with_rv(dep: dict, rv: str) -> dict:
    dep["metadata"]["resourceVersion"] = rv
    return dep


def _queued(api: FakeApi, *events) -> None:
    """Events for the next watches, then a dropped connection: a loop that should have
    returned by then fails at once instead of waiting for events that never come."""
    q = api.watch_queues.setdefault(WATCH, queue.Queue())
    for ev in (*events, None):
        q.put(ev)


@pytest.mark.parametrize(("timeout", "server", "read"), [
    (None, 300, 310), (100.5, 101, 111), (1000, 301, 311), (0.9, 1, 11)])
def test_watch_asks_from_the_read_resource_version_with_a_server_side_timeout(
        monkeypatch, timeout, server, read):
    from fleet.ops import status as status_mod

    monkeypatch.setattr(status_mod, "time", _Clock())
    api = _api()
    _queued(api, {"type": "MODIFIED", "object": _progressing(2, 2)})
    res = rollout_status(api, "ns1", "resnet", watch=True, timeout=timeout)
    assert res.done
    assert api.watch_queries == [(WATCH, {
        "fieldSelector": "metadata.name=resnet", "resourceVersion": "1234",
        "allowWatchBookmarks": "true", "timeoutSeconds": server}, read)]


def test_a_watch_the_server_closed_resumes_from_the_last_resource_version_seen():
    api = _api()
    _queued(api, {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "1300"}}},
            "END", {"type": "MODIFIED", "object": _progressing(2, 2)})
    res = rollout_status(api, "ns1", "resnet", watch=True)
    assert res.done
    assert [q["resourceVersion"] for _, q, _ in api.watch_queries] == ["1234", "1300"]


def test_the_deadline_is_checked_after_every_event(monkeypatch):
    from fleet.ops import status as status_mod

    monkeypatch.setattr(status_mod, "time", _Clock(step=6.0))  # deadline 1010; 1012 after one
    api = _api()
    _queued(api, {"type": "MODIFIED", "object": _progressing(2, 1)},
            {"type": "MODIFIED", "object": _progressing(2, 2)})
    seen: list[str] = []
    with pytest.raises(errors.Timeout, match="^timed out waiting for the condition$"):
        rollout_status(api, "ns1", "resnet", watch=True, timeout=10, on_message=seen.append)
    assert len(seen) == 2 and "successfully" not in seen[-1]


class _GoneOnce(FakeApi):
    """The first watch is refused with 410 Gone after `on_gone` changed the object; a second
    watch gets the queued events, a third fails the test."""

    def __init__(self, on_gone) -> None:
        super().__init__()
        self.on_gone = on_gone
        self.watches = 0

    def watch(self, path, query=None, *, read_timeout=0):
        self.watches += 1
        if self.watches == 1:
            self.watch_queries.append((path, dict(query or {}), read_timeout))
            self.on_gone(self)
            raise errors.Gone("too old resource version", status=410, reason="Expired")
        assert self.watches == 2, "watched again after the rollout was done"
        return super().watch(path, query, read_timeout=read_timeout)


def test_gone_at_watch_start_reads_again_and_may_be_done():
    def finish(api):
        api.objects[DEP] = _with_rv(_progressing(2, 2), "1400")

    api = _GoneOnce(finish)
    api.objects[DEP] = _progressing(1, 1)
    _queued(api)  # a second watch would fail
    res = rollout_status(api, "ns1", "resnet", watch=True)
    assert res.done and res.messages[-1] == 'deployment "resnet" successfully rolled out'
    assert [c[0] for c in api.calls].count("GET") == 2


def test_gone_at_watch_start_watches_again_from_the_fresh_read():
    def advance(api):
        api.objects[DEP] = _with_rv(_progressing(2, 1), "1400")

    api = _GoneOnce(advance)
    api.objects[DEP] = _progressing(1, 1)
    _queued(api, {"type": "MODIFIED", "object": _progressing(2, 2)})
    res = rollout_status(api, "ns1", "resnet", watch=True)
    assert res.done and len(res.messages) == 3
    assert [q["resourceVersion"] for _, q, _ in api.watch_queries] == ["1234", "1400"]


def test_an_error_event_reads_again_then_returns_or_watches_from_there():
    expired = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    api = _api()
    _queued(api, expired)
    api.objects[DEP] = _progressing(1, 1)
    real_get = api.get
    reads = []

    def get(path, query=None):
        reads.append(path)
        if len(reads) == 2:  # the read after the ERROR event: done
            api.objects[DEP] = _with_rv(_progressing(2, 2), "1500")
        return real_get(path, query)

    api.get = get
    res = rollout_status(api, "ns1", "resnet", watch=True)
    assert res.done and len(reads) == 2 and len(api.watch_queries) == 1

    api = _api()
    reads.clear()

    def get_progress(path, query=None):
        reads.append(path)
        if len(reads) == 2:
            api.objects[DEP] = _with_rv(_progressing(2, 1), "1500")
        return FakeApi.get(api, path, query)

    api.get = get_progress
    _queued(api, expired, {"type": "MODIFIED", "object": _progressing(2, 2)})
    res = rollout_status(api, "ns1", "resnet", watch=True)
    assert res.done and len(res.messages) == 3
    assert [q["resourceVersion"] for _, q, _ in api.watch_queries] == ["1234", "1500"]
