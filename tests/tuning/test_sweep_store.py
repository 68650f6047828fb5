"""The sweep table on real PostgreSQL: the exact budget under racing workers, state CAS."""

from __future__ import annotations

import threading

import pytest

from tuning import sweep_store

pytestmark = pytest.mark.postgres


@pytest.fixture
def eng(postgres_url: str):  # noqa: ANN201
    e = sweep_store.engine(postgres_url)
    sweep_store.ensure_schema(e)
    yield e
    e.dispose()


def test_racing_workers_get_exactly_max_trials_slots(eng) -> None:  # noqa: ANN001
    assert sweep_store.create(eng, "ml", "race", {"name": "race"}, max_trials=25)
    assert not sweep_store.create(eng, "ml", "race", {"name": "race"}, max_trials=25)
    got: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        while (slot := sweep_store.reserve_slot(eng, "ml.race")) is not None:
            with lock:
                got.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(got) == list(range(1, 26))  # every slot once, none beyond the cap
    row = sweep_store.get(eng, "ml.race")
    assert (row.started, row.max_trials) == (25, 25)
    sweep_store.release_slot(eng, "ml.race")
    assert sweep_store.reserve_slot(eng, "ml.race") == 25
    assert sweep_store.reserve_slot(eng, "ml.race") is None


def test_state_moves_only_from_the_expected_state(eng) -> None:  # noqa: ANN001
    sweep_store.create(eng, "ml", "cas", {}, max_trials=3)
    assert sweep_store.set_state(eng, "ml.cas", "complete", "done", expect=("running",))
    assert not sweep_store.set_state(eng, "ml.cas", "complete", "again", expect=("running",))
    row = sweep_store.get(eng, "ml.cas")
    assert (row.state, row.reason) == ("complete", "done")
    assert sweep_store.reserve_slot(eng, "ml.cas") is None  # no slots unless running
    with pytest.raises(ValueError, match="unknown sweep state"):
        sweep_store.set_state(eng, "ml.cas", "paused")


def test_a_stopped_sweep_gives_no_slots_until_resumed(eng) -> None:  # noqa: ANN001
    sweep_store.create(eng, "ml", "pause", {}, max_trials=2)
    assert sweep_store.set_state(eng, "ml.pause", "stopped", expect=("running",))
    assert sweep_store.reserve_slot(eng, "ml.pause") is None
    assert sweep_store.set_state(eng, "ml.pause", "running", expect=("stopped", "aborted"))
    assert sweep_store.reserve_slot(eng, "ml.pause") == 1
    assert sweep_store.get(eng, "ml.pause").age_s >= 0
