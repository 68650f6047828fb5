"""The pure parts of following a training run: reasons, progress lines, unschedulable pods."""

from __future__ import annotations

import json

from tuning import train_ops


def _job(failed_reason: str | None = None, annotations: dict | None = None) -> dict:
    status = {}
    if failed_reason:
        status["conditions"] = [{"type": "Failed", "status": "True", "reason": failed_reason,
                                 "message": "Job has reached the specified backoff limit"}]
    return {"metadata": {"name": "j", "annotations": annotations or {}}, "status": status}


def _pod(name: str, exit_code: int | None = None, message: str = "", sched: dict | None = None,
         finished: str = "2026-12-01T00:00:00Z") -> dict:
    st: dict = {}
    if exit_code is not None:
        st["containerStatuses"] = [{"name": "trainer", "state": {"terminated": {
            "exitCode": exit_code, "message": message, "finishedAt": finished}}}]
    if sched:
        st["conditions"] = [{"type": "PodScheduled", **sched}]
    return {"metadata": {"name": name}, "status": st}


def test_deterministic_failure_names_the_policy_and_the_trainers_reason() -> None:
    job = _job("PodFailurePolicy", {"modelfleet.io/failure": "code hdfs://x/t.whl not found"})
    text = train_ops.failure_reason(job, [_pod("p", 42, "other")])
    assert text == ("failed at once (deterministic error, not retried): "
                    "code hdfs://x/t.whl not found")


def test_backoff_failure_uses_the_latest_termination_message() -> None:
    pods = [_pod("a", 1, "old reason", finished="2026-12-01T00:00:00Z"),
            _pod("b", 137, "OOMKilled-ish\nlast line", finished="2026-12-01T00:05:00Z")]
    text = train_ops.failure_reason(_job("BackoffLimitExceeded"), pods)
    assert text == "failed after its retries (backoffLimit): exit code 137: OOMKilled-ish last line"


def test_unschedulable_is_reported_only_after_the_grace_period() -> None:
    msg = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    pods = [_pod("p", sched={"status": "False", "reason": "Unschedulable", "message": msg})]
    since: dict = {}
    assert train_ops.unschedulable(pods, since, now=100.0, grace=30.0) == ""
    assert train_ops.unschedulable(pods, since, now=129.0, grace=30.0) == ""
    assert train_ops.unschedulable(pods, since, now=130.0, grace=30.0) == \
        f"pod p is unschedulable: {msg}"
    scheduled = [_pod("p", sched={"status": "True"})]
    assert train_ops.unschedulable(scheduled, since, now=131.0, grace=30.0) == ""
    assert since == {}


def test_progress_text_and_malformed_annotations() -> None:
    doc = {"phase": "training", "epoch": 3, "epochs": 10, "metric": "accuracy", "value": 0.93,
           "loss": 0.2}
    job = {"metadata": {"annotations": {"modelfleet.io/progress": json.dumps(doc)}}}
    assert train_ops.progress_text(train_ops.progress_of(job)) == \
        "training · epoch 3/10 · accuracy 0.9300 · loss 0.2000"
    for raw in ("{not json", "[1, 2]", ""):
        bad = {"metadata": {"annotations": {"modelfleet.io/progress": raw}}}
        assert train_ops.progress_of(bad) == {}


class NodesClient:
    def __init__(self, nodes):
        self.nodes = nodes

    def get(self, path, query=None):
        assert path == "/api/v1/nodes"
        return {"items": self.nodes}


def test_largest_gpu_node_ignores_cordoned_nodes() -> None:
    nodes = [
        {"metadata": {"name": "a"}, "spec": {}, "status": {"allocatable": {"nvidia.com/gpu": "2"}}},
        {"metadata": {"name": "b"}, "spec": {"unschedulable": True},
         "status": {"allocatable": {"nvidia.com/gpu": "8"}}},
        {"metadata": {"name": "c"}, "spec": {}, "status": {"allocatable": {}}},
    ]
    assert train_ops.largest_gpu_node(NodesClient(nodes)) == (2, "a")
