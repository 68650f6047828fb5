"""kubectl parity on twin Deployments: the same name in two namespaces, one operated by fleet,
one by kubectl 1.37; templates, annotations, revisions and printed messages must match."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.fixtures.cluster import TestCluster
from tests.fleet.clusterkit import create_namespace, fleet, kubectl, settled, snapshot, with_history

pytestmark = pytest.mark.cluster
NAME = "resnet"


@pytest.fixture
def twins(cluster: TestCluster, namespace: str):
    """(fleet namespace, kubectl namespace), each with NAME at revisions 1..3."""
    other = create_namespace(cluster, "t-kubectl")
    for ns in (namespace, other):
        with_history(cluster, ns, NAME)
    yield namespace, other
    cluster.kubectl_run("delete", "namespace", other, "--wait=false", check=False)


def _both(cluster, twins, fleet_args, kubectl_args):
    f_ns, k_ns = twins
    f = fleet(cluster, *fleet_args, "-n", f_ns)
    k = kubectl(cluster, *kubectl_args, "-n", k_ns)
    return f, k


def _same_output(f, k) -> None:
    assert (f.returncode, f.stdout, f.stderr) == (k.returncode, k.stdout, k.stderr)


@pytest.mark.parametrize("fleet_args,kubectl_args", [
    (["rollback", NAME], ["rollout", "undo", f"deployment/{NAME}"]),
    (["rollback", NAME, "--to-revision", "1"],
     ["rollout", "undo", f"deployment/{NAME}", "--to-revision=1"]),
    (["rollback", NAME, "--to-revision", "3"],
     ["rollout", "undo", f"deployment/{NAME}", "--to-revision=3"]),
    (["rollback", NAME, "--to-revision", "9"],
     ["rollout", "undo", f"deployment/{NAME}", "--to-revision=9"]),
], ids=["previous", "to-1", "to-current-skipped", "missing-revision"])
def test_rollback_parity(cluster, twins, fleet_args, kubectl_args):
    f, k = _both(cluster, twins, fleet_args, kubectl_args)
    _same_output(f, k)
    assert snapshot(cluster, twins[0], NAME) == snapshot(cluster, twins[1], NAME)


def test_rollback_twice_returns_to_latest_like_kubectl(cluster, twins):
    for _ in range(2):
        f, k = _both(cluster, twins, ["rollback", NAME], ["rollout", "undo", f"deployment/{NAME}"])
        _same_output(f, k)
        assert snapshot(cluster, twins[0], NAME) == snapshot(cluster, twins[1], NAME)
    f, k = _both(cluster, twins, ["history", NAME], ["rollout", "history", f"deployment/{NAME}"])
    _same_output(f, k)


def test_rollback_paused_parity(cluster, twins):
    f, k = _both(cluster, twins, ["pause", NAME], ["rollout", "pause", f"deployment/{NAME}"])
    _same_output(f, k)
    f, k = _both(cluster, twins, ["rollback", NAME], ["rollout", "undo", f"deployment/{NAME}"])
    _same_output(f, k)
    assert f.returncode == 1 and "you cannot rollback a paused deployment" in f.stderr
    for args, kargs in ((["pause", NAME], ["rollout", "pause", f"deployment/{NAME}"]),
                        (["restart", NAME], ["rollout", "restart", f"deployment/{NAME}"]),
                        (["resume", NAME], ["rollout", "resume", f"deployment/{NAME}"]),
                        (["resume", NAME], ["rollout", "resume", f"deployment/{NAME}"])):
        f, k = _both(cluster, twins, args, kargs)
        _same_output(f, k)
    assert snapshot(cluster, twins[0], NAME) == snapshot(cluster, twins[1], NAME)


def test_history_and_status_parity(cluster, twins):
    f, k = _both(cluster, twins, ["history", NAME], ["rollout", "history", f"deployment/{NAME}"])
    _same_output(f, k)
    assert "release 3" in f.stdout
    f, k = _both(cluster, twins, ["status", NAME], ["rollout", "status", f"deployment/{NAME}"])
    _same_output(f, k)
    assert f.stdout == f'deployment "{NAME}" successfully rolled out\n'


def test_not_found_parity(cluster, twins):
    for fa, ka in ((["rollback", "nope"], ["rollout", "undo", "deployment/nope"]),
                   (["history", "nope"], ["rollout", "history", "deployment/nope"]),
                   (["scale", "nope", "--replicas", "1"],
                    ["scale", "deployment/nope", "--replicas=1"])):
        f, k = _both(cluster, twins, fa, ka)
        _same_output(f, k)


def test_scale_parity(cluster, twins):
    f, k = _both(cluster, twins, ["scale", NAME, "--replicas", "3"],
                 ["scale", f"deployment/{NAME}", "--replicas=3"])
    _same_output(f, k)
    f, k = _both(cluster, twins, ["scale", NAME, "--replicas", "1", "--current-replicas", "5"],
                 ["scale", f"deployment/{NAME}", "--replicas=1", "--current-replicas=5"])
    _same_output(f, k)
    assert f.stderr == "error: Expected replicas to be 5, was 3\n"
    f, k = _both(cluster, twins, ["scale", NAME, "--replicas", "1", "--current-replicas", "3"],
                 ["scale", f"deployment/{NAME}", "--replicas=1", "--current-replicas=3"])
    _same_output(f, k)
    assert snapshot(cluster, twins[0], NAME) == snapshot(cluster, twins[1], NAME)


def test_restart_parity(cluster, twins):
    f, k = _both(cluster, twins, ["restart", NAME], ["rollout", "restart", f"deployment/{NAME}"])
    _same_output(f, k)
    a, b = (snapshot(cluster, ns, NAME) for ns in twins)
    stamp_a = a["template"]["metadata"]["annotations"].pop("kubectl.kubernetes.io/restartedAt")
    stamp_b = b["template"]["metadata"]["annotations"].pop("kubectl.kubernetes.io/restartedAt")
    rfc3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$"
    assert re.match(rfc3339, stamp_a) and re.match(rfc3339, stamp_b)
    # both local time in this machine's zone, written like Go: "Z" for UTC, else ±hh:mm
    local = datetime.now().astimezone().strftime("%z")
    zone = "Z" if local == "+0000" else f"{local[:3]}:{local[3:]}"
    assert stamp_a.endswith(zone) and stamp_b.endswith(zone), (stamp_a, stamp_b, zone)
    a["revisions"] = [r[0] for r in a["revisions"]]
    b["revisions"] = [r[0] for r in b["revisions"]]
    assert a == b
    settled(cluster, twins[0], NAME)


def test_status_watch_and_timeout_parity(cluster, twins):
    from tests.fleet.clusterkit import model_deployment

    for ns in twins:  # pods that never become Ready: the rollout cannot finish
        cluster.apply(model_deployment("stuck", ns, sim="unready", replicas=1))
    f, k = _both(cluster, twins, ["status", "stuck", "--timeout", "3s"],
                 ["rollout", "status", "deployment/stuck", "--timeout=3s"])
    assert (f.returncode, f.stderr) == (k.returncode, k.stderr)
    assert f.stderr == "error: timed out waiting for the condition\n"
    assert f.stdout.splitlines()[-1] == k.stdout.splitlines()[-1]
    assert f.stdout.splitlines()[-1].startswith('Waiting for deployment "stuck" rollout to finish')
    f, k = _both(cluster, twins, ["status", "stuck", "--no-watch"],
                 ["rollout", "status", "deployment/stuck", "--watch=false"])
    _same_output(f, k)
    # A rollout followed to the end: the last line and the exit code match.
    f_ns, k_ns = twins
    for ns in twins:
        cluster.kubectl_run("set", "image", "-n", ns, f"deployment/{NAME}", "server=x/serve:9")
    f = fleet(cluster, "status", NAME, "-n", f_ns, "--timeout", "90s")
    k = kubectl(cluster, "rollout", "status", f"deployment/{NAME}", "-n", k_ns, "--timeout=90s")
    assert (f.returncode, f.stderr, f.stdout.splitlines()[-1]) == (
        k.returncode, k.stderr, k.stdout.splitlines()[-1])
    assert f.stdout.splitlines()[-1] == f'deployment "{NAME}" successfully rolled out'


def test_rollout_image_matches_kubectl_set_image(cluster, twins):
    f, k = _both(cluster, twins, ["rollout", NAME, "--image", "registry.invalid/serve:7",
                                  "--reason", "hotfix 7"],
                 ["set", "image", f"deployment/{NAME}", "server=registry.invalid/serve:7"])
    _same_output(f, k)
    assert f.stdout == f"deployment.apps/{NAME} image updated\n"
    a, b = (snapshot(cluster, ns, NAME) for ns in twins)
    assert a["template"] == b["template"] and a["revisions"][:-1] == b["revisions"][:-1]
    assert [r[:2] for r in a["revisions"]] == [r[:2] for r in b["revisions"]]
    assert a["annotations"]["kubernetes.io/change-cause"] == "hotfix 7"  # fleet records it
    assert b["annotations"]["kubernetes.io/change-cause"] == "release 3"  # kubectl does not


def test_rollback_server_dry_run_parity(cluster, twins):
    f, k = _both(cluster, twins, ["rollback", NAME, "--dry-run"],
                 ["rollout", "undo", f"deployment/{NAME}", "--dry-run=server"])
    _same_output(f, k)
    assert f.stdout == f"deployment.apps/{NAME} rolled back (server dry run)\n"
    a, b = (snapshot(cluster, ns, NAME) for ns in twins)
    assert a == b and a["template"]["spec"]["containers"][0]["image"].endswith("serve:3")


def test_history_revision_detail_parity(cluster, twins):
    for rev in ("1", "2", "3", "9"):
        f, k = _both(cluster, twins, ["history", NAME, "--revision", rev],
                     ["rollout", "history", f"deployment/{NAME}", f"--revision={rev}"])
        _same_output(f, k)  # pod-template-hash too: same template, same hash
    assert f.stderr == "error: unable to find the specified revision\n"


def test_rollout_model_uri_matches_kubectl_set_env(cluster, twins):
    uri = "hdfs:///models/resnet/9"
    f, k = _both(cluster, twins, ["rollout", NAME, "--model-uri", uri],
                 ["set", "env", f"deployment/{NAME}", f"MODEL_URI={uri}"])
    _same_output(f, k)
    assert f.stdout == f"deployment.apps/{NAME} env updated\n"
    a, b = (snapshot(cluster, ns, NAME) for ns in twins)
    assert a["template"] == b["template"]
    assert [r[:2] for r in a["revisions"]] == [r[:2] for r in b["revisions"]]
    assert a["annotations"]["kubernetes.io/change-cause"] == (
        f"fleet rollout {NAME} --model-uri={uri}")
