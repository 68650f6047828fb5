"""Modal dialogs: confirm a plan, ask for a value, show per-target results."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

DIALOG_CSS = """
.dialog { width: 90%; max-width: 140; height: auto; max-height: 90%;
          border: thick $primary; background: $surface; padding: 1 2; }
.dialog .title { text-style: bold; margin-bottom: 1; }
.dialog .body { height: auto; max-height: 30; }
.dialog .buttons { height: auto; margin-top: 1; align-horizontal: right; }
.dialog Button { margin-left: 2; }
.dialog .hint { color: $text-muted; }
.dialog Input { margin-bottom: 1; }
"""


class ConfirmScreen(ModalScreen[bool]):
    """Shows exactly what will change; Enter or `y` confirms, Escape or `n` cancels."""

    DEFAULT_CSS = "ConfirmScreen { align: center middle; }" + DIALOG_CSS
    BINDINGS = [
        Binding("y", "confirm", "Confirm", id="confirm.yes"),
        Binding("n,escape", "cancel", "Cancel", id="confirm.no"),
    ]

    def __init__(self, title: str, body: Sequence[RenderableType], confirm_label: str = "Confirm",
                 danger: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.body = list(body)
        self.confirm_label = confirm_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            with VerticalScroll(classes="body"):
                for item in self.body:
                    yield Static(item)
            yield Label("Enter/y: confirm   Esc/n: cancel", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.confirm_label, id="confirm",
                             variant="error" if self.danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class PromptScreen(ModalScreen[dict[str, str] | None]):
    """Asks for one or more values (e.g. replicas; model URI, image, reason)."""

    DEFAULT_CSS = "PromptScreen { align: center middle; }" + DIALOG_CSS
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, fields: Sequence[tuple[str, str, str]],
                 note: RenderableType = "") -> None:
        """`fields`: (id, label, initial value)."""
        super().__init__()
        self.title_text = title
        self.fields = list(fields)
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            if self.note:
                yield Static(self.note)
            for fid, label, value in self.fields:
                yield Label(label)
                yield Input(value=value, id=f"f-{fid}")
            yield Label("Enter: next / review   Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        first = self.query(Input).first()
        first.focus()
        first.select_all()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        idx = inputs.index(event.input)
        if idx + 1 < len(inputs):
            inputs[idx + 1].focus()
            return
        self.dismiss({i.id.removeprefix("f-"): i.value.strip() for i in inputs if i.id})

    def action_cancel(self) -> None:
        self.dismiss(None)


class ResultScreen(ModalScreen[None]):
    """Per-target outcome of an action; failures first."""

    DEFAULT_CSS = "ResultScreen { align: center middle; }" + DIALOG_CSS
    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="result.close")]

    def __init__(self, title: str, ok: list[str], failed: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.ok = ok
        self.failed = failed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            summary = f"{self.title_text}: {len(self.ok)} succeeded, {len(self.failed)} failed"
            yield Label(summary, classes="title")
            with VerticalScroll(classes="body"):
                for line in self.failed:
                    yield Static(Text("✗ " + line, style="bold red"))
                for line in self.ok:
                    yield Static(Text("✓ " + line, style="green"))
            yield Label("Enter/Esc: close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class InfoScreen(ModalScreen[None]):
    """A read-only report (probe now, one prediction): Enter/Esc closes."""

    DEFAULT_CSS = "InfoScreen { align: center middle; }" + DIALOG_CSS
    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="info.close")]

    def __init__(self, title: str, body: Sequence[RenderableType], ok: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.body = list(body)
        self.ok = ok

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold" if self.ok else "bold red"),
                        classes="title")
            with VerticalScroll(classes="body"):
                for item in self.body:
                    yield Static(item)
            yield Label("Enter/Esc: close", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
