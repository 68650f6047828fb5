"""CrashLoopBackOff follows the kubelet's doBackOff + flowcontrol.Backoff timing."""

from __future__ import annotations

from devcluster.runner.backoff import CrashLoopBackoff, backoff_key


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def crash_loop(backoff: CrashLoopBackoff, clock: FakeClock, crashes: int, runtime: float = 1.0):
    """Each instance runs `runtime` s, crashes, and is restarted exactly when due."""
    delays = []
    for _ in range(crashes):
        clock.now += runtime
        finished = clock.now
        delay = backoff.next_delay("c", finished)
        delays.append(delay)
        clock.now = finished + delay  # the runner restarts it now
    return delays


def test_sequence_first_restart_immediate_then_doubling_to_cap() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackoff(clock=clock)
    assert crash_loop(backoff, clock, 9) == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert backoff.current("c") == 300


def test_back_off_shown_is_current_value() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackoff(clock=clock)
    assert backoff.current("c") == 0
    backoff.next_delay("c", clock.now)
    assert backoff.current("c") == 10  # what the next crash will wait
    assert backoff.next_delay("c", clock.now + 1) == 10
    assert backoff.current("c") == 20


def test_reset_after_ten_minutes_of_quiet() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackoff(clock=clock)
    assert crash_loop(backoff, clock, 4) == [0, 10, 20, 40]
    # Restarted at clock.now; runs exactly 600 s: not yet expired (strictly greater needed).
    assert crash_loop(backoff, clock, 1, runtime=600) == [80]
    # Runs 600.5 s after its last restart: the entry expired, start over.
    assert crash_loop(backoff, clock, 3, runtime=600.5) == [0, 0, 0]
    assert crash_loop(backoff, clock, 3) == [10, 20, 40]


def test_late_restart_counts_from_actual_restart_time() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackoff(clock=clock)
    backoff.next_delay("c", 1000.0)
    clock.now = 1200.0  # runner got to the second crash late
    assert backoff.next_delay("c", 1001.0) == 10
    # last update is the real restart (1200), so a crash at 1790 is within 600 s of it.
    assert backoff.next_delay("c", 1790.0) == 20


def test_keys_are_independent_and_reset() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackoff(clock=clock)
    backoff.next_delay("a", clock.now)
    assert backoff.next_delay("a", clock.now) == 10
    assert backoff.next_delay("b", clock.now) == 0
    backoff.reset("a")
    assert backoff.next_delay("a", clock.now) == 0
    backoff.reset("missing")  # no error


def test_custom_initial_and_cap() -> None:
    clock = FakeClock()
    backoff = CrashLoopBackoff(initial=1, cap=5, clock=clock)
    assert crash_loop(backoff, clock, 6) == [0, 1, 2, 4, 5, 5]
    assert CrashLoopBackoff(initial=30, cap=20).initial == 20


def test_gc_drops_entries_quiet_for_ten_minutes() -> None:
    clock = FakeClock(0.0)
    backoff = CrashLoopBackoff(clock=clock)
    backoff.next_delay("old", 0.0)
    clock.now = 500.0
    backoff.next_delay("new", 500.0)
    clock.now = 600.0
    backoff.gc()
    assert len(backoff) == 2
    clock.now = 600.5
    backoff.gc()
    assert len(backoff) == 1
    assert backoff.current("old") == 0
    assert backoff.current("new") == 10


def test_backoff_key_changes_with_image_and_resources() -> None:
    pod = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}
    base = {"name": "server", "image": "srv:1", "resources": {"limits": {"cpu": "1"}}}
    key = backoff_key(pod, base)
    assert key == backoff_key(pod, dict(base))
    assert key != backoff_key(pod, {**base, "image": "srv:2"})
    assert key != backoff_key(pod, {**base, "resources": {}})
    assert key != backoff_key({"metadata": {**pod["metadata"], "uid": "u2"}}, base)
