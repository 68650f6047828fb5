"""Apply the demo plan to a cluster: concurrent but bounded, idempotent, with progress.

A deployment that already carries `devcluster.demo/seeded-revisions` = its planned revision count
is skipped, so a second run costs one LIST per namespace. Between two revisions we wait only
until the deployment controller has observed the previous template (observedGeneration),
because a template it never saw would not become a ReplicaSet/revision.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from devcluster.demo import manifests
from devcluster.demo.plan import SEED_LABEL, SEEDED_ANNOTATION, DeploymentPlan, FleetPlan
from fleet import errors
from fleet.kube import MERGE_PATCH, STRATEGIC_PATCH, collection_path, deployment_path

Progress = Callable[["SeedStats"], None]


@dataclass
class SeedStats:
    deployments_total: int = 0
    deployments_done: int = 0
    deployments_skipped: int = 0
    revisions_written: int = 0
    jobs_total: int = 0
    jobs_done: int = 0
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def print_progress(stats: SeedStats, stream: Any = sys.stderr) -> None:
    """One self-overwriting status line."""
    line = (f"\rseeding: deployments {stats.deployments_done}/{stats.deployments_total}"
            f" ({stats.deployments_skipped} already there), revisions written "
            f"{stats.revisions_written}, jobs {stats.jobs_done}/{stats.jobs_total}, "
            f"{stats.elapsed:.0f}s")
    stream.write(line)
    stream.flush()


class Seeder:
    def __init__(self, client: Any, plan: FleetPlan, *, workers: int = 12,
                 progress: Progress | None = None, settle_timeout: float = 60.0) -> None:
        self.client = client
        self.plan = plan
        self.workers = workers
        self.progress = progress or (lambda _s: None)
        self.settle_timeout = settle_timeout
        self.stats = SeedStats(len(plan.deployments), jobs_total=len(plan.jobs))
        self._lock = threading.Lock()
        self._last_report = 0.0

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_report > 0.25:
            self._last_report = now
            self.progress(self.stats)

    def run(self) -> SeedStats:
        for ns in self.plan.namespaces:
            self._ensure_namespace(ns)
        existing = self._existing()
        todo = []
        for d in self.plan.deployments:
            if existing.get((d.namespace, d.name)) == str(len(d.revisions)):
                self.stats.deployments_done += 1
                self.stats.deployments_skipped += 1
            else:
                todo.append(d)
        self._report(force=True)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self._seed_deployment, d): d for d in todo}
            futures.update({pool.submit(self._seed_job, j): j for j in self.plan.jobs})
            for fut in as_completed(futures):
                item = futures[fut]
                try:
                    fut.result()
                except errors.FleetError as exc:
                    with self._lock:
                        self.stats.failures.append(f"{item.namespace}/{item.name}: {exc.message}")
                self._report()
        self._report(force=True)
        return self.stats

    # -- namespaces & idempotence -------------------------------------------------------------
    def _ensure_namespace(self, ns: str) -> None:
        with contextlib.suppress(errors.Conflict):
            self.client.post("/api/v1/namespaces", manifests.namespace(ns))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # pods need the default ServiceAccount
            try:
                self.client.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default")
                return
            except errors.NotFound:
                time.sleep(0.2)
        raise errors.FleetError(
            f"namespace {ns}: the default ServiceAccount did not appear within 30s "
            "(is kube-controller-manager running?)")

    def _existing(self) -> dict[tuple[str, str], str]:
        out = {}
        for ns in self.plan.namespaces:
            doc = self.client.list_all(collection_path("apps/v1", "deployments", ns),
                                       {"labelSelector": f"{SEED_LABEL}=1"})
            for item in doc.get("items") or []:
                md = item["metadata"]
                out[(ns, md["name"])] = (md.get("annotations") or {}).get(SEEDED_ANNOTATION, "")
        return out

    # -- deployments ----------------------------------------------------------------------------
    def _wait_observed(self, d: DeploymentPlan, generation: int) -> None:
        deadline = time.monotonic() + self.settle_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            dep = self.client.get(deployment_path(d.namespace, d.name))
            if int((dep.get("status") or {}).get("observedGeneration") or 0) >= generation:
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise errors.Timeout(f"deployment {d.name} not observed by the controller in time")

    def _seed_deployment(self, d: DeploymentPlan) -> None:
        path = deployment_path(d.namespace, d.name)
        try:
            dep = self.client.get(path)
            start = int((dep["metadata"].get("annotations") or {}).get(
                "deployment.kubernetes.io/revision", "0") or 0)
            start = max(1, min(start, len(d.revisions)))
            generation = int(dep["metadata"].get("generation") or 1)
        except errors.NotFound:
            dep = self.client.post(collection_path("apps/v1", "deployments", d.namespace),
                                   manifests.deployment(d, d.revisions[0]))
            generation = int(dep["metadata"].get("generation") or 1)
            start = 1
            self._count_revision()
        for rev in d.revisions[start:]:
            self._wait_observed(d, generation)
            dep = self.client.patch(path, manifests.revision_patch(d, rev), STRATEGIC_PATCH)
            generation = int(dep["metadata"].get("generation") or generation)
            self._count_revision()
        self._wait_observed(d, generation)
        self.client.patch(path, {"metadata": {"annotations": {
            SEEDED_ANNOTATION: str(len(d.revisions))}}}, MERGE_PATCH)
        with self._lock:
            self.stats.deployments_done += 1

    def _count_revision(self) -> None:
        with self._lock:
            self.stats.revisions_written += 1
        self._report()

    # -- jobs -------------------------------------------------------------------------------
    def _seed_job(self, j: Any) -> None:
        with contextlib.suppress(errors.Conflict):
            self.client.post(collection_path("batch/v1", "jobs", j.namespace), manifests.job(j))
        with self._lock:
            self.stats.jobs_done += 1


def seed_fleet(client: Any, plan: FleetPlan, *, workers: int = 12,
               progress: Progress | None = None) -> SeedStats:
    """Create (or complete) the plan's namespaces, deployments with their revisions, and jobs."""
    return Seeder(client, plan, workers=workers, progress=progress).run()
