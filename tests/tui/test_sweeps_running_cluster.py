"""The sweeps view and detail following a real sweep while it runs: worker pods on the process
kubelet train the digits example, trials live in PostgreSQL, and the app reads only the
Kubernetes objects worker 0 keeps current (no database URL, as from a laptop)."""

from __future__ import annotations

import pytest

from tests.fixtures.cluster import TestCluster
from tests.tui.test_sweeps_cluster import make_app, text
from tests.tui.test_tui_cluster import until
from tests.tuning.sweepkit import launch, spec_yaml, trial_table, trials
from tui.screens.sweep import SweepDetailScreen
from tui.viewmodel.sweep_render import number
from tuning.example import publish_example

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs, pytest.mark.postgres, pytest.mark.asyncio]
SIZE = (200, 50)


@pytest.fixture(scope="module")
def example(hdfs) -> tuple[str, str]:  # noqa: ANN001
    return publish_example(hdfs.uri("/tuning-tests/example-tui-sweep"),
                           webhdfs_url=hdfs.webhdfs_url)


async def test_the_view_and_detail_follow_a_running_sweep_to_its_end(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path,  # noqa: ANN001
        monkeypatch) -> None:  # noqa: ANN001
    code, data = example
    spec = spec_yaml("live", code, data, hdfs.uri(f"/tuning-tests/{namespace}/live"),
                     epochs=2, budget={"max_trials": 4}, pruner={"type": "none"})
    res = launch(cluster, hdfs, namespace, tmp_path, spec, postgres_url)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    monkeypatch.delenv("FLEET_OPTUNA_STORAGE", raising=False)
    app = make_app(cluster.kubeconfig, namespace)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main.query_one("#sweep-table")
        row = f"{namespace}/live"
        # while it runs: both worker pods, then the first trials counted
        await until(pilot, lambda: text(table, row, "pods") == "2 running", timeout=300,
                    what="2 worker pods running")
        await until(pilot, lambda: text(table, row, "complete") not in ("", "-", "0"),
                    timeout=400, what="a first complete trial in the view")
        assert text(table, row, "state") == "running"
        table.move_to((namespace, "live"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SweepDetailScreen), what="detail")
        screen = app.screen
        grid = screen.query_one("#trials")
        await until(pilot, lambda: grid.row_count >= 1, timeout=60, what="trials in the detail")
        # the detail keeps following: the sweep's end (the view's row says so meanwhile), then
        # every trial of the budget complete in the detail's table
        await until(pilot, lambda: text(table, row, "state") == "complete", timeout=600,
                    what="the sweep complete")
        await until(pilot, lambda: grid.row_count == 4 and all(
            text(grid, str(n), "state") == "complete" for n in range(4)), timeout=60,
            what="4 complete trials in the detail")
        assert "complete" in str(screen.query_one("#sweep-summary").render())
        ts = trials(postgres_url, namespace, "live")
        done = [t for t in ts if t.state.name == "COMPLETE"]
        assert len(done) == 4, trial_table(ts)
        best = max(done, key=lambda t: t.value)
        # the detail shows what the study holds: the best trial starred with its value
        assert str(grid.get_cell(str(best.number), "value")) == f"★ {number(best.value)}"
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main, what="back in the sweeps view")
        assert text(table, row, "best") == f"{number(best.value)} (#{best.number})"
        assert text(table, row, "complete") == "4"
