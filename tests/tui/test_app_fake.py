"""App behaviour with the in-memory backend: keys, modals, RBAC/readonly gating, banner.

These pin down UI logic quickly; test_tui_cluster.py repeats the features against the real
local cluster.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import pytest
from rich.console import Console

from fleet.events import FleetChange
from fleet.model import ConnectionState, RolloutState
from tests.tui.fakes import NOW, FakeBackend, deployment, job, progress, schedule
from tests.tui.waiting import settle, until
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


async def test_title_counts_and_live_cell_update():
    fb = FakeBackend([deployment(i) for i in range(20)], [job(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert title(app) == "deployments(all)[20]"
        table = app.main.query_one("#dep-table")
        batches = table.applied_batches
        fb.update(("team-a", "model-0003"), ready=0)
        await settle(pilot)
        assert str(table.get_cell("team-a/model-0003", "ready")) == "0/2"
        assert table.applied_batches == batches + 1


async def test_idle_app_applies_nothing():
    fb = FakeBackend([deployment(i) for i in range(20)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        before = (table.applied_batches, table.lines_rendered)
        await pilot.pause(1.0)
        assert (table.applied_batches, table.lines_rendered) == before


async def test_burst_of_changes_is_coalesced():
    fb = FakeBackend([deployment(i) for i in range(50)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        before = table.applied_batches
        for i in range(50):
            fb.update(("team-a", f"model-{i:04d}"), ready=1)
        await settle(pilot)
        assert table.applied_batches - before <= 2
        assert all(str(table.get_cell(f"team-a/model-{i:04d}", "ready")) == "1/2"
                   for i in range(50))


async def test_filter_problems_and_jump():
    deps = [deployment(i) for i in range(30)]
    deps[17] = deployment(17, rollout_state=RolloutState.STALLED)
    app = make_app(FakeBackend(deps))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
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
        await settle(pilot)
        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press("4", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert fb.calls == [("scaled", "team-a", "model-0000", {"replicas": 4})]
        await pilot.press("space", "space", "r", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen)
        # the cursor stayed on row 0: Space marks it and moves down, Space marks row 1
        assert sorted(c[2] for c in fb.calls[1:]) == ["model-0000", "model-0001"]


async def test_rollback_previous_in_one_key_plus_confirm():
    fb = FakeBackend([deployment(2, revision=3)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "revision 2" in app.screen.title_text
        await pilot.press("enter")
        await settle(pilot)
        assert fb.calls[-1] == ("rolled back", "team-a", "model-0002",
                                {"to_revision": 2, "generation": 10})


async def test_rollback_to_chosen_revision_in_three_keys():
    fb = FakeBackend([deployment(2, revision=3)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        assert isinstance(app.screen, DeploymentScreen)
        await pilot.press("down", "down", "enter")  # revisions newest first: 3, 2, 1
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert fb.calls[-1] == ("rolled back", "team-a", "model-0002",
                                {"to_revision": 1, "generation": 10})


async def test_probes_within_one_key():
    app = make_app(FakeBackend([deployment(1)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert app.screen.query_one("#tabs").active == "probes"
        text = plain(app.screen.query_one("#probe-report").content)
        assert "readiness" in text and "http://:8080/v1/models/m" in text
        assert "Readiness probe failed" in text


async def test_readonly_disables_every_write():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bindings = app.screen.active_bindings
        for key in ("u", "s", "r", "z", "o", "W"):
            assert not bindings[key].enabled, key
        await pilot.press("u", "s", "r")
        await settle(pilot)
        assert fb.calls == [] and app.screen is app.main
        assert "read-only" in str(app.main.query_one("#perm-line").render())


async def test_forbidden_action_disabled_with_reason():
    fb = FakeBackend([deployment(1, ns="locked"), deployment(2)],
                     denied={("locked", "scale"): "no scale for you"})
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        table.move_to(("locked", "model-0001"))
        await settle(pilot)
        assert not app.screen.active_bindings["s"].enabled
        assert app.screen.active_bindings["u"].enabled
        assert "no scale for you" in str(app.main.query_one("#perm-line").render())
        table.move_to(("team-a", "model-0002"))
        await settle(pilot)
        assert app.screen.active_bindings["s"].enabled


async def test_banner_follows_connection_state():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        banner = app.main.query_one("#banner")
        assert not banner.display or not banner.has_class("-reconnecting")
        fb.emit(FleetChange(connection=ConnectionState.RECONNECTING, error="connection refused"))
        await settle(pilot)
        assert banner.has_class("-reconnecting")
        assert "connection refused" in str(banner.render())
        fb.emit(FleetChange(connection=ConnectionState.SYNCED))
        await settle(pilot)
        assert not banner.has_class("-reconnecting")


async def test_jobs_view():
    app = make_app(FakeBackend([deployment(1)], [job(1), job(2)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
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
        await settle(pilot)
        await pilot.press("s", "3", "enter", "enter")
        await settle(pilot)
        assert app.is_running
        assert isinstance(app.screen, ResultScreen)
        assert app.screen.ok == []
        assert app.screen.failed == ['team-a/model-0001: deployments.apps "x" is forbidden']


async def test_rollout_by_keys_shows_exact_change():
    fb = FakeBackend([deployment(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("o")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"hdfs://nn/m/v9", "enter", "enter", "enter", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        body = "\n".join(str(x) for x in app.screen.body)
        assert "MODEL_URI" in body and "hdfs://nn/m/v9" in body and "image" not in body
        await pilot.press("enter")
        await settle(pilot)
        assert fb.calls[0][3]["model_uri"] == "hdfs://nn/m/v9"


async def test_palette_runs_actions():
    app = make_app(FakeBackend([deployment(1)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"Scale")
        await until(pilot, lambda: _palette_highlight(app).startswith("Act: scale"),
                    "the palette to offer Scale")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)


def _palette_highlight(app: FleetApp) -> str:
    from textual.command import CommandList
    from textual.css.query import NoMatches

    try:
        option = app.screen.query_one(CommandList).highlighted_option
    except NoMatches:
        return ""
    return "" if option is None else str(option.prompt)


async def test_rollback_changed_after_confirm_is_refused():
    fb = FakeBackend([deployment(2, revision=3)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        fb.generations[("team-a", "model-0002")] = 11  # another writer, while the modal is up
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen)
        assert app.screen.ok == []
        assert "generation 10 -> 11" in app.screen.failed[0]
        assert [c for c in fb.calls if c[0] != "history"] == [
            ("refused", "team-a", "model-0002", {"to_revision": 2, "generation": 10})]


async def test_bulk_rollback_names_targets_and_refuses_a_change_after_confirm():
    fb = FakeBackend([deployment(1, revision=3), deployment(2, revision=2),
                      deployment(3, revision=1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("space", "space", "space", "u")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        body = [plain(x).strip() for x in app.screen.body]
        assert body[0].startswith("team-a/model-0001  revision 3")
        assert '→ revision 2, version v2, "release v2"' in body[0]
        assert "→ revision 1" in body[1]
        assert body[2].startswith("team-a/model-0003  skipped: no rollout history")
        fb.generations[("team-a", "model-0002")] = 11  # changed after the user confirmed
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ResultScreen)
        assert app.screen.ok == ["deployment.apps/model-0001 rolled back"]
        assert len(app.screen.failed) == 1 and "team-a/model-0002" in app.screen.failed[0]
        writes = sorted(c for c in fb.calls if c[0] in ("rolled back", "refused"))
        assert writes == [
            ("refused", "team-a", "model-0002", {"to_revision": 1, "generation": 10}),
            ("rolled back", "team-a", "model-0001", {"to_revision": 2, "generation": 10}),
        ]


async def test_undo_wave_hands_over_the_listed_candidates():
    from fleet.ops.bulk import WaveCandidate

    fb = FakeBackend([deployment(1, revision=3)])
    cand = WaveCandidate("team-a", "model-0001", 3, 2, NOW, "release v3", generation=10,
                         resource_version="5")
    fb.candidates = [cand]
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("W")
        await settle(pilot)
        await pilot.press("enter")  # the picker's default window
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "revision 3 → 2" in plain(app.screen.body[0])
        await pilot.press("enter")
        await settle(pilot)
        assert ("undo_wave", "", "", {"candidates": [cand]}) in fb.calls
        assert fb.calls[-1] == ("rolled back", "team-a", "model-0001",
                                {"to_revision": 2, "generation": 10})


async def test_failed_access_review_shows_unknown_not_allowed():
    from fleet.errors import FleetError

    class NoReview(FakeBackend):
        def can_i(self, action, namespace):
            raise FleetError("connection reset by peer")

    app = make_app(NoReview([deployment(1)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        line = str(app.main.query_one("#perm-line").render())
        assert "unknown, check failed: connection reset by peer" in line
        assert "scale" in line and "disabled" not in line
        assert app.screen.active_bindings["s"].enabled  # unknown is not denied: the API decides


async def test_namespace_list_failure_is_reported():
    from fleet.errors import Forbidden

    class NoList(FakeBackend):
        def list_namespaces(self):
            raise Forbidden("namespaces is forbidden")

    app = make_app(NoList([deployment(1)]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("N")
        await settle(pilot)
        notes = [(n.title, n.message) for n in app._notifications]
        assert ("cannot list namespaces",
                "namespaces is forbidden; showing the namespaces seen so far") in notes


async def test_table_batches_keep_the_apply_rate_limit():
    import threading
    import time

    fb = FakeBackend([deployment(i) for i in range(20)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        stamps: list[float] = []
        apply = table.apply

        def timed(ops):
            if not ops.is_empty():
                stamps.append(time.monotonic())
            apply(ops)

        table.apply = timed
        done = threading.Event()

        def produce() -> None:  # a watch delivering a change every ~10 ms for ~0.6 s
            for n in range(60):
                fb.update(("team-a", f"model-{n % 20:04d}"), ready=n % 2)
                time.sleep(0.01)
            done.set()

        threading.Thread(target=produce, daemon=True).start()
        await until(pilot, done.is_set, "the producer", timeout=30)
        await settle(pilot)
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert len(stamps) >= 3, stamps
        assert min(gaps) >= 0.1 * 0.9, gaps  # the documented ≈10 Hz, not the constant
        assert str(table.get_cell("team-a/model-0019", "ready")) == "1/2"  # n=59: ready 1


async def test_quitting_stops_the_backend_off_the_ui_loop():
    import threading

    release = threading.Event()

    class SlowStop(FakeBackend):
        def stop(self):  # a cache whose threads are stuck in a LIST
            release.wait(10)
            super().stop()

    fb = SlowStop([deployment(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
    assert fb.stopped == 0  # the app is gone while stop() still waits
    release.set()


async def test_a_change_that_arrives_while_the_app_closes_is_dropped_not_a_crash():
    """CI saw `NoMatches: #dep-table` when a watch thread handed over a change after shutdown
    had removed the main screen's widgets; the drain now stops once the app stops running."""
    from tui.messages import ChangesPending

    fb = FakeBackend([deployment(1)])
    app = make_app(fb)
    handed_over = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        on_change, rec = fb.on_change, next(iter(fb.records.values()))

        def change_during_teardown(*_args) -> None:  # the table is already detached here
            on_change(FleetChange(deployments_upserted=[replace(rec, ready=0)]))
            app.on_changes_pending(ChangesPending())
            handed_over.append(True)

        table = app.main.query_one("#dep-table")
        table.__class__ = type("TornDownTable", (type(table),),
                               {"on_unmount": change_during_teardown})
        app.exit()
    assert handed_over  # the late change really reached the app while it was closing


# --- jobs view: training progress and re-training schedules ------------------------------------

def cell(app: FleetApp, table: str, key: tuple[str, str], column: str) -> str:
    try:
        return str(app.main.query_one(table).get_cell(f"{key[0]}/{key[1]}", column))
    except Exception:  # noqa: BLE001 - no such row (yet)
        return ""


def jobs_backend() -> FakeBackend:
    from fleet.model import JobState

    jobs = [job(1, progress=progress()),
            job(2, state=JobState.FAILED, active=0, failed=1,
                progress=progress(phase="failed", epoch=None, epochs=None, value=None,
                                  loss=None),
                failure="TrainerError: dataset digits@v9 not found [hdfs]")]
    return FakeBackend([deployment(1)], jobs,
                       schedules=[schedule(1), schedule(2, ns="team-b", suspended=True,
                                                       next_run=None)])


async def test_jobs_view_shows_progress_failure_and_schedules():
    app = make_app(jobs_backend())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("J")
        key = ("team-a", "train-001")
        assert cell(app, "#job-table", key, "phase") == "training"
        assert cell(app, "#job-table", key, "progress") == "██░░░░░░ 3/10"
        assert cell(app, "#job-table", key, "metric") == "accuracy 0.931"
        failed = ("team-a", "train-002")
        assert cell(app, "#job-table", failed, "state") == "failed"
        assert cell(app, "#job-table", failed, "reason").startswith("TrainerError: dataset")
        box = app.main.query_one("#schedules-box")
        assert box.display and str(box.border_title) == "re-training schedules(all)[2]"
        sched = ("team-a", "retrain-01")
        assert cell(app, "#schedule-table", sched, "next_run") == "in 23h"
        assert cell(app, "#schedule-table", sched, "promotion") == "promoted 50m ago"
        assert cell(app, "#schedule-table", ("team-b", "retrain-02"), "next_run") == "suspended"


async def test_progress_updates_only_the_changed_cells():
    fb = jobs_backend()
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("J")
        table = app.main.query_one("#job-table")
        touched: list[tuple[str, str]] = []
        orig = table.apply

        def spy(ops):  # the cells the widget is told to repaint
            touched.extend((table.row_id(key), col) for key, col, *_ in ops.updated)
            return orig(ops)

        table.apply = spy
        before = table.applied_batches
        rec = replace(fb.job_records[("team-a", "train-001")],
                      progress=progress(epoch=4, value=0.944), resource_version="7")
        fb.emit(FleetChange(jobs_upserted=[rec]))
        await settle(pilot)
        assert table.applied_batches == before + 1
        assert sorted(touched) == [("team-a/train-001", "metric"),
                                   ("team-a/train-001", "progress")]
        assert cell(app, "#job-table", rec.key, "progress") == "███░░░░░ 4/10"
        assert cell(app, "#job-table", rec.key, "metric") == "accuracy 0.944"


async def test_schedule_rows_come_and_go_and_the_box_hides_when_empty():
    fb = FakeBackend([deployment(1)], [job(1)])
    app = make_app(fb, start_view="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        box = app.main.query_one("#schedules-box")
        assert app.main.view == "jobs" and not box.display
        new = schedule(5, next_run=NOW + timedelta(minutes=5))
        fb.emit(FleetChange(schedules_upserted=[new]))
        await settle(pilot)
        assert box.display and cell(app, "#schedule-table", new.key, "next_run") == "in 5m"
        fb.emit(FleetChange(schedules_upserted=[replace(
            new, last_promotion=None, resource_version="900")]))
        await settle(pilot)
        assert cell(app, "#schedule-table", new.key, "promotion") == "none yet"
        fb.emit(FleetChange(schedules_deleted=[new.key]))
        await settle(pilot)
        assert not box.display and app.main.query_one("#schedule-table").row_count == 0


async def test_filter_tab_sort_and_enter_in_the_jobs_view():
    app = make_app(jobs_backend())
    notes: list[tuple[str, str]] = []
    app.notify = lambda message, **kw: notes.append((kw.get("title", ""), message))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("J")
        # Enter on the failed job: the whole reason (markup-like text kept as is)
        await pilot.press("down", "enter")
        assert notes[-1][0] == "job team-a/train-002"
        assert "failed: TrainerError: dataset digits@v9 not found [hdfs]" in notes[-1][1]
        # the filter applies to both tables
        await pilot.press("slash", *"retrain-02", "enter")
        await settle(pilot)
        assert app.main.query_one("#job-table").row_count == 0
        assert app.main.query_one("#schedule-table").row_count == 1
        await pilot.press("escape")
        await settle(pilot)
        assert app.main.query_one("#schedule-table").row_count == 2
        # Tab moves to the schedules table; sorting and Enter act on it
        await pilot.press("tab")
        sched = app.main.query_one("#schedule-table")
        assert sched.has_focus and app.main.table is sched
        await pilot.press("S")
        await until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="picker")
        app.screen.dismiss("next_run")
        await settle(pilot)
        assert app.schedules.sort_column == "next_run"
        assert app.jobs.sort_column == "namespace"
        sched.move_cursor(row=0)
        await pilot.pause()
        assert sched.cursor_key() == ("team-a", "retrain-01")  # in 23h before suspended
        await pilot.press("enter")
        title_, text = notes[-1]
        assert title_ == "cronjob team-a/retrain-01"
        assert "last promotion: promoted" in text and "accuracy 0.962 > 0.948 (live)" in text
        assert not app.screen.active_bindings["u"].enabled  # no write action on a schedule


async def test_clock_refresh_updates_next_run():
    now = [NOW]
    fb = FakeBackend([deployment(1)], schedules=[schedule(1, next_run=NOW + timedelta(minutes=3))])
    app = FleetApp(lambda ctx, ns: fb, age_refresh_s=0, clock=lambda: now[0],
                   start_view="jobs")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert cell(app, "#schedule-table", ("team-a", "retrain-01"), "next_run") == "in 3m"
        now[0] = NOW + timedelta(minutes=5)
        app._refresh_ages()
        await settle(pilot)
        assert cell(app, "#schedule-table", ("team-a", "retrain-01"), "next_run") == "overdue 2m"
