"""Polling helper for tests that wait on background threads."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(predicate: Callable[[], object], timeout: float = 5.0,
               interval: float = 0.02) -> bool:
    """True as soon as `predicate()` is truthy; False once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
