"""Training progress on the Job itself: the annotation `modelfleet.io/progress`.

Why an annotation on the Job: `fleet` and the TUI already watch training Jobs, so progress
arrives with the watch events they receive anyway: no log scraping, no per-job connection, and it
scales to hundreds of jobs. The pod needs `patch` on `jobs.batch` in its namespace (the
`fleet-trainer` Role, README: "Permissions"); without it progress goes to the log only.
Patches are rate-limited (phase changes go out at once, epochs at most every `min_interval`).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

PROGRESS_ANNOTATION = "modelfleet.io/progress"
FAILURE_ANNOTATION = "modelfleet.io/failure"
MERGE_PATCH = "application/merge-patch+json"

log = logging.getLogger("tuning.progress")


def job_path(namespace: str, name: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobProgress:
    """Merges progress fields and patches them onto the Job (best effort, rate-limited)."""

    def __init__(self, client: Any | None, namespace: str, job: str, *,
                 min_interval: float = 3.0, clock: Any = time.monotonic) -> None:
        self.client = client
        self.namespace = namespace
        self.job = job
        self.min_interval = min_interval
        self.state: dict[str, Any] = {}
        self._clock = clock
        self._last_sent = float("-inf")
        self._pending = False
        self._disabled_reason = "" if client is not None else "no API access"
        self.patches = 0

    def update(self, **fields: Any) -> None:
        phase_changed = "phase" in fields and fields["phase"] != self.state.get("phase")
        self.state.update({k: v for k, v in fields.items() if v is not None})
        self.state["updated"] = utc_now()
        self._pending = True
        if phase_changed or self._clock() - self._last_sent >= self.min_interval:
            self.flush()

    def flush(self, extra: dict[str, str] | None = None) -> None:
        if not self._pending and not extra:
            return
        self._pending = False
        if self._disabled_reason:
            return
        annotations = {PROGRESS_ANNOTATION: json.dumps(self.state, sort_keys=True)}
        annotations.update(extra or {})
        try:
            self.client.patch(job_path(self.namespace, self.job),
                              {"metadata": {"annotations": annotations}}, MERGE_PATCH)
            self.patches += 1
        except Exception as exc:  # progress must never fail the training
            status = getattr(exc, "status", None)
            if status in (401, 403, 404):
                self._disabled_reason = f"{type(exc).__name__}: {exc}"
                log.warning("progress reporting off (%s); progress is in this log only",
                            self._disabled_reason)
            else:
                log.warning("progress patch failed (%s), will retry", exc)
                self._pending = True
        self._last_sent = self._clock()

    def fail(self, reason: str) -> None:
        self.state.update(phase="failed", message=reason, updated=utc_now())
        self._pending = True
        self.flush({FAILURE_ANNOTATION: reason[:1000]})
