"""SVG snapshots of the main screens (pytest-textual-snapshot; `--snapshot-update` to accept).

A fixed clock and the in-memory backend keep them deterministic.
"""

from __future__ import annotations

from datetime import timedelta

from fleet.events import FleetChange
from fleet.model import ConnectionState, JobState, ProbeHealth, Promotion, RolloutState
from tests.tui.fakes import NOW, FakeBackend, deployment, job, progress, schedule
from tests.tui.waiting import settle
from tui.app import FleetApp

SIZE = (160, 40)


def fleet() -> FakeBackend:
    deps = [deployment(i, ns=("team-nlp", "team-vision", "team-ads")[i % 3]) for i in range(40)]
    deps[4] = deployment(4, ns="team-vision", rollout_state=RolloutState.STALLED,
                         probe_health=ProbeHealth.UNREADY, unready_pods=1, ready=1, updated=1,
                         revision=3, change_cause="roll out model-4 v3 (bad build)")
    deps[9] = deployment(9, ns="team-nlp", probe_health=ProbeHealth.CRASHLOOP, restarts=12,
                         crashlooping_pods=2, ready=0, available=0)
    deps[11] = deployment(11, ns="team-ads", paused=True, rollout_state=RolloutState.PAUSED)
    jobs = [job(1, progress=progress()),
            job(2, ns="team-vision", state=JobState.PENDING, active=0, gpus=8),
            job(3, kind="sweep-worker", gpus=0, state=JobState.COMPLETE, active=0, succeeded=1,
                progress=progress(epoch=10, phase="done", value=0.958,
                                  model_uri="hdfs://nn/models/model-3/v5")),
            job(4, ns="team-nlp", state=JobState.FAILED, active=0, failed=1,
                progress=progress(phase="failed", epoch=None, epochs=None, value=None,
                                  loss=None, message="no such dataset version"),
                failure="dataset digits@v9 not found in hdfs://nn/datasets/digits"),
            job(5, ns="team-ads", progress=progress(phase="staging", epoch=None, epochs=None,
                                                    value=None, loss=None)),
            job(6, ns="team-ads", progress=progress(epoch=7, epochs=None, metric="",
                                                    value=None, loss=0.0412,
                                                    updated=NOW - timedelta(minutes=12)))]
    schedules = [
        schedule(1),
        schedule(2, ns="team-vision", schedule="30 */6 * * 1-5", time_zone="Europe/Berlin",
                 next_run=NOW + timedelta(minutes=12), active=1,
                 deployment="team-nlp/model-0004"),
        schedule(3, ns="team-ads", suspended=True, next_run=None, last_promotion=Promotion(
            "rolled-back", "canary p95 latency 41ms > 30ms; rolled back to revision 2",
            "retrain-03-28990", NOW - timedelta(days=2))),
        schedule(4, ns="team-nlp", schedule="@weekly", last_schedule=None,
                 next_run=NOW + timedelta(days=3),
                 last_promotion=None, deployment=""),
    ]
    return FakeBackend(deps, jobs, schedules=schedules)


def app(**kw) -> FleetApp:
    backend = fleet()
    return FleetApp(lambda ctx, ns: backend, age_refresh_s=0, clock=lambda: NOW, **kw)


async def _settle(pilot) -> None:
    await settle(pilot)


def _after(*steps: tuple[str, ...]):
    """A run_before that settles, then presses each group of keys and settles again."""

    async def before(pilot) -> None:
        await _settle(pilot)
        for keys in steps:
            await pilot.press(*keys)
            await _settle(pilot)

    return before


def test_main_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_settle)


def test_problems_only(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_after(("exclamation_mark",)))


def test_detail_revisions_with_diff(snap_compare):
    before = _after(("n", "n", "h"), ("down",))
    assert snap_compare(app(), terminal_size=SIZE, run_before=before)


def test_detail_probes(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_after(("p",)))


def test_rollback_confirmation(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_after(("n", "n", "u")))


def test_jobs_view(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_after(("J",)))


def test_readonly_with_api_away(snap_compare):
    async def before(pilot):
        await _settle(pilot)
        pilot.app.backend.emit(FleetChange(connection=ConnectionState.RECONNECTING,
                                           error="connection refused"))
        await _settle(pilot)

    assert snap_compare(app(readonly=True), terminal_size=SIZE, run_before=before)


def test_help(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_after(("question_mark",)))


def test_deploy_form(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_after(("D",)))


def test_log_view(snap_compare):
    from datetime import timedelta

    from fleet.model import PodSummary
    from tests.tui.waiting import until

    backend = fleet()
    key = ("team-nlp", "model-0000")
    backend.pod_list[key] = [PodSummary("team-nlp", "model-0000-7d9f-abcde", "u", "Running",
                                        True, True, "node-0", "10.0.0.9", "model-0000-7d9f",
                                        NOW - timedelta(minutes=3))]
    backend.logs[("model-0000-7d9f-abcde", "server", False)] = [[
        f"2026-11-27T04:00:{i:02d}Z {'POST /v2/models/m/infer 200' if i % 3 else 'GET /ready 200'}"
        f" {i * 1.7:.1f}ms" for i in range(30)]]
    the_app = FleetApp(lambda ctx, ns: backend, age_refresh_s=0, clock=lambda: NOW)

    async def before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("l")
        await until(pilot, lambda: len(getattr(pilot.app.screen, "kept", ())) == 30, "30 lines")
        await pilot.press("slash", *"infer", "enter")
        await pilot.pause()

    assert snap_compare(the_app, terminal_size=SIZE, run_before=before)



def test_jobs_view_filtered_with_schedules_focused(snap_compare):
    """One filter for both tables of the jobs view; Tab moves the cursor to the schedules."""
    before = _after(("J",), ("slash", *"nlp", "enter"), ("tab",))
    assert snap_compare(app(), terminal_size=SIZE, run_before=before)


def sweep_fleet() -> FakeBackend:
    """The fleet plus three sweeps: one running (with 60 trials and a GPU-starved worker),
    one complete and promoted, one waiting for GPUs."""
    from fleet.model import Promotion as Promo
    from tests.tui.fakes import sweep, sweep_pod, synthetic_trials

    backend = fleet()
    sweeps = [
        sweep(1, ns="team-nlp"),
        sweep(2, ns="team-vision", summary=dict(
            state="complete", running=0, complete=90, pruned=8, failed=2, best_value=0.9833,
            best_trial=71, promotion=Promo("promoted", "val_accuracy 0.983 > 0.961 (live)")),
              active=0, ready=0, succeeded=4),
        sweep(3, ns="team-ads", unschedulable=3, pending_reason="0/3 nodes are available: 3 "
              "Insufficient nvidia.com/gpu.", ready=1, active=4,
              summary=dict(complete=2, running=1, pruned=0, failed=0, best_value=0.9104,
                           best_trial=1, max_trials=40)),
        sweep(4, ns="team-nlp", active=0, ready=0, failed=4,
              summary=dict(state="aborted", running=0, complete=3, failed=3,
                           reason="3 identical failures: CUDA error: out of memory")),
    ]
    for s in sweeps:
        backend.job_records[s.key] = s
    key = ("team-nlp", "sweep-01")
    backend.trials[key] = synthetic_trials("sweep-01", "team-nlp", 60)
    backend.sweep_pod_list[key] = [
        sweep_pod(f"sweep-01-{i}-x{i}bc", ns="team-nlp") for i in range(3)] + [
        sweep_pod("sweep-01-3-x3bc", ns="team-nlp", phase="Pending", gpu_starved=True)]
    return backend


def sweep_app() -> FleetApp:
    backend = sweep_fleet()
    return FleetApp(lambda ctx, ns: backend, age_refresh_s=0, clock=lambda: NOW)


def test_sweeps_view(snap_compare):
    assert snap_compare(sweep_app(), terminal_size=SIZE, run_before=_after(("w",)))


def test_sweep_detail(snap_compare):
    """Trials (newest first, params as columns), best-so-far and per-epoch plots,
    importances, worker pods with the scheduler's message for the GPU-starved one."""
    from tests.tui.waiting import until

    async def before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("w")
        await _settle(pilot)
        pilot.app.main.query_one("#sweep-table").move_to(("team-nlp", "sweep-01"))
        await pilot.press("enter")
        await until(pilot, lambda: getattr(pilot.app.screen, "loads", 0) >= 1, "trials read")
        await _settle(pilot)
        await pilot.press("down", "down")
        await _settle(pilot)

    assert snap_compare(sweep_app(), terminal_size=SIZE, run_before=before)


def test_sweep_stop_confirmation(snap_compare, monkeypatch):
    """What stop does, the command it runs, and that without the database URL only the Job
    is suspended."""
    monkeypatch.delenv("FLEET_OPTUNA_STORAGE", raising=False)

    async def before(pilot) -> None:
        await _settle(pilot)
        await pilot.press("w")
        await _settle(pilot)
        pilot.app.main.query_one("#sweep-table").move_to(("team-nlp", "sweep-01"))
        await pilot.press("X")
        await _settle(pilot)

    assert snap_compare(sweep_app(), terminal_size=SIZE, run_before=before)
