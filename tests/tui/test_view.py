"""Pure view-model logic: cell diffs, filter, sort, marks (no Textual, no cluster)."""

from __future__ import annotations

from dataclasses import replace

from fleet.model import ProbeHealth, RolloutState
from tests.tui.fakes import NOW, deployment
from tui.columns import DEPLOYMENT_COLUMNS, MARK, human_age
from tui.filtering import RowFilter
from tui.view import TableModel


def model() -> TableModel:
    return TableModel(DEPLOYMENT_COLUMNS, now=lambda: NOW)


def test_first_batch_adds_rows_and_unchanged_upsert_is_a_no_op():
    m = model()
    deps = [deployment(i) for i in range(5)]
    ops = m.apply(deps, [])
    assert [k for k, _ in ops.added] == [d.key for d in deps]
    assert m.apply(deps, []).is_empty()


def test_changed_record_updates_only_changed_cells():
    m = model()
    d = deployment(1)
    m.apply([d], [])
    ops = m.apply([replace(d, ready=1, resource_version="999")], [])
    assert not ops.added and not ops.removed
    assert [(col, str(v)) for _, col, v, _ in ops.updated] == [("ready", "1/2")]
    assert not ops.resort  # default sort is by namespace; readiness does not move the row


def test_change_in_sort_column_requests_resort():
    m = model()
    m.set_sort("ready")
    d = deployment(1)
    m.apply([d], [])
    assert m.apply([replace(d, ready=0)], []).resort


def test_delete_and_filter():
    m = model()
    m.apply([deployment(i) for i in range(10)], [])
    ops = m.apply([], [("team-a", "model-0003")])
    assert ops.removed == [("team-a", "model-0003")]
    ops = m.set_filter(RowFilter.parse("0007"))
    assert set(m.shown) == {("team-a", "model-0007")}
    assert ops.rebuild is None and len(ops.removed) == 8
    ops = m.set_filter(RowFilter())
    assert len(m.shown) == 9 and len(ops.added) == 8


def test_mass_delete_becomes_one_rebuild():
    m = model()
    m.apply([deployment(i) for i in range(200)], [])
    ops = m.apply([], [("team-a", f"model-{i:04d}") for i in range(150)])
    assert ops.rebuild is not None and len(ops.rebuild) == 50


def test_upsert_that_stops_matching_filter_is_removed():
    m = model()
    m.set_filter(RowFilter.parse("", problems_only=True))
    d = deployment(1, rollout_state=RolloutState.STALLED)
    assert m.apply([d], []).added
    ops = m.apply([replace(d, rollout_state=RolloutState.COMPLETE)], [])
    assert ops.removed == [d.key] and not m.shown


def test_sort_order_and_reverse():
    m = model()
    m.apply([deployment(1, desired=3), deployment(2, desired=1), deployment(3, desired=2)], [])
    m.set_sort("name")
    assert [k[1] for k in m.ordered()] == ["model-0001", "model-0002", "model-0003"]
    m.set_sort("name")  # again: reverse
    assert [k[1] for k in m.ordered()] == ["model-0003", "model-0002", "model-0001"]


def test_marks_prefix_the_name_cell():
    m = model()
    d = deployment(1)
    m.apply([d], [])
    ops = m.toggle_marks([d.key])
    assert d.key in m.marked
    assert str(ops.updated[0][2]).startswith(MARK)


def test_ages_update_only_when_text_changes():
    clock = [NOW]
    m = TableModel(DEPLOYMENT_COLUMNS, now=lambda: clock[0])
    m.apply([deployment(1, created=NOW)], [])
    assert m.refresh_ages().is_empty()
    clock[0] = NOW.replace(minute=5)
    ops = m.refresh_ages()
    assert [(c, str(v)) for _, c, v, _ in ops.updated] == [("age", "5m")]


def test_human_age():
    assert human_age(NOW, NOW) == "0s"
    assert human_age(NOW.replace(hour=1), NOW) == "3h"


def test_probe_cell_shows_counts():
    m = model()
    d = deployment(1, probe_health=ProbeHealth.CRASHLOOP, restarts=7)
    _, cells = m.apply([d], []).added[0]
    assert str(cells[9]) == "crashloop(7)"


def test_schedule_clock_cells_refresh_on_the_age_timer():
    from datetime import timedelta

    from tests.tui.fakes import schedule
    from tui.columns import SCHEDULE_COLUMNS

    now = [NOW]
    m = TableModel(SCHEDULE_COLUMNS, now=lambda: now[0])
    s = schedule(1, next_run=NOW + timedelta(minutes=30))
    m.apply([s], [])
    cells = dict(zip([c.key for c in SCHEDULE_COLUMNS], m.shown[s.key], strict=True))
    assert (str(cells["next_run"]), str(cells["last_run"])) == ("in 30m", "60m ago")
    assert m.refresh_ages().is_empty()
    now[0] = NOW + timedelta(minutes=10)
    ops = m.refresh_ages()
    assert sorted((col, str(v)) for _, col, v, _ in ops.updated) == [
        ("last_run", "70m ago"), ("next_run", "in 20m"), ("promotion", "promoted 60m ago")]
    now[0] = NOW + timedelta(minutes=30, seconds=30)
    assert ("next_run", "now") in [(c, str(v)) for _, c, v, _ in m.refresh_ages().updated]
    now[0] = NOW + timedelta(minutes=45)
    assert ("next_run", "overdue 15m") in [(c, str(v)) for _, c, v, _ in m.refresh_ages().updated]


def test_job_progress_change_updates_only_progress_cells():
    from tests.tui.fakes import job, progress
    from tui.columns import JOB_COLUMNS

    m = TableModel(JOB_COLUMNS, now=lambda: NOW)
    j = job(1, progress=progress())
    m.apply([j], [])
    ops = m.apply([replace(j, progress=progress(epoch=4, value=0.94), resource_version="9")], [])
    assert [(col, str(v)) for _, col, v, _ in ops.updated] == [
        ("progress", "███░░░░░ 4/10"), ("metric", "accuracy 0.940")]
    assert not ops.added and not ops.removed


def test_job_cells_for_missing_stale_and_failed_progress():
    from datetime import timedelta

    from fleet.model import JobState
    from tests.tui.fakes import job, progress
    from tui.columns import JOB_COLUMNS, render_row

    def cells(j) -> dict[str, str]:
        return {c.key: str(v) for c, v in zip(JOB_COLUMNS, render_row(JOB_COLUMNS, j, NOW),
                                               strict=True)}

    bare = cells(job(1))
    assert (bare["phase"], bare["progress"], bare["metric"], bare["reason"]) == ("", "", "", "")
    stale = cells(job(2, progress=progress(updated=NOW - timedelta(minutes=7))))
    assert stale["phase"] == "training (7m ago)"
    fresh = cells(job(2, progress=progress(updated=NOW - timedelta(minutes=4))))
    assert fresh["phase"] == "training"
    failed = cells(job(3, state=JobState.FAILED, progress=progress(phase="failed"),
                       failure="x" * 100))
    assert failed["phase"] == "failed" and failed["reason"] == "x" * 47 + "…"
    assert failed["progress"] == "██░░░░░░ 3/10"


def test_plain_cells_stay_strings_and_bracketed_ones_are_literal_text():
    """Rows off screen cost no Rich Text (DataTable formats a str cell only when drawn); a
    change-cause with "[...]" must not be read as markup, so it is a Text."""
    from rich.text import Text

    from tui.columns import render_row

    rec = replace(deployment(1), change_cause="release [canary] v2")
    cells = dict(zip([c.key for c in DEPLOYMENT_COLUMNS], render_row(DEPLOYMENT_COLUMNS, rec, NOW),
                     strict=True))
    assert type(cells["name"]) is str and cells["name"] == "model-0001"
    assert isinstance(cells["cause"], Text) and cells["cause"].plain == "release [canary] v2"
    marked = render_row(DEPLOYMENT_COLUMNS, rec, NOW, marked=True)
    name_i = [c.key for c in DEPLOYMENT_COLUMNS].index("name")
    assert marked[name_i].plain == MARK + "model-0001"
