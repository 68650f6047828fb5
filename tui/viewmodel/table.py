"""The table view model: records, filter, sort, marks and the cell diff (no Textual).

Each change from the watch cache becomes a `TableOps`: rows that came, went or moved, and the
changed cells of rows the widget has drawn. The widget draws only the rows on screen, asking
the model for their cells, so rows off screen cost their order and filter only.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from rich.cells import cell_len
from rich.text import Text

from tui.viewmodel.columns import MARK, Column, as_cell, render_row, utcnow
from tui.viewmodel.filtering import RowFilter

Key = tuple[str, str]
Cells = tuple[str | Text, ...]
# a row's key: (namespace, name) for Kubernetes objects, the trial number in a sweep's table
K = TypeVar("K", bound=Hashable)


def row_id(key: Key) -> str:
    return f"{key[0]}/{key[1]}"


def key_of(row_id_: str) -> Key:
    ns, _, name = row_id_.partition("/")
    return (ns, name)


@dataclass
class TableOps(Generic[K]):
    """What the widget must repaint. The widget draws rows from the model, so operations
    carry keys, plus the changed cells of rows it has drawn; `rebuild`: everything changed
    (the ordered keys)."""

    rebuild: list[K] | None = None
    removed: list[K] = field(default_factory=list)
    added: list[K] = field(default_factory=list)
    updated: list[tuple[K, str, str | Text, bool]] = field(default_factory=list)
    resort: bool = False  # the order changed
    widened: bool = False  # a column grew (rows not drawn yet were measured)

    def is_empty(self) -> bool:
        return not (self.rebuild is not None or self.removed or self.added or self.updated
                    or self.resort or self.widened)

    def reorders(self) -> bool:
        """Rows moved, came or went: every line on screen may show another row."""
        return bool(self.rebuild is not None or self.removed or self.added or self.resort)


def cell_width(value: str | Text) -> int:
    text = value.plain if isinstance(value, Text) else value
    return len(text) if text.isascii() else cell_len(text)  # one cell per ASCII char


class TableModel(Generic[K]):
    """Every record (keyed by `K`), the keys shown (filter) in order (sort), and the cells
    of the rows drawn so far.

    Cells are rendered lazily (`cells`), when the widget draws a row; only the columns sized
    to their content are measured for every row, so the table's cost per row is the order and
    the filter. The order is kept incrementally: ascending by a cached sort key (each key
    ends with the row key, so there are no ties), read backwards when `reverse`.
    """

    def __init__(
        self,
        columns: tuple[Column, ...],
        now: Callable[[], datetime] = utcnow,
        sort_column: str = "namespace",
    ) -> None:
        self.columns = columns
        self._now = now
        self.records: dict[K, Any] = {}
        self.shown: set[K] = set()
        self.marked: set[K] = set()
        self.filter = RowFilter()
        self.sort_column = sort_column
        self.reverse = False
        self._col_index = {c.key: i for i, c in enumerate(columns)}
        self._name_i = self._col_index.get("name")
        self._auto = [i for i, c in enumerate(columns) if c.width is None]
        self._widths = [len(c.label) for c in columns]
        self.width_version = 0  # bumped whenever a column grows
        self._cells: dict[K, Cells] = {}
        self._asc: list[K] = []
        self._skeys: dict[K, tuple[Any, K]] = {}
        self.rendered_rows = 0  # rows whose cells were rendered (tests, benchmark)

    # -- queries -------------------------------------------------------------------
    def sort_key(self, key: K) -> tuple[Any, K]:
        col = self.columns[self._col_index[self.sort_column]]
        return (col.sort(self.records[key]), key)

    @property
    def row_count(self) -> int:
        """Rows shown (a model is never falsy: callers write `model or TableModel(...)`)."""
        return len(self._asc)

    def ordered(self) -> list[K]:
        return self._asc[::-1] if self.reverse else list(self._asc)

    def key_at(self, row: int) -> K:
        return self._asc[len(self._asc) - 1 - row] if self.reverse else self._asc[row]

    def index_of(self, key: K) -> int | None:
        """The row of `key`, None when not shown (O(log n))."""
        skey = self._skeys.get(key)
        if skey is None:
            return None
        i = bisect_left(self._asc, skey, key=self._skeys.__getitem__)
        if i >= len(self._asc) or self._asc[i] != key:
            return None
        return len(self._asc) - 1 - i if self.reverse else i

    def cells(self, key: K) -> Cells:
        """The rendered cells of a shown row (cached until the record or its mark changes)."""
        cells = self._cells.get(key)
        if cells is None:
            cells = self._cells[key] = self._render(key, self._now())
            self.rendered_rows += 1
            if self._track(cells):
                self.width_version += 1
        return cells

    def cached(self, key: K) -> bool:
        return key in self._cells

    def forget_cells(self, keep: Iterable[K]) -> None:
        """Drop the cells of rows no longer drawn (the widget keeps those on screen)."""
        self._cells = {k: self._cells[k] for k in keep if k in self._cells}

    def _render(self, key: K, now: datetime) -> Cells:
        return render_row(self.columns, self.records[key], now, key in self.marked)

    def widths(self) -> list[int]:
        """The widest cell of each column so far (never shrinks)."""
        return list(self._widths)

    def _widens(self, i: int, value: str | Text) -> bool:
        width = cell_width(value)
        if width > self._widths[i]:
            self._widths[i] = width
            return True
        return False

    def _track(self, cells: Cells) -> bool:
        grew = False
        for i, value in enumerate(cells):
            grew = self._widens(i, value) or grew
        return grew

    def _measure(self, key: K, rec: Any, now: datetime) -> bool:
        """Widen the columns sized to content for a row not drawn (its other cells are not
        rendered)."""
        grew = False
        widths, columns = self._widths, self.columns
        for i in self._auto:
            width = cell_width(columns[i].cell(rec, now))  # as_cell: the same width
            if i == self._name_i and key in self.marked:
                width += len(MARK)
            if width > widths[i]:
                widths[i] = width
                grew = True
        if grew:
            self.width_version += 1
        return grew

    # -- order -------------------------------------------------------------------------
    def _place(self, gone: Iterable[K], come: Iterable[K]) -> bool:
        """Update the order for rows that left (or moved: old sort key) and rows that came
        (or moved): a bisection each for a few, one sort for many."""
        skeys, asc = self._skeys, self._asc
        leaving = [k for k in dict.fromkeys(gone) if k in skeys]
        coming = [k for k in dict.fromkeys(come) if k in self.shown]
        if not leaving and not coming:
            return False
        sort, records = self._sort_value(), self.records
        if (len(leaving) + len(coming)) * 16 > len(asc) + 64:
            for k in leaving:
                del skeys[k]
            for k in coming:
                skeys[k] = (sort(records[k]), k)
            self._asc = sorted(self.shown, key=skeys.__getitem__)
            return True
        get = skeys.__getitem__
        for k in leaving:
            del asc[bisect_left(asc, skeys[k], key=get)]
            del skeys[k]
        for k in coming:
            skeys[k] = (sort(records[k]), k)
            insort(asc, k, key=get)
        return True

    def _sort_value(self) -> Callable[[Any], Any]:
        return self.columns[self._col_index[self.sort_column]].sort

    def _resort_all(self) -> None:
        sort, records = self._sort_value(), self.records
        self._skeys = {k: (sort(records[k]), k) for k in self.shown}
        self._asc = sorted(self.shown, key=self._skeys.__getitem__)

    # -- mutations ------------------------------------------------------------------
    def prerender(self, records: Iterable[Any]) -> dict[K, tuple[Cells, tuple[int, ...]]]:
        """Cells and their widths for `records`, unmarked, for `apply(..., rendered=)`. Reads
        only the columns and the clock, so a worker thread may call it: the UI thread then
        only compares and applies."""
        now = self._now()
        out: dict[K, tuple[Cells, tuple[int, ...]]] = {}
        for rec in records:
            cells = render_row(self.columns, rec, now)
            out[rec.key] = (cells, tuple(cell_width(c) for c in cells))
        return out

    def _hide(self, key: K, ops: TableOps[K], gone: list[K]) -> None:
        self.shown.discard(key)
        self._cells.pop(key, None)
        ops.removed.append(key)
        gone.append(key)

    def apply(self, upserts: Iterable[Any], deletes: Iterable[K],
              rendered: dict[K, tuple[Cells, tuple[int, ...]]] | None = None) -> TableOps[K]:
        """Merge a batch of watch changes and return what the widget must repaint: the
        changed cells of rows it has drawn, and whether rows came, went or moved.
        `rendered`: cells from `prerender` (used for unmarked rows)."""
        ops: TableOps[K] = TableOps()
        now = self._now()
        gone: list[K] = []
        come: list[K] = []
        sort, skeys = self._sort_value(), self._skeys
        for key in deletes:
            self.records.pop(key, None)
            self.marked.discard(key)
            if key in self.shown:
                self._hide(key, ops, gone)
        for rec in upserts:
            key = rec.key
            self.records[key] = rec
            if not self.filter.matches(rec):
                if key in self.shown:
                    self._hide(key, ops, gone)
                continue
            pre = rendered.get(key) if rendered is not None and key not in self.marked \
                else None
            if key not in self.shown:
                self.shown.add(key)
                ops.added.append(key)
                come.append(key)
                if pre is not None:
                    self._cells[key] = pre[0]
                    if self._track(pre[0]):
                        self.width_version += 1
                        ops.widened = True
                elif self._measure(key, rec, now):
                    ops.widened = True
                continue
            if (sort(rec), key) != skeys.get(key):
                gone.append(key)
                come.append(key)
            old = self._cells.get(key)
            if old is None:  # never drawn: nothing on screen to compare
                if self._measure(key, rec, now):
                    ops.widened = True
                continue
            cells = self._render(key, now) if pre is None else pre[0]
            self._cells[key] = cells
            for i, (a, b) in enumerate(zip(old, cells, strict=True)):
                if a != b:
                    widen = self._widens(i, b)
                    if widen:
                        self.width_version += 1
                    ops.updated.append((key, self.columns[i].key, b, widen))
        ops.resort = self._place(gone, come)
        return self._maybe_rebuild(ops)

    def _maybe_rebuild(self, ops: TableOps[K]) -> TableOps[K]:
        """Many removals: say "everything changed" rather than list them."""
        if len(ops.removed) > 50 and len(ops.removed) * 2 > len(self.shown) + len(ops.removed):
            return self.full()
        return ops

    def full(self) -> TableOps[K]:
        return TableOps(rebuild=self.ordered())

    def set_filter(self, flt: RowFilter) -> TableOps[K]:
        self.filter = flt
        now = self._now()
        ops: TableOps[K] = TableOps()
        gone: list[K] = []
        come: list[K] = []
        for key, rec in self.records.items():
            want = flt.matches(rec)
            have = key in self.shown
            if want and not have:
                self.shown.add(key)
                ops.added.append(key)
                come.append(key)
                if self._measure(key, rec, now):
                    ops.widened = True
            elif have and not want:
                self._hide(key, ops, gone)
        ops.resort = self._place(gone, come)
        if len(ops.removed) > 20:
            return self.full()
        return ops

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        """Sort by `column` (again: reverse). Reversing is free; another column sorts once."""
        if reverse is None:
            reverse = not self.reverse if column == self.sort_column else False
        changed = column != self.sort_column
        self.sort_column = column
        self.reverse = reverse
        if changed:
            self._resort_all()

    def refresh_ages(self) -> TableOps[K]:
        """Cells that depend on the clock (ages, next runs) whose text changed, in the rows
        drawn (called on a slow timer; the others are rendered when drawn)."""
        ops: TableOps[K] = TableOps()
        now = self._now()
        timed = [i for i, c in enumerate(self.columns) if c.key == "age" or c.timed]
        if not timed:
            return ops
        for key, cells in list(self._cells.items()):
            new = cells
            for i in timed:
                col = self.columns[i]
                value = as_cell(col.cell(self.records[key], now))
                if value != new[i]:
                    new = (*new[:i], value, *new[i + 1 :])
                    widen = self._widens(i, value)
                    if widen:
                        self.width_version += 1
                    ops.updated.append((key, col.key, value, widen))
            if new is not cells:
                self._cells[key] = new
        return ops

    def toggle_marks(self, keys: Iterable[K], on: bool | None = None) -> TableOps[K]:
        ops: TableOps[K] = TableOps()
        now = self._now()
        name_i = self._col_index["name"]
        for key in keys:
            if key not in self.records:
                continue
            want = (key not in self.marked) if on is None else on
            if want == (key in self.marked):
                continue
            if want:
                self.marked.add(key)
            else:
                self.marked.discard(key)
            if key not in self.shown:
                continue
            if key in self._cells:
                cells = self._render(key, now)
                self._cells[key] = cells
                value = cells[name_i]
                widen = self._widens(name_i, value)
                if widen:
                    self.width_version += 1
                ops.updated.append((key, "name", value, widen))
            elif want and self._measure(key, self.records[key], now):
                ops.widened = True
        return ops
