"""The TUI against the real local control plane (fixtures from tests/fixtures/cluster.py).

Each test drives the app with Pilot keys and checks the cluster with kubectl, the peer the
on-call engineer would otherwise use.
"""

from __future__ import annotations

import copy
import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from tui.app import FleetApp
from tui.backend import KubeBackend
from tui.screens.confirm import ConfirmScreen, PromptScreen
from tui.screens.detail import DeploymentScreen

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio]
SIZE = (200, 50)


def dep(name: str, ns: str, replicas: int = 1, image: str = "serving:1.0", uri: str = "v1",
        sim: str = "", deadline: int = 600, tier: str = "prod") -> dict:
    labels = {"app": name, "app.kubernetes.io/component": "model-server",
              "app.kubernetes.io/name": "m", "app.kubernetes.io/version": uri}
    if sim:
        labels["fleet.test/sim"] = sim
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"app.kubernetes.io/component": "model-server",
                                "app.kubernetes.io/name": "m", "tier": tier},
                     "annotations": {"kubernetes.io/change-cause": f"release {uri}"}},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": "server", "image": image,
                     "env": [{"name": "MODEL_URI", "value": f"hdfs://nn/m/{uri}"}],
                     "readinessProbe": {"httpGet": {"path": "/ready", "port": 8501}},
                 }]}}},
    }


def plain(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def make_app(kubeconfig: str, ns: str, **kw) -> FleetApp:
    return FleetApp(lambda ctx, nss: KubeBackend(kubeconfig, ctx, nss), namespaces=[ns],
                    age_refresh_s=0, **kw)


async def until(pilot, predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def title(app: FleetApp) -> str:
    return str(app.main.query_one("#deployments-pane").border_title)


def cell(app: FleetApp, ns: str, name: str, column: str) -> str:
    table = app.main.query_one("#dep-table")
    try:
        return str(table.get_cell(f"{ns}/{name}", column))
    except Exception:  # noqa: BLE001 - row not there yet
        return ""


def wait_rollout(cluster, ns: str, name: str) -> None:
    cluster.kubectl_run("rollout", "status", f"deployment/{name}", "-n", ns, "--timeout=60s")


def new_revision(cluster, ns: str, name: str, uri: str) -> None:
    """Change MODEL_URI + version label with a change-cause, then wait for the controller."""
    patch = {"metadata": {"annotations": {"kubernetes.io/change-cause": f"release {uri}"}},
             "spec": {"template": {
                 "metadata": {"labels": {"app.kubernetes.io/version": uri}},
                 "spec": {"containers": [{"name": "server", "env": [
                     {"name": "MODEL_URI", "value": f"hdfs://nn/m/{uri}"}]}]}}}}
    cluster.kubectl_run("patch", "deployment", name, "-n", ns, "-p", json.dumps(patch))
    wait_rollout(cluster, ns, name)


async def test_table_populates_and_follows_kubectl(cluster, namespace):
    cluster.apply([dep(f"srv-{i}", namespace) for i in range(3)])
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: title(app).startswith(f"deployments({namespace})[3]"),
                    what="3 rows")
        cluster.kubectl_run("scale", "deployment", "srv-1", "-n", namespace, "--replicas=3")
        await until(pilot, lambda: cell(app, namespace, "srv-1", "ready").endswith("/3"),
                    what="READY …/3 after kubectl scale")
        cluster.kubectl_run("delete", "deployment", "srv-2", "-n", namespace)
        await until(pilot, lambda: title(app).startswith(f"deployments({namespace})[2]"),
                    what="row removed after kubectl delete")


async def test_filter_and_detail_probes(cluster, namespace):
    cluster.apply([dep("alpha-ranker", namespace), dep("beta-tagger", namespace),
                   dep("gamma-ranker", namespace, tier="canary")])
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "[3]" in title(app), what="3 rows")
        await pilot.press("slash", *"ranker -l tier!=canary", "enter")
        assert title(app).startswith(f"deployments({namespace})[1] </ranker -l tier!=canary>")
        await pilot.press("slash", "ctrl+u", *"ranker", "enter")
        assert title(app).startswith(f"deployments({namespace})[2] </ranker>")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen), what="detail")
        await until(pilot, lambda: "http://:8501/ready" in plain(
            app.screen.query_one("#probe-report").content),
            what="probe spec with the readiness target", timeout=15)


async def test_detail_events_are_watched_for_its_namespace_only_while_open(cluster, namespace):
    """No cluster-wide Event watch (issue 10 §3): opening a deployment's detail watches its
    namespace's Events, the Deployment's own events fill the Events tab and its pods' probe
    failures the Probes tab, and leaving the screen ends that watch."""
    cluster.apply(dep("flaky", namespace, sim="unready"))
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "flaky", "ready") != "", what="row")
        assert app.backend.cache._event_watches == {}
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen), what="detail")
        assert list(app.backend.cache._event_watches) == [namespace]
        screen = app.screen

        def shown(part: str, widget: str, reason: str) -> bool:
            screen.load(part)  # what a change of the deployment triggers
            found = screen.query_one(widget)
            if part == "events":
                return any(reason in str(found.get_row_at(i)) for i in range(found.row_count))
            return reason in plain(found.content)

        await until(pilot, lambda: shown("events", "#events-table", "ScalingReplicaSet"),
                    timeout=30, what="the Deployment's events in the Events tab")
        await until(pilot, lambda: shown("probes", "#probe-report", "Unhealthy"),
                    timeout=60, what="the pods' probe failures in the Probes tab")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DeploymentScreen), what="back")
        assert app.backend.cache._event_watches == {}
        assert app.backend.cache.events_for(namespace, "flaky") == []


def _normal(d: dict) -> dict:
    """What a rollback decides: template (minus names) and the revision/change-cause."""
    tpl = copy.deepcopy(d["spec"]["template"])
    tpl["metadata"]["labels"].pop("app", None)
    ann = d["metadata"].get("annotations", {})
    return {"template": tpl, "revision": ann.get("deployment.kubernetes.io/revision"),
            "cause": ann.get("kubernetes.io/change-cause"), "replicas": d["spec"]["replicas"]}


async def test_rollback_by_keys_equals_kubectl_rollout_undo(cluster, namespace):
    for name in ("by-tui", "by-kubectl"):
        cluster.apply(dep(name, namespace))
        wait_rollout(cluster, namespace, name)
        new_revision(cluster, namespace, name, "v2")
        new_revision(cluster, namespace, name, "v3")
    cluster.kubectl_run("rollout", "undo", "deployment/by-kubectl", "-n", namespace)
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "by-tui", "revision") == "3",
                    what="by-tui at revision 3")
        app.main.query_one("#dep-table").move_to((namespace, "by-tui"))
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        assert "revision 2" in app.screen.title_text
        await pilot.press("enter")
        await until(pilot, lambda: cell(app, namespace, "by-tui", "revision") == "4",
                    what="revision 4 in the table")
    a = cluster.get_json("deployment", "by-tui", "-n", namespace)
    b = cluster.get_json("deployment", "by-kubectl", "-n", namespace)
    assert _normal(a) == _normal(b)


async def test_rollback_chosen_revision_on_a_stuck_rollout(cluster, namespace):
    cluster.apply(dep("stuck", namespace, deadline=5))
    wait_rollout(cluster, namespace, "stuck")
    new_revision(cluster, namespace, "stuck", "v2")
    bad = {"spec": {"template": {"metadata": {"labels": {"fleet.test/sim": "unready",
                                                          "app.kubernetes.io/version": "v3"}}}}}
    cluster.kubectl_run("patch", "deployment", "stuck", "-n", namespace, "-p", json.dumps(bad))
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "stuck", "rollout") == "stalled",
                    timeout=60, what="stalled rollout")
        await pilot.press("h")  # 1: history
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen)
                    and len(app.screen.revisions) == 3, what="3 revisions")
        await pilot.press("down", "down", "enter")  # 2, 3: revision 1, Enter
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        assert "revision 1" in app.screen.title_text
        await pilot.press("enter")
        await until(pilot, lambda: cell(app, namespace, "stuck", "rollout") == "complete",
                    timeout=60, what="rollout complete after rollback")
    d = cluster.get_json("deployment", "stuck", "-n", namespace)
    assert "fleet.test/sim" not in d["spec"]["template"]["metadata"]["labels"]
    assert d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "v1"


async def test_scale_by_keys(cluster, namespace):
    cluster.apply(dep("scaler", namespace, replicas=1))
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "scaler", "ready") != "",
                    what="row")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
        await pilot.press("4", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("enter")
        await until(pilot, lambda: cell(app, namespace, "scaler", "ready").endswith("/4"),
                    what="READY …/4")
    d = cluster.get_json("deployment", "scaler", "-n", namespace)
    assert d["spec"]["replicas"] == 4


async def test_readonly_blocks_writes(cluster, namespace):
    cluster.apply(dep("ro", namespace, replicas=2))
    app = make_app(cluster.kubeconfig, namespace, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "ro", "ready") != "", what="row")
        assert not app.screen.active_bindings["s"].enabled
        assert not app.screen.active_bindings["u"].enabled
        for key in ("s", "u", "r", "z", "o", "W"):
            await pilot.press(key)
            await pilot.pause()  # the key is handled (a write would open a prompt or a worker)
            await app.workers.wait_for_complete()
            assert app.screen is app.main, key  # no prompt or confirmation opened
    d = cluster.get_json("deployment", "ro", "-n", namespace)
    assert d["spec"]["replicas"] == 2
    assert "kubectl.kubernetes.io/restartedAt" not in (
        d["spec"]["template"]["metadata"].get("annotations") or {})


async def test_forbidden_scale_is_disabled_with_reason(cluster, namespace, tmp_path: Path):
    user = f"oncall-{namespace[-5:]}"
    cluster.apply(dep("guarded", namespace))
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "oncall", "namespace": namespace},
         "rules": [
             {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"],
              "verbs": ["get", "list", "watch", "patch"]},
             {"apiGroups": ["", "events.k8s.io"], "resources": ["pods", "events"],
              "verbs": ["get", "list", "watch"]},
             {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "oncall", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "oncall"},
         "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]},
    ])
    kubeconfig = cluster.user_kubeconfig(user, tmp_path / "user.kubeconfig")
    app = make_app(kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "guarded", "ready") != "", what="row")
        await until(pilot, lambda: (namespace, "scale") in app.permissions
                    and app.permissions[(namespace, "scale")][0] is False, what="RBAC answer")
        await until(pilot, lambda: not app.screen.active_bindings["s"].enabled,
                    what="scale disabled")
        assert app.screen.active_bindings["u"].enabled  # patch is allowed
        line = str(app.main.query_one("#perm-line").render())
        assert "scale" in line and "disabled" in line
    proc = cluster.kubectl_run("auth", "can-i", "patch", "deployments", "--subresource=scale",
                               "-n", namespace, kubeconfig=kubeconfig, check=False)
    assert proc.stdout.strip() == "no"


async def test_api_away_shows_banner_and_recovers(cluster, namespace):
    cluster.apply(dep("survivor", namespace, replicas=1))
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "survivor", "ready") != "", what="row")
        banner = app.main.query_one("#banner")
        cluster.stop_apiserver()
        try:
            await until(pilot, lambda: banner.has_class("-reconnecting"), timeout=60,
                        what="reconnecting banner")
            assert cell(app, namespace, "survivor", "ready") != ""  # last known rows stay
        finally:
            cluster.start_apiserver()
        await until(pilot, lambda: not banner.has_class("-reconnecting"), timeout=90,
                    what="banner gone after the API came back")
        cluster.kubectl_run("scale", "deployment", "survivor", "-n", namespace,
                            "--replicas=2")
        await until(pilot, lambda: cell(app, namespace, "survivor", "ready").endswith("/2"),
                    timeout=60, what="watch resumed")


async def test_rollout_pause_resume_restart_by_keys(cluster, namespace):
    cluster.apply(dep("ops", namespace))
    wait_rollout(cluster, namespace, "ops")
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "ops", "revision") == "1", what="row")
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="prompt")
        await pilot.press(*"hdfs://nn/m/v7", "enter", "enter")
        await pilot.press(*"v7", "enter", *"hotfix", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("enter")
        await until(pilot, lambda: cell(app, namespace, "ops", "revision") == "2",
                    what="revision 2 after rollout")
        # the progress panel follows the rollout
        assert app.main.query_one("#progress").has_class("-active")
        await pilot.press("z", "enter")
        await until(pilot, lambda: cell(app, namespace, "ops", "rollout") == "paused",
                    what="paused")
        await pilot.press("z", "enter")
        await until(pilot, lambda: cell(app, namespace, "ops", "rollout") != "paused",
                    what="resumed")
        await pilot.press("r", "enter")
        await until(pilot, lambda: cell(app, namespace, "ops", "revision") == "3",
                    what="revision 3 after restart")
    d = cluster.get_json("deployment", "ops", "-n", namespace)
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODEL_URI", "value": "hdfs://nn/m/v7"} in c["env"]
    assert d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "v7"
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "hotfix"
    assert not d["spec"].get("paused")
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]


async def test_bulk_scale_and_undo_recent_rollouts(cluster, namespace):
    for name in ("b-0", "b-1", "b-2"):
        cluster.apply(dep(name, namespace))
        wait_rollout(cluster, namespace, name)
    for name in ("b-0", "b-1"):
        new_revision(cluster, namespace, name, "v2")
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "[3]" in title(app), what="rows")
        await pilot.press("space", "space", "s", "2", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        assert "2 deployments" in app.screen.title_text
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "ResultScreen", what="results")
        assert len(app.screen.ok) == 2 and not app.screen.failed
        await pilot.press("escape")
        await until(pilot, lambda: cell(app, namespace, "b-1", "ready").endswith("/2"),
                    what="b-1 scaled")
        await pilot.press("W")
        await until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="picker")
        await pilot.press("enter")  # the default window: 15 minutes
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="undo plan")
        assert "Undo 2 rollouts" in app.screen.title_text
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "ResultScreen", what="results")
        assert len(app.screen.ok) == 2
    for name in ("b-0", "b-1"):
        d = cluster.get_json("deployment", name, "-n", namespace)
        assert d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "v1"
    assert cluster.get_json("deployment", "b-2", "-n", namespace)["spec"]["replicas"] == 1


async def test_jobs_view_shows_gpu_holders_and_pending(cluster, namespace):
    def job(name: str, gpus: int) -> dict:
        res = {"requests": {"nvidia.com/gpu": str(gpus)}, "limits": {"nvidia.com/gpu": str(gpus)}}
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"app.kubernetes.io/component": "training"}},
                "spec": {"backoffLimit": 0, "template": {
                    "metadata": {"labels": {"app.kubernetes.io/component": "training"}},
                    "spec": {"restartPolicy": "Never", "containers": [
                        {"name": "t", "image": "trainer:1", "resources": res}]}}}}

    cluster.apply([job("fits", 1), job("too-big", 64)])
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("J")
        table = app.main.query_one("#job-table")

        def state(name: str) -> str:
            try:
                return str(table.get_cell(f"{namespace}/{name}", "state"))
            except Exception:  # noqa: BLE001
                return ""

        await until(pilot, lambda: state("fits") == "running", timeout=60, what="fits running")
        await until(pilot, lambda: state("too-big") == "pending", timeout=60,
                    what="too-big pending")
        assert str(table.get_cell(f"{namespace}/too-big", "gpus")) == "64"
        assert str(app.main.query_one("#jobs-pane").border_title).startswith(
            f"jobs({namespace})[2]")


async def test_jobs_view_shows_progress_and_retraining_schedules(cluster, namespace):
    progress = {"phase": "training", "epoch": 2, "epochs": 8, "metric": "accuracy",
                "value": 0.9}
    cluster.apply([
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": "train", "namespace": namespace,
                      "labels": {"app.kubernetes.io/component": "training"},
                      "annotations": {"modelfleet.io/progress": json.dumps(progress)}},
         "spec": {"backoffLimit": 0, "template": {
             "metadata": {"annotations": {"fleet.test/complete-after": "600s"}},
             "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "t:1"}]}}}},
        {"apiVersion": "batch/v1", "kind": "CronJob",
         "metadata": {"name": "retrain", "namespace": namespace,
                      "labels": {"app.kubernetes.io/component": "retraining",
                                 "app.kubernetes.io/name": "digits"},
                      "annotations": {"modelfleet.io/deployment": "digits"}},
         "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": {
             "template": {"spec": {"restartPolicy": "Never",
                                   "containers": [{"name": "r", "image": "r:1"}]}}}}}},
    ])
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("J")
        jobs, scheds = app.main.query_one("#job-table"), app.main.query_one("#schedule-table")

        def get(table, name: str, column: str) -> str:
            try:
                return str(table.get_cell(f"{namespace}/{name}", column))
            except Exception:  # noqa: BLE001
                return ""

        await until(pilot, lambda: get(jobs, "train", "progress").endswith("2/8"), timeout=60,
                    what="the progress bar")
        assert get(jobs, "train", "metric") == "accuracy 0.900"
        await until(pilot, lambda: get(scheds, "retrain", "next_run") == "suspended",
                    what="the schedule row")
        assert app.main.query_one("#schedules-box").display
        # the trainer moves on: the cell follows the annotation
        patch = json.dumps({"metadata": {"annotations": {
            "modelfleet.io/progress": json.dumps(progress | {"epoch": 3})}}})
        cluster.kubectl_run("patch", "job", "train", "-n", namespace, "--type=merge", "-p", patch)
        await until(pilot, lambda: get(jobs, "train", "progress").endswith("3/8"),
                    what="epoch 3")
        promo = json.dumps({"metadata": {"annotations": {"modelfleet.io/last-promotion":
                                                         json.dumps({"result": "kept"})}}})
        cluster.kubectl_run("patch", "cronjob", "retrain", "-n", namespace, "--type=merge",
                            "-p", promo)
        await until(pilot, lambda: get(scheds, "retrain", "promotion") == "kept",
                    what="the promotion result")


async def test_switch_namespace(cluster, namespace):
    cluster.apply([dep("here-1", namespace), dep("here-2", namespace)])
    app = FleetApp(lambda ctx, nss: KubeBackend(cluster.kubeconfig, ctx, nss), age_refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "here-1", "ready") != "",
                    what="rows in the all-namespaces view")
        assert title(app).startswith("deployments(all)[")
        await pilot.press("N")
        await until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="picker")
        ids = [oid for oid, _ in app.screen.options]
        app.screen.query_one("OptionList").highlighted = ids.index(namespace)
        await pilot.press("enter")
        await until(pilot, lambda: title(app).startswith(f"deployments({namespace})[2]"),
                    what="title of the namespace scope")
        assert all(k[0] == namespace for k in app.deployments.records)


async def test_switch_context(cluster, namespace, tmp_path: Path):
    import yaml

    cfg = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    ctx = dict(cfg["contexts"][0])
    ctx = {"name": "second", "context": dict(ctx["context"], namespace=namespace)}
    cfg["contexts"].append(ctx)
    path = tmp_path / "two-contexts.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    cluster.apply(dep("ctx-a", namespace))
    app = FleetApp(lambda c, nss: KubeBackend(str(path), c, nss), namespaces=[namespace],
                   age_refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "ctx-a", "ready") != "", what="row")
        await pilot.press("C")
        await until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="picker")
        ids = [oid for oid, _ in app.screen.options]
        assert ids == [c["name"] for c in cfg["contexts"]]
        app.screen.query_one("OptionList").highlighted = ids.index("second")
        await pilot.press("enter")
        await until(pilot, lambda: "second" in str(app.main.query_one("#context-bar").content),
                    what="context bar shows the new context")
        await until(pilot, lambda: cell(app, namespace, "ctx-a", "ready") != "",
                    what="rows again from the new context")
        assert app.backend.context == "second"


# --- deploy, logs, probe now (real pods on the process kubelet) ---------------------------------

RUNNER_MAIN = """
import http.server, os, threading, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('{"ready": true, "path": "%s"}' % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
n = 0
while True:
    n += 1
    print(f"tick {n}", flush=True)
    time.sleep(0.2)
"""


def runner_dep(name: str, ns: str) -> dict:
    """A model-server Deployment whose pod really runs (runtimeClassName fleet-local): a
    `python:3.11` process printing `tick N` lines and answering its readiness probe."""
    d = dep(name, ns)
    tpl = d["spec"]["template"]
    tpl["spec"] = {
        "runtimeClassName": "fleet-local", "terminationGracePeriodSeconds": 2,
        "automountServiceAccountToken": False,
        "containers": [{
            "name": "server", "image": "python:3.11",
            "command": ["python", "-u", "-c", RUNNER_MAIN],
            "resources": {"requests": {"cpu": "20m"}},
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "MODEL_URI", "value": "hdfs://nn/m/v1"}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                               "periodSeconds": 1},
        }],
    }
    return d


async def test_deploy_form_until_available_on_kwok_nodes(cluster, namespace):
    from tui.screens.deploy import DeployFormScreen, DeployProgressScreen

    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.backend is not None and app.connection is not None
                    and str(app.connection) == "synced", what="synced")
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DeployFormScreen), what="form")
        form = app.screen
        assert form.query_one("#f-namespace").value == namespace
        for fid, value in (("name", "sim"), ("model_uri", "hdfs://nn:8020/models/sim"),
                           ("version", "3"), ("replicas", "1"), ("cpu", "100m"),
                           ("memory", "256Mi")):
            form.query_one(f"#f-{fid}").value = value
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=60,
                    what="the dry run's confirmation")
        assert cluster.kubectl_run("get", "deployment", "sim", "-n", namespace,
                                   check=False).returncode != 0  # nothing written yet
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DeployProgressScreen), what="progress")
        screen = app.screen
        await until(pilot, lambda: "is Available" in str(
            screen.query_one("#deploy-outcome").content), timeout=120, what="Available")
        assert "pods created 1/1, ready 1/1" in str(screen.query_one("#deploy-progress").content)
        await until(pilot, lambda: cell(app, namespace, "sim", "ready") == "1/1",
                    what="READY 1/1 in the table")
        await until(pilot, lambda: getattr(app.deployments.records.get((namespace, "sim")),
                                           "hpa", None) is not None, what="the HPA joined")
        hpa = app.deployments.records[(namespace, "sim")].hpa
        assert (hpa.name, hpa.min_replicas) == ("sim", 1) and hpa.max_replicas >= 1
    d = cluster.get_json("deployment", "sim", "-n", namespace, "--show-managed-fields")
    assert d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "3"
    assert ("modelfleet", "Apply") in {(m["manager"], m["operation"])
                                       for m in d["metadata"]["managedFields"]}
    assert cluster.get_json("hpa", "sim", "-n", namespace)["spec"]["scaleTargetRef"]["name"] \
        == "sim"


async def test_log_view_streams_a_real_runner_pod(cluster, namespace):
    from tui.screens.logs import LogScreen

    cluster.apply(runner_dep("ticker", namespace))
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "ticker", "ready") == "1/1",
                    timeout=90, what="the runner pod Ready")
        await pilot.press("l")  # one pod: straight into its log
        await until(pilot, lambda: isinstance(app.screen, LogScreen), what="log view")
        screen = app.screen

        def ticks() -> list[int]:
            return [int(t.split()[1]) for t in screen.lines_shown() if t.startswith("tick ")]

        await until(pilot, lambda: len(ticks()) >= 3, timeout=30, what="tick lines")
        first = ticks()
        await until(pilot, lambda: ticks()[-1] >= first[-1] + 5, timeout=30,
                    what="new lines while following")
        got = ticks()
        assert got == list(range(got[0], got[0] + len(got)))  # in order, none lost or repeated
        assert screen.container == "server" and screen.status == "streaming"
        pod_name = screen.pod
        await pilot.press("escape")
        assert app.screen is app.main
    out = cluster.kubectl_run("logs", pod_name, "-n", namespace, "--tail=1").stdout
    assert out.startswith("tick ")


async def test_probe_now_against_a_real_runner_pod(cluster, namespace):
    from tui.screens.confirm import InfoScreen

    cluster.apply(runner_dep("prober", namespace))
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: cell(app, namespace, "prober", "ready") == "1/1",
                    timeout=90, what="the runner pod Ready")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeploymentScreen), what="detail")
        await pilot.press("2")
        await until(pilot, lambda: app.screen.pods, what="pods in the detail")
        await pilot.press("P")  # the highlighted pod of the Pods tab
        await until(pilot, lambda: isinstance(app.screen, InfoScreen), timeout=60,
                    what="the probe report")
        text = "\n".join(plain(x) for x in app.screen.body)
        assert app.screen.ok, text
        assert "status 200" in text and '"ready": true' in text and '"/ready"' in text
        assert "/ready" in text and "latency" in text
