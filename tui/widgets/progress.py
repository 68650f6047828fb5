"""Live rollout progress of the deployments touched by the last action (fed by the cache)."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from fleet.model import ModelDeployment, RolloutState

Key = tuple[str, str]


def progress_line(d: ModelDeployment) -> Text:
    """One line: state, bar of updated/ready/available against desired."""
    width = 20
    desired = max(d.desired, 1)
    filled = min(width, round(width * d.available / desired)) if d.desired else width
    bar = "█" * filled + "░" * (width - filled)
    style = {
        RolloutState.COMPLETE: "green",
        RolloutState.STALLED: "bold red",
        RolloutState.PAUSED: "magenta",
    }.get(d.rollout_state, "yellow")
    text = Text.assemble(
        (f"{d.namespace}/{d.name}", "bold"),
        f"  rev {d.revision}  ",
        (bar, style),
        f"  updated {d.updated}/{d.desired}  ready {d.ready}/{d.desired}"
        f"  available {d.available}/{d.desired}  ",
        (str(d.rollout_state), style),
    )
    return text


class RolloutProgress(Static):
    """Shows up to 6 watched deployments; hides 8 s after all are complete."""

    DEFAULT_CSS = """
    RolloutProgress { dock: bottom; height: auto; max-height: 8; padding: 0 1;
                      border-top: solid $primary; display: none; }
    RolloutProgress.-active { display: block; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.watched: dict[Key, ModelDeployment | None] = {}
        self._done_at: float | None = None

    def watch_keys(self, keys: list[Key], current: dict[Key, ModelDeployment]) -> None:
        self.watched = {k: current.get(k) for k in keys}
        self._done_at = None
        self.add_class("-active")
        self._render_lines()

    def observe(self, changed: dict[Key, ModelDeployment]) -> None:
        hit = False
        for key in self.watched.keys() & changed.keys():
            self.watched[key] = changed[key]
            hit = True
        if hit:
            self._render_lines()

    def _render_lines(self) -> None:
        lines = [progress_line(d) for d in list(self.watched.values())[:6] if d is not None]
        more = len(self.watched) - 6
        if more > 0:
            lines.append(Text(f"… and {more} more"))
        self.update(Text("\n").join(lines) if lines else "waiting for the watch…")
        done = all(
            d is not None and d.rollout_state in (RolloutState.COMPLETE, RolloutState.PAUSED)
            and d.available >= d.desired
            for d in self.watched.values()
        )
        if done and self._done_at is None:
            self._done_at = time.monotonic()
            self.set_timer(8, self._maybe_hide)

    def _maybe_hide(self) -> None:
        if self._done_at is not None:
            self.remove_class("-active")
            self.watched = {}
