"""The API client as fleet code sees it: one Protocol per kind of call on `fleet.kube.KubeClient`.

Each function asks for the narrowest role that covers what it calls (a read-only op a `Reader`,
an edit a `Patcher`, the cache a `Pager` and a `Watcher`), so a unit test's fake implements
just those methods. The signatures are `KubeClient`'s, less keyword arguments no caller passes
(`limit`, a request's `content_type` and `timeout`). `KubeClient` is every one of them (checked by
mypy below); tests/fleet/fakeapi.py's `FakeApi` is an `ApiClient` (tests/fleet/test_api_client.py).
Nothing of fleet's is imported at run time: any module may import this one without a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import urllib3

    from fleet.kube import KubeClient

Obj = dict[str, Any]


@runtime_checkable
class WatchEvents(Protocol):
    """An open watch (`fleet.kube.WatchStream`): iterate for decoded events; `close()` from any
    thread ends the iteration."""

    def __iter__(self) -> Iterator[Obj]: ...

    def close(self) -> None: ...


@runtime_checkable
class Reader(Protocol):
    """GET one object or a whole (paginated, merged) list."""

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Obj: ...

    def list_all(self, path: str, query: Mapping[str, Any] | None = None) -> Obj: ...


@runtime_checkable
class Poster(Protocol):
    """POST, e.g. a SelfSubjectAccessReview (fleet.ops.access)."""

    def post(self, path: str, body: Any, query: Mapping[str, Any] | None = None) -> Obj: ...


@runtime_checkable
class Patcher(Reader, Protocol):
    """Read, then PATCH (JSON patch with test ops, merge, strategic merge, server-side apply)."""

    def patch(self, path: str, body: Any, content_type: str,
              query: Mapping[str, Any] | None = None) -> Obj: ...


@runtime_checkable
class Writer(Patcher, Protocol):
    """A `Patcher` that also PUTs (fleet.ops.scale: GET the Scale, check it, PUT it back)."""

    def put(self, path: str, body: Any, query: Mapping[str, Any] | None = None) -> Obj: ...


@runtime_checkable
class Pager(Protocol):
    """LIST page by page (kubectl's chunking): each decoded page as it arrives."""

    def list_pages(self, path: str, query: Mapping[str, Any] | None = None) -> Iterable[Obj]: ...


@runtime_checkable
class Watcher(Protocol):
    """WATCH a collection (`?watch=1` is added)."""

    def watch(self, path: str, query: Mapping[str, Any] | None = None, *,
              read_timeout: float = ...) -> WatchEvents: ...


@runtime_checkable
class ApiClient(Writer, Poster, Pager, Watcher, Protocol):
    """Every JSON verb and watch the ops, the cache and scopes call, and the kubeconfig
    context's namespace (kubectl's default `-n`): what a stand-in for `KubeClient` in their
    unit tests implements."""

    @property
    def namespace(self) -> str: ...


@runtime_checkable
class RolloutWatcher(Reader, Watcher, Protocol):
    """fleet.ops.status: GET the Deployment, then WATCH it until its rollout is done."""


@runtime_checkable
class Requester(Protocol):
    """Any verb with a body, e.g. DELETE with DeleteOptions (fleet.ops.deploy's rollback)."""

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None) -> Obj: ...


@runtime_checkable
class Streamer(Protocol):
    """GET with the body left unread (pod logs), and the client's request timeout."""

    @property
    def timeout(self) -> float: ...

    def stream(self, path: str, query: Mapping[str, Any] | None = None, *,
               read_timeout: float | None = ..., accept: str | None = None
               ) -> urllib3.BaseHTTPResponse: ...


@runtime_checkable
class LogReader(Reader, Streamer, Protocol):
    """fleet.ops.logs: find the pods (GET, LIST), then stream their logs."""


@runtime_checkable
class Deployer(Patcher, Requester, Protocol):
    """fleet.ops.deploy: preflight reads, server-side apply, DELETE of what it created."""


if TYPE_CHECKING:
    def _kube_client_is_every_role(
        c: KubeClient,
    ) -> tuple[ApiClient, RolloutWatcher, LogReader, Deployer]:
        """Never called: mypy fails here when `KubeClient` stops matching a role."""
        return c, c, c, c
