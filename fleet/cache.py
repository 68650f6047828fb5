"""The watch cache: one LIST then WATCH per resource type, slim records, coalesced notifications.

Each (resource type, namespace scope) runs a reflector thread: LIST (paginated), then WATCH from
the list's resourceVersion with bookmarks, resuming from the last seen resourceVersion after a
dropped connection, relisting on `410 Gone`, retrying with capped exponential backoff. The
stores keep projections (`PodSummary`, `EventRecord`, a trimmed Deployment dict), never full
objects. A notifier thread publishes at most ~5 `FleetChange`s per second to subscribers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from fleet import derive
from fleet.api_client import Pager, Watcher, WatchEvents
from fleet.errors import FleetError, Forbidden, Gone, NotFound
from fleet.events import FleetChange, Key
from fleet.kube import collection_path
from fleet.model import (
    CHANGE_CAUSE,
    COMPONENT_LABEL,
    EPOCH,
    MODEL_SERVER_COMPONENT,
    MODEL_URI_ENV,
    RETRAINING_COMPONENT,
    TRAINING_COMPONENTS,
    Autoscaler,
    ConnectionState,
    EventRecord,
    ModelDeployment,
    PodSummary,
    RetrainSchedule,
    TrainingJob,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NOTIFY_INTERVAL = 0.2  # seconds between notifications: at most 5/s
FORBIDDEN_RETRY = 30.0  # seconds between retries of a resource type RBAC hides
STOP_TIMEOUT = 1.0  # seconds `stop()` waits for all threads together
PROBE_FIELDS = ("livenessProbe", "readinessProbe", "startupProbe")


class Client(Pager, Watcher, Protocol):
    """What the cache needs from `KubeClient`: LIST pages and WATCH (a fake implements it in
    unit tests)."""


@dataclass(frozen=True)
class Resource:
    kind: str
    group_version: str
    plural: str
    label_selector: str | None = None


# Every watch is label-selected by the API server, so a big cluster's other workloads (tens of
# thousands of pods, their ReplicaSets and churn) never reach us: only model-server Deployments,
# their ReplicaSets and pods (the serving manifests put the component label on the pod template
# and the selector), training and sweep Jobs with their pods, and re-training CronJobs.
MODEL_SELECTOR = f"{COMPONENT_LABEL}={MODEL_SERVER_COMPONENT}"
FLEET_POD_SELECTOR = (
    f"{COMPONENT_LABEL} in ({','.join((MODEL_SERVER_COMPONENT, *TRAINING_COMPONENTS))})")
RESOURCES: tuple[Resource, ...] = (
    Resource("Deployment", "apps/v1", "deployments", MODEL_SELECTOR),
    Resource("ReplicaSet", "apps/v1", "replicasets", MODEL_SELECTOR),
    Resource("Pod", "v1", "pods", FLEET_POD_SELECTOR),
    # A 403 on Jobs or CronJobs leaves them empty (see run()).
    Resource(
        "Job", "batch/v1", "jobs", f"{COMPONENT_LABEL} in ({','.join(TRAINING_COMPONENTS)})"
    ),
    Resource("CronJob", "batch/v1", "cronjobs", f"{COMPONENT_LABEL}={RETRAINING_COMPONENT}"),
)
# Events are not watched cluster-wide (a big cluster writes thousands a minute, about objects
# that are mostly not ours): `FleetCache.watch_events(ns)` watches one namespace's Events while
# something on screen needs them (the TUI's detail screen), at most MAX_EVENTS_PER_NAMESPACE kept.
EVENTS = Resource("Event", "v1", "events")
MAX_EVENTS_PER_NAMESPACE = 2000
# Opt-in (`FleetCache(..., autoscalers=True)`, the TUI): joined to Deployments by
# spec.scaleTargetRef, so each ModelDeployment carries its HPA's min/max/current/targets.
AUTOSCALERS = Resource("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers")


_KEPT_ANNOTATIONS = ("deployment.kubernetes.io/", CHANGE_CAUSE)


def slim_deployment(dep: Obj) -> Obj:
    """Keep only what `derive.model_deployment` reads (a few hundred bytes per Deployment)."""
    md, spec = dep.get("metadata") or {}, dep.get("spec") or {}
    tmpl = spec.get("template") or {}
    containers = []
    for c in (tmpl.get("spec") or {}).get("containers") or []:
        env = [e for e in c.get("env") or [] if e.get("name") == MODEL_URI_ENV]
        slim = {"name": c.get("name"), "image": c.get("image"), "env": env}
        slim.update((k, c[k]) for k in PROBE_FIELDS if c.get(k))  # the detail screen's probes
        containers.append(slim)
    ann = md.get("annotations") or {}
    return {
        "metadata": {
            k: md.get(k)
            for k in ("namespace", "name", "uid", "labels", "generation", "resourceVersion",
                      "creationTimestamp")
        }
        | {"annotations": {k: v for k, v in ann.items() if k.startswith(_KEPT_ANNOTATIONS)}},
        "spec": {
            "replicas": spec.get("replicas"),
            "paused": spec.get("paused"),
            "template": {
                "metadata": {"labels": (tmpl.get("metadata") or {}).get("labels")},
                "spec": {"containers": containers},
            },
        },
        "status": dep.get("status") or {},
    }


class _Stores:
    """All cached state; every method runs under the cache lock."""

    def __init__(self) -> None:
        self.deployments: dict[Key, Obj] = {}
        self.rs_owner: dict[Key, str] = {}  # (ns, rs) -> deployment name
        self.dep_rs: dict[Key, set[str]] = defaultdict(set)  # (ns, dep) -> rs names
        self.pods: dict[Key, PodSummary] = {}
        self.pods_by_owner: dict[Key, set[str]] = defaultdict(set)  # (ns, rs) -> pod names
        self.jobs: dict[Key, TrainingJob] = {}
        self.job_base: dict[Key, TrainingJob] = {}  # as derived from the Job alone
        # pods of training/sweep Jobs: (ns, job) -> {pod: summary}, and (ns, pod) -> job
        self.job_pods: dict[Key, dict[str, PodSummary]] = {}
        self.job_pod_owner: dict[Key, str] = {}
        self.schedules: dict[Key, RetrainSchedule] = {}
        self.events: dict[Key, EventRecord] = {}
        self.events_by_involved: dict[Key, set[str]] = defaultdict(set)
        # per namespace, event names in arrival order: the oldest go first past the cap
        self.events_by_ns: dict[str, dict[str, None]] = {}
        self.hpas: dict[Key, tuple[str, Autoscaler]] = {}  # (ns, hpa) -> (deployment, status)
        self.hpas_by_dep: dict[Key, set[str]] = defaultdict(set)  # (ns, dep) -> hpa names
        self.models: dict[Key, ModelDeployment] = {}
        self.dirty: set[Key] = set()
        self.pending_dep_upserts: set[Key] = set()
        self.pending_dep_deletes: set[Key] = set()
        self.pending_job_upserts: set[Key] = set()
        self.pending_job_deletes: set[Key] = set()
        self.pending_sched_upserts: set[Key] = set()
        self.pending_sched_deletes: set[Key] = set()

    # --- per-kind upsert/delete -------------------------------------------------------------
    def apply(self, kind: str, event: str, obj: Obj) -> None:
        md = obj.get("metadata") or {}
        key = (md.get("namespace", ""), md.get("name", ""))
        deleted = event == "DELETED"
        getattr(self, f"_{kind.lower()}")(key, obj, deleted)

    def _deployment(self, key: Key, obj: Obj, deleted: bool) -> None:
        if deleted or not derive.is_model_deployment(obj):
            if self.deployments.pop(key, None) is not None:
                self.models.pop(key, None)
                self.dirty.discard(key)
                self.pending_dep_upserts.discard(key)
                self.pending_dep_deletes.add(key)
            return
        self.deployments[key] = slim_deployment(obj)
        self.dirty.add(key)

    def _replicaset(self, key: Key, obj: Obj, deleted: bool) -> None:
        ns = key[0]
        old = self.rs_owner.pop(key, None)
        if old is not None:
            self._unindex(self.dep_rs, (ns, old), key[1])
            self.dirty.add((ns, old))
        if deleted:
            return
        kind, owner = derive.controller_name(obj)
        if kind == "Deployment":
            self.rs_owner[key] = owner
            self.dep_rs[(ns, owner)].add(key[1])
            self.dirty.add((ns, owner))

    def _pod(self, key: Key, obj: Obj, deleted: bool) -> None:
        ns = key[0]
        old = self.pods.pop(key, None)
        if old is not None:
            self._unindex(self.pods_by_owner, (ns, old.owner), key[1])
            self._touch_rs(ns, old.owner)
        old_job = self.job_pod_owner.pop(key, None)
        if old_job is not None:
            pods = self.job_pods.get((ns, old_job))
            if pods is not None:
                pods.pop(key[1], None)
                if not pods:
                    del self.job_pods[(ns, old_job)]
        if deleted:
            if old_job is not None:
                self._refresh_job((ns, old_job))
            return
        kind, owner = derive.controller_name(obj)
        if kind == "Job":
            # a training or sweep worker pod: why it waits (no node with free GPUs) is shown
            # on its Job's row; other Jobs' pods (a big cluster has many) are not kept
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if labels.get(COMPONENT_LABEL) in TRAINING_COMPONENTS and owner:
                self.job_pods.setdefault((ns, owner), {})[key[1]] = derive.pod_summary(obj)
                self.job_pod_owner[key] = owner
                self._refresh_job((ns, owner))
            if old_job is not None and old_job != owner:
                self._refresh_job((ns, old_job))
            return
        if old_job is not None:
            self._refresh_job((ns, old_job))
        if kind != "ReplicaSet":
            return
        pod = derive.pod_summary(obj)
        self.pods[key] = pod
        self.pods_by_owner[(ns, pod.owner)].add(key[1])
        self._touch_rs(ns, pod.owner)

    @staticmethod
    def _unindex(index: dict[Key, set[str]], key: Key, member: str) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del index[key]  # no empty sets pile up over a long session

    def _touch_rs(self, ns: str, rs: str) -> None:
        dep = self.rs_owner.get((ns, rs))
        if dep is not None:
            self.dirty.add((ns, dep))

    def _job(self, key: Key, obj: Obj, deleted: bool) -> None:
        if deleted or not derive.is_training_job(obj):
            self.job_base.pop(key, None)
            if self.jobs.pop(key, None) is not None:
                self.pending_job_upserts.discard(key)
                self.pending_job_deletes.add(key)
            return
        self.job_base[key] = derive.training_job(obj)
        self._refresh_job(key)

    def _refresh_job(self, key: Key) -> None:
        """The Job's record with what its pods add (unschedulable ones); queued if it changed."""
        job = self.job_base.get(key)
        if job is None:
            return
        pods = self.job_pods.get(key)
        if pods:
            count, reason = derive.unschedulable(pods.values())
            if count:
                job = replace(job, unschedulable=count, pending_reason=reason)
        if self.jobs.get(key) != job:
            self.jobs[key] = job
            self.pending_job_deletes.discard(key)
            self.pending_job_upserts.add(key)

    def _cronjob(self, key: Key, obj: Obj, deleted: bool) -> None:
        if deleted or not derive.is_retrain_schedule(obj):
            if self.schedules.pop(key, None) is not None:
                self.pending_sched_upserts.discard(key)
                self.pending_sched_deletes.add(key)
            return
        sched = derive.retrain_schedule(obj)
        if self.schedules.get(key) != sched:
            self.schedules[key] = sched
            self.pending_sched_deletes.discard(key)
            self.pending_sched_upserts.add(key)

    def _event(self, key: Key, obj: Obj, deleted: bool) -> None:
        ns = key[0]
        old = self.events.pop(key, None)
        if old is not None:
            self._unindex(self.events_by_involved, (ns, old.involved_name), key[1])
            names = self.events_by_ns.get(ns)
            if names is not None:
                names.pop(key[1], None)
                if not names:
                    del self.events_by_ns[ns]
        if deleted:
            return
        ev = derive.event_record(obj)
        self.events[key] = ev
        self.events_by_involved[(ns, ev.involved_name)].add(key[1])
        names = self.events_by_ns.setdefault(ns, {})
        names[key[1]] = None
        while len(names) > MAX_EVENTS_PER_NAMESPACE:
            self._event((ns, next(iter(names))), {}, True)

    def drop_events(self, namespace: str) -> None:
        """Forget a namespace's Events (nobody watches them any more)."""
        for name in list(self.events_by_ns.get(namespace, ())):
            self._event((namespace, name), {}, True)

    def _horizontalpodautoscaler(self, key: Key, obj: Obj, deleted: bool) -> None:
        ns = key[0]
        old = self.hpas.pop(key, None)
        if old is not None:
            self._unindex(self.hpas_by_dep, (ns, old[0]), key[1])
            self.dirty.add((ns, old[0]))
        if deleted:
            return
        kind, target = derive.hpa_target(obj)
        if kind != "Deployment" or not target:
            return
        self.hpas[key] = (target, derive.autoscaler(obj))
        self.hpas_by_dep[(ns, target)].add(key[1])
        self.dirty.add((ns, target))

    def hpa_for(self, ns: str, dep: str) -> Autoscaler | None:
        """The HPA scaling `dep` (the first by name if several claim it)."""
        names = self.hpas_by_dep.get((ns, dep))
        if not names:
            return None
        return self.hpas[(ns, min(names))][1]

    # --- relist ---------------------------------------------------------------------------
    def keys_of(self, kind: str, namespace: str | None) -> list[Key]:
        if kind == "Pod":
            return [k for k in (*self.pods, *self.job_pod_owner)
                    if namespace is None or k[0] == namespace]
        stores: dict[str, dict[Key, Any]] = {
            "Deployment": self.deployments,
            "ReplicaSet": self.rs_owner,
            "Job": self.jobs,
            "CronJob": self.schedules,
            "Event": self.events,
            "HorizontalPodAutoscaler": self.hpas,
        }
        store = stores[kind]
        return [k for k in store if namespace is None or k[0] == namespace]

    def upsert_page(self, kind: str, items: list[Obj], seen: set[Key]) -> None:
        for obj in items:
            md = obj.get("metadata") or {}
            seen.add((md.get("namespace", ""), md.get("name", "")))
            self.apply(kind, "ADDED", obj)

    def delete_missing(self, kind: str, namespace: str | None, seen: set[Key]) -> None:
        for key in self.keys_of(kind, namespace):
            if key not in seen:
                self.apply(kind, "DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})

    def replace(self, kind: str, namespace: str | None, items: list[Obj]) -> None:
        """Apply a fresh LIST: upsert every item, delete what the LIST no longer has."""
        seen: set[Key] = set()
        self.upsert_page(kind, items, seen)
        self.delete_missing(kind, namespace, seen)

    # --- derived model ----------------------------------------------------------------------
    def pods_for(self, ns: str, dep: str) -> list[PodSummary]:
        out: list[PodSummary] = []
        for rs in self.dep_rs.get((ns, dep), ()):
            for pod in self.pods_by_owner.get((ns, rs), ()):
                rec = self.pods.get((ns, pod))
                if rec is not None:
                    out.append(rec)
        out.sort(key=lambda p: p.name)
        return out

    def refresh(self) -> None:
        """Recompute dirty ModelDeployments; queue the ones that really changed."""
        for key in self.dirty:
            raw = self.deployments.get(key)
            if raw is None:
                continue
            model = derive.model_deployment(raw, self.pods_for(*key), self.hpa_for(*key))
            if self.models.get(key) != model:
                self.models[key] = model
                self.pending_dep_deletes.discard(key)
                self.pending_dep_upserts.add(key)
        self.dirty.clear()

    def take_change(self) -> FleetChange:
        self.refresh()
        change = FleetChange(
            deployments_upserted=[self.models[k] for k in sorted(self.pending_dep_upserts)],
            deployments_deleted=sorted(self.pending_dep_deletes),
            jobs_upserted=[self.jobs[k] for k in sorted(self.pending_job_upserts)],
            jobs_deleted=sorted(self.pending_job_deletes),
            schedules_upserted=[self.schedules[k] for k in sorted(self.pending_sched_upserts)],
            schedules_deleted=sorted(self.pending_sched_deletes),
        )
        for pending in (self.pending_dep_upserts, self.pending_dep_deletes,
                        self.pending_job_upserts, self.pending_job_deletes,
                        self.pending_sched_upserts, self.pending_sched_deletes):
            pending.clear()
        return change


class _Reflector(threading.Thread):
    """LIST+WATCH loop for one resource type in one namespace scope."""

    def __init__(self, cache: FleetCache, res: Resource, namespace: str | None) -> None:
        super().__init__(name=f"fleet-{res.plural}-{namespace or 'all'}", daemon=True)
        self.cache, self.res, self.namespace = cache, res, namespace
        self.resource_version = ""
        self.need_list = True
        self.synced = threading.Event()
        self.lost = False
        self.relists = 0
        self.forbidden = ""
        self.stream: WatchEvents | None = None
        self.halt = threading.Event()  # set by FleetCache.stop(), or to end this one watch
        self._expire = False  # test hook: resume the next watch from a compacted RV
        self._stream_lock = threading.Lock()
        self._backoff = 0.0

    def _query(self) -> dict[str, Any]:
        q: dict[str, Any] = {}
        if self.res.label_selector:
            q["labelSelector"] = self.res.label_selector
        return q

    def list_once(self) -> None:
        """LIST page by page, projecting each page as it arrives; then drop what is gone."""
        path = collection_path(self.res.group_version, self.res.plural, self.namespace)
        seen: set[Key] = set()
        stores, rv = self.cache._stores, ""
        for page in self.cache.client.list_pages(path, self._query()):
            with self.cache._lock:
                stores.upsert_page(self.res.kind, page.get("items") or [], seen)
            rv = (page.get("metadata") or {}).get("resourceVersion", rv)
        with self.cache._lock:
            stores.delete_missing(self.res.kind, self.namespace, seen)
        self.resource_version = rv
        self.need_list = False
        self.forbidden = ""
        self.relists += 1
        self.cache._changed()

    def _watch_once(self) -> None:
        path = collection_path(self.res.group_version, self.res.plural, self.namespace)
        q = self._query()
        with self._stream_lock:
            if self._expire:
                self._expire = False
                self.resource_version = "1"  # far older than any watch cache window: 410
        timeout = random.randint(240, 300)
        q.update(
            resourceVersion=self.resource_version, allowWatchBookmarks="true",
            timeoutSeconds=timeout,
        )
        stream = self.cache.client.watch(path, q, read_timeout=timeout + 30)
        with self._stream_lock:
            self.stream = stream
            if self._expire:  # asked to expire while this watch was opening
                stream.close()
        self._set_lost(False)
        self._backoff = 0.0
        try:
            for ev in stream:
                if self.halt.is_set():
                    return
                etype, obj = ev.get("type") or "", ev.get("object") or {}
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(obj.get("message", "410 Gone"), status=410)
                    raise FleetError(obj.get("message", "watch error"), status=obj.get("code"))
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if etype != "BOOKMARK":
                    with self.cache._lock:
                        self.cache._stores.apply(self.res.kind, etype, obj)
                    self.cache._changed()
                if rv:
                    self.resource_version = rv
        finally:
            self.stream = None
            stream.close()

    def expire(self) -> None:
        """Drop the current watch and resume from a long-compacted resourceVersion, so the
        server answers 410 Gone and the reflector must relist (exercises that path live)."""
        with self._stream_lock:
            self._expire = True
            stream = self.stream
        if stream is not None:
            stream.close()

    def _set_lost(self, lost: bool, error: str | None = None) -> None:
        if self.lost != lost:
            self.lost = lost
            self.cache._connection_changed(error)

    def end(self) -> None:
        """Stop this reflector (its thread ends at its next step; an open watch is closed)."""
        self.halt.set()
        stream = self.stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing is best effort, the flag stops it
                log.debug("%s: closing the watch failed", self.name, exc_info=True)

    def run(self) -> None:
        stop = self.halt
        while not stop.is_set():
            try:
                if self.need_list:
                    self.list_once()
                    self._set_lost(False)
                    self.synced.set()
                    self.cache._connection_changed(None)
                self._watch_once()
            except Gone:
                log.info("%s: 410 Gone, relisting", self.name)
                self.need_list = True
            except (Forbidden, NotFound) as exc:
                # RBAC hides this type (or the API does not serve it, e.g. no autoscaling/v2):
                # serve the rest of the fleet without it, retry slowly.
                self.forbidden = exc.message
                self.synced.set()
                self.cache._connection_changed(None)  # not a connection problem: forbidden()
                stop.wait(FORBIDDEN_RETRY)
            except FleetError as exc:
                if stop.is_set():
                    return
                self._set_lost(True, exc.message)
                self._backoff = min(8.0, max(0.25, self._backoff * 2))
                stop.wait(self._backoff * random.uniform(0.8, 1.2))
            except Exception as exc:  # noqa: BLE001 - keep the loop alive, report it
                if stop.is_set():
                    return
                log.exception("%s: unexpected error", self.name)
                self._set_lost(True, f"{type(exc).__name__}: {exc}")
                self._backoff = min(8.0, max(0.25, self._backoff * 2))
                stop.wait(self._backoff)


class FleetCache:
    """Live model of the fleet, fed by list+watch; safe to read from any thread."""

    def __init__(self, client: Client, namespaces: Sequence[str] | None = None, *,
                 autoscalers: bool = False) -> None:
        self.client = client
        self.namespaces = list(namespaces) if namespaces else None
        self._lock = threading.RLock()
        self._stores = _Stores()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._subscribers: list[Callable[[FleetChange], None]] = []
        scopes: Iterable[str | None] = self.namespaces or [None]
        resources = RESOURCES + ((AUTOSCALERS,) if autoscalers else ())
        self._reflectors = [_Reflector(self, r, ns) for r in resources for ns in scopes]
        self._event_watches: dict[str, tuple[_Reflector, int]] = {}  # ns -> (reflector, holders)
        self._notifier: threading.Thread | None = None
        self._staged: threading.Thread | None = None
        self._connection = ConnectionState.CONNECTING
        self._conn_pending: tuple[ConnectionState, str | None] | None = None
        self.last_error: str | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> FleetCache:
        for r in self._reflectors:
            r.start()
        self._start_notifier()
        return self

    def start_staged(
        self,
        first: Sequence[str] = ("deployments",),
        *,
        then: threading.Event | None = None,
        first_wait: float = 10.0,
        then_wait: float = 2.0,
    ) -> FleetCache:
        """Start the `first` resource types (plurals) now and the others later.

        The others start once `first` synced (or after `first_wait`, e.g. API down) and
        `then` is set (or `then_wait` passed). A UI passes an event it sets once the first
        rows are drawn: the big Pod/Event LISTs then no longer compete for the GIL with the
        Deployment pages (1,000 deployments: table full in 1.2-1.9 s instead of 3-4 s).
        """
        early = [r for r in self._reflectors if r.res.plural in first]
        rest = [r for r in self._reflectors if r not in early]
        for r in early:
            r.start()
        self._start_notifier()

        def start_rest() -> None:
            for r in early:
                r.synced.wait(first_wait)
            if then is not None:
                then.wait(then_wait)
            if not self._stop.is_set():
                for r in rest:
                    r.start()

        self._staged = threading.Thread(target=start_rest, name="fleet-staged-start",
                                        daemon=True)
        self._staged.start()
        return self

    def _start_notifier(self) -> None:
        self._notifier = threading.Thread(
            target=self._notify_loop, name="fleet-notify", daemon=True
        )
        self._notifier.start()

    def load_once(self) -> FleetCache:
        """One LIST per type, no watches (for one-shot commands like `fleet ls`)."""
        for r in self._reflectors:
            try:
                r.list_once()
            except (Forbidden, NotFound) as exc:
                if r.res.kind == "Deployment":
                    raise
                r.forbidden = exc.message  # e.g. no access to events: show the rest
            r.synced.set()
        self._connection = ConnectionState.SYNCED
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop every thread, waiting at most `timeout` seconds for all of them together.

        Open watches are closed; a LIST in flight cannot be interrupted (it ends with its read
        timeout), but the threads are daemons, so nothing waits for it. True when every
        thread had ended within the deadline."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            watched = [r for r, _ in self._event_watches.values()]
            self._event_watches.clear()
        for r in (*self._reflectors, *watched):
            r.end()
        deadline = time.monotonic() + timeout
        threads = [*self._reflectors, *watched, self._notifier, self._staged]
        for t in threads:
            if t is not None and t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
        return not any(t is not None and t.is_alive() for t in threads)

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(r.synced.wait(max(0.0, deadline - time.monotonic())) for r in self._reflectors)

    # --- reads -----------------------------------------------------------------------------
    @property
    def connection(self) -> ConnectionState:
        return self._connection

    def deployments(self) -> list[ModelDeployment]:
        with self._lock:
            self._stores.refresh()
            return sorted(self._stores.models.values(), key=lambda d: d.key)

    def jobs(self) -> list[TrainingJob]:
        with self._lock:
            return sorted(self._stores.jobs.values(), key=lambda j: j.key)

    def retrain_schedules(self) -> list[RetrainSchedule]:
        """Re-training CronJobs; empty when RBAC hides CronJobs (see `forbidden()`)."""
        with self._lock:
            return sorted(self._stores.schedules.values(), key=lambda s: s.key)

    def pods_for(self, namespace: str, deployment_name: str) -> list[PodSummary]:
        with self._lock:
            return self._stores.pods_for(namespace, deployment_name)

    def events_for(self, namespace: str, involved_name: str) -> list[EventRecord]:
        """Events about one object, newest first."""
        with self._lock:
            names = self._stores.events_by_involved.get((namespace, involved_name), ())
            evs = [self._stores.events[(namespace, n)] for n in names]
        return sorted(evs, key=lambda e: e.last_seen or EPOCH, reverse=True)

    def hpa_for(self, namespace: str, deployment_name: str) -> Autoscaler | None:
        """The HorizontalPodAutoscaler whose scaleTargetRef is this Deployment, or None."""
        with self._lock:
            return self._stores.hpa_for(namespace, deployment_name)

    def pod_template(self, namespace: str, deployment_name: str) -> Obj | None:
        """The cached pod template (containers' name, image, MODEL_URI and probes), or None."""
        with self._lock:
            dep = self._stores.deployments.get((namespace, deployment_name))
            return None if dep is None else dep["spec"]["template"]

    def events_about(self, namespace: str, names: Iterable[str]) -> list[EventRecord]:
        """Events about any of the named objects (e.g. a Deployment's pods), newest first."""
        with self._lock:
            index, events = self._stores.events_by_involved, self._stores.events
            evs = [events[(namespace, n)] for name in set(names)
                   for n in index.get((namespace, name), ())]
        return sorted(evs, key=lambda e: e.last_seen or EPOCH, reverse=True)

    def watch_events(self, namespace: str) -> Callable[[], None]:
        """Watch `namespace`'s Events until the returned release is called (holders are
        counted: the watch ends, and its events are forgotten, when the last one releases)."""
        with self._lock:
            reflector, holders = self._event_watches.get(namespace, (None, 0))
            if reflector is None:
                reflector = _Reflector(self, EVENTS, namespace)
                if not self._stop.is_set():
                    reflector.start()
            self._event_watches[namespace] = (reflector, holders + 1)
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                current = self._event_watches.get(namespace)
                if current is None or current[0] is not reflector:
                    return
                if current[1] > 1:
                    self._event_watches[namespace] = (reflector, current[1] - 1)
                    return
                del self._event_watches[namespace]
                reflector.end()
                self._stores.drop_events(namespace)

        return release

    def events_synced(self, namespace: str, timeout: float) -> str | None:
        """Wait until the watched namespace's Events are listed. None when they are, else why
        not: not watched, RBAC forbids them there (kubectl's message), or not yet listed."""
        with self._lock:
            entry = self._event_watches.get(namespace)
        if entry is None:
            return f"events in {namespace} are not watched"
        reflector = entry[0]
        if not reflector.synced.wait(timeout):
            return f"events in {namespace} not listed yet"
        return reflector.forbidden or None

    def forbidden(self) -> list[str]:
        """RBAC errors for resource types the cache cannot read (they stay empty)."""
        return [r.forbidden for r in self._reflectors if r.forbidden]

    def expire_watch(self, plural: str) -> None:
        """Force the 410-Gone relist path for one resource type (tests, diagnostics)."""
        for r in self._reflectors:
            if r.res.plural == plural:
                r.expire()

    def relist_count(self, plural: str) -> int:
        return sum(r.relists for r in self._reflectors if r.res.plural == plural)

    # --- subscriptions -------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[FleetChange], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _changed(self) -> None:
        self._wake.set()

    def _connection_changed(self, error: str | None) -> None:
        if any(r.lost for r in self._reflectors):
            state = ConnectionState.RECONNECTING
        elif all(r.synced.is_set() for r in self._reflectors):
            state = ConnectionState.SYNCED
        else:
            state = self._connection if error is None else ConnectionState.RECONNECTING
        with self._lock:
            if error:
                self.last_error = error
            if state != self._connection:
                self._connection = state
                self._conn_pending = (state, error or self.last_error)
        self._wake.set()

    def _notify_loop(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            delay = NOTIFY_INTERVAL - (time.monotonic() - last)
            if delay > 0 and self._stop.wait(delay):
                return
            self._wake.clear()
            with self._lock:
                change = self._stores.take_change()
                conn, self._conn_pending = self._conn_pending, None
                subscribers = list(self._subscribers)
            if conn is not None:
                change = replace(change, connection=conn[0], error=conn[1])
            last = time.monotonic()
            if change.is_empty():
                continue
            for cb in subscribers:
                try:
                    cb(change)
                except Exception:  # noqa: BLE001 - one bad subscriber must not stop the rest
                    log.exception("fleet cache subscriber failed")
