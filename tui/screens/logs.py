"""The log view of one pod container: streamed in a thread worker, bounded, reconnecting.

The worker reads `backend.open_log(...)` (a `fleet.ops.logs.LogStream`) with timestamps, so a
reconnect resumes at the last line's time (`sinceTime`) without repeating lines. Lines go to a
bounded per-session buffer; the worker posts `LogsPending` once per batch and the screen drains
it, so a chatty container can neither freeze the UI nor grow memory (the view keeps the last
`max_lines`). k9s keys: `/` filter, `w` wrap, `t` timestamps, `p` previous, `c` container,
`f` follow (stream and stick to the tail), Esc back.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog, Static

from tui.messages import LogsPending, LogStatus
from tui.screens.picker import PickerScreen
from tui.throttle import Throttle

if TYPE_CHECKING:
    from tui.app import FleetApp

MAX_LINES = 5000  # kept in memory and in the view
TAIL_LINES = 500  # the first read of a session (kubectl logs --tail)
MAX_BACKOFF = 10.0
MIN_DRAIN_INTERVAL = 0.05
_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def split_timestamp(raw: str) -> tuple[str, str]:
    """`2026-11-27T04:00:00.123Z text` (kubectl logs --timestamps) -> (ts, text)."""
    head, sep, rest = raw.partition(" ")
    if _TS.match(head):
        return head, rest
    return "", raw


def ts_key(ts: str) -> tuple[str, int]:
    """Sortable RFC 3339 (fractions of any length compare as nanoseconds)."""
    base, _, frac = ts.rstrip("Z").partition(".")
    return base, int((frac or "0").ljust(9, "0")[:9])


@dataclass
class LogSession:
    """One stream configuration (pod, container, previous, follow) and its worker's state."""

    number: int
    namespace: str
    pod: str
    container: str
    previous: bool
    follow: bool
    max_lines: int = MAX_LINES
    stop: threading.Event = field(default_factory=threading.Event)
    lines: deque[tuple[str, str]] = field(default_factory=deque)
    dropped: int = 0
    pending: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    stream: Any = None
    reconnects: int = 0

    def push(self, items: list[tuple[str, str]], notify: Callable[[], object]) -> None:
        with self.lock:
            self.lines.extend(items)
            over = len(self.lines) - self.max_lines
            for _ in range(max(0, over)):
                self.lines.popleft()
                self.dropped += 1
            wake = not self.pending
            self.pending = True
        if wake:
            notify()

    def drain(self) -> list[tuple[str, str]]:
        with self.lock:
            out = list(self.lines)
            self.lines.clear()
            self.pending = False
        return out

    def close(self) -> None:
        """Stop the worker and its open stream (from the UI thread: never blocks)."""
        self.stop.set()
        stream = self.stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()


class LogScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="logs.back"),
        Binding("slash", "filter", "Filter", id="logs.filter"),
        Binding("f", "toggle_follow", "Follow", id="logs.follow"),
        Binding("p", "toggle_previous", "Previous", id="logs.previous"),
        Binding("c", "container", "Container", id="logs.container"),
        Binding("w", "toggle_wrap", "Wrap", id="logs.wrap"),
        Binding("t", "toggle_timestamps", "Timestamps", id="logs.timestamps"),
    ]

    def __init__(self, namespace: str, pod: str, container: str | None = None, *,
                 max_lines: int = MAX_LINES, tail_lines: int = TAIL_LINES) -> None:
        super().__init__()
        self.namespace = namespace
        self.pod = pod
        self.container = container or ""
        self.max_lines = max_lines
        self.tail_lines = tail_lines
        self.follow = True
        self.previous = False
        self.wrap = False
        self.timestamps = False
        self.filter_text = ""
        self.kept: deque[tuple[str, str]] = deque(maxlen=max_lines)
        self.shown = 0  # lines in the view (matching the filter)
        self.status = "connecting…"
        self.status_error = False
        self.session: LogSession | None = None
        self._sessions = 0
        self._drain_throttle = Throttle(MIN_DRAIN_INTERVAL, self._drain, self.set_timer)

    @property
    def fleet(self) -> FleetApp:
        return cast("FleetApp", self.app)  # Textual types `app` as any App

    def compose(self) -> ComposeResult:
        yield Static(id="log-header")
        yield RichLog(id="log", max_lines=self.max_lines, wrap=False, markup=False,
                      highlight=False, auto_scroll=True)
        yield Input(id="log-filter", placeholder="filter lines (text, case-insensitive); "
                                                 "Enter applies, Esc clears")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log-filter", Input).display = False
        self.query_one("#log", RichLog).focus()
        if self.container:
            self.restart()
        else:
            self.load_containers(pick=False)

    def on_unmount(self) -> None:
        if self.session is not None:
            self.session.close()

    # -- sessions ----------------------------------------------------------------------
    def restart(self) -> None:
        """Close the current stream and open one for the current settings; clears the view."""
        if self.session is not None:
            self.session.close()
        self._sessions += 1
        self.session = LogSession(self._sessions, self.namespace, self.pod, self.container,
                                  self.previous, self.follow and not self.previous,
                                  self.max_lines)
        self.kept.clear()
        self.shown = 0
        log = self.query_one("#log", RichLog)
        log.clear()
        log.auto_scroll = self.session.follow
        self.status, self.status_error = "connecting…", False
        self._update_header()
        self.stream_logs(self.session)

    @work(thread=True, exit_on_error=False, group="logs")
    def stream_logs(self, session: LogSession) -> None:
        from fleet.ops.logs import LogOptions

        backend = self.fleet.backend
        notify = lambda: self.post_message(LogsPending())  # noqa: E731
        last_ts, at_last = "", 0  # resume point: last timestamp, lines seen with it
        backoff = 0.5
        while not session.stop.is_set():
            if last_ts:
                opts = LogOptions(follow=session.follow, previous=session.previous,
                                  timestamps=True, since_time=last_ts)
            else:
                opts = LogOptions(follow=session.follow, previous=session.previous,
                                  timestamps=True, tail_lines=self.tail_lines)
            try:
                if backend is None:
                    raise RuntimeError("not connected")
                stream = backend.open_log(session.namespace, session.pod, session.container,
                                          opts)
            except Exception as exc:  # noqa: BLE001 - shown in the header, never a crash
                self._status(session, _err(exc), error=True)
                if not session.follow or session.stop.wait(backoff):
                    return
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            session.stream = stream
            if session.stop.is_set():
                stream.close()
                return
            self._status(session, "streaming" if session.follow else "reading")
            skip_before, skip_same = last_ts, at_last
            try:
                for raw in stream:
                    ts, text = split_timestamp(raw)
                    if skip_before and ts:  # a reconnect: drop what was shown already
                        if ts_key(ts) < ts_key(skip_before):
                            continue
                        if ts == skip_before and skip_same > 0:
                            skip_same -= 1
                            continue
                        skip_before = ""
                    if ts:
                        at_last = at_last + 1 if ts == last_ts else 1
                        last_ts = ts
                    # one notification per batch: the screen drains whatever has piled up
                    session.push([(ts, text)], notify)
                    backoff = 0.5
                error = ""
            except Exception as exc:  # noqa: BLE001 - a lost stream: reconnect
                error = _err(exc)
            finally:
                session.stream = None
                with contextlib.suppress(Exception):
                    stream.close()
            if session.stop.is_set():
                return
            if not session.follow:
                self._status(session, error or "end of log (f: follow)", error=bool(error))
                return
            session.reconnects += 1
            why = f"stream lost: {error}" if error else "stream ended"
            self._status(session, f"{why}; reconnecting in {backoff:g}s", error=bool(error))
            if session.stop.wait(backoff):
                return
            backoff = min(MAX_BACKOFF, backoff * 2)

    def _status(self, session: LogSession, text: str, error: bool = False) -> None:
        self.post_message(LogStatus(session.number, text, error))

    def on_log_status(self, message: LogStatus) -> None:
        if self.session is not None and message.session == self.session.number:
            self.status, self.status_error = message.text, message.error
            self._update_header()

    def on_logs_pending(self, _message: LogsPending) -> None:
        self._drain_throttle()

    def _drain(self) -> None:
        if self.session is None:
            return
        items = self.session.drain()
        if not items:
            return
        self.kept.extend(items)
        log = self.query_one("#log", RichLog)
        for item in items[-self.max_lines:]:
            if self._matches(item):
                log.write(self._line_text(item))
                self.shown = min(self.max_lines, self.shown + 1)
        self._update_header()

    # -- rendering ---------------------------------------------------------------------
    def _matches(self, item: tuple[str, str]) -> bool:
        return not self.filter_text or self.filter_text.lower() in item[1].lower()

    def _line_text(self, item: tuple[str, str]) -> Text:
        ts, line = item
        text = Text(line)
        if self.filter_text:
            text.highlight_words([self.filter_text], style="black on yellow",
                                 case_sensitive=False)
        if self.timestamps and ts:
            text = Text.assemble((ts + " ", "dim"), text)
        return text

    def rebuild(self) -> None:
        """Redraw the kept lines (filter, wrap or timestamps changed)."""
        log = self.query_one("#log", RichLog)
        log.clear()
        log.wrap = self.wrap
        self.shown = 0
        for item in self.kept:
            if self._matches(item):
                log.write(self._line_text(item))
                self.shown += 1
        self._update_header()

    def lines_shown(self) -> list[str]:
        """The text lines in view (the filter applied), oldest first."""
        return [item[1] for item in self.kept if self._matches(item)]

    def _update_header(self) -> None:
        flags = ["following" if self.session and self.session.follow else "not following"]
        if self.previous:
            flags.append("previous container")
        if self.wrap:
            flags.append("wrap")
        if self.timestamps:
            flags.append("timestamps")
        if self.filter_text:
            flags.append(f"filter “{self.filter_text}”: {self.shown} of {len(self.kept)} lines")
        else:
            flags.append(f"{len(self.kept)} lines (last {self.max_lines} kept)")
        head = Text.assemble(("logs ", "dim"), (f"{self.namespace}/{self.pod}", "bold"),
                             (" container ", "dim"), (self.container or "?", "bold"),
                             "   " + " · ".join(flags) + "   ",
                             (self.status, "bold red" if self.status_error else "green"))
        self.query_one("#log-header", Static).update(head)

    # -- actions -----------------------------------------------------------------------
    def action_back(self) -> None:
        box = self.query_one("#log-filter", Input)
        if box.display:
            box.display = False
            self.query_one("#log", RichLog).focus()
            return
        if self.filter_text:
            self.filter_text = ""
            self.rebuild()
            return
        self.app.pop_screen()

    def action_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    @on(Input.Submitted, "#log-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one("#log", RichLog).focus()
        if event.value.strip() != self.filter_text:
            self.filter_text = event.value.strip()
            self.rebuild()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.rebuild()

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps
        self.rebuild()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow and self.previous:
            self.previous = False
        self.restart()

    def action_toggle_previous(self) -> None:
        self.previous = not self.previous
        self.restart()

    def action_container(self) -> None:
        self.load_containers(pick=True)

    @work(thread=True, exit_on_error=False, group="log-containers")
    def load_containers(self, pick: bool) -> None:
        try:
            backend = self.fleet.backend
            if backend is None:
                raise RuntimeError("not connected")
            names, default = backend.log_containers(self.namespace, self.pod)
        except Exception as exc:  # noqa: BLE001 - shown; a pod gone is not a crash
            self.app.call_from_thread(self._containers_failed, _err(exc))
            return
        self.app.call_from_thread(self._containers_loaded, names, default, pick)

    def _containers_failed(self, error: str) -> None:
        self.status, self.status_error = f"cannot read the pod: {error}", True
        self._update_header()

    def _containers_loaded(self, names: list[str], default: str, pick: bool) -> None:
        if not pick:
            self.container = default or (names[0] if names else "")
            self.restart()
            return
        if len(names) < 2:
            self.notify(f"pod {self.pod} has one container: {self.container}")
            return

        def chosen(name: str | None) -> None:
            if name and name != self.container:
                self.container = name
                self.restart()

        self.app.push_screen(PickerScreen(f"Container of {self.pod}",
                                          [(n, n) for n in names], self.container), chosen)


def _err(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
