"""Pick one item from a list (namespace, context, sort column, revision window)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from tui.screens.confirm import DIALOG_CSS


class PickerScreen(ModalScreen[str | None]):
    DEFAULT_CSS = "PickerScreen { align: center middle; } PickerScreen OptionList { height: auto; max-height: 24; }" + DIALOG_CSS  # noqa: E501
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="picker.cancel")]

    def __init__(self, title: str, options: list[tuple[str, str]], current: str | None = None):
        """`options`: (id, label)."""
        super().__init__()
        self.title_text = title
        self.options = options
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield OptionList(*[Option(label, id=oid) for oid, label in self.options])

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.focus()
        ids = [oid for oid, _ in self.options]
        if self.current in ids:
            ol.highlighted = ids.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
