"""Pause Python's cyclic garbage collector around a burst of short-lived allocations.

Decoding a sweep's trials ConfigMap (up to a few MB of JSON: ~10^5 dicts and lists) in a
worker triggers young-generation collections mid-parse; the still-alive document is promoted
and, a few polls later, forces a full collection of every object of the app (~60 ms of CPU
with 1,000 trials and 300 deployments, several times that on a loaded machine) on whichever
thread allocates next: often the UI thread, a visible stutter. With the collector paused for
the parse, the document dies by reference counting when the worker drops it, and only the
trials that really changed live on. Nested and concurrent pauses are counted.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
