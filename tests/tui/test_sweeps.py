"""The sweeps view, a sweep's detail and the sweep actions, with the in-memory backend.

test_sweeps_cluster.py repeats the essentials against the real control plane (and the real
`fleet sweep` subprocess); here the keys, the diffing and the speed are pinned down.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from fleet.errors import Forbidden
from fleet.events import FleetChange
from fleet.model import SweepTrials
from tests.tui.fakes import (
    NOW,
    FakeBackend,
    deployment,
    job,
    sweep,
    sweep_pod,
    synthetic_trials,
    trial_row,
    trial_states,
    trials_configmap,
)
from tests.tui.waiting import settle, until
from tui.app import FleetApp
from tui.screens.command import CommandProgressScreen
from tui.screens.confirm import ConfirmScreen, PromptScreen
from tui.screens.logs import LogScreen
from tui.screens.sweep import SweepDetailScreen

pytestmark = pytest.mark.asyncio
SIZE = (160, 40)
KEY = ("team-a", "sweep-01")
STARVED = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."


def make_app(backend: FakeBackend, **kw) -> FleetApp:
    return FleetApp(lambda ctx, ns: backend, age_refresh_s=0, clock=lambda: NOW, **kw)


def backend(trials: int = 60) -> FakeBackend:
    fb = FakeBackend([deployment(1)], [
        job(1), sweep(1),
        sweep(2, ns="team-b", summary=dict(state="complete", running=0, complete=90,
                                           pruned=8, failed=2, best_value=0.9833,
                                           best_trial=71),
              active=0, ready=0),
        sweep(3, unschedulable=2, pending_reason=STARVED, ready=1, active=3,
              summary=dict(complete=2, running=1, pruned=0, failed=0, best_value=0.91,
                           best_trial=1))])
    if trials:
        fb.trials[KEY] = synthetic_trials(*reversed(KEY), trials)
    fb.sweep_pod_list[KEY] = [sweep_pod(f"sweep-01-{i}-x{i}bc") for i in range(3)] + [
        sweep_pod("sweep-01-3-x3bc", phase="Pending", gpu_starved=True)]
    return fb


def cell(app: FleetApp, key: tuple[str, str], column: str) -> str:
    return str(app.main.query_one("#sweep-table").get_cell(f"{key[0]}/{key[1]}", column))


async def open_detail(pilot, app: FleetApp) -> SweepDetailScreen:
    await pilot.press("w")
    await settle(pilot)
    table = app.main.query_one("#sweep-table")
    table.move_to(KEY)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, SweepDetailScreen), what="detail")
    screen = app.screen
    await until(pilot, lambda: screen.loads >= 1, what="first read")
    await settle(pilot)
    return screen


def spy_cells(table) -> list[tuple[str, str]]:
    touched: list[tuple[str, str]] = []
    orig = table.apply

    def spy(ops):  # the cells the widget is told to repaint
        touched.extend((table.row_id(key), col) for key, col, *_ in ops.updated)
        return orig(ops)

    table.apply = spy
    return touched


# --- the sweeps view ---------------------------------------------------------------------------

async def test_sweeps_view_lists_state_trials_best_pods_and_gpu_starved():
    app = make_app(backend())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert app.main.view == "sweeps"
        assert str(app.main.query_one("#sweeps-pane").border_title) == "sweeps(all)[3]"
        assert cell(app, KEY, "state") == "running"
        assert cell(app, KEY, "trials") == "████░░░░ 45/100"
        assert [cell(app, KEY, c) for c in ("complete", "running", "pruned", "failed")] == [
            "41", "3", "3", "1"]
        assert cell(app, KEY, "best") == "0.9712 (#37)"
        assert cell(app, KEY, "pods") == "3 running, 1 pending"
        starved = ("team-a", "sweep-03")
        assert cell(app, starved, "pods") == "1 running, 2 GPU-starved"
        assert cell(app, starved, "reason") == "Insufficient nvidia.com/gpu on 3 of 3 nodes"
        done = ("team-b", "sweep-02")
        assert cell(app, done, "state") == "complete"
        assert cell(app, done, "trials") == "████████ 100/100"
        # the jobs view still lists the sweep workers with the training jobs
        assert app.jobs.records.keys() >= {KEY, starved, done, ("team-a", "train-001")}
        assert set(app.sweeps.records) == {KEY, starved, done}
        # deployment actions are not offered here; the sweep actions are
        bindings = app.screen.active_bindings
        assert bindings["X"].enabled and bindings["R"].enabled and bindings["L"].enabled
        assert "u" not in {k for k, b in bindings.items() if app.check_action(
            b.binding.action, ()) is not False}


async def test_j_cycles_the_views_and_w_goes_to_sweeps_and_back():
    app = make_app(backend(0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seen = []
        for _ in range(3):
            await pilot.press("J")
            seen.append(app.main.view)
        assert seen == ["jobs", "sweeps", "deployments"]
        await pilot.press("w")
        assert app.main.view == "sweeps" and app.main.query_one("#sweep-table").has_focus
        await pilot.press("d")  # like Enter: the highlighted sweep's detail
        await until(pilot, lambda: isinstance(app.screen, SweepDetailScreen), what="detail")
        assert app.screen.sweep_key == KEY
        await pilot.press("escape")
        await pilot.press("w")
        assert app.main.view == "deployments"
        # sweep actions are hidden outside the sweeps
        assert app.check_action("sweep_stop", ()) is False
    app = make_app(backend(0), start_view="sweeps")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.main.view == "sweeps"


async def test_a_published_summary_updates_only_its_changed_cells():
    fb = backend(0)
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        table = app.main.query_one("#sweep-table")
        touched = spy_cells(table)
        before = table.applied_batches
        rec = fb.job_records[KEY]
        new = replace(rec, resource_version="900", sweep=replace(
            rec.sweep, complete=42, running=2, updated=NOW))
        fb.emit(FleetChange(jobs_upserted=[new]))
        await settle(pilot)
        assert table.applied_batches == before + 1
        assert sorted(touched) == [("team-a/sweep-01", "complete"),
                                   ("team-a/sweep-01", "running"),
                                   ("team-a/sweep-01", "trials")]
        # the same record again (a publish that changed nothing visible): nothing touched
        touched.clear()
        fb.emit(FleetChange(jobs_upserted=[replace(new, resource_version="901",
                                                   sweep=replace(new.sweep,
                                                                 updated=NOW))]))
        await settle(pilot)
        assert touched == [] and table.applied_batches == before + 1
        fb.emit(FleetChange(jobs_deleted=[KEY]))
        await settle(pilot)
        assert table.row_count == 2 and KEY not in app.sweeps.records


# --- the detail ------------------------------------------------------------------------------

async def test_detail_shows_trials_plots_importances_and_pods():
    app = make_app(backend())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        table = screen.query_one("#trials")
        assert table.row_count == 60
        assert table.header_labels()[:8] == [
            "#↓", "STATE", "VAL_ACCURACY", "learning_rate", "batch_size", "conv1", "dense",
            "dropout"]
        assert table.cursor_key() == 59  # newest first, the cursor on it
        assert str(table.get_cell("59", "state")) == "running"
        best = max((r for r in screen.rows.values() if r.trial.state == "complete"),
                   key=lambda r: r.trial.value)
        assert best.best and str(table.get_cell(str(best.key), "value")).startswith("★ ")
        assert str(screen.query_one("#importances").render()).startswith("learning_rate")
        assert screen.query_one("#best-plot").current and screen.query_one("#curve-plot").current
        pods = screen.query_one("#sweep-pods")
        assert pods.row_count == 4
        assert str(pods.get_row_at(3)[6]) == STARVED
        summary = str(screen.query_one("#sweep-summary").render())
        assert "team-a/sweep-01" in summary and "41 complete" in summary
        assert "val_accuracy ↑ 0.9712 (#37)" in summary and "digits-latency" in summary
        assert "Insufficient nvidia.com/gpu" in summary


async def test_thousand_trials_render_within_a_second(record_property):
    """The issue's bar: 1,000 trials in the detail's table and plots in ≤ 1 s, from the read
    (the ConfigMap's JSON parsed and diffed in the worker) to both plots built and the frame
    painted. Best of three fresh screens. The wall clock is the measure; on a machine that
    other work loads beyond twice its cores (shared CI), the process's own CPU time for the
    same span is asserted instead, and both are printed."""
    fb = backend(0)
    rows = [trial_row(n, st) for n, st in enumerate(trial_states(1000))]
    app = make_app(fb)
    timings, cpu, ui = [], [], []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        for attempt in range(3):
            fb.trials[KEY] = SweepTrials(found=False)
            screen = SweepDetailScreen(KEY, poll_s=0)
            await app.push_screen(screen)
            await until(pilot, lambda s=screen: s.loads >= 1, what="empty read")
            await settle(pilot)
            table = screen.query_one("#trials")
            best, curves = screen.query_one("#best-plot"), screen.query_one("#curve-plot")
            fb.trials[KEY] = trials_configmap(KEY[1], KEY[0], rows, {"dropout": 0.3},
                                              rv=str(100 + attempt))
            started, cpu_started = time.perf_counter(), time.process_time()
            screen.poll()
            await until(pilot, lambda t=table, b=best, c=curves: t.row_count == 1000
                        and b.current and c.current and b.builds > 1 and c.builds >= 1,
                        what="1000 trials rendered", timeout=30)
            await pilot.pause()  # the frame with them
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            ui.append(screen.last_apply_s)
            assert str(table.get_cell("999", "state")) == "running"
            app.pop_screen()
            await settle(pilot)
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    record_property("render_1000_trials_s", f"{min(timings):.3f}")
    record_property("render_1000_trials_cpu_s", f"{min(cpu):.3f}")
    record_property("render_1000_trials_ui_thread_s", f"{min(ui):.3f}")
    print(f"\n1,000 trials to painted: {', '.join(f'{t:.3f}' for t in timings)} s wall, "
          f"{', '.join(f'{t:.3f}' for t in cpu)} s CPU, UI thread "
          f"{', '.join(f'{t * 1000:.0f}' for t in ui)} ms (load {load:.1f}, {cores} cores)")
    if load > 2 * cores:
        assert min(cpu) <= 1.0, (cpu, timings)
    else:
        assert min(timings) <= 1.0, (timings, cpu)
    assert min(ui) < 0.5


async def test_updates_at_full_speed_touch_only_what_changed():
    fb = backend(0)
    rows = [trial_row(n, st) for n, st in enumerate(trial_states(1000))]
    fb.trials[KEY] = trials_configmap(KEY[1], KEY[0], rows, rv="1")
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        table = screen.query_one("#trials")
        best, curves = screen.query_one("#best-plot"), screen.query_one("#curve-plot")
        touched = spy_cells(table)
        batches, builds = table.applied_batches, (best.builds, curves.builds)
        # the same ConfigMap (same resourceVersion): nothing to parse, nothing touched
        screen.poll()
        await settle(pilot)
        assert touched == [] and table.applied_batches == batches
        assert (best.builds, curves.builds) == builds
        # rewritten with the same content (a new resourceVersion): still nothing touched
        fb.trials[KEY] = trials_configmap(KEY[1], KEY[0], rows, rv="2")
        screen.poll()
        await settle(pilot)
        assert screen.snapshot.resource_version == "2"
        assert touched == [] and table.applied_batches == batches
        assert (best.builds, curves.builds) == builds
        # the sweep at full speed: every read, a running trial reports an epoch and one
        # finishes; only their rows (and their changed cells) are touched
        worst = worst_cpu = 0.0
        for step in range(8):
            n = 997 + step % 3
            rows[n] = trial_row(n, "running", epochs=1 + step % 5)
            rows[n]["steps"] = rows[n]["steps"][:1 + step]
            rows.append(trial_row(1000 + step, "running"))
            fb.trials[KEY] = trials_configmap(KEY[1], KEY[0], rows, rv=str(10 + step))
            touched.clear()
            screen.poll()
            await until(pilot, lambda s=step: screen.snapshot.resource_version == str(10 + s),
                        what="read")
            worst = max(worst, screen.last_apply_s)
            worst_cpu = max(worst_cpu, screen.last_apply_cpu_s)
            assert {r for r, _ in touched} <= {"997", "998", "999"}, touched
        await settle(pilot)
        assert table.row_count == 1008
        print(f"\nworst UI-thread update of a 1,000-trial sweep: {worst * 1000:.1f} ms "
              f"({worst_cpu * 1000:.1f} ms CPU; load {os.getloadavg()[0]:.1f})")
        # the UI thread's own work per read stays a few frames at most (wall time only
        # when the machine is not loaded by others: then the OS, not the app, decides)
        assert worst_cpu < 0.1
        if os.getloadavg()[0] <= 2 * (os.cpu_count() or 1):
            assert worst < 0.25


async def test_sort_by_value_and_by_a_parameter():
    app = make_app(backend())
    notes: list[tuple[str, str]] = []
    app.notify = lambda message, **kw: notes.append((kw.get("title", ""), message))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        table = screen.query_one("#trials")
        await pilot.press("S")
        await until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="picker")
        app.screen.dismiss("value")
        await settle(pilot)
        ordered = [screen.rows[k].trial for k in table.model.ordered()]
        values = [t.value for t in ordered if t.value is not None]
        # maximizing: the best first, trials without a value (running, pruned) last
        assert values == sorted(values, reverse=True) and screen.model.sort_column == "value"
        assert all(t.value is None for t in ordered[len(values):])
        top = screen.rows[ordered[0].n]
        assert top.best and "★" in str(table.get_cell(str(top.key), "value"))
        assert table.header_labels()[2] == "VAL_ACCURACY↓"
        screen.sort_by("value")  # again: reversed
        await pilot.pause()
        first = screen.rows[table.model.key_at(0)].trial
        assert first.value is None
        screen.sort_by("value")
        await pilot.press("right_square_bracket")  # the next column: learning_rate
        assert screen.model.sort_column == "p0"
        lrs = [screen.rows[k].trial.param("learning_rate")
               for k in table.model.ordered()]
        assert lrs == sorted(lrs)
        assert table.header_labels()[3] == "learning_rate↑"
        # Enter: the whole trial
        table.move_cursor(row=0)
        await pilot.press("enter")
        assert notes[-1][0].startswith("trial #") and "learning_rate=" in notes[-1][1]


async def test_curves_follow_the_cursor_and_i_toggles_all_or_one():
    app = make_app(backend())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        curves = screen.query_one("#curve-plot")
        assert curves._data.selected == 59 and curves._data.all_trials
        await pilot.press("down")
        await settle(pilot)
        assert curves._data.selected == 58 and curves.current
        await pilot.press("i")
        await settle(pilot)
        assert not curves._data.all_trials and curves.current


async def test_l_opens_the_log_view_of_the_trial_or_pod():
    fb = backend()
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        await pilot.press("l")  # the highlighted trial (#59, running) runs on a pod
        await until(pilot, lambda: isinstance(app.screen, LogScreen), what="log view")
        assert app.screen.pod == screen.rows[59].trial.pod
        await pilot.press("escape")
        await settle(pilot)
        screen.query_one("#sweep-pods").focus()
        await pilot.press("down", "l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), what="log view")
        assert app.screen.pod == "sweep-01-1-x1bc"


async def test_l_in_the_sweeps_view_picks_a_worker_pod():
    app = make_app(backend(0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("l")
        await until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="picker")
        assert app.screen.title_text == "Logs of a pod of team-a/sweep-01"
        assert len(app.screen.options) == 4


async def test_read_errors_are_shown_and_the_app_keeps_going():
    fb = backend(0)
    fb.trials[KEY] = Forbidden('configmaps "sweep-01-trials" is forbidden: User "dev" '
                               'cannot get resource "configmaps"')
    app = make_app(fb)
    notes: list[tuple[str, str]] = []
    app.notify = lambda message, **kw: notes.append((kw.get("title", ""), message))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        assert app.is_running and "cannot read trials" in notes[-1][1]
        assert "forbidden" in str(screen.query_one("#trials-box").border_title)
        # it works again: the error goes away
        fb.trials[KEY] = synthetic_trials(KEY[1], KEY[0], 5)
        screen.poll()
        await settle(pilot)
        assert screen.query_one("#trials").row_count == 5
        assert str(screen.query_one("#trials-box").border_title) == "trials[5]"
        # no ConfigMap yet (a sweep that just started)
        fb.trials[KEY] = SweepTrials(found=False)
        screen.poll()
        await settle(pilot)
        assert "no trials ConfigMap yet" in str(screen.query_one("#trials-box").border_title)


async def test_parameters_only_the_trials_have_become_columns():
    fb = backend(0)
    fb.job_records[KEY] = replace(fb.job_records[KEY], sweep=replace(
        fb.job_records[KEY].sweep, params=()))
    rows = [trial_row(n) for n in range(3)]
    rows[2]["params"]["momentum"] = 0.9
    fb.trials[KEY] = trials_configmap(KEY[1], KEY[0], rows)
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        table = screen.query_one("#trials")
        labels = table.header_labels()
        assert labels[3:9] == ["learning_rate", "batch_size", "conv1", "dense", "dropout",
                               "momentum"]
        assert str(table.get_cell("2", "p5")) == "0.9" and str(table.get_cell("1", "p5")) == "-"


# --- actions ---------------------------------------------------------------------------------

async def test_stop_confirms_runs_the_cli_and_shows_its_lines_and_status():
    import threading

    fb = backend(0)
    fb.cli_gate = threading.Event()
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.title_text == "Stop sweep team-a/sweep-01?"
        body = " ".join(str(b) for b in app.screen.body)
        assert "spec.suspend → true" in body
        assert "fleet sweep stop sweep-01 -n team-a" in body
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, CommandProgressScreen), what="progress")
        progress = app.screen
        await until(pilot, lambda: len(app.cli_runs[progress.run].lines) == 1, what="a line")
        assert "running" in str(progress.query_one("#command-outcome").render())
        fb.cli_gate.set()
        await settle(pilot)
        assert fb.calls[-1] == ("cli", "", "", {"args": ["sweep", "stop", "sweep-01", "-n",
                                                         "team-a"]})
        outcome = str(progress.query_one("#command-outcome").render())
        assert outcome.startswith("✓ exit status 0") and "sweep sweep-01 stopped" in outcome
        assert [line for _, line in app.cli_runs[progress.run].lines] == [
            "job.batch/sweep-01 suspended: its worker pods hand back their running trials",
            "sweep sweep-01 stopped"]


async def test_a_failing_command_shows_its_error_and_exit_status():
    fb = backend(0)
    fb.cli_lines = [("stderr", "error: no study team-a__sweep-01 in the storage")]
    fb.cli_exit = 1
    app = make_app(fb)
    notes: list[tuple[str, str, str]] = []
    app.notify = lambda message, **kw: notes.append(
        (kw.get("title", ""), message, kw.get("severity", "")))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("R")
        assert app.screen.title_text == "Resume sweep team-a/sweep-01?"
        await pilot.press("y")
        await settle(pilot)
        outcome = str(app.screen.query_one("#command-outcome").render())
        assert outcome == "✗ exit status 1: error: no study team-a__sweep-01 in the storage"
        assert notes[-1] == ("Resume sweep team-a/sweep-01", outcome, "error")
        assert app.is_running


async def test_a_command_that_cannot_start_is_an_error_not_a_crash():
    class Broken(FakeBackend):
        def run_cli(self, args, on_line=None, cancel=None):
            raise FileNotFoundError(2, "No such file or directory", "/nope/python")

    fb = Broken([deployment(1)], [sweep(1)])
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("X", "y")
        await settle(pilot)
        assert "could not run the command" in str(
            app.screen.query_one("#command-outcome").render())


async def test_promote_the_highlighted_trial_or_the_best():
    fb = backend()
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_detail(pilot, app)
        table = screen.query_one("#trials")
        table.move_to(56)  # a complete trial with a model
        await pilot.pause()
        await pilot.press("P")
        assert isinstance(app.screen, PromptScreen)
        values = {i.id: i.value for i in app.screen.query("Input")}
        assert values == {"f-trial": "56", "f-deployment": "digits-latency"}
        await pilot.press("enter", "enter")
        assert isinstance(app.screen, ConfirmScreen)
        body = " ".join(str(b) for b in app.screen.body)
        assert "trial #56" in body and "hdfs://nn/models/digits/57" in body
        await pilot.press("y")
        await settle(pilot)
        assert fb.calls[-1][3]["args"] == ["sweep", "promote", "sweep-01", "-n", "team-a",
                                           "--trial", "56", "--deployment", "digits-latency"]
        await pilot.press("escape")
        # a running trial cannot be promoted: said before anything runs
        table.move_to(59)
        await pilot.pause()
        await pilot.press("P")
        app.screen.query_one("#f-trial").value = "59"
        calls = len(fb.calls)
        await pilot.press("enter", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen) and len(fb.calls) == calls
        # from the sweeps view: the best trial (the CLI picks it)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("P")
        app.screen.query_one("#f-trial").value = ""
        await pilot.press("enter", "enter", "y")
        await settle(pilot)
        assert fb.calls[-1][3]["args"] == ["sweep", "promote", "sweep-01", "-n", "team-a",
                                           "--deployment", "digits-latency"]


async def test_launch_from_a_spec_file(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("name: digits-sweep\nsearch_space:\n  lr: {type: float, low: 0.001, "
                    "high: 0.1}\n")
    fb = backend(0)
    app = make_app(fb)
    notes: list[tuple[str, str]] = []
    app.notify = lambda message, **kw: notes.append((kw.get("title", ""), message))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        await pilot.press("L")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one("#f-file").value = str(tmp_path / "missing.yaml")
        await pilot.press("enter", "enter", "enter", "enter")
        await settle(pilot)
        assert notes[-1][0] == "cannot launch" and "missing.yaml" in notes[-1][1]
        await pilot.press("L")
        app.screen.query_one("#f-file").value = str(spec)
        app.screen.query_one("#f-max_trials").value = "12"
        await pilot.press("enter", "enter", "enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        body = " ".join(str(b) for b in app.screen.body)
        assert "name: digits-sweep" in body and "max_trials 12" in body
        await pilot.press("y")
        await settle(pilot)
        assert fb.calls[-1][3]["args"] == ["sweep", "launch", str(spec), "-n", "team-a",
                                           "--max-trials", "12"]


async def test_readonly_disables_the_sweep_actions():
    fb = backend(0)
    app = make_app(fb, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert not app.screen.active_bindings["X"].enabled
        assert app.denied("sweep_stop") == "read-only mode (--readonly)"
        app.action_sweep_stop()
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert not [c for c in fb.calls if c[0] == "cli"]


async def test_l_in_the_jobs_view_opens_a_training_jobs_pod_logs():
    fb = FakeBackend([deployment(1)], [job(1)])
    fb.sweep_pod_list[("team-a", "train-001")] = [sweep_pod("train-001-0-abcde")]
    app = make_app(fb)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("J")  # deployments → jobs
        await settle(pilot)
        assert app.main.view == "jobs"
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), what="log view")
        assert (app.screen.namespace, app.screen.pod) == ("team-a", "train-001-0-abcde")
