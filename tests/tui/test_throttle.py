"""tui.throttle.Throttle (the tables' and the log view's drain): at once outside the interval,
one armed timer inside it, on a hand-driven clock and timer list."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tui.throttle import Throttle


class Loop:
    """A clock the test advances and the timers `set_timer` armed, fired by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.drains: list[float] = []

    def set_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self.timers.append((self.now + delay, callback))

    def fire_due(self) -> None:
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, callback in due:
            callback()


def _throttle(loop: Loop, interval: float = 0.1) -> Throttle:
    return Throttle(interval, lambda: loop.drains.append(loop.now), loop.set_timer,
                    clock=lambda: loop.now)


def test_first_call_drains_at_once() -> None:
    loop = Loop()
    t = _throttle(loop)
    t()
    assert loop.drains == [1000.0] and loop.timers == [] and not t.armed


def test_a_burst_inside_the_interval_arms_one_timer_for_the_rest_of_it() -> None:
    loop = Loop()
    t = _throttle(loop)
    t()
    loop.now += 0.03
    t()
    loop.now += 0.03
    t()
    assert loop.drains == [1000.0]
    assert len(loop.timers) == 1 and t.armed
    assert loop.timers[0][0] == pytest.approx(1000.1)  # when the interval ends, not later
    loop.now = loop.timers[0][0]
    loop.fire_due()
    assert loop.drains == [1000.0, loop.now] and not t.armed
    t()  # right after the timer's drain: inside the interval again
    assert len(loop.drains) == 2 and t.armed


def test_calls_spaced_wider_than_the_interval_drain_each_time() -> None:
    loop = Loop()
    t = _throttle(loop, interval=0.05)
    for _ in range(3):
        t()
        loop.now += 0.06
    assert loop.drains == pytest.approx([1000.0, 1000.06, 1000.12]) and loop.timers == []
