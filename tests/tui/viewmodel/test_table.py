"""Pure view-model logic: cell diffs, filter, sort, marks (no Textual, no cluster)."""

from __future__ import annotations

from dataclasses import replace

from fleet.model import ProbeHealth, RolloutState
from tests.tui.fakes import NOW, deployment
from tui.viewmodel.columns import DEPLOYMENT_COLUMNS, MARK, human_age
from tui.viewmodel.filtering import RowFilter
from tui.viewmodel.table import TableModel


def model() -> TableModel:
    return TableModel(DEPLOYMENT_COLUMNS, now=lambda: NOW)


def test_first_batch_adds_rows_and_unchanged_upsert_is_a_no_op():
    m = model()
    deps = [deployment(i) for i in range(5)]
    ops = m.apply(deps, [])
    assert ops.added == [d.key for d in deps]
    assert m.apply(deps, []).is_empty()


def test_changed_record_updates_only_changed_cells():
    m = model()
    d = deployment(1)
    m.apply([d], [])
    m.cells(d.key)  # the widget drew the row
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
    m.cells(d.key)
    ops = m.toggle_marks([d.key])
    assert d.key in m.marked
    assert str(ops.updated[0][2]).startswith(MARK)


def test_ages_update_only_when_text_changes():
    clock = [NOW]
    m = TableModel(DEPLOYMENT_COLUMNS, now=lambda: clock[0])
    m.apply([deployment(1, created=NOW)], [])
    m.cells(deployment(1).key)
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
    m.apply([d], [])
    cells = m.cells(d.key)
    assert str(cells[9]) == "crashloop(7)"


def test_schedule_clock_cells_refresh_on_the_age_timer():
    from datetime import timedelta

    from tests.tui.fakes import schedule
    from tui.viewmodel.columns import SCHEDULE_COLUMNS

    now = [NOW]
    m = TableModel(SCHEDULE_COLUMNS, now=lambda: now[0])
    s = schedule(1, next_run=NOW + timedelta(minutes=30))
    m.apply([s], [])
    cells = dict(zip([c.key for c in SCHEDULE_COLUMNS], m.cells(s.key), strict=True))
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
    from tui.viewmodel.columns import JOB_COLUMNS

    m = TableModel(JOB_COLUMNS, now=lambda: NOW)
    j = job(1, progress=progress())
    m.apply([j], [])
    m.cells(j.key)
    ops = m.apply([replace(j, progress=progress(epoch=4, value=0.94), resource_version="9")], [])
    assert [(col, str(v)) for _, col, v, _ in ops.updated] == [
        ("progress", "███░░░░░ 4/10"), ("metric", "accuracy 0.940")]
    assert not ops.added and not ops.removed


def test_job_cells_for_missing_stale_and_failed_progress():
    from datetime import timedelta

    from fleet.model import JobState
    from tests.tui.fakes import job, progress
    from tui.viewmodel.columns import JOB_COLUMNS, render_row

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
    """Rows off screen cost no Rich Text (the table makes one only for a row drawn); a
    change-cause with "[...]" must not be read as markup, so it is a Text."""
    from rich.text import Text

    from tui.viewmodel.columns import render_row

    rec = replace(deployment(1), change_cause="release [canary] v2")
    cells = dict(zip([c.key for c in DEPLOYMENT_COLUMNS], render_row(DEPLOYMENT_COLUMNS, rec, NOW),
                     strict=True))
    assert type(cells["name"]) is str and cells["name"] == "model-0001"
    assert isinstance(cells["cause"], Text) and cells["cause"].plain == "release [canary] v2"
    marked = render_row(DEPLOYMENT_COLUMNS, rec, NOW, marked=True)
    name_i = [c.key for c in DEPLOYMENT_COLUMNS].index("name")
    assert marked[name_i].plain == MARK + "model-0001"


# --- the virtual table's model: cells only for rows drawn, order kept incrementally ------------

def test_rows_not_drawn_are_not_rendered_but_are_measured_and_fresh_when_drawn():
    m = model()
    deps = [deployment(i) for i in range(1000)]
    deps[700] = replace(deps[700], name="a-much-longer-deployment-name-than-the-others")
    ops = m.apply(deps, [])
    assert m.rendered_rows == 0 and len(ops.added) == 1000
    name_i = [c.key for c in DEPLOYMENT_COLUMNS].index("name")
    assert m.widths()[name_i] == len(deps[700].name)  # measured without rendering the row
    ops = m.apply([replace(deps[3], ready=0)], [])
    assert not ops.updated  # not on screen: nothing to repaint
    assert str(m.cells(deps[3].key)[5]) == "0/2" and m.rendered_rows == 1


def test_a_drawn_row_that_changes_is_diffed_an_undrawn_one_is_not():
    m = model()
    a, b = deployment(1), deployment(2)
    m.apply([a, b], [])
    m.cells(a.key)
    ops = m.apply([replace(a, ready=0), replace(b, ready=0)], [])
    assert [(k, col) for k, col, _, _ in ops.updated] == [(a.key, "ready")]


def test_incremental_order_matches_a_full_sort():
    import random

    rng = random.Random(7)
    m = model()
    live: dict = {}
    for step in range(300):
        action = rng.random()
        if action < 0.6:  # a few upserts, some moving in the order
            recs = [deployment(rng.randrange(400), desired=rng.randrange(5),
                               ns=rng.choice(("a", "b", "c"))) for _ in range(rng.randrange(1, 6))]
            m.apply(recs, [])
            live.update({r.key: r for r in recs})
        elif action < 0.8 and live:
            gone = rng.sample(sorted(live), min(len(live), rng.randrange(1, 4)))
            m.apply([], gone)
            for k in gone:
                live.pop(k)
        elif action < 0.9:
            m.set_sort(rng.choice(("namespace", "name", "ready", "age")))
        else:
            m.set_filter(RowFilter.parse(rng.choice(("", "00", "1"))))
        if step % 50 == 0:  # now and then a big batch (one sort rather than bisections)
            recs = [deployment(rng.randrange(400), desired=rng.randrange(5)) for _ in range(120)]
            m.apply(recs, [])
            live.update({r.key: r for r in recs})
        want = sorted((k for k in live if m.filter.matches(live[k])), key=m.sort_key,
                      reverse=m.reverse)
        assert m.ordered() == want, step
        assert m.row_count == len(want)
        for i in (0, len(want) // 2, len(want) - 1) if want else ():
            assert m.key_at(i) == want[i] and m.index_of(want[i]) == i
    assert m.index_of(("nowhere", "nothing")) is None


def test_reversing_is_free_and_keeps_the_order_backwards():
    m = model()
    m.apply([deployment(i) for i in range(50)], [])
    m.set_sort("name")
    before = m.ordered()
    m.set_sort("name")
    assert m.reverse and m.ordered() == before[::-1] and m.key_at(0) == before[-1]
    assert m.index_of(before[0]) == 49
