"""Users who can see only some namespaces, against the real local apiserver (RBAC on).

Each test gets three namespaces: `<ns>-a` (a ClusterRole with full read, bound there by a
RoleBinding), `<ns>-b` (the built-in `view`, or a Role without CronJobs) and `<ns>` itself
(no rights at all), each with a model Deployment and a re-training CronJob. The users have no
cluster-wide rights but the self-reviews every authenticated user has, and, in one test,
`list namespaces` for discovery.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.cluster import TestCluster, wait_for
from tests.fleet.clusterkit import model_deployment

pytestmark = pytest.mark.cluster
RBAC = "rbac.authorization.k8s.io/v1"
READ = ["get", "list", "watch"]
ALL_READ = [
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": READ},
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": READ},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": READ},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": READ},
]
NO_CRONJOBS = [{**r, "resources": [x for x in r["resources"] if x != "cronjobs"]}
               for r in ALL_READ]


def cronjob(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"app.kubernetes.io/component": "retraining",
                                    "app.kubernetes.io/name": "m"},
                         "annotations": {"modelfleet.io/deployment": "m"}},
            "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": {
                "template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "train", "image": "registry.invalid/train:1"}]}}}}}}


def _subject(user: str) -> dict[str, str]:
    return {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}


@dataclass
class Teams:
    """The namespaces and users of one test."""

    cluster: TestCluster
    tmp: Path
    ns_a: str
    ns_b: str
    hidden: str
    alice: str  # full read in ns-a, view in ns-b
    bob: str  # full read in ns-a, everything but CronJobs in ns-b
    dora: str  # like alice, and may list namespaces (discovery)
    nobody: str  # no rights anywhere

    def kubeconfig(self, user: str, namespace: str | None = None) -> str:
        """A kubeconfig authenticating as `user`, its context's namespace `namespace`."""
        path = Path(self.cluster.user_kubeconfig(user, self.tmp / f"{user}.kubeconfig"))
        if namespace:
            doc = yaml.safe_load(path.read_text())
            doc["contexts"][0]["context"]["namespace"] = namespace
            path.write_text(yaml.safe_dump(doc))
        return str(path)

    def config(self, text: str) -> str:
        path = self.tmp / "fleet-config.yaml"
        path.write_text(text)
        return str(path)

    def env(self, kubeconfig: str, config: str | None = None) -> dict[str, str]:
        env = self.cluster.env | {"KUBECONFIG": kubeconfig,
                                  "XDG_CONFIG_HOME": str(self.tmp / "xdg")}  # no user config
        env.pop("FLEET_CONFIG", None)
        if config:
            env["FLEET_CONFIG"] = config
        return env

    def fleet(self, *args: str, kubeconfig: str, config: str | None = None
              ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleet.cli", *args], capture_output=True,
                              text=True, env=self.env(kubeconfig, config), timeout=120)


@pytest.fixture
def teams(cluster: TestCluster, namespace: str, tmp_path: Path) -> Iterator[Teams]:
    suffix = namespace[-5:]
    t = Teams(cluster, tmp_path, f"{namespace}-a", f"{namespace}-b", namespace,
              alice=f"scope-alice-{suffix}", bob=f"scope-bob-{suffix}",
              dora=f"scope-dora-{suffix}", nobody=f"scope-nobody-{suffix}")
    read, lister = f"fleet-read-{namespace}", f"list-namespaces-{namespace}"
    for ns in (t.ns_a, t.ns_b):
        cluster.kubectl_run("create", "namespace", ns)
    try:
        cluster.apply([
            {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": read},
             "rules": ALL_READ},
            {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": lister},
             "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]},
            {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": lister},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": lister},
             "subjects": [_subject(t.dora)]},
            {"apiVersion": RBAC, "kind": "RoleBinding",
             "metadata": {"name": "fleet-read", "namespace": t.ns_a},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": read},
             "subjects": [_subject(u) for u in (t.alice, t.bob, t.dora)]},
            {"apiVersion": RBAC, "kind": "RoleBinding",
             "metadata": {"name": "view", "namespace": t.ns_b},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "view"},
             "subjects": [_subject(u) for u in (t.alice, t.dora)]},
            {"apiVersion": RBAC, "kind": "Role",
             "metadata": {"name": "no-cronjobs", "namespace": t.ns_b}, "rules": NO_CRONJOBS},
            {"apiVersion": RBAC, "kind": "RoleBinding",
             "metadata": {"name": "no-cronjobs", "namespace": t.ns_b},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": "no-cronjobs"},
             "subjects": [_subject(t.bob)]},
        ])
        for ns, name in ((t.ns_a, "ranker"), (t.ns_b, "tagger"), (t.hidden, "hidden")):
            cluster.apply([model_deployment(name, ns, replicas=1),
                           cronjob(f"retrain-{name}", ns)])
        # RBAC changes reach the authorizer's informers a moment later
        kc = t.kubeconfig(t.bob)
        wait_for(lambda: cluster.kubectl_run("auth", "can-i", "list", "deployments", "-n",
                                             t.ns_b, kubeconfig=kc, check=False
                                             ).stdout.strip() == "yes",
                 timeout=30, what="the RoleBindings in effect")
        yield t
    finally:
        for ns in (t.ns_a, t.ns_b):
            cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)
        cluster.kubectl_run("delete", "clusterrolebinding", lister, "--ignore-not-found",
                            check=False)
        cluster.kubectl_run("delete", "clusterrole", read, lister, "--ignore-not-found",
                            check=False)


def _rows(stdout: str) -> list[list[str]]:
    return [line.split()[:2] for line in stdout.splitlines()[1:]]


def test_ls_all_namespaces_falls_back_to_the_context_and_config_namespaces(teams: Teams):
    """No `list namespaces`: the context's namespace (ns-a) and the config file's (ns-b)."""
    kc = teams.kubeconfig(teams.alice, teams.ns_a)
    config = teams.config(f"namespaces: [{teams.ns_b}, {teams.hidden}]\n")
    res = teams.fleet("ls", "-A", kubeconfig=kc, config=config)
    assert res.returncode == 0, res.stderr
    assert _rows(res.stdout) == [[teams.ns_a, "ranker"], [teams.ns_b, "tagger"]]
    assert res.stdout.split()[0] == "NAMESPACE" and "hidden" not in res.stdout
    assert res.stderr == (
        f"cannot list deployments in all namespaces (RBAC); watching {teams.ns_b} (config "
        f"file), {teams.ns_a} (the context's namespace) (no access to {teams.hidden} (config "
        "file); cannot list namespaces to discover others)\n")
    # -o json: the same deployments, the reason still on stderr only
    res = teams.fleet("ls", "-A", "-o", "json", kubeconfig=kc, config=config)
    assert res.returncode == 0, res.stderr
    assert [(d["namespace"], d["name"]) for d in json.loads(res.stdout)] == [
        (teams.ns_a, "ranker"), (teams.ns_b, "tagger")]
    assert res.stderr.count("cannot list deployments in all namespaces") == 1


def test_ls_all_namespaces_discovers_by_access_review(teams: Teams):
    kc = teams.kubeconfig(teams.dora)  # no context namespace ("default": no rights there)
    res = teams.fleet("ls", "-A", kubeconfig=kc)
    assert res.returncode == 0, res.stderr
    assert _rows(res.stdout) == [[teams.ns_a, "ranker"], [teams.ns_b, "tagger"]]
    assert res.stderr == (
        f"cannot list deployments in all namespaces (RBAC); watching {teams.ns_a}, "
        f"{teams.ns_b} (discovered by access review) (no access to default (the context's "
        "namespace))\n")


def test_ls_named_namespaces_need_no_probing(teams: Teams):
    kc = teams.kubeconfig(teams.alice)
    one = teams.fleet("ls", "-n", teams.ns_a, kubeconfig=kc)
    assert one.returncode == 0, one.stderr
    assert one.stderr == "" and one.stdout.split()[0] == "NAME" and "ranker" in one.stdout
    both = teams.fleet("ls", "-n", f"{teams.ns_a},{teams.ns_b}", kubeconfig=kc)
    assert both.returncode == 0, both.stderr
    assert both.stderr == ""
    assert _rows(both.stdout) == [[teams.ns_a, "ranker"], [teams.ns_b, "tagger"]]
    # a namespace without rights is kubectl's 403, as before
    denied = teams.fleet("ls", "-n", teams.hidden, kubeconfig=kc)
    assert denied.returncode == 1 and "Error from server (Forbidden)" in denied.stderr


def test_a_type_forbidden_in_one_namespace_is_said_once_for_it(teams: Teams):
    kc = teams.kubeconfig(teams.bob, teams.ns_a)
    config = teams.config(f"namespaces: [{teams.ns_b}]\n")
    res = teams.fleet("ls", "--schedules", "-A", kubeconfig=kc, config=config)
    assert res.returncode == 0, res.stderr
    assert _rows(res.stdout) == [[teams.ns_a, "retrain-ranker"]]  # ns-a's are complete
    lines = res.stderr.splitlines()
    assert lines[0].startswith("cannot list deployments in all namespaces (RBAC); watching")
    assert lines[1:] == [f"warning: cronjobs forbidden in {teams.ns_b} (RBAC); shown without "
                         "them"]
    assert "Error from server" not in res.stderr
    res = teams.fleet("ls", "-A", kubeconfig=kc, config=config)
    assert _rows(res.stdout) == [[teams.ns_a, "ranker"], [teams.ns_b, "tagger"]]
    assert res.stderr.count("forbidden in") == 1


def test_nothing_to_watch_says_what_to_do(teams: Teams):
    res = teams.fleet("ls", "-A", kubeconfig=teams.kubeconfig(teams.nobody))
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.startswith("error: cannot list deployments in all namespaces (RBAC), and "
                                 "no namespace to watch instead was found (no access to "
                                 "default (the context's namespace); cannot list namespaces "
                                 "to discover others): name them with -n NAMESPACE")
    assert str(Path(teams.tmp / "xdg" / "modelfleet" / "config.yaml")) in res.stderr
    assert res.stderr.count("\n") == 1


def test_a_bad_config_file_is_named(teams: Teams):
    config = teams.config("namespaces: {oops: 1}\n")
    res = teams.fleet("ls", "-A", kubeconfig=teams.kubeconfig(teams.alice), config=config)
    assert res.returncode == 1
    assert res.stderr == (f"error: fleet config file {config}: key `namespaces` must be a list "
                          "of namespace names, got a mapping\n")


def test_cluster_wide_rights_keep_the_output_as_before(teams: Teams, cluster: TestCluster):
    res = subprocess.run([sys.executable, "-m", "fleet.cli", "ls", "-A", "-o", "json"],
                         capture_output=True, text=True, timeout=120,
                         env=teams.env(cluster.kubeconfig) | {"FLEET_CONFIG": os.devnull})
    assert res.returncode == 0 and res.stderr == ""
    names = {(d["namespace"], d["name"]) for d in json.loads(res.stdout)}
    assert {(teams.ns_a, "ranker"), (teams.ns_b, "tagger"), (teams.hidden, "hidden")} <= names


def test_ls_watch_all_namespaces_follows_both_namespaces_and_says_it_once(teams: Teams,
                                                                          cluster: TestCluster):
    import queue
    import signal
    import threading

    kc = teams.kubeconfig(teams.bob, teams.ns_a)
    config = teams.config(f"namespaces: [{teams.ns_b}]\n")
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "ls", "-w", "-A"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=teams.env(kc, config))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=60).split()[:2] == ["NAMESPACE", "NAME"]
        rows = {tuple(lines.get(timeout=30).split()[:2]) for _ in range(2)}
        assert rows == {(teams.ns_a, "ranker"), (teams.ns_b, "tagger")}
        cluster.kubectl_run("scale", "-n", teams.ns_b, "deployment/tagger", "--replicas=2")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = lines.get(timeout=60).split()
            if row[:2] == [teams.ns_b, "tagger"] and row[5].endswith("/2"):
                break
        else:
            raise AssertionError("no row for the scaled deployment in ns-b")
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        err = proc.stderr.read() if proc.stderr else ""
    assert rc == 130
    assert err.count("cannot list deployments in all namespaces (RBAC); watching") == 1
    assert err.count(f"warning: cronjobs forbidden in {teams.ns_b} (RBAC)") == 1
    assert "Error from server" not in err, err


def test_undo_wave_all_namespaces_as_a_restricted_user(teams: Teams):
    """alice may list Deployments and ReplicaSets in ns-a and ns-b only: `undo-wave -A` looks
    there (it says so once) instead of failing on the cluster-wide LIST."""
    cluster = teams.cluster
    cluster.apply(model_deployment("ranker", teams.ns_a, version=2, replicas=1))
    wait_for(lambda: (cluster.get_json("deployment", "ranker", "-n", teams.ns_a)["metadata"]
                      .get("annotations") or {}).get("deployment.kubernetes.io/revision") == "2",
             timeout=60, what="ranker at revision 2")
    kc = teams.kubeconfig(teams.alice, teams.ns_a)
    config = teams.config(f"namespaces: [{teams.ns_b}]\n")
    res = subprocess.run([sys.executable, "-m", "fleet.cli", "undo-wave", "-A", "--since", "1h"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                         env=teams.env(kc, config))
    assert res.returncode == 1  # no --yes and no terminal: listed, nothing changed
    lines = res.stdout.splitlines()
    assert lines[0] == "These 1 deployment(s) will be rolled back:"
    assert [r.split()[:4] for r in lines[1:]] == [["NAMESPACE", "NAME", "REVISION", "BACK"],
                                                  [teams.ns_a, "ranker", "2", "1"]]
    assert res.stderr == (
        f"cannot list deployments in all namespaces (RBAC); watching {teams.ns_b} (config "
        f"file), {teams.ns_a} (the context's namespace) (cannot list namespaces to discover "
        "others)\n"
        "error: refusing to roll back without confirmation: pass --yes\n")
    # the user without any rights: kubectl-like advice, not a cluster-wide 403
    res = subprocess.run([sys.executable, "-m", "fleet.cli", "undo-wave", "-A", "--since", "1h"],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                         env=teams.env(teams.kubeconfig(teams.nobody)))
    assert res.returncode == 1
    assert res.stderr.startswith("error: cannot list deployments in all namespaces (RBAC), and "
                                 "no namespace to watch instead was found"), res.stderr
