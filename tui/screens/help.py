"""Help: every key, grouped, with disabled actions and their reasons."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.viewmodel.keys import DENIABLE_ACTIONS, KEYMAP


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen VerticalScroll { width: 100; max-width: 95%; height: 90%;
                                border: thick $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, denied: Callable[[str], str | None] | None = None) -> None:
        """`denied(action)` gives why an action is disabled (None: allowed); the app passes
        its own, so the screen never reaches into the app."""
        super().__init__()
        self._denied = denied

    def compose(self) -> ComposeResult:
        table = Table(title="modelfleet keys", expand=True, show_lines=False)
        table.add_column("area", style="dim")
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action")
        denied = self._denied
        for area, key, action, desc in KEYMAP:
            name = action.split(".", 1)[1] if action else ""
            why = denied(name) if denied and name in DENIABLE_ACTIONS else None
            table.add_row(area, key, desc + (f"  [red](disabled: {why})[/]" if why else ""))
        with VerticalScroll():
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
