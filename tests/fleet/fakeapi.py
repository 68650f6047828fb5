"""An in-memory stand-in for `KubeClient` (paths, JSON patch, watch streams) for unit tests.

It implements just what the ops, the cache and scopes call: it is a `fleet.api_client.ApiClient`
(tests/fleet/test_api_client.py checks it); the real-cluster tests cover the server side.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from fleet import errors
from fleet.kube import JSON_PATCH


class FakeWatch:
    def __init__(self, events: queue.Queue) -> None:
        self.events = events
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while not self.closed:
            ev = self.events.get()
            if ev is None:  # connection drop
                raise errors.Unreachable("watch connection lost: reset")
            if ev == "END":
                return
            yield ev

    def close(self) -> None:
        self.closed = True
        self.events.put("END")


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}  # path -> object
        self.lists: dict[str, list[dict[str, Any]]] = {}
        self.list_queries: list[tuple[str, dict[str, Any]]] = []  # (path, query) of LISTs
        self.list_rv = "100"
        self.calls: list[tuple[str, str]] = []
        self.patches: list[tuple[str, str, Any, dict]] = []
        self.reviews: list[dict[str, Any]] = []  # SelfSubjectAccessReview bodies POSTed
        self.put_conflicts = 0  # PUTs to fail with 409 before one succeeds
        self.before_patch = None  # hook(path) run just before a PATCH is applied
        self.watch_queues: dict[str, queue.Queue] = {}
        self.watch_errors: dict[str, list[Exception]] = {}
        # (path, query, read_timeout) of every watch opened
        self.watch_queries: list[tuple[str, dict[str, Any], float]] = []
        self.watch_opened = threading.Event()
        self.namespace = "ns1"
        self._rv = 2000

    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(("GET", path))
        if path not in self.objects:
            name = path.rsplit("/", 1)[-1]
            raise errors.NotFound(f'Error from server (NotFound): deployments.apps "{name}" '
                                  "not found", status=404, reason="NotFound")
        return copy.deepcopy(self.objects[path])

    def list_all(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(("LIST", path))
        self.list_queries.append((path, dict(query or {})))
        return {"metadata": {"resourceVersion": self.list_rv},
                "items": copy.deepcopy(self.lists.get(path, []))}

    def list_pages(self, path: str,
                   query: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return [self.list_all(path, query)]

    def patch(self, path: str, body: Any, content_type: str,
              query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(("PATCH", path))
        if self.before_patch:
            self.before_patch(path)
        obj = self.objects[path]
        self.patches.append((path, content_type, copy.deepcopy(body), dict(query or {})))
        if content_type != JSON_PATCH:  # merge / strategic merge: a recursive dict merge
            merged = _merge(copy.deepcopy(obj), body)
            merged["metadata"]["resourceVersion"] = self.next_rv()
            self.objects[path] = merged
            return copy.deepcopy(merged)
        work = copy.deepcopy(obj)
        for op in body:
            parts = [p.replace("~1", "/").replace("~0", "~")
                     for p in op["path"].strip("/").split("/")]
            parent = work
            for p in parts[:-1]:
                parent = parent[int(p)] if isinstance(parent, list) else parent[p]
            last = parts[-1]
            if op["op"] == "test":
                if parent.get(last) != op["value"]:
                    # kube-apiserver: NewGenericServerResponse(422, ...) hides the jsonpatch
                    # text in details.causes; the message says nothing about the test.
                    raise errors.Invalid(
                        "Error from server (Invalid): the server rejected our request due to "
                        "an error in our request", status=422, reason="Invalid")
            elif isinstance(parent, list):
                if last == "-":
                    parent.append(copy.deepcopy(op["value"]))
                else:
                    parent[int(last)] = copy.deepcopy(op["value"])
            else:
                parent[last] = copy.deepcopy(op["value"])
        obj = self.objects[path] = work
        obj["metadata"]["resourceVersion"] = self.next_rv()
        return copy.deepcopy(obj)

    def put(self, path: str, body: Any,
            query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(("PUT", path))
        if self.put_conflicts:
            self.put_conflicts -= 1
            raise errors.Conflict("Error from server (Conflict): the object has been modified",
                                  status=409)
        body = copy.deepcopy(body)
        body["metadata"]["resourceVersion"] = self.next_rv()
        self.objects[path] = body
        return copy.deepcopy(body)

    def post(self, path: str, body: Any,
             query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """SelfSubjectAccessReviews only: the review's `status` is `review_status(attributes)`
        (allowed, unless `denied(attributes)` says otherwise); each review body is kept."""
        self.calls.append(("POST", path))
        if not path.endswith("/selfsubjectaccessreviews"):
            raise NotImplementedError(path)
        self.reviews.append(copy.deepcopy(body))
        attrs = body["spec"]["resourceAttributes"]
        return {**copy.deepcopy(body), "status": self.review_status(attrs)}

    def review_status(self, attributes: dict[str, Any]) -> dict[str, Any]:  # tests replace it
        return {"allowed": not self.denied(attributes)}

    def denied(self, attributes: dict[str, Any]) -> bool:  # tests replace it
        return False

    def watch(self, path: str, query: Mapping[str, Any] | None = None, *,
              read_timeout: float = 0) -> FakeWatch:
        self.calls.append(("WATCH", path))
        self.watch_queries.append((path, dict(query or {}), read_timeout))
        errs = self.watch_errors.get(path)
        if errs:
            raise errs.pop(0)
        q = self.watch_queues.setdefault(path, queue.Queue())
        self.watch_opened.set()
        return FakeWatch(q)


def _merge(base: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return copy.deepcopy(patch)
    for k, v in patch.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = _merge(base.get(k), v)
    return base
