"""The table view model: records, filter, sort, marks and the cell diff (no Textual).

Each change from the watch cache becomes a `TableOps`: rows to add, remove, and single
cells to update. The widget applies it in one batch, so only changed cells repaint.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from rich.cells import cell_len
from rich.text import Text

from tui.columns import Column, as_cell, render_row, utcnow
from tui.filtering import RowFilter

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
    """What the widget must do; `rebuild` (ordered rows) replaces everything else."""

    rebuild: list[tuple[K, Cells]] | None = None
    removed: list[K] = field(default_factory=list)
    added: list[tuple[K, Cells]] = field(default_factory=list)
    updated: list[tuple[K, str, str | Text, bool]] = field(default_factory=list)
    resort: bool = False

    def is_empty(self) -> bool:
        return not (self.rebuild is not None or self.removed or self.added or self.updated)


class TableModel(Generic[K]):
    """Holds every record (keyed by `K`) and the rendered cells of the rows currently shown."""

    def __init__(
        self,
        columns: tuple[Column, ...],
        now: Callable[[], datetime] = utcnow,
        sort_column: str = "namespace",
    ) -> None:
        self.columns = columns
        self._now = now
        self.records: dict[K, Any] = {}
        self.shown: dict[K, Cells] = {}
        self.marked: set[K] = set()
        self.filter = RowFilter()
        self.sort_column = sort_column
        self.reverse = False
        self._col_index = {c.key: i for i, c in enumerate(columns)}
        self._widths = [len(c.label) for c in columns]

    # -- queries -------------------------------------------------------------------
    def sort_key(self, key: K) -> tuple[Any, K]:
        col = self.columns[self._col_index[self.sort_column]]
        return (col.sort(self.records[key]), key)

    def ordered(self) -> list[K]:
        return sorted(self.shown, key=self.sort_key, reverse=self.reverse)

    def _render(self, key: K, now: datetime) -> Cells:
        return render_row(self.columns, self.records[key], now, key in self.marked)

    def widths(self) -> list[int]:
        """The widest rendered cell of each column so far (never shrinks)."""
        return list(self._widths)

    def _widens(self, i: int, value: str | Text) -> bool:
        text = value.plain if isinstance(value, Text) else value
        width = len(text) if text.isascii() else cell_len(text)  # one cell per ASCII char
        if width > self._widths[i]:
            self._widths[i] = width
            return True
        return False

    def _track(self, cells: Cells) -> None:
        for i, value in enumerate(cells):
            self._widens(i, value)

    # -- mutations ------------------------------------------------------------------
    def prerender(self, records: Iterable[Any]) -> dict[K, tuple[Cells, tuple[int, ...]]]:
        """Cells and their widths for `records`, unmarked, for `apply(..., rendered=)`. Reads
        only the columns and the clock, so a worker thread may call it: the UI thread then
        only compares and applies."""
        now = self._now()
        out: dict[K, tuple[Cells, tuple[int, ...]]] = {}
        for rec in records:
            cells = render_row(self.columns, rec, now)
            out[rec.key] = (cells, tuple(cell_len(c.plain) if isinstance(c, Text) else
                                         cell_len(c) for c in cells))
        return out

    def apply(self, upserts: Iterable[Any], deletes: Iterable[K],
              rendered: dict[K, tuple[Cells, tuple[int, ...]]] | None = None) -> TableOps[K]:
        """Merge a batch of watch changes and return the minimal widget operations.
        `rendered`: cells from `prerender` (used for unmarked rows)."""
        ops: TableOps[K] = TableOps()
        now = self._now()
        sort_i = self._col_index[self.sort_column]
        for key in deletes:
            self.records.pop(key, None)
            self.marked.discard(key)
            if self.shown.pop(key, None) is not None:
                ops.removed.append(key)
        for rec in upserts:
            key = rec.key
            self.records[key] = rec
            visible = self.filter.matches(rec)
            old = self.shown.get(key)
            if not visible:
                if old is not None:
                    del self.shown[key]
                    ops.removed.append(key)
                continue
            pre = rendered.get(key) if rendered is not None and key not in self.marked \
                else None
            cells = self._render(key, now) if pre is None else pre[0]
            self.shown[key] = cells
            if old is None:
                if pre is None:
                    self._track(cells)
                else:
                    widths = self._widths
                    for i, w in enumerate(pre[1]):
                        if w > widths[i]:
                            widths[i] = w
                ops.added.append((key, cells))
                ops.resort = True
                continue
            for i, (a, b) in enumerate(zip(old, cells, strict=True)):
                if a != b:
                    ops.updated.append((key, self.columns[i].key, b, self._widens(i, b)))
                    if i == sort_i:
                        ops.resort = True
        return self._maybe_rebuild(ops)

    def _maybe_rebuild(self, ops: TableOps[K]) -> TableOps[K]:
        """Many removals are cheaper as one clear + add (DataTable.remove_row is O(N))."""
        if len(ops.removed) > 50 and len(ops.removed) * 2 > len(self.shown) + len(ops.removed):
            return self.full()
        return ops

    def full(self) -> TableOps[K]:
        return TableOps(rebuild=[(k, self.shown[k]) for k in self.ordered()])

    def set_filter(self, flt: RowFilter) -> TableOps[K]:
        self.filter = flt
        now = self._now()
        ops: TableOps[K] = TableOps()
        for key, rec in self.records.items():
            want = flt.matches(rec)
            have = key in self.shown
            if want and not have:
                cells = self._render(key, now)
                self.shown[key] = cells
                self._track(cells)
                ops.added.append((key, cells))
                ops.resort = True
            elif have and not want:
                del self.shown[key]
                ops.removed.append(key)
        if len(ops.removed) > 20:
            return self.full()
        return ops

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self.reverse if column == self.sort_column else False
        self.sort_column = column
        self.reverse = reverse

    def refresh_ages(self) -> TableOps[K]:
        """Cells that depend on the clock (ages, next runs) whose text changed (called on a
        slow timer)."""
        ops: TableOps[K] = TableOps()
        now = self._now()
        timed = [i for i, c in enumerate(self.columns) if c.key == "age" or c.timed]
        for key, cells in self.shown.items():
            for i in timed:
                col = self.columns[i]
                value = as_cell(col.cell(self.records[key], now))
                if value != cells[i]:
                    cells = (*cells[:i], value, *cells[i + 1 :])
                    self.shown[key] = cells
                    ops.updated.append((key, col.key, value, self._widens(i, value)))
        return ops

    def toggle_marks(self, keys: Iterable[K], on: bool | None = None) -> TableOps[K]:
        ops: TableOps[K] = TableOps()
        now = self._now()
        name_i = self._col_index["name"]
        for key in keys:
            if key not in self.records:
                continue
            want = (key not in self.marked) if on is None else on
            if want:
                self.marked.add(key)
            else:
                self.marked.discard(key)
            if key in self.shown:
                cells = self._render(key, now)
                self.shown[key] = cells
                value = cells[name_i]
                ops.updated.append((key, "name", value, self._widens(name_i, value)))
        return ops
