"""A virtual table over a `TableModel`: it draws only the lines on screen.

The widget keeps no per-row state: the model holds the records, the ordered keys and the
cells of rows drawn so far; the widget holds the cursor (a row index and the key under it)
and the strips of the lines it drew last. Filling or changing thousands of rows off screen
costs the model's order and filter, not rendering.

It looks and behaves like the `DataTable` it replaces (same component classes, so the
theme's table styles apply): sort by clicking a header (`HeaderSelected`), a row cursor
(`RowHighlighted`, `RowSelected` on Enter or on a click of the highlighted row), hover,
up/down/page up/page down/home/end, and the cursor stays on its key across re-sorts and
updates.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable

from tui.viewmodel.columns import Column
from tui.viewmodel.table import K, Key, TableModel, TableOps, key_of, row_id

CELL_PADDING = 1  # spaces each side of a cell, as DataTable
HEADER_HEIGHT = 1


class KeyedTable(ScrollView, Generic[K], can_focus=True):
    """A table over a `TableModel[K]`: the model owns records, filter, order and cells."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = set(DataTable.COMPONENT_CLASSES)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first_row", "First row", show=False),
        Binding("end,ctrl+end", "last_row", "Last row", show=False),
    ]
    # DataTable's look, for a virtual table
    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header { background-tint: $foreground 5%; }
        }
        &:dark > .datatable--even-row { background: $surface-darken-1 40%; }
        & > .datatable--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .datatable--header { background: ansi_bright_blue; color: ansi_default; }
        & > .datatable--even-row { background: $surface-lighten-1 50%; }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .datatable--header-hover { background: $accent 30%; }
        & > .datatable--hover { background: $block-hover-background; }
    }
    """

    class _FromTable(Message):
        """A message about this table: `control`/`data_table` name it, as DataTable's do."""

        def __init__(self, table: KeyedTable[Any]) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> KeyedTable[Any]:
            return self.table

        @property
        def data_table(self) -> KeyedTable[Any]:
            return self.table

    class _TableMessage(_FromTable):
        def __init__(self, table: KeyedTable[Any], cursor_row: int, key: Any) -> None:
            super().__init__(table)
            self.cursor_row = cursor_row
            self.key = key  # the model's row key

    class RowHighlighted(_TableMessage):
        """The cursor moved to another row (or another row came under it)."""

    class RowSelected(_TableMessage):
        """Enter on the cursor row, or a click on the highlighted row."""

    class HeaderSelected(_FromTable):
        """A click on a column's header."""

        def __init__(self, table: KeyedTable[Any], column_key: str, column_index: int) -> None:
            super().__init__(table)
            self.column_key = column_key
            self.column_index = column_index

    def __init__(self, model: TableModel[K], *, zebra_stripes: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.zebra_stripes = zebra_stripes
        self.applied_batches = 0
        self.cursor_row = 0
        self._cursor_key: K | None = None
        self._hover_row = -1
        self._scroll_pending = False
        self._show_hover = False
        self._widths: list[int] = []  # render widths, padding included
        self._width_version = -1
        self._strips: dict[K, tuple[tuple[Any, ...], Strip]] = {}
        self._state_styles: dict[tuple[Any, ...], tuple[Style, Style]] = {}
        self.lines_rendered = 0  # row lines built (not from the strip cache): tests

    # -- layout ------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._sync()

    def on_resize(self, _event: events.Resize) -> None:
        if self._scroll_pending:
            self._scroll_to_cursor()

    @property
    def row_count(self) -> int:
        return self.model.row_count

    def _layout(self) -> bool:
        """Column widths from the model (it measured every row); True when they changed."""
        model = self.model
        if model.width_version == self._width_version and self._widths:
            return False
        content = model.widths()
        widths = [(col.width if col.width is not None else w) + 2 * CELL_PADDING
                  for col, w in zip(model.columns, content, strict=True)]
        self._width_version = model.width_version
        if widths == self._widths:
            return False
        self._widths = widths
        self._strips.clear()
        return True

    def _sync(self, rebuilt: bool = False, first: K | None = None) -> None:
        """After the rows changed: widths, virtual size, the cursor back on its key."""
        self._layout()
        self.virtual_size = Size(sum(self._widths), self.model.row_count + HEADER_HEIGHT)
        self._follow_cursor(rebuilt, first)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._state_styles.clear()
        self._strips.clear()

    # -- queries -------------------------------------------------------------------
    def cursor_key(self) -> K | None:
        model = self.model
        if not 0 <= self.cursor_row < model.row_count:
            return None
        return model.key_at(self.cursor_row)

    # row ids: how a key is written (tests, logs): the subclasses say
    def row_id(self, key: K) -> str:
        return str(key)

    def key_of(self, rid: str) -> K:
        raise NotImplementedError

    def get_cell(self, row: K | str, column: str) -> str | Text:
        """The cell `column` of a shown row (a key, or its `row_id`) as the table draws it."""
        key = self.key_of(row) if isinstance(row, str) else row
        if key not in self.model.shown:
            raise LookupError(f"no row {row!r} in the table")
        cells = self.model.cells(key)
        return cells[[c.key for c in self.model.columns].index(column)]

    def header_label(self, col: Column) -> str:
        if col.key != self.model.sort_column:
            return col.label
        return col.label + ("↓" if self.model.reverse else "↑")

    def header_labels(self) -> list[str]:
        return [self.header_label(c) for c in self.model.columns]

    def visible_rows(self) -> range:
        top = int(self.scroll_y)
        height = max(0, self.scrollable_content_region.height - HEADER_HEIGHT)
        return range(top, min(self.model.row_count, top + height))

    # -- cursor ----------------------------------------------------------------------
    def move_cursor(self, *, row: int | None = None, animate: bool = False,
                    scroll: bool = True) -> None:
        if row is not None:
            self._set_cursor(row, scroll=scroll, animate=animate)

    def move_to(self, key: K) -> bool:
        row = self.model.index_of(key)
        if row is None:  # row not shown (filtered out or gone)
            return False
        self._set_cursor(row)
        return True

    def _set_cursor(self, row: int, scroll: bool = True, animate: bool = False) -> None:
        n = self.model.row_count
        row = max(0, min(row, n - 1)) if n else 0
        old_row, old_key = self.cursor_row, self._cursor_key
        self.cursor_row = row
        self._cursor_key = self.model.key_at(row) if n else None
        if row != old_row:
            self._refresh_row(old_row)
            self._refresh_row(row)
        if scroll:
            self._scroll_to_cursor(animate)
        if n and (row != old_row or self._cursor_key != old_key):
            self.post_message(self.RowHighlighted(self, row, self._cursor_key))

    def _follow_cursor(self, rebuilt: bool = False, first: K | None = None) -> None:
        """Keep the cursor on its key when rows moved. When its row went: the same line, or
        the first after a rebuild (as DataTable, which clears and refills)."""
        key = self._cursor_key if first is None else first
        row = self.model.index_of(key) if key is not None else None
        if row is None:
            row = 0 if rebuilt else self.cursor_row
        self._set_cursor(row)

    def _scroll_to_cursor(self, animate: bool = False) -> None:
        height = self.scrollable_content_region.height - HEADER_HEIGHT
        if height <= 0:  # not laid out (or hidden): scroll when it gets a size
            self._scroll_pending = True
            return
        self._scroll_pending = False
        top, row = int(self.scroll_y), self.cursor_row
        if row < top:
            self.scroll_to(y=row, animate=animate, force=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=animate, force=True)

    def action_cursor_up(self) -> None:
        self._show_hover = False
        self._set_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._show_hover = False
        self._set_cursor(self.cursor_row + 1)

    def action_page_down(self) -> None:
        self._show_hover = False
        page = max(1, self.scrollable_content_region.height - HEADER_HEIGHT)
        self.scroll_to(y=self.scroll_y + page, animate=False, force=True, immediate=True)
        self._set_cursor(self.cursor_row + page)

    def action_page_up(self) -> None:
        self._show_hover = False
        page = max(1, self.scrollable_content_region.height - HEADER_HEIGHT)
        self.scroll_to(y=max(0, self.scroll_y - page), animate=False, force=True,
                       immediate=True)
        self._set_cursor(self.cursor_row - page)

    def action_first_row(self) -> None:
        self._show_hover = False
        self._set_cursor(0)

    def action_last_row(self) -> None:
        self._show_hover = False
        self._set_cursor(self.model.row_count - 1)

    def action_select_cursor(self) -> None:
        self._show_hover = False
        key = self.cursor_key()
        if key is not None:
            self.post_message(self.RowSelected(self, self.cursor_row, key))

    # -- mouse -----------------------------------------------------------------------
    def _row_at(self, y: int) -> int | None:
        """The row under content line `y`; -1 for the header; None below the rows."""
        if y < HEADER_HEIGHT:
            return -1
        row = int(self.scroll_y) + y - HEADER_HEIGHT
        return row if row < self.model.row_count else None

    def _column_at(self, x: int) -> int | None:
        x += int(self.scroll_x)
        for i, width in enumerate(self._widths):
            if x < width:
                return i
            x -= width
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        row = self._row_at(offset.y) if offset is not None else None
        self._set_hover(-2 if row is None else row)

    def on_leave(self, _event: events.Leave) -> None:
        self._set_hover(-2)

    def _set_hover(self, row: int) -> None:
        old, self._hover_row, self._show_hover = self._hover_row, row, row >= 0
        if old != row:
            self._refresh_row(old)
            self._refresh_row(row)

    async def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = self._row_at(offset.y)
        if row == -1:
            col = self._column_at(offset.x)
            if col is not None:
                self.post_message(self.HeaderSelected(self, self.model.columns[col].key, col))
            return
        if row is None:
            return
        if row == self.cursor_row:
            self.action_select_cursor()
        else:
            self._set_cursor(row)
        event.stop()

    # -- changes -----------------------------------------------------------------------
    def apply(self, ops: TableOps[K]) -> None:
        """Apply one batch: rows that came, went or moved repaint the lines on screen; a
        changed cell repaints its line only when that row is on screen."""
        if ops.is_empty():
            return
        self.applied_batches += 1
        if ops.reorders() or ops.widened or any(widen for *_, widen in ops.updated):
            if ops.reorders():
                self._strips.clear()
            for key, *_ in ops.updated:
                self._strips.pop(key, None)
            # an empty table's cursor goes to the first row received, wherever it sorts (as
            # DataTable, which appends, then sorts keeping the cursor's row)
            first = ops.added[0] if self._cursor_key is None and ops.added else None
            self._sync(rebuilt=ops.rebuild is not None, first=first)
            self.refresh()
            return
        model, visible = self.model, self.visible_rows()
        for key in dict.fromkeys(key for key, *_ in ops.updated):
            self._strips.pop(key, None)
            row = model.index_of(key)
            if row is not None and row in visible:
                self._refresh_row(row)

    def resort(self) -> None:
        """The model's order changed (a new sort column or direction): redraw, and keep the
        cursor on its key."""
        self._strips.clear()
        self._sync()
        self.refresh()

    def set_model(self, model: TableModel[K]) -> None:
        """Another model (new columns): the cursor stays on its key if the new one has it."""
        self.model = model
        self._widths = []
        self._width_version = -1
        self._strips.clear()
        self._sync()
        self.refresh()

    def _refresh_row(self, row: int) -> None:
        """Repaint one row's line if it is on screen (-1: the header)."""
        if row == -1:
            self.refresh_line(int(self.scroll_y))  # the header is fixed: the first line
        elif row in self.visible_rows():
            self.refresh_line(row + HEADER_HEIGHT)

    # -- rendering ---------------------------------------------------------------------
    def render_lines(self, crop: Any) -> list[Strip]:
        """Cells for the rows on screen first: a cell wider than its column so far (a clock
        cell that grew) widens it before any line is drawn."""
        model = self.model
        rows = self.visible_rows()
        for row in rows:
            model.cells(model.key_at(row))
        if self._layout():
            self.virtual_size = Size(sum(self._widths), model.row_count + HEADER_HEIGHT)
        if len(self._strips) > 4 * max(len(rows), 16):
            keep = {model.key_at(r) for r in rows}
            self._strips = {k: v for k, v in self._strips.items() if k in keep}
            model.forget_cells(keep)
        return super().render_lines(crop)

    def _styles(self, header: bool, cursor: bool, hover: bool) -> tuple[Style, Style]:
        """DataTable's cursor and hover styles: (under the cells, over the cells)."""
        cache_key = (header, cursor, hover, self.has_focus)
        found = self._state_styles.get(cache_key)
        if found is not None:
            return found
        get = self.get_component_rich_style
        style = Style()
        if hover:
            style += get("datatable--hover")
            if header:
                style += get("datatable--header-hover")
        if cursor:
            style += get("datatable--cursor")
            if header:
                style += get("datatable--header-cursor")
        post = Style.from_color(color=style.color, bgcolor=style.bgcolor)
        self._state_styles[cache_key] = (style, post)
        return style, post

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = int(self.scroll_x)
        base = self.rich_style
        if y < HEADER_HEIGHT:
            header = self.get_component_rich_style("datatable--header")
            labels = [Text(label) for label in self.header_labels()]
            strip = self._line(labels, header, Style(), Style(), width)
        else:
            row = int(self.scroll_y) + y - HEADER_HEIGHT
            model = self.model
            if row >= model.row_count:
                return Strip.blank(width, base)
            key = model.key_at(row)
            cursor = row == self.cursor_row
            hover = self._show_hover and row == self._hover_row
            zebra = self.zebra_stripes and row % 2
            state = (cursor, hover, zebra, width, self.has_focus)
            cached = self._strips.get(key)
            if cached is not None and cached[0] == state:
                strip = cached[1]
            else:
                row_style = base
                if self.zebra_stripes:
                    row_style = self.get_component_rich_style(
                        "datatable--odd-row" if row % 2 else "datatable--even-row")
                pre, post = self._styles(False, cursor, hover)
                cells = [v if isinstance(v, Text) else Text(v) for v in model.cells(key)]
                strip = self._line(cells, row_style, pre, post, width)
                self._strips[key] = (state, strip)
                self.lines_rendered += 1
        return strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, base).simplify()

    def _line(self, cells: list[Text], row_style: Style, pre: Style, post: Style,
              width: int) -> Strip:
        """One table line: each cell cropped and padded to its column, then the rest of the
        widget's width in the row's style."""
        console = self.app.console
        under = row_style + pre
        segments: list[Segment] = []
        pad = " " * CELL_PADDING
        for text, col_width in zip(cells, self._widths, strict=False):
            inner = col_width - 2 * CELL_PADDING
            cell = text.copy()
            cell.truncate(inner, pad=True)
            segments.append(Segment(pad, under + post))
            segments.extend(Segment.apply_style(cell.render(console), under, post))
            segments.append(Segment(pad, under + post))
        rest = max(0, width - sum(self._widths))
        if rest:
            segments.append(Segment(" " * rest, under + post))
        return Strip(segments, sum(self._widths) + rest)


class FleetTable(KeyedTable[Key]):
    """Rows keyed (namespace, name): Deployments, Jobs, CronJobs, sweeps."""

    def row_id(self, key: Key) -> str:
        return row_id(key)

    def key_of(self, rid: str) -> Key:
        return key_of(rid)


class TrialTable(KeyedTable[int]):
    """A sweep's trials, keyed by trial number."""

    def key_of(self, rid: str) -> int:
        return int(rid)
