"""JobProgress: rate-limited, merged annotation patches that never fail the training."""

from __future__ import annotations

import json

from fleet.errors import FleetError
from tuning.progress import FAILURE_ANNOTATION, PROGRESS_ANNOTATION, JobProgress


class Client:
    def __init__(self, fail_with: int | None = None) -> None:
        self.calls: list[tuple[str, dict, str]] = []
        self.fail_with = fail_with

    def patch(self, path, body, content_type):
        self.calls.append((path, body, content_type))
        if self.fail_with:
            raise FleetError("nope", status=self.fail_with)
        return {}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _ann(call) -> dict:
    return call[1]["metadata"]["annotations"]


def test_phase_changes_go_out_at_once_epochs_are_rate_limited() -> None:
    client, clock = Client(), Clock()
    p = JobProgress(client, "ml", "digits", min_interval=3.0, clock=clock)
    p.update(phase="training", epoch=1, epochs=5)
    assert len(client.calls) == 1
    assert client.calls[0][0] == "/apis/batch/v1/namespaces/ml/jobs/digits"
    assert client.calls[0][2] == "application/merge-patch+json"
    clock.t = 1.0
    p.update(epoch=2, metric="accuracy", value=0.5)
    assert len(client.calls) == 1  # within min_interval
    clock.t = 3.5
    p.update(epoch=3)
    assert len(client.calls) == 2
    doc = json.loads(_ann(client.calls[1])[PROGRESS_ANNOTATION])
    assert (doc["epoch"], doc["epochs"], doc["metric"], doc["value"]) == (3, 5, "accuracy", 0.5)
    assert doc["updated"].endswith("Z")


def test_forbidden_turns_reporting_off_once() -> None:
    client = Client(fail_with=403)
    p = JobProgress(client, "ml", "digits", min_interval=0.0)
    p.update(phase="installing")
    p.update(phase="staging")
    assert len(client.calls) == 1  # no retry storm after a 403


def test_transient_errors_retry_on_the_next_update() -> None:
    client = Client(fail_with=500)
    p = JobProgress(client, "ml", "digits", min_interval=0.0)
    p.update(phase="installing")
    client.fail_with = None
    p.update(epoch=1)
    assert len(client.calls) == 2 and p.patches == 1


def test_fail_sets_the_failure_annotation() -> None:
    client = Client()
    p = JobProgress(client, "ml", "digits")
    p.fail("code hdfs://x/t.whl not found")
    ann = _ann(client.calls[-1])
    assert ann[FAILURE_ANNOTATION] == "code hdfs://x/t.whl not found"
    assert json.loads(ann[PROGRESS_ANNOTATION])["phase"] == "failed"


def test_without_a_client_nothing_is_sent() -> None:
    p = JobProgress(None, "", "")
    p.update(phase="training")
    p.fail("x")
    assert p.patches == 0
