"""The TUI's only door to the cluster: a thin adapter over `fleet.kube`, `fleet.cache`, `fleet.ops`.

Every method may block, so the app calls them from thread workers only. Fleet modules
are imported lazily so that Textual paints its first frame before they load. Tests
pass a fake with the same methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fleet.events import FleetChange

if TYPE_CHECKING:
    from fleet.kube import KubeClient
    from fleet.model import Autoscaler, EventRecord, PodSummary, SweepTrials
    from fleet.ops.deploy import DeployResult, DeploySpec
    from fleet.ops.logs import LogOptions
    from fleet.ops.predict import PredictResult, ProbeResult
    from fleet.scope import WatchScope
    from tui.cli_actions import CliResult, OnLine

Key = tuple[str, str]

# app action -> (verb, resource, subresource) checked with SelfSubjectAccessReview
# action -> (verb, API group, resource, subresource) of the SelfSubjectAccessReview
PERMISSIONS: dict[str, tuple[str, str, str, str | None]] = {
    "rollback": ("patch", "apps", "deployments", None),
    "rollout": ("patch", "apps", "deployments", None),
    "restart": ("patch", "apps", "deployments", None),
    "pause": ("patch", "apps", "deployments", None),
    "scale": ("patch", "apps", "deployments", "scale"),
    "deploy": ("create", "apps", "deployments", None),
    "portforward": ("create", "", "pods", "portforward"),  # pods are in the core group
    "logs": ("get", "", "pods", "log"),
}

EVENTS_WAIT = 5.0  # seconds a detail tab waits for its namespace's first Event LIST
# events that tell how a Deployment was scaled (the HPA's and the controller's)
SCALING_REASONS = {"SuccessfulRescale", "FailedRescale", "FailedGetResourceMetric",
                   "FailedComputeMetricsReplicas", "FailedGetScale", "ScalingReplicaSet"}


class LogLines(Protocol):
    """An open log stream (`fleet.ops.logs.LogStream`): iterate for lines; `close()` from any
    thread ends the iteration."""

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """What the app and its screens may call (from thread workers: every method may block).
    `KubeBackend` implements it against a cluster, tests/tui/fakes.py in memory."""

    @property
    def context(self) -> str: ...
    @property
    def kubeconfig(self) -> str | None: ...
    @property
    def scope(self) -> WatchScope | None:
        """What RBAC let it watch (None: not resolved, or a backend without scopes)."""

    def connect(self) -> None: ...
    def start(self, on_change: Callable[[FleetChange], None]) -> None: ...
    def snapshot(self) -> FleetChange: ...
    def stop(self) -> None: ...
    # RBAC-hidden types, staged listing, Events held per namespace: a backend without them
    # (the in-memory fake) answers [] and does nothing
    def forbidden_lines(self) -> list[str]: ...
    def rows_shown(self) -> None: ...
    def hold_events(self, namespace: str) -> Callable[[], None]: ...
    def contexts(self) -> list[str]: ...
    def list_namespaces(self) -> list[str]: ...
    def can_i(self, action: str, namespace: str) -> tuple[bool, str]: ...
    def history(self, namespace: str, name: str) -> tuple[int, list[Any]]: ...
    def pods(self, namespace: str, name: str) -> list[Any]: ...
    def events(self, namespace: str, name: str) -> list[Any]: ...
    def probes(self, namespace: str, name: str) -> Any: ...
    def scaling(self, namespace: str, name: str
                ) -> tuple[Autoscaler | None, list[EventRecord]]: ...
    def rollback(self, ns: str, name: str, to_revision: int = 0,
                 generation: int | None = None) -> Any: ...
    def rollout(self, ns: str, name: str, model_uri: str | None, image: str | None,
                reason: str | None, version: str | None = None) -> Any: ...
    def scale(self, ns: str, name: str, replicas: int, current: int | None = None) -> Any: ...
    def restart(self, ns: str, name: str) -> Any: ...
    def pause(self, ns: str, name: str) -> Any: ...
    def resume(self, ns: str, name: str) -> Any: ...
    def run_bulk(self, operation: Callable[[str, str], Any], targets: list[Key]) -> Any: ...
    def undo_candidates(self, within: timedelta) -> list[Any]: ...
    def undo_wave(self, candidates: list[Any]) -> Any: ...
    def deploy(self, spec: DeploySpec, *, dry_run: bool = False, timeout: float = 300.0,
               on_message: Callable[[str], None] | None = None,
               on_progress: Callable[[str], None] | None = None) -> DeployResult: ...
    def probe_now(self, ns: str, pod: str, container: str | None = None) -> ProbeResult: ...
    def predict(self, ns: str, name: str, pod: str | None = None) -> PredictResult: ...
    def log_containers(self, ns: str, pod: str) -> tuple[list[str], str]: ...
    def open_log(self, ns: str, pod: str, container: str, options: LogOptions) -> LogLines: ...
    # sweeps: reads from Kubernetes objects only; writes run the `fleet sweep` CLI
    def sweep_trials(self, ns: str, name: str) -> SweepTrials: ...
    def sweep_pods(self, ns: str, name: str) -> list[PodSummary]: ...
    def run_cli(self, args: list[str], on_line: OnLine | None = None,
                cancel: threading.Event | None = None) -> CliResult: ...


def connected(backend: Backend | None) -> Backend:
    """`backend`, or RuntimeError("not connected") when there is none (before the first
    connection, between two scopes): what a worker calls it through."""
    if backend is None:
        raise RuntimeError("not connected")
    return backend


class KubeBackend:
    """Real cluster access for one kubeconfig context and namespace scope."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespaces: list[str] | None = None,
        *,
        as_user: str | None = None,
        as_groups: Sequence[str] | None = None,
        as_uid: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context_name = context
        self.namespaces = namespaces or None
        # kubectl's --as/--as-group/--as-uid: the client, its watches, tunnels and log streams
        # all send them; `run_cli` passes them to the `fleet` subprocesses
        self.as_user = as_user
        self.as_groups = tuple(as_groups or ())
        self.as_uid = as_uid
        self.scope: WatchScope | None = None  # once connected
        # built by connect(): a `KubeClient` (the tunnels share it), not a protocol
        self.client: KubeClient
        self.cache: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._started = False
        self._rows_shown = threading.Event()
        self._forwarder: Any = None
        self._forwarder_lock = threading.Lock()
        self._trials_seen: dict[Key, Any] = {}

    # -- lifecycle -------------------------------------------------------------------
    def _connect(self) -> None:
        from fleet.cache import FleetCache
        from fleet.kube import KubeClient

        self.client = KubeClient.from_kubeconfig(
            self.kubeconfig, self.context_name, as_user=self.as_user,
            as_groups=self.as_groups or None, as_uid=self.as_uid)
        self.context_name = self.context_name or getattr(self.client, "context", None)
        self._check_impersonation()
        self.scope = self._resolve_scope()
        self.namespaces = self.scope.namespaces
        self.cache = FleetCache(self.client, namespaces=self.namespaces, autoscalers=True)

    def impersonation_args(self) -> list[str]:
        """The `--as …` flags this backend was given, for a `fleet` subprocess."""
        out = ["--as", self.as_user] if self.as_user else []
        for group in self.as_groups:
            out += ["--as-group", group]
        return out + (["--as-uid", self.as_uid] if self.as_uid else [])

    def _check_impersonation(self) -> None:
        """When impersonating, ask who we are (one SelfSubjectReview, which every
        authenticated user may create): a kubeconfig user who may not impersonate gets one
        clear error here, not a 403 from every watch."""
        from fleet.errors import Forbidden, NotFound

        imp = self.client.creds.impersonate
        if imp is None:
            return
        try:
            self.client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                             {"apiVersion": "authentication.k8s.io/v1",
                              "kind": "SelfSubjectReview"})
        except NotFound:
            return  # an API server before 1.28: the first watch tells instead
        except Forbidden as exc:
            if "cannot impersonate" not in exc.message:
                return  # the identity works; RBAC decides the rest (scopes, watches)
            # the server names the resource it was asked about (selfsubjectreviews, or with
            # constrained impersonation `impersonate-on:user-info:create`): say what failed
            flags = " ".join(self.impersonation_args()) or "the kubeconfig's `as` entries"
            exc.message = (f"impersonation refused ({flags}): the kubeconfig's user may not "
                           "impersonate that identity; run without it, or ask for the RBAC "
                           f"verb impersonate. {exc.message}")
            raise

    def _resolve_scope(self) -> WatchScope:
        """fleet.scope.resolve_scope: the namespaces asked for; else every namespace if RBAC
        allows, else those the user can read (config file, context namespace, discovery)."""
        from fleet.config import load_config
        from fleet.scope import resolve_scope

        configured, config_file = None, None
        if not self.namespaces:
            config = load_config()
            configured = config.namespaces_for(self.context_name)
            config_file = str(config.path) if config.path else None
        return resolve_scope(self.client, requested=self.namespaces, all_namespaces=True,
                             context_namespace=self.client.namespace, configured=configured,
                             config_file=config_file)

    def forbidden_lines(self) -> list[str]:
        """`cronjobs forbidden in team-b (RBAC)`, one per namespace hiding resource types;
        empty for a cluster-wide watch (as before namespace scopes)."""
        from fleet.scope import forbidden_lines

        if self.cache is None or self.namespaces is None:
            return []
        return forbidden_lines(self.cache)

    def connect(self) -> None:
        """Build the client and the watch cache (does not start it)."""
        self._connect()

    def start(self, on_change: Callable[[FleetChange], None]) -> None:
        self._unsubscribe = self.cache.subscribe(on_change)
        if not self._started:
            self.cache.start_staged(("deployments",), then=self._rows_shown)
            self._started = True

    def rows_shown(self) -> None:
        """The app has drawn the first Deployments: the other types may start listing."""
        self._rows_shown.set()

    def snapshot(self) -> FleetChange:
        return FleetChange(
            deployments_upserted=list(self.cache.deployments()),
            jobs_upserted=list(self.cache.jobs()),
            schedules_upserted=list(self.cache.retrain_schedules()),
            connection=self.cache.connection,
        )

    def stop(self) -> None:
        """Unsubscribe and stop the cache (waits at most about a second; call it off the UI
        loop)."""
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self.cache is not None:
            self.cache.stop()

    @property
    def context(self) -> str:
        return self.context_name or "-"

    def contexts(self) -> list[str]:
        from tui.kubecontexts import list_contexts

        return list_contexts(self.kubeconfig)

    def list_namespaces(self) -> list[str]:
        from fleet.errors import Forbidden

        try:
            doc = self.client.get("/api/v1/namespaces")
        except Forbidden:
            scope = self.scope
            if scope is not None and scope.fallback and scope.namespaces is not None:
                return list(scope.namespaces)  # the ones RBAC left us
            raise
        return sorted(item["metadata"]["name"] for item in doc.get("items", []))

    # -- permissions -----------------------------------------------------------------
    def can_i(self, action: str, namespace: str) -> tuple[bool, str]:
        from fleet.ops import access

        verb, group, resource, sub = PERMISSIONS[action]
        return access.can_i(self.client, verb, resource, namespace, group=group,
                            subresource=sub)

    # -- detail ----------------------------------------------------------------------
    def history(self, namespace: str, name: str) -> tuple[int, list[Any]]:
        """(deployment generation, `fleet.model.Revision`s ascending, templates included):
        fleet core's `rollout history`, the same rows and serving container as `fleet history`."""
        from fleet.ops import history

        return history.history_at(self.client, namespace, name)

    def pods(self, namespace: str, name: str) -> list[Any]:
        return list(self.cache.pods_for(namespace, name))

    def hold_events(self, namespace: str) -> Callable[[], None]:
        """Watch `namespace`'s Events while a screen shows them; call the result to stop."""
        return self.cache.watch_events(namespace)

    def _events_ready(self, namespace: str) -> None:
        """Wait (briefly) for the held namespace's Events; raise why they cannot be shown."""
        why = self.cache.events_synced(namespace, EVENTS_WAIT)
        if why is not None:
            raise LookupError(why)

    def events(self, namespace: str, name: str) -> list[Any]:
        self._events_ready(namespace)
        return list(self.cache.events_for(namespace, name))

    def probes(self, namespace: str, name: str) -> Any:
        """Probe specs, pods and probe events from the watch cache: no API call."""
        from fleet.ops import probes

        template = self.cache.pod_template(namespace, name)
        if template is None:
            raise LookupError(f"deployment {namespace}/{name} is not in the watch cache")
        pods = self.cache.pods_for(namespace, name)
        # without Events (forbidden, not listed yet) the probe specs and pods still tell most
        self.cache.events_synced(namespace, EVENTS_WAIT)
        events = self.cache.events_about(namespace, [p.name for p in pods])
        return probes.report(namespace, name, template, pods, events)

    def scaling(self, namespace: str, name: str) -> tuple[Any, list[Any]]:
        """(the HPA scaling the Deployment or None, its scaling events newest first): the
        HPA's rescales and the Deployment controller's ScalingReplicaSet, from the cache."""
        hpa = self.cache.hpa_for(namespace, name)
        self.cache.events_synced(namespace, EVENTS_WAIT)  # without them: the HPA's status
        names = [name] + ([hpa.name] if hpa is not None else [])
        events = [e for e in self.cache.events_about(namespace, names)
                  if e.reason in SCALING_REASONS
                  or e.involved_kind == "HorizontalPodAutoscaler"]
        return hpa, events

    # -- pods: probe now, one prediction, logs -----------------------------------------
    def _port_forwarder(self) -> Any:
        """One `PortForwarder` for every tunnel, as the client's user (its credentials: an
        exec plugin or OIDC token is shared, not fetched again)."""
        from fleet.portforward import PortForwarder

        with self._forwarder_lock:
            if self._forwarder is None:
                self._forwarder = PortForwarder.for_client(self.client)
            return self._forwarder

    def probe_now(self, ns: str, pod: str, container: str | None = None) -> Any:
        """fleet.ops.predict.probe_now: the pod's readiness httpGet, now, through a tunnel."""
        from fleet.ops import predict

        return predict.probe_now(self.client, ns, pod, container=container,
                                 forwarder=self._port_forwarder())

    def predict(self, ns: str, name: str, pod: str | None = None) -> Any:
        """fleet.ops.predict.predict with the example input built from the model's metadata."""
        from fleet.ops import predict

        return predict.predict(self.client, ns, name, example=True, pod=pod,
                               forwarder=self._port_forwarder())

    def log_containers(self, ns: str, pod: str) -> tuple[list[str], str]:
        """(every container of the pod in spec order, kubectl's default one)."""
        from urllib.parse import quote

        from fleet.kube import collection_path
        from fleet.ops import logs

        obj = self.client.get(f"{collection_path('v1', 'pods', ns)}/{quote(pod, safe='')}")
        names = logs.all_container_names(obj)
        default = (logs.pod_containers(obj) or names or [""])[0]
        return names, default

    def open_log(self, ns: str, pod: str, container: str, options: Any) -> Any:
        from fleet.ops import logs

        return logs.open_stream(self.client, ns, pod, container, options)

    # -- sweeps --------------------------------------------------------------------------
    def sweep_trials(self, ns: str, name: str) -> Any:
        """fleet.ops.sweeps.sweep_trials: the trials ConfigMap the workers keep current (no
        database access: works from a laptop that reaches only the API). A ConfigMap that did
        not change since the last call returns the same (already parsed) object."""
        from fleet.ops import sweeps

        with self._forwarder_lock:
            known = self._trials_seen.get((ns, name))
        snap = sweeps.sweep_trials(self.client, ns, name, known=known)
        with self._forwarder_lock:
            self._trials_seen.pop((ns, name), None)
            self._trials_seen[(ns, name)] = snap
            while len(self._trials_seen) > 4:  # the sweeps looked at last, not every one
                self._trials_seen.pop(next(iter(self._trials_seen)))
        return snap

    def sweep_pods(self, ns: str, name: str) -> list[Any]:
        from fleet.ops import sweeps

        return sweeps.sweep_pods(self.client, ns, name)

    def run_cli(self, args: list[str], on_line: Any = None,
                cancel: threading.Event | None = None) -> Any:
        """`fleet ARGS --context CTX [--kubeconfig K]` as a subprocess of this interpreter
        (tui.cli_actions.run_cli): the sweep actions live in `tuning`, which the TUI does not
        import. Lines stream to `on_line(stream, line)`; the result carries the exit status."""
        from tui.cli_actions import fleet_command, run_cli

        cmd = fleet_command([*args, *self.impersonation_args()], context=self.context_name,
                            kubeconfig=self.kubeconfig)
        return run_cli(cmd, on_line, cancel=cancel)

    # -- deploy --------------------------------------------------------------------------
    def deploy(self, spec: Any, *, dry_run: bool = False, timeout: float = 300.0,
               on_message: Callable[[str], None] | None = None,
               on_progress: Callable[[str], None] | None = None) -> Any:
        """fleet.ops.deploy.deploy: validate, preflight and server dry run before any write,
        then apply and wait until Available (`result.available`, `result.failure`)."""
        from fleet.ops import deploy

        result, _objs = deploy.deploy(self.client, spec, dry_run=dry_run, timeout=timeout,
                                      on_message=on_message, on_progress=on_progress)
        return result

    # -- actions ---------------------------------------------------------------------
    def rollback(self, ns: str, name: str, to_revision: int = 0,
                 generation: int | None = None) -> Any:
        """Roll back; `generation` (from the plan) refuses if the spec changed since."""
        from fleet.ops import rollback

        return rollback.rollback(self.client, ns, name, to_revision,
                                 expected_generation=generation or None)

    def rollout(self, ns: str, name: str, model_uri: str | None, image: str | None,
                reason: str | None, version: str | None = None) -> Any:
        from fleet.ops import rollout

        return rollout.rollout(self.client, ns, name, model_uri=model_uri, image=image,
                               version=version, reason=reason)

    def scale(self, ns: str, name: str, replicas: int, current: int | None = None) -> Any:
        from fleet.ops import scale

        return scale.scale(self.client, ns, name, replicas, current_replicas=current)

    def restart(self, ns: str, name: str) -> Any:
        from fleet.ops import restart

        return restart.restart(self.client, ns, name)

    def pause(self, ns: str, name: str) -> Any:
        from fleet.ops import restart

        return restart.pause(self.client, ns, name)

    def resume(self, ns: str, name: str) -> Any:
        from fleet.ops import restart

        return restart.resume(self.client, ns, name)

    def run_bulk(self, operation: Callable[[str, str], Any], targets: list[Key]) -> Any:
        """fleet.ops.bulk.run_bulk: concurrent, one result per target, order kept."""
        from fleet.ops import bulk

        return bulk.run_bulk(operation, targets, max_workers=16)

    def undo_candidates(self, within: timedelta) -> list[Any]:
        from fleet.ops import bulk

        return bulk.undo_wave_candidates(self.client, within, namespaces=self.namespaces)

    def undo_wave(self, candidates: list[Any]) -> Any:
        """Roll back every candidate with its generation as precondition (fleet core)."""
        from fleet.ops import bulk

        return bulk.undo_wave(self.client, candidates)
