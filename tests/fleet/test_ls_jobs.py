"""`fleet ls --jobs` / `--schedules` against the in-memory API: columns, JSON, empty cases."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import pytest

from fleet import commands
from fleet.kube import collection_path
from fleet.model import JobState, Promotion, RetrainSchedule, TrainingJob, TrainingProgress
from tests.fleet.fakeapi import FakeApi
from tests.fleet.test_cache_unit import _cronjob, _training_job

JOBS = collection_path("batch/v1", "jobs", "ns1")
CRONJOBS = collection_path("batch/v1", "cronjobs", "ns1")
NOW = datetime.now(UTC)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["ls", *argv])


def _ls(monkeypatch, capsys, api: FakeApi, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(commands, "_client", lambda args: api)
    rc = commands.cmd_ls(_args(*argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _api() -> FakeApi:
    api = FakeApi()
    failed = _training_job("train-b", {"phase": "failed", "message": "bad lr"})
    failed["metadata"]["annotations"]["modelfleet.io/failure"] = "TrainerError: lr must be > 0"
    failed["status"] = {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}
    api.lists[JOBS] = [
        _training_job("train-a", {"phase": "training", "epoch": 3, "epochs": 10,
                                  "metric": "accuracy", "value": 0.931}),
        failed,
        _training_job("train-c"),
    ]
    promo = {"result": "promoted", "detail": "0.962 > 0.948 (live)",
             "time": (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    api.lists[CRONJOBS] = [_cronjob("retrain-digits", promo, suspend=False),
                           _cronjob("retrain-paused")]
    return api


def _cells(line: str) -> list[str]:
    return [c for c in line.split("   ") if c.strip()]


def test_jobs_table_has_progress_columns_and_the_schedules_table(monkeypatch, capsys):
    rc, out, err = _ls(monkeypatch, capsys, _api(), "--jobs")
    assert rc == 0 and err == ""
    jobs, schedules = out.split("\n\n")
    lines = jobs.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "STATE", "PHASE", "EPOCH", "METRIC",
                                "COMPLETIONS", "ACTIVE", "FAILED", "GPUS", "AGE", "REASON"]
    a, b, c = (ln.split() for ln in lines[1:])
    assert a[:7] == ["train-a", "training", "running", "training", "3/10", "accuracy", "0.931"]
    assert b[:6] == ["train-b", "training", "failed", "failed", "-", "-"]
    assert lines[2].endswith("TrainerError: lr must be > 0")
    assert c[:6] == ["train-c", "training", "running", "-", "-", "-"] and c[-1] == "-"
    head, digits, paused = schedules.splitlines()
    assert [h.strip() for h in _cells(head)] == [
        "NAME", "MODEL", "DEPLOYMENT", "SCHEDULE", "ACTIVE", "LAST RUN", "NEXT RUN",
        "LAST PROMOTION", "DETAIL"]
    row = [x.strip() for x in _cells(digits)]
    assert row[:5] == ["retrain-digits", "digits", "digits", "0 3 * * *", "0"]
    assert row[6].startswith("in ") and row[7] == "promoted 2h ago"
    assert row[8] == "0.962 > 0.948 (live)"
    row = [x.strip() for x in _cells(paused)]
    assert row[6:] == ["suspended", "<none>", "-"]


def test_all_namespaces_adds_the_namespace_column_to_both_tables(monkeypatch, capsys):
    api = _api()
    for path in (JOBS, CRONJOBS):
        api.lists[path.replace("/namespaces/ns1", "")] = api.lists.pop(path)
    _, out, _ = _ls(monkeypatch, capsys, api, "--jobs", "-A")
    jobs, schedules = out.split("\n\n")
    assert jobs.split()[0] == "NAMESPACE" and schedules.split()[0] == "NAMESPACE"


def test_no_schedules_no_second_table(monkeypatch, capsys):
    api = _api()
    api.lists[CRONJOBS] = []
    _, out, _ = _ls(monkeypatch, capsys, api, "--jobs")
    assert "\n\n" not in out and "SCHEDULE" not in out and len(out.splitlines()) == 4


def test_json_jobs_carry_progress_and_failure(monkeypatch, capsys):
    _, out, _ = _ls(monkeypatch, capsys, _api(), "--jobs", "-o", "json")
    jobs = json.loads(out)
    assert [j["name"] for j in jobs] == ["train-a", "train-b", "train-c"]
    assert jobs[0]["progress"]["epoch"] == 3 and jobs[0]["progress"]["metric"] == "accuracy"
    assert jobs[1]["failure"] == "TrainerError: lr must be > 0"
    assert jobs[2]["progress"] is None


def test_schedules_only_table_and_json(monkeypatch, capsys):
    _, out, _ = _ls(monkeypatch, capsys, _api(), "--schedules")
    assert out.splitlines()[0].split()[:3] == ["NAME", "MODEL", "DEPLOYMENT"]
    assert len(out.splitlines()) == 3
    _, out, _ = _ls(monkeypatch, capsys, _api(), "--schedules", "-o", "json")
    docs = json.loads(out)
    assert [d["name"] for d in docs] == ["retrain-digits", "retrain-paused"]
    assert docs[0]["last_promotion"]["result"] == "promoted" and docs[0]["next_run"]
    assert docs[1]["suspended"] is True and docs[1]["next_run"] is None


def test_forbidden_cronjobs_still_list_the_jobs(monkeypatch, capsys):
    from tests.fleet.test_cache_unit import QueryApi

    api = QueryApi()
    api.lists.update(_api().lists)
    api.forbidden.add(CRONJOBS)
    rc, out, _ = _ls(monkeypatch, capsys, api, "--jobs")
    assert rc == 0 and "train-a" in out and "SCHEDULE" not in out


def test_empty_is_kubectls_wording(monkeypatch, capsys):
    rc, out, err = _ls(monkeypatch, capsys, FakeApi(), "--jobs")
    assert rc == 0 and out == "" and err == "No resources found in ns1 namespace.\n"


@pytest.mark.parametrize(("delta", "want"), [
    (timedelta(minutes=30, seconds=5), "in 30m"), (timedelta(seconds=30.5), "in 30s"),
    (timedelta(days=3, minutes=1), "in 3d"), (timedelta(seconds=-10), "now"),
    (timedelta(minutes=-5), "overdue 5m"),
])
def test_until(delta, want):
    assert commands._until(datetime.now(UTC) + delta) == want


def test_rows_of_records_built_by_hand():
    j = TrainingJob("ns", "t", "u", "training", None, 0, 0, 0, 0, JobState.PENDING, NOW,
                    progress=TrainingProgress(epoch=2, loss=0.5))
    assert commands._job_row(j)[4:7] == ["-", "2", "loss 0.500"]
    s = RetrainSchedule("ns", "r", schedule="0 3 * * *", time_zone="Europe/Berlin",
                        last_schedule=NOW - timedelta(hours=3),
                        last_promotion=Promotion(result="kept"))
    row = commands._schedule_row(s)
    assert row[4] == "0 3 * * * (Europe/Berlin)" and row[6] == "3h ago"
    assert row[7] == "<invalid schedule>" and row[8:] == ["kept", "-"]
    assert commands._schedule_row(s, "deleted")[7] == "deleted"
