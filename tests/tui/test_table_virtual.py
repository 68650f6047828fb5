"""The virtual table: only rows on screen are rendered, the cursor follows its key, and the
DataTable behaviours the screens rely on (header click sorts, Enter/click select, keys) hold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fleet.events import FleetChange
from tests.tui.fakes import NOW, FakeBackend, deployment
from tests.tui.waiting import settle
from tui.app import FleetApp
from tui.screens.detail import DeploymentScreen
from tui.viewmodel.columns import MARK

SIZE = (200, 50)
pytestmark = pytest.mark.asyncio


def make_app(n: int) -> tuple[FleetApp, FakeBackend]:
    fb = FakeBackend([deployment(i, ns=f"team-{i % 5}") for i in range(n)])
    return FleetApp(lambda ctx, ns: fb, age_refresh_s=0, clock=lambda: NOW), fb


def screen_names(table) -> list[str]:
    """The NAME column of the lines the table draws now (what the compositor gets)."""
    names = []
    for y in range(1, table.size.height):
        text = table.render_line(y).text.split()
        if text:
            names.append(text[1])
    return names


async def test_rendering_touches_only_the_rows_on_screen():
    counts = {}
    for n in (100, 5000):
        app, _ = make_app(n)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = app.main.query_one("#dep-table")
            assert table.row_count == n
            height = table.size.height - 1  # the header is one line
            counts[n] = (table.model.rendered_rows, table.lines_rendered)
            assert 0 < table.model.rendered_rows <= height
            assert table.lines_rendered <= 2 * height  # a line may be drawn again (cursor)
            shown = [table.model.key_at(i)[1] for i in table.visible_rows()]
            assert screen_names(table) == shown
    assert counts[100] == counts[5000]  # 50x the rows, the same rendering


async def test_scrolling_renders_the_rows_that_come_into_view():
    app, _ = make_app(3000)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        await pilot.press("home")
        before = table.model.rendered_rows
        page = table.size.height - 1
        await pilot.press("pagedown")
        await pilot.pause()
        assert table.cursor_row == page
        assert table.scroll_y == page
        assert table.model.rendered_rows - before == page  # exactly the new rows
        assert screen_names(table)[0] == table.model.key_at(page)[1]
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == 2999 and table.cursor_key() == table.model.key_at(2999)
        assert screen_names(table)[-1] == table.model.key_at(2999)[1]
        await pilot.press("pageup", "up")
        assert table.cursor_row == 2999 - page - 1
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_y == 0


async def test_off_screen_changes_repaint_nothing_and_a_visible_one_repaints_one_line():
    app, fb = make_app(2000)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        model = table.model
        hidden = model.key_at(1500)
        lines, batches = table.lines_rendered, table.applied_batches
        fb.update(hidden, ready=0)  # same namespace and name: it does not move
        await settle(pilot)
        assert table.lines_rendered == lines and not model.cached(hidden)
        assert table.applied_batches == batches  # nothing on screen changed
        assert str(table.get_cell(hidden, "ready")) == "0/2"  # drawn fresh when asked
        shown = model.key_at(3)
        fb.update(shown, ready=1)
        await settle(pilot)
        assert table.lines_rendered == lines + 1
        assert "1/2" in table.render_line(1 + 3).text


async def test_cursor_stays_on_its_key_across_resorts_and_moves():
    app, fb = make_app(1000)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        key = ("team-3", "model-0513")
        assert table.move_to(key)
        app.main.sort_by("age")
        await pilot.pause()
        assert table.cursor_key() == key
        assert table.cursor_row == table.model.index_of(key)
        assert table.cursor_row in table.visible_rows()  # scrolled to it
        assert table.header_labels()[10] == "AGE↑"
        app.main.sort_by("age")  # again: reversed
        await pilot.pause()
        assert table.cursor_key() == key and table.header_labels()[10] == "AGE↓"
        # a change that moves the cursor's row keeps the cursor on it
        app.main.sort_by("ready")
        row = table.cursor_row
        fb.update(key, ready=0)
        await settle(pilot)
        assert table.cursor_key() == key and table.cursor_row != row
        # rows sorted in above the cursor: still on the same key
        fb.emit(FleetChange(deployments_upserted=[
            deployment(5000 + i, ns="team-0", ready=0) for i in range(30)]))
        await settle(pilot)
        assert table.cursor_key() == key


async def test_header_click_sorts_and_clicks_select():
    app, _ = make_app(50)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        x = table._widths[0] + 2  # inside the NAME header
        assert await pilot.click("#dep-table", offset=(x, 0))
        assert app.main.deployments.sort_column == "name"
        assert table.header_labels()[1] == "NAME↑"
        first = table.model.key_at(0)
        assert first == min(table.model.shown, key=lambda k: k[1])
        assert await pilot.click("#dep-table", offset=(x, 3))  # the third row
        assert table.cursor_row == 2 and app.screen is app.main
        assert await pilot.click("#dep-table", offset=(x, 3))  # again: selected
        await settle(pilot)
        assert isinstance(app.screen, DeploymentScreen)


async def test_marks_redraw_the_marked_row():
    app, _ = make_app(20)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        key = table.cursor_key()
        await pilot.press("space")
        await pilot.pause()
        assert key in app.main.deployments.marked and table.cursor_row == 1
        assert str(table.get_cell(key, "name")).startswith(MARK)
        assert MARK.strip() in table.render_line(1).text


async def test_deleting_the_cursor_row_keeps_the_cursor_on_its_line():
    app, fb = make_app(30)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.query_one("#dep-table")
        table.move_cursor(row=5)
        gone, following = table.model.key_at(5), table.model.key_at(6)
        fb.emit(FleetChange(deployments_deleted=[gone]))
        await settle(pilot)
        assert table.cursor_row == 5 and table.cursor_key() == following
        rec = replace(fb.records[following], ready=0)
        fb.emit(FleetChange(deployments_upserted=[rec]))
        await settle(pilot)
        assert table.cursor_key() == following
