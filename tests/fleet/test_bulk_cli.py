"""Bulk results for every target, undo-wave start times, CLI helpers and exit codes."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta

import pytest

from fleet import commands
from fleet.errors import Conflict
from fleet.kube import collection_path
from fleet.model import OpResult
from fleet.ops.bulk import rollout_started_at, run_bulk, undo_wave_candidates
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import history_set


def test_run_bulk_reports_every_target_in_order_concurrently():
    def op(ns: str, name: str) -> OpResult:
        time.sleep(0.2)
        if name == "b":
            raise Conflict("changed")
        if name == "c":
            raise RuntimeError("boom")
        return OpResult(ns, name, f"deployment.apps/{name} rolled back", True)

    t0 = time.monotonic()
    res = run_bulk(op, [("n", x) for x in "abcd"], max_workers=4)
    assert time.monotonic() - t0 < 0.6
    assert [(r.name, r.ok) for r in res.results] == [
        ("a", True), ("b", False), ("c", False), ("d", True)]
    assert res.results[2].message == "RuntimeError: boom" and not res.ok
    assert [r.name for r in res.failed] == ["b", "c"]
    assert run_bulk(op, []).ok


def test_rollout_started_at_uses_controller_revision_write_for_reused_rs():
    dep, rss = history_set()
    assert rollout_started_at(dep, rss) == datetime(2026, 11, 27, 1, 10, tzinfo=UTC)
    dep["metadata"]["managedFields"] = [
        {"manager": "kube-controller-manager", "operation": "Update",
         "time": "2026-11-27T02:00:00Z"},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
         "time": "2026-11-27T02:30:00Z"},
    ]
    assert rollout_started_at(dep, rss) == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_rollout_started_at_falls_back_to_the_deployments_creation():
    dep, _ = history_set()
    assert rollout_started_at(dep, []) == datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def test_run_bulk_runs_targets_concurrently_by_default():
    import threading

    together = threading.Barrier(5, timeout=5)

    def op(ns: str, name: str) -> OpResult:
        together.wait()  # every target must be in flight at once
        return OpResult(ns, name, "ok", True)

    res = run_bulk(op, [("n", str(i)) for i in range(5)])
    assert res.ok and len(res.succeeded) == 5


def test_undo_wave_rolls_back_concurrently_by_default():
    import threading

    from fleet.kube import deployment_path
    from fleet.ops.bulk import WaveCandidate, undo_wave

    api = FakeApi()
    listed = []
    for ns in ("ns1", "ns2"):
        dep, rss = history_set()
        dep["metadata"]["namespace"] = ns
        api.objects[deployment_path(ns, "resnet")] = dep
        api.lists[collection_path("apps/v1", "replicasets", ns)] = rss
        listed.append(WaveCandidate(ns, "resnet", 3, 2, datetime(2026, 11, 27, 1, 10, tzinfo=UTC),
                                    "bump to 3", generation=3, resource_version="1234"))
    together = threading.Barrier(2, timeout=5)
    api.before_patch = lambda path: together.wait()
    res = undo_wave(api, listed)
    assert res.ok and [r.namespace for r in res.results] == ["ns1", "ns2"]


def test_undo_wave_candidates_window_and_history():
    api = FakeApi()
    dep, rss = history_set()
    old = copy.deepcopy(dep)
    old["metadata"].update(name="old", uid="u-old")
    owned = copy.deepcopy(dep)
    owned["metadata"].update(name="isvc-predictor", ownerReferences=[{
        "kind": "InferenceService", "name": "isvc", "uid": "i", "controller": True}])
    api.lists[collection_path("apps/v1", "deployments", "ns1")] = [dep, old, owned]
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss
    now = datetime(2026, 11, 27, 1, 20, tzinfo=UTC)
    cands = undo_wave_candidates(api, timedelta(minutes=15), ["ns1"], now=now)
    assert [(c.name, c.revision, c.previous_revision) for c in cands] == [("resnet", 3, 2)]
    assert undo_wave_candidates(api, timedelta(minutes=5), ["ns1"], now=now) == []


def test_undo_wave_candidates_carry_what_the_rollback_checks_newest_first():
    api = FakeApi()
    dep, rss = history_set()
    later = copy.deepcopy(dep)
    later["metadata"].update(name="later", uid="u-later", resourceVersion="77", generation=5)
    del later["metadata"]["annotations"]["deployment.kubernetes.io/revision"]  # missing: 0
    later_rss = copy.deepcopy(rss)
    for rs in later_rss:
        rs["metadata"]["ownerReferences"][0]["uid"] = "u-later"
        rs["metadata"]["name"] = rs["metadata"]["name"].replace("resnet", "later")
    later_rss[2]["metadata"]["creationTimestamp"] = "2026-11-27T01:15:00Z"
    for rs in later_rss[:2]:  # adopted ReplicaSets without a revision: kubectl counts 0
        del rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    api.lists[collection_path("apps/v1", "deployments", "ns1")] = [dep, later]
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss + later_rss
    now = datetime(2026, 11, 27, 1, 20, tzinfo=UTC)
    cands = undo_wave_candidates(api, timedelta(minutes=15), ["ns1"], now=now)
    assert [(c.namespace, c.name, c.revision, c.previous_revision, c.generation,
             c.resource_version, c.change_cause) for c in cands] == [
        ("ns1", "later", 0, 0, 5, "77", "bump to 3"),
        ("ns1", "resnet", 3, 2, 3, "1234", "bump to 3")]
    assert cands[0].started_at > cands[1].started_at


def test_run_bulk_results_name_their_targets_and_below_one_worker_is_one():
    def op(ns: str, name: str) -> OpResult:
        if name == "b":
            raise Conflict("changed")
        if name == "c":
            raise RuntimeError("boom")
        return OpResult(ns, name, "ok", True)

    targets = [("ns-a", "a"), ("ns-b", "b"), ("ns-c", "c")]
    for workers in (16, 0):
        res = run_bulk(op, targets, max_workers=workers)
        assert [(r.namespace, r.name, r.ok) for r in res.results] == [
            ("ns-a", "a", True), ("ns-b", "b", False), ("ns-c", "c", False)]


def test_undo_wave_refuses_a_candidate_whose_spec_changed_since_it_was_listed():
    from dataclasses import replace

    from fleet.kube import deployment_path
    from fleet.ops.bulk import WaveCandidate, undo_wave

    api = FakeApi()
    dep, rss = history_set()  # metadata.generation 3
    api.objects[deployment_path("ns1", "resnet")] = dep
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss
    listed = WaveCandidate("ns1", "resnet", 3, 2, datetime(2026, 11, 27, 1, 10, tzinfo=UTC),
                           "bump to 3", generation=2, resource_version="1")
    (stale,) = undo_wave(api, [listed]).results
    assert not stale.ok and isinstance(stale.error, Conflict)
    assert "generation 2 -> 3" in stale.message
    assert api.patches == []  # nothing was written
    (fresh,) = undo_wave(api, [replace(listed, generation=3)]).results
    assert fresh.ok and fresh.message == "deployment.apps/resnet rolled back"
    assert len(api.patches) == 1


def test_parse_duration():
    assert commands.parse_duration("15m") == timedelta(minutes=15)
    assert commands.parse_duration("1h30m") == timedelta(minutes=90)
    assert commands.parse_duration("90") == timedelta(seconds=90)
    with pytest.raises(Exception, match="invalid duration"):
        commands.parse_duration("soon")


def test_cli_error_is_kubectl_style_and_exit_1(tmp_path, capsys, monkeypatch):
    from fleet.cli import main

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    assert main(["rollback", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration: no configuration has been provided")
    line = 'Error from server (NotFound): deployments.apps "x" not found'
    commands.print_error(line)
    assert capsys.readouterr().err == line + "\n"
