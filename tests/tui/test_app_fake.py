"""App behaviour with the in-memory backend: keys, modals, RBAC/readonly gating, banner.

These pin down UI logic quickly; test_tui_cluster.py repeats the features against the real
local cluster.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from fleet.events import FleetChange
from fleet.model import ConnectionState, RolloutState
from tests.tui.fakes import NOW, FakeBackend, deployment, job
from tui.app import FleetApp
from tui.screens.confirm import ConfirmScreen, PromptScreen, ResultScreen
from tui.screens.detail import DeploymentScreen

pytestmark = pytest.mark.asyncio
SIZE = (200, 50)


def make_app(backend: FakeBackend, **kw) -> FleetApp:
    return FleetApp(lambda ctx, ns: backend, age_refresh_s=0, clock=lambda: NOW, **kw)


def title(app: FleetApp) -> str:
    return str(app.main.query_one("#deployments-pane").border_title)


def plain(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def settle(pilot, app: FleetApp, seconds: float = 0.3) -> None:
    await pilot.pause(seconds)
    await app.workers.wait_for_complete()
    await pilot.pause(0.05)


async def test_title_counts_and_live_cell_update():
    fb = FakeBackend([deployment(i) for i in range(20)], [job(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert title(app) == "deployments(all)[20]"
        table = app.main.query_one("#dep-table")
        batches = table.applied_batches
        fb.update(("team-a", "model-0003"), ready=0)
        await settle(pilot, app)
        assert str(table.get_cell("team-a/model-0003", "ready")) == "0/2"
        assert table.applied_batches == batches + 1


async def test_idle_app_applies_nothing():
    fb = FakeBackend([deployment(i) for i in range(20)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        table = app.main.query_one("#dep-table")
        before = (table.applied_batches, table._update_count)
        await pilot.pause(1.0)
        assert (table.applied_batches, table._update_count) == before


async def test_burst_of_changes_is_coalesced():
    fb = FakeBackend([deployment(i) for i in range(50)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        table = app.main.query_one("#dep-table")
        before = table.applied_batches
        for i in range(50):
            fb.update(("team-a", f"model-{i:04d}"), ready=1)
        await settle(pilot, app)
        assert table.applied_batches - before <= 2
        assert all(str(table.get_cell(f"team-a/model-{i:04d}", "ready")) == "1/2"
                   for i in range(50))


async def test_filter_problems_and_jump():
    deps = [deployment(i) for i in range(30)]
    deps[17] = deployment(17, rollout_state=RolloutState.STALLED)
    app = make_app(FakeBackend(deps))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("slash", *"0017", "enter")
        assert title(app) == "deployments(all)[1] </0017>"
        await pilot.press("escape")
        assert title(app) == "deployments(all)[30]"
        await pilot.press("n")
        assert app.main.query_one("#dep-table").cursor_key() == ("team-a", "model-0017")
        await pilot.press("exclamation_mark")
        assert title(app) == "deployments(all)[1] <problems>"


async def test_scale_by_keys_and_bulk_results():
    fb = FakeBackend([deployment(i) for i in range(5)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("4", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await settle(pilot, app)
        assert fb.calls == [("scaled", "team-a", "model-0000", {"replicas": 4})]
        await pilot.press("space", "space", "r", "enter")
        await settle(pilot, app)
        assert isinstance(app.screen, ResultScreen)
        # the cursor stayed on row 0: Space marks it and moves down, Space marks row 1
        assert sorted(c[2] for c in fb.calls[1:]) == ["model-0000", "model-0001"]


async def test_rollback_previous_in_one_key_plus_confirm():
    fb = FakeBackend([deployment(2, revision=3)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("u")
        await settle(pilot, app)
        assert isinstance(app.screen, ConfirmScreen)
        assert "revision 2" in app.screen.title_text
        await pilot.press("enter")
        await settle(pilot, app)
        assert fb.calls[0][:3] == ("rolled back", "team-a", "model-0002")
        assert fb.calls[0][3]["to_revision"] == 2


async def test_rollback_to_chosen_revision_in_three_keys():
    fb = FakeBackend([deployment(2, revision=3)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("h")
        await settle(pilot, app)
        assert isinstance(app.screen, DeploymentScreen)
        await pilot.press("down", "down", "enter")  # revisions newest first: 3, 2, 1
        await settle(pilot, app)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await settle(pilot, app)
        assert fb.calls[0][3]["to_revision"] == 1


async def test_probes_within_one_key():
    app = make_app(FakeBackend([deployment(1)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("p")
        await settle(pilot, app)
        assert app.screen.query_one("#tabs").active == "probes"
        text = plain(app.screen.query_one("#probe-report").content)
        assert "readiness" in text and "http://:8080/v1/models/m" in text
        assert "Readiness probe failed" in text


async def test_readonly_disables_every_write():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        bindings = app.screen.active_bindings
        for key in ("u", "s", "r", "z", "o", "W"):
            assert not bindings[key].enabled, key
        await pilot.press("u", "s", "r")
        await settle(pilot, app)
        assert fb.calls == [] and app.screen is app.main
        assert "read-only" in str(app.main.query_one("#perm-line").render())


async def test_forbidden_action_disabled_with_reason():
    fb = FakeBackend([deployment(1, ns="locked"), deployment(2)],
                     denied={("locked", "scale"): "no scale for you"})
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        table = app.main.query_one("#dep-table")
        table.move_to(("locked", "model-0001"))
        await settle(pilot, app)
        assert not app.screen.active_bindings["s"].enabled
        assert app.screen.active_bindings["u"].enabled
        assert "no scale for you" in str(app.main.query_one("#perm-line").render())
        table.move_to(("team-a", "model-0002"))
        await settle(pilot, app)
        assert app.screen.active_bindings["s"].enabled


async def test_banner_follows_connection_state():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        banner = app.main.query_one("#banner")
        assert not banner.display or not banner.has_class("-reconnecting")
        fb.emit(FleetChange(connection=ConnectionState.RECONNECTING, error="connection refused"))
        await settle(pilot, app)
        assert banner.has_class("-reconnecting")
        assert "connection refused" in str(banner.render())
        fb.emit(FleetChange(connection=ConnectionState.SYNCED))
        await settle(pilot, app)
        assert not banner.has_class("-reconnecting")


async def test_jobs_view():
    app = make_app(FakeBackend([deployment(1)], [job(1), job(2)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("J")
        assert app.main.view == "jobs"
        assert str(app.main.query_one("#jobs-pane").border_title) == "jobs(all)[2]"
        assert not app.screen.active_bindings["u"].enabled


async def test_backend_error_does_not_crash():
    class Broken(FakeBackend):
        def scale(self, ns, name, replicas, current=None):
            from fleet.errors import Forbidden
            raise Forbidden('deployments.apps "x" is forbidden')

    fb = Broken([deployment(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("s", "3", "enter", "enter")
        await settle(pilot, app)
        assert app.is_running


async def test_rollout_by_keys_shows_exact_change():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("o")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"hdfs://nn/m/v9", "enter", "enter", "enter", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        body = "\n".join(str(x) for x in app.screen.body)
        assert "MODEL_URI" in body and "hdfs://nn/m/v9" in body and "image" not in body
        await pilot.press("enter")
        await settle(pilot, app)
        assert fb.calls[0][3]["model_uri"] == "hdfs://nn/m/v9"


async def test_palette_runs_actions():
    app = make_app(FakeBackend([deployment(1)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.press(*"Scale")
        await pilot.pause(0.8)
        await pilot.press("enter")
        await settle(pilot, app)
        assert isinstance(app.screen, PromptScreen)
