"""Drain a buffer on the UI loop at most once per interval, however often it says "pending".

A worker thread fills a buffer (the watch changes, a log session's lines) and posts one
"pending" message; its handler calls the `Throttle`. Outside the interval it drains at once;
inside it, one timer is armed for the rest of the interval and further calls until then do
nothing: a burst costs one redraw per interval, not one per message. Textual-free (it is given
`set_timer`), so its timing is unit-tested without an app.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """Calls `drain` now, or once when `interval` seconds have passed since the last call."""

    def __init__(self, interval: float, drain: Callable[[], object],
                 set_timer: Callable[[float, Callable[[], None]], object],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.armed = False  # a timer will drain: what is pending now is not lost
        self._drain = drain
        self._set_timer = set_timer
        self._clock = clock
        self._last = float("-inf")

    def __call__(self) -> None:
        wait = self._last + self.interval - self._clock()
        if wait > 0:
            if not self.armed:
                self.armed = True
                self._set_timer(wait, self._run)
            return
        self._run()

    def _run(self) -> None:
        self.armed = False
        self._last = self._clock()
        self._drain()
