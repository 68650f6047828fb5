"""The progress of a `fleet …` command the TUI runs (sweep launch / stop / resume / promote):
its lines as they come, then its exit status. Esc hides it; the command goes on and its
result is notified (the same pattern as the deploy progress)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, RichLog, Static

from tui.screens.confirm import DIALOG_CSS


def line_text(stream: str, line: str) -> Text:
    """stderr is the command's progress (errors red, warnings yellow); stdout its result."""
    low = line.lower()
    if low.startswith("error"):
        return Text(line, style="bold red")
    if low.startswith("warning"):
        return Text(line, style="yellow")
    return Text(line, style="bold" if stream == "stdout" else "")


class CommandProgressScreen(ModalScreen[None]):
    DEFAULT_CSS = ("CommandProgressScreen { align: center middle; } "
                   "CommandProgressScreen RichLog { height: auto; max-height: 20; } "
                   "CommandProgressScreen #command-outcome { height: auto; margin-top: 1; }"
                   + DIALOG_CSS)
    BINDINGS = [Binding("escape,enter", "close", "Close", id="command_progress.close")]

    def __init__(self, run: int, title: str, command: str,
                 lines: list[tuple[str, str]] | None = None, outcome: Text | None = None) -> None:
        super().__init__()
        self.run = run
        self.title_text = title
        self.command = command
        self.initial_lines = list(lines or [])
        self.outcome = outcome

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            yield Static(Text(self.command, style="dim"))
            yield RichLog(id="command-log", wrap=True, markup=False, highlight=False)
            yield Static(self.outcome or Text("running…", style="yellow"), id="command-outcome")
            yield Label("Esc: hide (the command goes on; its result is notified)",
                        classes="hint")

    def on_mount(self) -> None:
        log = self.query_one("#command-log", RichLog)
        for stream, line in self.initial_lines:
            log.write(line_text(stream, line))

    def add_line(self, stream: str, line: str) -> None:
        self.query_one("#command-log", RichLog).write(line_text(stream, line))

    def set_outcome(self, text: Text) -> None:
        self.outcome = text
        self.query_one("#command-outcome", Static).update(text)

    def action_close(self) -> None:
        self.dismiss(None)
