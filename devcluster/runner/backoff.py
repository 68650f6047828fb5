"""CrashLoopBackOff exactly as kubelet v1.37.2 drives client-go's `flowcontrol.Backoff`.

What the kubelet does (kuberuntime_manager.go `doBackOff`, kubelet.go `newCrashLoopBackOff`):

- one entry per container key holding the current back-off and the time of the last restart;
  initial 10 s, cap 300 s (`MaxContainerRestartPeriod` default), no jitter;
- when a container has exited, `IsInBackOffSince(key, finishedAt)`: with an entry that has not
  expired and `now - finishedAt < backoff`, the restart waits (CrashLoopBackOff, message
  "back-off <backoff> ..."); otherwise `Next(key, finishedAt)` runs and the container is
  restarted at once. `Next` starts the entry at the initial value when missing or expired,
  else doubles it up to the cap, and stamps the entry with the restart time;
- an entry is expired once `finishedAt - lastUpdate > 600 s` (the kubelet's own
  `HasExpiredFunc`: a fixed 10 minutes, not client-go's 2 × cap), which is also what `GC` drops.

Hence the delays from a crash to its restart are 0 (first crash: immediate restart), then
10, 20, 40, 80, 160, 300, 300 ... s; a container that ran 10 minutes without crashing after
its last restart starts over with an immediate restart.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CrashLoopBackoff", "backoff_key"]

RESET_AFTER_S = 600.0


@dataclass
class _Entry:
    backoff: float
    last_update: float


class CrashLoopBackoff:
    """Per-container restart back-off; `next_delay` is called once per container exit.

    Times are seconds on `clock`'s scale (monotonic by default); `finished_at` must use the
    same clock. Deterministic: no jitter.
    """

    def __init__(
        self,
        initial: float = 10.0,
        cap: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        reset_after: float = RESET_AFTER_S,
    ) -> None:
        self.initial = min(initial, cap)  # newCrashLoopBackOff: initial never exceeds the cap
        self.cap = cap
        self.reset_after = reset_after
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > self.reset_after

    def next_delay(self, key: str, finished_at: float) -> float:
        """Seconds to wait after `finished_at` before restarting; 0 means restart now.

        A non-zero result is the back-off to show as CrashLoopBackOff (`backoff_message`).
        The entry advances as if the restart happens when due (or now, if that is later).
        """
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, finished_at):
            delay = 0.0
            entry = _Entry(backoff=self.initial, last_update=0.0)
            self._entries[key] = entry
        else:
            # In back-off until finished_at + backoff; then Next() doubles the entry.
            delay = entry.backoff
            entry.backoff = min(entry.backoff * 2, self.cap)
        entry.last_update = max(self._clock(), finished_at + delay)
        return delay

    def current(self, key: str) -> float:
        """The entry's back-off (client-go `Get`): what the next crash would wait; 0 if none."""
        entry = self._entries.get(key)
        return entry.backoff if entry is not None else 0.0

    def reset(self, key: str) -> None:
        """Forget the key (pod deleted, spec changed)."""
        self._entries.pop(key, None)

    def gc(self) -> None:
        """Drop entries whose last restart is older than the reset window."""
        now = self._clock()
        for key in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


def backoff_key(pod: dict[str, Any], container: dict[str, Any]) -> str:
    """Key like kuberuntime `GetBackoffKey`: changing the image or resources resets back-off."""
    meta = pod.get("metadata") or {}
    parts = [
        meta.get("name", ""),
        meta.get("namespace", ""),
        meta.get("uid", ""),
        container.get("name", ""),
        container.get("image", ""),
        json.dumps(container.get("resources") or {}, sort_keys=True),
    ]
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]
