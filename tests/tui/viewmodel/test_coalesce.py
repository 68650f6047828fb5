from __future__ import annotations

import threading
from dataclasses import replace

from fleet.events import FleetChange
from fleet.model import ConnectionState
from tests.tui.fakes import deployment
from tui.viewmodel.coalesce import ChangeBuffer


def test_notifies_once_until_drained_and_merges_by_key():
    calls = []
    buf = ChangeBuffer(lambda: calls.append(1))
    d = deployment(1)
    buf.push(FleetChange(deployments_upserted=[d]))
    buf.push(FleetChange(deployments_upserted=[replace(d, ready=1, resource_version="200")]))
    buf.push(FleetChange(connection=ConnectionState.SYNCED))
    assert calls == [1]
    batch = buf.drain()
    assert batch.deployments[d.key].ready == 1 and batch.events == 3
    assert batch.connection is ConnectionState.SYNCED
    buf.push(FleetChange(deployments_deleted=[d.key]))
    assert calls == [1, 1]
    assert buf.drain().deployments_deleted == {d.key}


def test_older_resource_version_does_not_overwrite_newer():
    buf = ChangeBuffer(lambda: None)
    d = deployment(1)
    buf.push(FleetChange(deployments_upserted=[replace(d, ready=0, resource_version="300")]))
    buf.push(FleetChange(deployments_upserted=[replace(d, ready=2, resource_version="250")]))
    assert buf.drain().deployments[d.key].ready == 0


def test_delete_then_upsert_is_an_upsert():
    buf = ChangeBuffer(lambda: None)
    d = deployment(1)
    buf.push(FleetChange(deployments_deleted=[d.key]))
    buf.push(FleetChange(deployments_upserted=[d]))
    batch = buf.drain()
    assert d.key in batch.deployments and not batch.deployments_deleted


def test_concurrent_pushes_lose_nothing():
    notified = threading.Semaphore(0)
    buf = ChangeBuffer(notified.release)
    deps = [deployment(i) for i in range(400)]

    def push(chunk):
        for d in chunk:
            buf.push(FleetChange(deployments_upserted=[d]))

    threads = [threading.Thread(target=push, args=(deps[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(buf.drain().deployments) == 400


def test_schedules_merge_like_jobs():
    from tests.tui.fakes import schedule

    buf = ChangeBuffer(lambda: None)
    s = schedule(1)
    buf.push(FleetChange(schedules_upserted=[replace(s, active=1, resource_version="600")]))
    buf.push(FleetChange(schedules_upserted=[replace(s, active=0, resource_version="550")]))
    other = schedule(2)
    buf.push(FleetChange(schedules_upserted=[other]))
    buf.push(FleetChange(schedules_deleted=[other.key]))
    batch = buf.drain()
    assert batch.schedules[s.key].active == 1  # the older resourceVersion lost
    assert other.key not in batch.schedules and batch.schedules_deleted == {other.key}
    assert FleetChange(schedules_deleted=[other.key]).is_empty() is False
