"""Start-up probe: the time `fleet tui` began, for the first-paint log line and the bench."""

from __future__ import annotations

import time

START_TIME = time.perf_counter()


def mark_start(t: float) -> None:
    global START_TIME
    START_TIME = t


def since_start() -> float:
    return time.perf_counter() - START_TIME
