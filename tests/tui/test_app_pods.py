"""Deploy form, log view, probe now, example prediction and the HPA view, with the in-memory
backend (tests/tui/fakes.py records what the app passes). test_tui_cluster.py repeats them
against the real local cluster."""

from __future__ import annotations

import io
import threading
from dataclasses import replace

import pytest
from rich.console import Console

from fleet.errors import FleetError
from fleet.model import Autoscaler, EventRecord, PodCondition, PodSummary
from fleet.ops.logs import LogOptions
from fleet.ops.predict import PredictResult, ProbeResult
from tests.tui.fakes import NOW, FakeBackend, FakeLogStream, deployment
from tests.tui.waiting import settle, until
from tui.app import FleetApp
from tui.screens.confirm import ConfirmScreen, InfoScreen
from tui.screens.deploy import DeployFormScreen, DeployProgressScreen
from tui.screens.detail import DeploymentScreen
from tui.screens.logs import LogScreen, split_timestamp, ts_key
from tui.screens.picker import PickerScreen

pytestmark = pytest.mark.asyncio
SIZE = (200, 50)


def make_app(backend: FakeBackend, **kw) -> FleetApp:
    return FleetApp(lambda ctx, ns: backend, age_refresh_s=0, clock=lambda: NOW, **kw)


def plain(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def pod(name: str, minutes_old: int, ready: bool = True, ns: str = "team-a") -> PodSummary:
    from datetime import timedelta

    return PodSummary(ns, name, f"uid-{name}", "Running", ready, ready, "node-0", "10.0.0.1",
                      "model-0001-rs", NOW - timedelta(minutes=minutes_old))


def ts(second: int, text: str) -> str:
    return f"2026-11-27T04:00:{second:02d}.5Z {text}"


# --- deploy -----------------------------------------------------------------------------------

async def _fill_form(pilot, name: str, uri: str, version: str, replicas: str) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, DeployFormScreen)
    for fid, value in (("name", name), ("model_uri", uri), ("version", version),
                       ("replicas", replicas)):
        screen.query_one(f"#f-{fid}").value = value
    screen.query_one("#f-mode").value = "throughput"


async def test_deploy_form_dry_run_confirm_progress_until_available():
    fb = FakeBackend([deployment(1)])
    gate = fb.deploy_gate = threading.Event()
    app = make_app(fb, namespaces=["team-a"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("D")
        assert isinstance(app.screen, DeployFormScreen)
        assert app.screen.query_one("#f-namespace").value == "team-a"  # the watched namespace
        await _fill_form(pilot, "digits", "hdfs://nn:8020/models/digits", "3", "2")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)  # nothing written yet: only the dry run
        assert [c[3]["dry_run"] for c in fb.calls if c[0] == "deploy"] == [True]
        body = "\n".join(plain(x) for x in app.screen.body)
        assert "create deployment.apps/digits" in body and "route /models/digits" in body
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DeployProgressScreen), "progress")
        screen = app.screen
        await until(pilot, lambda: str(screen.query_one("#deploy-progress").content)
                    == "pods created 0/2, ready 0/2", "the first progress line")
        await until(pilot, lambda: ("team-a", "digits") in app.deployments.records, "new row")
        assert "deployment.apps/digits created" in "\n".join(
            str(s) for s in screen.query_one("#deploy-log").lines)
        assert app.main.query_one("#progress").watched.keys() == {("team-a", "digits")}
        gate.set()
        await settle(pilot)
        assert "is Available: 2/2 pods ready" in str(screen.query_one("#deploy-outcome").content)
        table = app.main.query_one("#dep-table")
        assert str(table.get_cell("team-a/digits", "ready")) == "2/2"
        spec = fb.calls[-1][3]["spec"]
        assert (spec.name, spec.namespace, spec.model_uri, spec.version, spec.mode,
                spec.replicas, fb.calls[-1][3]["dry_run"]) == (
            "digits", "team-a", "hdfs://nn:8020/models/digits", "3", "throughput", 2, False)


async def test_deploy_form_says_what_is_wrong_and_writes_nothing():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await _fill_form(pilot, "Bad_Name", "s3://x", "", "two")
        await pilot.press("ctrl+s")
        error = str(app.screen.query_one("#deploy-error").content)
        assert "replicas must be a whole number" in error
        app.screen.query_one("#f-replicas").value = ""
        await pilot.press("ctrl+s")
        error = str(app.screen.query_one("#deploy-error").content)
        assert "DNS-1035" in error and "--model-uri 's3://x'" in error
        assert [c for c in fb.calls if c[0] == "deploy"] == []  # offline checks: no API call
        await _fill_form(pilot, "digits", "hdfs://nn:8020/m", "", "1")
        fb.deploy_error = FleetError('deployments.apps "digits" already exists: use fleet '
                                     "rollout")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, DeployFormScreen)  # stays open: fix and retry
        assert "nothing was created: deployments.apps \"digits\" already exists" in str(
            app.screen.query_one("#deploy-error").content)
        assert [c[3]["dry_run"] for c in fb.calls if c[0] == "deploy"] == [True]


async def test_deploy_disabled_readonly_and_when_rbac_forbids():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.screen.active_bindings["D"].enabled
        await pilot.press("D")
        assert app.screen is app.main
        assert "deploy" in str(app.main.query_one("#perm-line").render())
        assert app.screen.active_bindings["l"].enabled  # logs are a read: allowed

    fb = FakeBackend([deployment(1)], denied={("team-a", "deploy"): "RBAC: cannot create "
                                              "deployments in namespace team-a"})
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.screen.active_bindings["D"].enabled
        assert "deploy disabled — RBAC: cannot create deployments" in str(
            app.main.query_one("#perm-line").render())
        await pilot.press("D")
        assert app.screen is app.main


async def test_deploy_into_a_forbidden_namespace_is_refused_by_the_form():
    fb = FakeBackend([deployment(1)], denied={("locked", "deploy"): "no deploys in locked"})
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await _fill_form(pilot, "digits", "hdfs://nn:8020/m", "", "1")
        app.screen.query_one("#f-namespace").value = "locked"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "no deploys in locked" in str(app.screen.query_one("#deploy-error").content)
        assert [c for c in fb.calls if c[0] == "deploy"] == []


# --- logs -------------------------------------------------------------------------------------

def _log_app(pods: list[PodSummary]) -> tuple[FakeBackend, FleetApp]:
    fb = FakeBackend([deployment(1)])
    fb.pod_list[("team-a", "model-0001")] = pods
    return fb, make_app(fb)


def log_screen(app) -> LogScreen:
    assert isinstance(app.screen, LogScreen), app.screen
    return app.screen


async def test_l_picks_the_newest_unready_pod_and_streams_its_lines():
    fb, app = _log_app([pod("a-old-unready", 50, ready=False), pod("b-new-ready", 1),
                        pod("c-newer-unready", 5, ready=False)])
    fb.logs[("c-newer-unready", "server", False)] = [[ts(1, "hello"), ts(2, "world")]]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), "pod picker")
        assert app.screen.current == "c-newer-unready"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "log view")
        screen = log_screen(app)
        await until(pilot, lambda: screen.lines_shown() == ["hello", "world"], "two lines")
        assert fb.log_opens[0][:3] == ("team-a", "c-newer-unready", "server")
        opts = fb.log_opens[0][3]
        assert (opts.follow, opts.previous, opts.timestamps, opts.tail_lines) == (
            True, False, True, 500)
        fb.streams[0].more([ts(3, "more")])  # a followed stream: new lines keep coming
        await until(pilot, lambda: screen.lines_shown()[-1] == "more", "a followed line")
        assert app.is_running
        await pilot.press("escape")
        assert fb.streams[0].closed  # leaving the view closes the stream


async def test_log_reconnects_where_it_left_off_when_the_stream_ends():
    fb, app = _log_app([pod("p", 1)])
    fb.logs[("p", "server", False)] = [[ts(1, "one"), ts(2, "two-a"), ts(2, "two-b")],
                                       [ts(2, "two-a"), ts(2, "two-b"), ts(3, "three")]]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "log view")
        screen = log_screen(app)
        await until(pilot, lambda: len(fb.log_opens) == 2 and "three" in screen.lines_shown(),
                    "the second stream's new line")
        assert screen.lines_shown() == ["one", "two-a", "two-b", "three"]  # no repeats
        again = fb.log_opens[1][3]
        assert (again.since_time, again.tail_lines) == ("2026-11-27T04:00:02.5Z", None)


async def test_log_filter_wrap_previous_container_and_errors():
    fb, app = _log_app([pod("p", 1)])
    fb.containers["p"] = ["server", "sidecar"]
    fb.logs[("p", "server", False)] = [[ts(1, "GET /ready 200"), ts(2, "POST /infer 500"),
                                        ts(3, "GET /ready 200")]]
    fb.log_errors[("p", "server", True)] = FleetError(
        'previous terminated container "server" in pod "p" not found', status=400)
    fb.logs[("p", "sidecar", True)] = [[ts(1, "proxy up")]]  # its previous instance
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "log view")
        screen = log_screen(app)
        await until(pilot, lambda: len(screen.lines_shown()) == 3, "three lines")
        await pilot.press("slash", *"infer", "enter")
        assert screen.lines_shown() == ["POST /infer 500"]
        assert "filter “infer”: 1 of 3 lines" in plain(screen.query_one("#log-header").content)
        await pilot.press("escape")  # clears the filter, stays in the view
        assert len(screen.lines_shown()) == 3 and app.screen is screen
        await pilot.press("w")
        assert screen.query_one("#log").wrap is True
        await pilot.press("p")
        await until(pilot, lambda: screen.status_error, "the previous-container error")
        assert 'previous terminated container "server"' in screen.status
        assert fb.log_opens[-1][3].previous is True
        assert len(fb.log_opens) == 2  # an error without follow is said, not retried
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), "container picker")
        await pilot.press("down", "enter")
        await until(pilot, lambda: screen.lines_shown() == ["proxy up"], "the sidecar's line")
        assert fb.log_opens[-1][2] == "sidecar" and fb.log_opens[-1][3].previous is True


async def test_log_view_keeps_the_last_n_lines_and_stays_responsive():
    fb, app = _log_app([pod("p", 1)])
    lines = [ts(i % 60, f"line {i}") for i in range(3000)]
    fb.logs[("p", "server", False)] = [lines]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.push_screen(LogScreen("team-a", "p", "server", max_lines=100))
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "log view")
        screen = log_screen(app)
        await until(pilot, lambda: screen.lines_shown()[-1:] == ["line 2999"], "the last line")
        assert len(screen.kept) == 100 and screen.lines_shown()[0] == "line 2900"
        assert len(screen.query_one("#log").lines) <= 100
        await pilot.press("escape")
        assert app.screen is app.main  # the app answered keys throughout


async def test_log_stream_errors_are_shown_and_retried_while_following():
    fb, app = _log_app([pod("p", 1)])
    fb.log_errors[("p", "server", False)] = FleetError(
        'container "server" in pod "p" is waiting to start: ContainerCreating', status=400)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "log view")
        screen = log_screen(app)
        await until(pilot, lambda: "waiting to start" in screen.status, "the error")
        del fb.log_errors[("p", "server", False)]
        fb.logs[("p", "server", False)] = [[ts(1, "started")]]
        await until(pilot, lambda: screen.lines_shown() == ["started"], "retried", timeout=10)
        assert app.is_running


@pytest.mark.filterwarnings("ignore")
def test_timestamps_split_and_compare_as_times():
    assert split_timestamp("2026-11-27T04:00:00.1Z a b") == ("2026-11-27T04:00:00.1Z", "a b")
    assert split_timestamp("no timestamp here") == ("", "no timestamp here")
    # as strings ".1Z" > ".12Z"; as times .1 s < .12 s
    assert ts_key("2026-11-27T04:00:00.1Z") < ts_key("2026-11-27T04:00:00.12Z")
    assert ts_key("2026-11-27T04:00:00Z") < ts_key("2026-11-27T04:00:00.000000001Z")
    assert LogOptions(since_time="x", tail_lines=None).query("c") == {"container": "c",
                                                                      "sinceTime": "x"}


# --- probe now and the example prediction --------------------------------------------------------

async def _detail(pilot, app, tab_key: str = "2") -> DeploymentScreen:
    await settle(pilot)
    await pilot.press("d")
    await settle(pilot)
    await pilot.press(tab_key)
    assert isinstance(app.screen, DeploymentScreen)
    return app.screen


async def test_probe_now_on_the_highlighted_pod_shows_status_body_latency():
    fb, app = _log_app([pod("p-0", 3), pod("p-1", 2, ready=False)])
    fb.probe_answer = ProbeResult("team-a", "p-1", "server", "http://p-1:8080/v2/health/ready",
                                  "port-forward", 503, False, '{"error":"model not loaded"}',
                                  2.5, 11.0)
    async with app.run_test(size=SIZE) as pilot:
        await _detail(pilot, app)
        await pilot.press("down", "P")
        await settle(pilot)
        assert isinstance(app.screen, InfoScreen)
        assert fb.calls[-1] == ("probe_now", "team-a", "p-1", {"container": None})
        text = "\n".join(plain(x) for x in app.screen.body)
        assert "status 503" in text and "model not loaded" in text and "latency 2.5 ms" in text
        assert app.screen.title_text == "readiness probe of team-a/p-1: 503 (failure)"


async def test_probe_now_picks_a_pod_and_says_what_failed():
    fb, app = _log_app([pod("p-0", 3), pod("p-1", 2)])
    fb.probe_answer = FleetError('port-forward to pod/p-0 refused: pods "p-0" is forbidden: '
                                 'User "oncall" cannot create resource "pods/portforward"')
    async with app.run_test(size=SIZE) as pilot:
        await _detail(pilot, app, "1")  # not the Pods tab: a picker
        await pilot.press("P")
        assert isinstance(app.screen, PickerScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, InfoScreen) and not app.screen.ok
        assert "pods/portforward" in plain(app.screen.body[0])
        assert app.is_running


async def test_example_prediction_auto_pod_and_model_error():
    fb, app = _log_app([pod("p-0", 3)])
    fb.predict_answer = PredictResult(
        "team-a", "model-0001", "p-0", "digits", "v2", "port-forward", "/v2/models/digits/infer",
        400, False, {"inputs": [{"name": "x", "data": [0.0]}]},
        {"error": "shape mismatch: expected [1,784]"}, "shape mismatch: expected [1,784]",
        4.2, 9.9)
    async with app.run_test(size=SIZE) as pilot:
        await _detail(pilot, app, "1")
        await pilot.press("x")
        assert isinstance(app.screen, PickerScreen) and app.screen.current == "*auto"
        await pilot.press("enter")
        await settle(pilot)
        assert fb.calls[-1] == ("predict", "team-a", "model-0001", {"pod": None})
        assert isinstance(app.screen, InfoScreen) and not app.screen.ok
        text = "\n".join(plain(x) for x in app.screen.body)
        assert "model error: shape mismatch: expected [1,784]" in text
        assert "status 400" in text and "latency 4.2 ms" in text
        await pilot.press("escape")
        fb.predict_answer = FleetError('no Ready pod for deployment "model-0001": 1 pod, none '
                                       "Ready: p-0 (Running, not ready: ContainersNotReady)")
        await pilot.press("x", "enter")
        await settle(pilot)
        assert "no Ready pod" in plain(app.screen.body[0])


async def test_probe_and_predict_disabled_when_port_forward_is_forbidden():
    fb, app = _log_app([pod("p-0", 3)])
    fb.denied[("team-a", "portforward")] = "RBAC: cannot create pods/portforward"
    async with app.run_test(size=SIZE) as pilot:
        screen = await _detail(pilot, app)
        assert not screen.active_bindings["P"].enabled
        assert not screen.active_bindings["x"].enabled
        await pilot.press("P", "x")
        await settle(pilot)
        assert app.screen is screen and not [c for c in fb.calls if c[0] in ("probe_now",
                                                                             "predict")]


# --- HPA ------------------------------------------------------------------------------------------

async def test_hpa_min_max_current_target_and_scaling_events():
    hpa = Autoscaler("model-0001", 1, 5, 2, 3, ("cpu: 85%/70%",), NOW,
                     (PodCondition("ScalingLimited", "False", "DesiredWithinRange"),))
    fb = FakeBackend([deployment(1, hpa=hpa)])
    fb.hpas[("team-a", "model-0001")] = hpa
    fb.scaling_events = [EventRecord("team-a", "e1", "Normal", "SuccessfulRescale",
                                     "New size: 3; reason: cpu resource utilization (percentage "
                                     "of request) above target", 1, NOW, NOW,
                                     "HorizontalPodAutoscaler", "model-0001", "u")]
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _detail(pilot, app, "5")
        summary = plain(screen.query_one("#summary").content)
        assert "hpa model-0001  min 1  max 5  current 2  desired 3  targets cpu: 85%/70%" in \
            summary
        table = screen.query_one("#scaling-table")
        assert table.row_count == 1 and "SuccessfulRescale" in str(table.get_row_at(0))
        fb.update(("team-a", "model-0001"), hpa=replace(hpa, current_replicas=3))
        await settle(pilot)
        assert "current 3" in plain(screen.query_one("#summary").content)


async def test_ready_cell_follows_pods_becoming_ready():
    fb = FakeBackend([deployment(1, ready=0, available=0)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        for n in (0, 1, 2):
            fb.update(("team-a", "model-0001"), ready=n)
            await settle(pilot)
            assert str(table.get_cell("team-a/model-0001", "ready")) == f"{n}/2"


@pytest.mark.filterwarnings("ignore")
def test_fake_log_stream_closes_from_another_thread():
    s = FakeLogStream(["a"], hold=True)
    got: list[str] = []
    t = threading.Thread(target=lambda: got.extend(s))
    t.start()
    threading.Timer(0.05, s.close).start()
    t.join(2)
    assert not t.is_alive() and got == ["a"]

