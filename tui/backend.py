"""The TUI's only door to the cluster: a thin adapter over `fleet.kube`, `fleet.cache`, `fleet.ops`.

Every method may block, so the app calls them from thread workers only. Fleet modules
are imported lazily so that Textual paints its first frame before they load. Tests
pass a fake with the same methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fleet.events import FleetChange

Key = tuple[str, str]

# app action -> (verb, resource, subresource) checked with SelfSubjectAccessReview
PERMISSIONS: dict[str, tuple[str, str, str | None]] = {
    "rollback": ("patch", "deployments", None),
    "rollout": ("patch", "deployments", None),
    "restart": ("patch", "deployments", None),
    "pause": ("patch", "deployments", None),
    "scale": ("patch", "deployments", "scale"),
}


class KubeBackend:
    """Real cluster access for one kubeconfig context and namespace scope."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespaces: list[str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context_name = context
        self.namespaces = namespaces or None
        self.client: Any = None
        self.cache: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._started = False
        self._rows_shown = threading.Event()

    # -- lifecycle -------------------------------------------------------------------
    def _connect(self) -> None:
        from fleet.cache import FleetCache
        from fleet.kube import KubeClient

        self.client = KubeClient.from_kubeconfig(self.kubeconfig, self.context_name)
        self.context_name = self.context_name or getattr(self.client, "context", None)
        self.cache = FleetCache(self.client, namespaces=self.namespaces)

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
        doc = self.client.get("/api/v1/namespaces")
        return sorted(item["metadata"]["name"] for item in doc.get("items", []))

    # -- permissions -----------------------------------------------------------------
    def can_i(self, action: str, namespace: str) -> tuple[bool, str]:
        from fleet.ops import access

        verb, resource, sub = PERMISSIONS[action]
        return access.can_i(self.client, verb, resource, namespace, subresource=sub)

    # -- detail ----------------------------------------------------------------------
    def history(self, namespace: str, name: str) -> tuple[int, list[Any]]:
        """(deployment generation, `fleet.model.Revision`s ascending, templates included):
        fleet core's `rollout history`, the same rows and serving container as `fleet history`."""
        from fleet.ops import history

        return history.history_at(self.client, namespace, name)

    def pods(self, namespace: str, name: str) -> list[Any]:
        return list(self.cache.pods_for(namespace, name))

    def events(self, namespace: str, name: str) -> list[Any]:
        return list(self.cache.events_for(namespace, name))

    def probes(self, namespace: str, name: str) -> Any:
        """Probe specs, pods and probe events from the watch cache: no API call."""
        from fleet.ops import probes

        template = self.cache.pod_template(namespace, name)
        if template is None:
            raise LookupError(f"deployment {namespace}/{name} is not in the watch cache")
        pods = self.cache.pods_for(namespace, name)
        events = self.cache.events_about(namespace, [p.name for p in pods])
        return probes.report(namespace, name, template, pods, events)

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
