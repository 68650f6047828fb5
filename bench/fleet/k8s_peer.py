"""The peer of `fleet.cache.FleetCache` in the cache benchmarks: the `kubernetes` package's own
list+watch of the same resource types with the same label selectors.

One thread per type: paged LIST (`limit`/`_continue`, as our reflectors page), every item
kept as the package's model object (what `kubernetes.informer.ObjectCache` keeps), then
`kubernetes.watch.Watch().stream(...)` from the list's resourceVersion with bookmarks,
applying ADDED/MODIFIED/DELETED to the store. `kubernetes.informer.SharedInformer` (new in
37) is not used because its LIST is one unpaged request and it exposes no "listed" signal.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from fleet.cache import AUTOSCALERS, RESOURCES, Resource

PAGE = 500  # items per LIST page, as fleet.kube.KubeClient.list_pages
# (API class, snake-case kind) of the generated client's list functions per plural
_APIS = {
    "deployments": ("AppsV1Api", "deployment"),
    "replicasets": ("AppsV1Api", "replica_set"),
    "pods": ("CoreV1Api", "pod"),
    "jobs": ("BatchV1Api", "job"),
    "cronjobs": ("BatchV1Api", "cron_job"),
    "horizontalpodautoscalers": ("AutoscalingV2Api", "horizontal_pod_autoscaler"),
    "events": ("CoreV1Api", "event"),
}
Key = tuple[str, str]
OnEvent = Callable[[str, str, Any], None]  # (plural, event type, model object)


def list_function(api_client: Any, plural: str, namespace: str | None) -> Callable[..., Any]:
    """The generated list function: `list_namespaced_<kind>` or `list_<kind>_for_all_namespaces`."""
    from kubernetes import client

    api_name, kind = _APIS[plural]
    api = getattr(client, api_name)(api_client)
    if namespace is None:
        return getattr(api, f"list_{kind}_for_all_namespaces")
    return functools.partial(getattr(api, f"list_namespaced_{kind}"), namespace)


class PeerReflector(threading.Thread):
    """Paged LIST then `Watch().stream` for one type; `listed` and `opened` mark progress."""

    def __init__(self, api_client: Any, res: Resource, namespace: str | None,
                 on_event: OnEvent | None = None) -> None:
        super().__init__(name=f"peer-{res.plural}-{namespace or 'all'}", daemon=True)
        self.res, self.namespace, self.on_event = res, namespace, on_event
        self.func = list_function(api_client, res.plural, namespace)
        self.store: dict[Key, Any] = {}
        self.lock = threading.Lock()
        self.listed = threading.Event()
        self.opened = threading.Event()
        self.halt = threading.Event()
        self.error = ""
        self._watch: Any = None

    def _selector(self) -> dict[str, Any]:
        return {"label_selector": self.res.label_selector} if self.res.label_selector else {}

    def list_once(self) -> str:
        """Every page into the store (replacing it); returns the list's resourceVersion."""
        fresh: dict[Key, Any] = {}
        cont, rv = None, ""
        while True:
            page = self.func(limit=PAGE, _continue=cont, **self._selector())
            for item in page.items or []:
                fresh[(item.metadata.namespace or "", item.metadata.name)] = item
            rv = page.metadata.resource_version or rv
            cont = page.metadata.var_continue
            if not cont:
                break
        with self.lock:
            self.store = fresh
        return rv

    def _opening(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """`func` that sets `opened` once the watch response's headers are in (the package's
        `Watch.stream` reads the model type from the wrapped function's annotation)."""
        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            resp = func(*args, **kwargs)
            self.opened.set()
            return resp
        return call

    def run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        try:
            rv = self.list_once()
            self.listed.set()
            func = self._opening(self.func)
            while not self.halt.is_set():
                self._watch = watch.Watch()
                try:
                    for ev in self._watch.stream(func, resource_version=rv,
                                                 allow_watch_bookmarks=True,
                                                 timeout_seconds=300, **self._selector()):
                        if self.halt.is_set():
                            return
                        self._apply(ev["type"], ev["object"])
                except ApiException as exc:
                    if exc.status != 410:
                        raise
                    rv = self.list_once()  # expired: relist, as client-go's reflector does
                    continue
                rv = self._watch.resource_version or rv
        except Exception as exc:  # noqa: BLE001 - reported by the benchmark, not swallowed
            if not self.halt.is_set():
                self.error = f"{type(exc).__name__}: {exc}"
                self.listed.set()
                self.opened.set()

    def _apply(self, etype: str, obj: Any) -> None:
        if etype not in ("ADDED", "MODIFIED", "DELETED"):
            return
        key = (obj.metadata.namespace or "", obj.metadata.name)
        with self.lock:
            if etype == "DELETED":
                self.store.pop(key, None)
            else:
                self.store[key] = obj
        if self.on_event is not None:
            self.on_event(self.res.plural, etype, obj)

    def end(self) -> None:
        self.halt.set()
        if self._watch is not None:
            self._watch.stop()


class PeerCache:
    """The fleet cache's types (`FleetCache(..., autoscalers=True)`) through the package."""

    def __init__(self, api_client: Any, namespaces: list[str] | None = None,
                 on_event: OnEvent | None = None) -> None:
        scopes: list[str | None] = list(namespaces) if namespaces else [None]
        self.reflectors = [PeerReflector(api_client, r, ns, on_event)
                           for r in (*RESOURCES, AUTOSCALERS) for ns in scopes]

    def start(self) -> PeerCache:
        for r in self.reflectors:
            r.start()
        return self

    def wait(self, which: str, timeout: float) -> bool:
        """Wait for every reflector's `listed` or `opened` event."""
        import time

        deadline = time.monotonic() + timeout
        return all(getattr(r, which).wait(max(0.0, deadline - time.monotonic()))
                   for r in self.reflectors)

    def errors(self) -> list[str]:
        return [f"{r.name}: {r.error}" for r in self.reflectors if r.error]

    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.reflectors:
            out[r.res.plural] = out.get(r.res.plural, 0) + len(r.store)
        return out

    def stop(self) -> None:
        for r in self.reflectors:
            r.end()
