"""Deployments-first start of the watch cache (`FleetCache.start_staged`)."""

from __future__ import annotations

import threading
import time

from fleet.cache import FleetCache
from fleet.kube import collection_path
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import deployment
from tests.waiting import eventually as _wait

DEPS = collection_path("apps/v1", "deployments", "ns1")




class RecordingApi(FakeApi):
    """FakeApi that records which collections were listed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: list[str] = []

    def list_pages(self, path: str, query=None):
        self.listed.append(path.rsplit("/", 1)[-1])
        return super().list_pages(path, query)


def test_other_types_wait_for_deployments_and_the_rows_shown() -> None:
    api = RecordingApi()
    api.lists[DEPS] = [deployment()]
    cache = FleetCache(api, ["ns1"])
    shown = threading.Event()
    try:
        cache.start_staged(("deployments",), then=shown, then_wait=30)
        assert _wait(lambda: cache.deployments())
        time.sleep(0.2)
        assert api.listed == ["deployments"], "nothing else lists before the rows are shown"
        shown.set()
        assert cache.wait_synced(5)
        assert api.listed[0] == "deployments"
        assert sorted(api.listed[1:]) == ["cronjobs", "jobs", "pods", "replicasets"]
    finally:
        cache.stop()


def test_the_rest_starts_after_then_wait_even_if_never_shown() -> None:
    api = RecordingApi()
    cache = FleetCache(api, ["ns1"])
    try:
        cache.start_staged(("deployments",), then=threading.Event(), then_wait=0.1)
        assert cache.wait_synced(5)
        assert len(api.listed) == 5  # Events are watched only while on screen
    finally:
        cache.stop()


def test_a_stopped_cache_does_not_start_the_rest() -> None:
    api = RecordingApi()
    cache = FleetCache(api, ["ns1"])
    shown = threading.Event()
    cache.start_staged(("deployments",), then=shown, then_wait=30)
    assert _wait(lambda: api.listed == ["deployments"])
    cache.stop()
    shown.set()
    time.sleep(0.3)
    assert api.listed == ["deployments"]
