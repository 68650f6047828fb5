"""The sweeps view, detail and actions against the real control plane, with the real
`fleet sweep` subprocess.

kwok runs no sweep workers: the test writes what worker 0 would (the summary annotation and
the trials ConfigMap). The scheduler is real, so a sweep asking for 64 GPUs per pod stays
GPU-starved; `X` runs `python -m fleet.cli sweep stop` (no database URL: only the Job is
suspended, which is what a laptop outside the cluster can do) and `R` resumes it.
"""

from __future__ import annotations

import pytest

from tests.fixtures.cluster import TestCluster
from tests.fleet.test_sweeps_cluster import SUMMARY, sweep_job, trial, trials_configmap
from tests.tui.test_tui_cluster import until
from tui.app import FleetApp
from tui.backend import KubeBackend
from tui.screens.command import CommandProgressScreen
from tui.screens.confirm import ConfirmScreen
from tui.screens.logs import LogScreen
from tui.screens.sweep import SweepDetailScreen

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio]
SIZE = (200, 50)


def make_app(kubeconfig: str, ns: str) -> FleetApp:
    return FleetApp(lambda ctx, nss: KubeBackend(kubeconfig, ctx, nss), namespaces=[ns],
                    age_refresh_s=0, start_view="sweeps")


def text(table, row: str, column: str) -> str:
    try:
        return str(table.get_cell(row, column))
    except Exception:  # noqa: BLE001 - not there yet
        return ""


def suspended(cluster: TestCluster, ns: str, name: str) -> bool:
    return bool(cluster.get_json("job", name, "-n", ns)["spec"].get("suspend"))


async def test_sweeps_view_detail_and_stop_resume_through_the_cli(
        cluster: TestCluster, namespace: str, monkeypatch) -> None:
    monkeypatch.delenv("FLEET_OPTUNA_STORAGE", raising=False)
    rows = [trial(0, value=0.81), trial(1, "pruned"), trial(2, value=0.93), trial(3, "running")]
    cluster.apply([sweep_job("digits", namespace, summary=SUMMARY),
                   sweep_job("huge", namespace, gpus=64),
                   trials_configmap("digits", namespace, rows, {"lr": 0.8, "units": 0.2})])
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main.query_one("#sweep-table")
        digits, huge = f"{namespace}/digits", f"{namespace}/huge"
        await until(pilot, lambda: text(table, huge, "pods").endswith("GPU-starved"),
                    timeout=60, what="huge GPU-starved")
        assert text(table, huge, "reason").startswith("Insufficient nvidia.com/gpu on ")
        await until(pilot, lambda: text(table, digits, "pods") == "2 running", timeout=60,
                    what="digits' 2 pods running")
        assert text(table, digits, "best") == "0.9300 (#2)"
        assert text(table, digits, "trials") == "██░░░░░░ 4/20"

        # the detail: the ConfigMap's trials, importances, the worker pods
        table.move_to((namespace, "digits"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SweepDetailScreen), what="detail")
        screen = app.screen
        trials = screen.query_one("#trials")
        await until(pilot, lambda: trials.row_count == 4 and screen.pods, timeout=30,
                    what="trials and pods")
        assert trials.header_labels()[2:5] == ["VAL_ACCURACY", "lr",
                                                                        "units"]
        assert str(trials.get_cell("2", "value")) == "★ 0.9300"
        assert str(screen.query_one("#importances").render()).startswith("lr")
        # the workers publish a new trial: the detail shows it at the next read
        cluster.apply(trials_configmap("digits", namespace, [*rows, trial(4, value=0.97)],
                                       {"lr": 0.8, "units": 0.2}))
        await until(pilot, lambda: trials.row_count == 5, timeout=15, what="trial 4")
        assert str(trials.get_cell("4", "value")) == "★ 0.9700"
        assert not str(trials.get_cell("2", "value")).startswith("★")
        # `l` on a worker pod: the log view of that pod
        pods = screen.query_one("#sweep-pods")
        pods.focus()
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), what="log view")
        assert app.screen.pod == screen.pods[0].name and app.screen.pod.startswith("digits-")
        await pilot.press("escape")

        # stop: confirm, the real `fleet sweep stop` subprocess, its lines, exit 0
        await until(pilot, lambda: app.screen is screen, what="back in the detail")
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, CommandProgressScreen),
                    what="progress")
        progress = app.screen
        run = app.cli_runs[progress.run]
        await until(pilot, lambda: run.done, timeout=120, what="fleet sweep stop")
        lines = [line for _, line in run.lines]
        assert run.result.ok, lines
        assert any("suspended" in line for line in lines) and "sweep digits stopped" in lines
        assert any(line.startswith("warning: no $FLEET_OPTUNA_STORAGE") for line in lines)
        assert "--context" in run.result.argv and cluster.kubeconfig in run.result.argv
        assert suspended(cluster, namespace, "digits")
        await pilot.press("escape")
        await until(pilot, lambda: "stopped" in str(screen.query_one("#sweep-summary")
                                                    .render()), timeout=30,
                    what="stopped in the summary")

        # resume
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, CommandProgressScreen),
                    what="progress")
        run = app.cli_runs[app.screen.run]
        await until(pilot, lambda: run.done, timeout=120, what="fleet sweep resume")
        assert run.result.ok, run.lines
        assert not suspended(cluster, namespace, "digits")

        # promote a pruned trial: refused before anything runs
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, what="detail")
        await pilot.press("P")
        app.screen.query_one("#f-trial").value = "1"
        runs = len(app.cli_runs)
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen) and len(app.cli_runs) == runs
