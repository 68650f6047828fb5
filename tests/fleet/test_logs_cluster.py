"""`fleet logs` against the real cluster: a 2-replica `python:3.11` Deployment on the process
kubelet whose containers crash once (so `--previous` has something), then print a line for
every token file the test drops into a shared hostPath directory."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.cluster import TestCluster, wait_for
from tests.fleet.clusterkit import create_namespace, fleet

pytestmark = pytest.mark.cluster

MAIN = """
import os, pathlib, time
pod = os.environ["POD"]
count = pathlib.Path("/data/count")
run = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(run))
print(f"run {run} of {pod}", flush=True)
if run == 1:
    raise SystemExit(3)
seen = set()
while True:
    for f in sorted(pathlib.Path("/trigger").glob("*")):
        if f.name not in seen:
            seen.add(f.name)
            print(f"token {f.name} from {pod}", flush=True)
    time.sleep(0.1)
"""


def printer(name: str, trigger: Path) -> dict:
    c = {"name": "main", "image": "python:3.11", "command": ["python", "-u", "-c", MAIN],
         "resources": {"requests": {"cpu": "20m"}},
         "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
         "volumeMounts": [{"name": "data", "mountPath": "/data"},
                          {"name": "trigger", "mountPath": "/trigger"}]}
    side = {"name": "side", "image": "python:3.11", "resources": {"requests": {"cpu": "10m"}},
            "command": ["python", "-u", "-c", "import time; print('side up'); time.sleep(1e9)"]}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "runtimeClassName": "fleet-local", "terminationGracePeriodSeconds": 2,
                     "automountServiceAccountToken": False, "containers": [c, side],
                     "volumes": [{"name": "data", "emptyDir": {}},
                                 {"name": "trigger", "hostPath": {
                                     "path": str(trigger), "type": "DirectoryOrCreate"}}]}}}}


class Env:
    def __init__(self, cluster: TestCluster, ns: str, trigger: Path) -> None:
        self.cluster, self.ns, self.trigger = cluster, ns, trigger
        self.pods: list[str] = []

    def logs(self, *args: str) -> subprocess.CompletedProcess[str]:
        return fleet(self.cluster, "logs", "-n", self.ns, *args)

    def token(self) -> str:
        tok = uuid.uuid4().hex[:8]
        (self.trigger / tok).write_text("")
        return tok


@pytest.fixture(scope="module")
def env(cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory):
    ns = create_namespace(cluster, "logs")
    trigger = tmp_path_factory.mktemp("trigger")
    cluster.apply({**printer("printer", trigger), "metadata": {"name": "printer",
                                                               "namespace": ns}})

    def restarted_and_ready():
        pods = cluster.get_json("pods", "-n", ns, "-l", "app=printer")["items"]
        ok = [p for p in pods
              if any(c["type"] == "Ready" and c["status"] == "True"
                     for c in p["status"].get("conditions", []))
              and next(s for s in p["status"]["containerStatuses"]
                       if s["name"] == "main")["restartCount"] >= 1]
        return sorted(p["metadata"]["name"] for p in ok) if len(ok) == 2 else None

    e = Env(cluster, ns, trigger)
    e.pods = wait_for(restarted_and_ready, timeout=120, what="2 printer pods restarted once")
    yield e
    cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


def test_logs_of_both_pods_with_kubectl_prefixes(env: Env) -> None:
    res = env.logs("printer")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[:2] == [f"[pod/{p}/main] run 2 of {p}" for p in env.pods]
    # the same bytes kubectl prints for the same pods
    for p in env.pods:
        kc = env.cluster.kubectl_run("logs", "-n", env.ns, p, "-c", "main", "--prefix").stdout
        assert kc.splitlines()[0] in res.stdout.splitlines()
    res = env.logs("printer", "--all-containers")
    assert res.returncode == 0, res.stderr
    for p in env.pods:
        assert f"[pod/{p}/side] side up" in res.stdout.splitlines()
    res = env.logs("printer", "-c", "side", "--timestamps")
    assert res.returncode == 0, res.stderr
    assert [re.sub(r" \S+Z ", " ", line) for line in res.stdout.splitlines()] == [
        f"[pod/{p}/side] side up" for p in env.pods]


def test_previous_shows_the_crashed_instance(env: Env) -> None:
    res = env.logs("printer", "--previous")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"[pod/{p}/main] run 1 of {p}" for p in env.pods]
    res = env.logs("printer", "--previous", "-c", "side")  # never restarted
    assert res.returncode == 1
    for p in env.pods:
        assert (f"[pod/{p}/side] Error from server (BadRequest): previous terminated container "
                f'"side" in pod "{p}" not found') in res.stderr


def test_follow_gets_a_later_line_from_both_pods_and_stops_on_interrupt(env: Env) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "logs", "-n", env.ns, "printer",
                             "-f"], env=env.cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line.rstrip("\n"))

    threading.Thread(target=reader, daemon=True).start()
    try:
        def has(want: set[str]) -> bool:
            return want <= set(seen)

        wait_for(lambda: has({f"[pod/{p}/main] run 2 of {p}" for p in env.pods}), timeout=20,
                 what="the existing lines of both pods")
        tok = env.token()  # printed only now, after -f has started
        wait_for(lambda: has({f"[pod/{p}/main] token {tok} from {p}" for p in env.pods}),
                 timeout=20, what="a line printed after -f started, from both pods")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err and "Exception" not in err, err


def test_since_leaves_out_older_lines(env: Env) -> None:
    def stamp(line: str) -> datetime:
        return datetime.fromisoformat(line.split()[1].replace("Z", "")[:26]).replace(tzinfo=UTC)

    res = env.logs("printer", "--timestamps")
    first = {p: stamp(line) for line in res.stdout.splitlines() for p in env.pods
             if line.startswith(f"[pod/{p}/main]") and " run 2 " in line}
    assert len(first) == 2, res.stdout
    oldest = min(first.values())
    # The clock has to move past the early lines before --since can exclude them.
    wait_for(lambda: (datetime.now(UTC) - oldest).total_seconds() > 8, timeout=30,
             interval=0.5, what="the first lines to be 8s old")
    tok = env.token()

    def late_lines() -> list[str] | None:
        out = env.logs("printer", "--since", "5s").stdout.splitlines()
        return out if sum(f"token {tok}" in line for line in out) == 2 else None

    out = wait_for(late_lines, timeout=20, what="the new token in --since 5s")
    assert not any(" run 2 of " in line for line in out), out
    full = env.logs("printer").stdout
    assert all(f"run 2 of {p}" in full for p in env.pods)


def test_bad_input_says_what_is_wrong(env: Env) -> None:
    res = env.logs("nosuch")
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (NotFound): deployments.apps "nosuch" not found'
    res = env.logs("printer", "-c", "nope")
    assert res.returncode == 1
    assert res.stderr.startswith('error: container "nope" not found in any pod of deployment '
                                 '"printer" (')
    empty = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "empty", "namespace": env.ns},
             "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "empty"}},
                      "template": {"metadata": {"labels": {"app": "empty"}},
                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    env.cluster.kubectl_run("apply", "-f", "-", input=json.dumps(empty))
    res = env.logs("empty")
    assert res.returncode == 1
    assert res.stderr.strip() == (f'error: deployment "empty" in namespace "{env.ns}" has no '
                                  "pods")


def test_tail_keeps_the_last_lines_of_each_stream(env: Env) -> None:
    tok = env.token()
    wait_for(lambda: env.logs("printer").stdout.count(f"token {tok}") == 2, timeout=20,
             what="the token in both pods' logs")
    res = env.logs("printer", "--tail", "1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [f"[pod/{p}/main] token {tok} from {p}" for p in env.pods]


def test_logs_of_a_job_every_index_by_kind_or_bare_name(env: Env) -> None:
    code = "import os; print('worker', os.environ['JOB_COMPLETION_INDEX'], 'trained', flush=True)"
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "trainer", "namespace": env.ns},
           "spec": {"completionMode": "Indexed", "completions": 2, "parallelism": 2,
                    "template": {"spec": {
                        "runtimeClassName": "fleet-local", "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "containers": [{"name": "trainer", "image": "python:3.11",
                                        "command": ["python", "-u", "-c", code]}]}}}}
    env.cluster.apply(job)
    wait_for(lambda: env.cluster.get_json("job", "trainer", "-n", env.ns)["status"]
             .get("succeeded") == 2, timeout=90, what="both indexes done")
    for name in ("job/trainer", "trainer"):
        res = env.logs(name)
        assert res.returncode == 0, res.stderr
        lines = sorted(res.stdout.splitlines())
        assert len(lines) == 2, lines
        assert lines[0].startswith("[pod/trainer-0-") and lines[0].endswith(
            "/trainer] worker 0 trained")
        assert lines[1].startswith("[pod/trainer-1-") and lines[1].endswith(
            "/trainer] worker 1 trained")
    res = env.logs("cronjob/trainer")
    assert res.returncode == 1 and 'reads deployments and jobs, not "cronjob"' in res.stderr
