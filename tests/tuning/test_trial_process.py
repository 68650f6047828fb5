"""Trial processes for real: the zygote forks trainer processes that start with TensorFlow
imported, hand over their result before they are gone, and are contained when they fail,
crash, are pruned or lose their zygote (`tuning.trial_process`, `tuning.train_run --zygote`).

The trainers are found through `modelfleet.trainers` entry points of a distribution written
into a temporary directory: the example digits trainer (a real model, converted and published
to a local store) and three small ones that fail, crash, or report epochs slowly.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tuning import exitcodes
from tuning.dataset import build_digits_dataset
from tuning.trial_process import SpawnedTrial, Zygote

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
REPO = Path(__file__).resolve().parents[2]
FAKE_TRAINERS = '''
import os, time
from tuning.contract import TrainerError

def deterministic(ctx):
    raise TrainerError("learning_rate must be positive")

def crash(ctx):
    os.abort()

def slow(ctx):
    for epoch in range(1, 1000):
        ctx.report(epoch, {"val_accuracy": 0.1})
        time.sleep(0.2)
'''
ENTRY_POINTS = {"digits": "digits_trainer.train:train", "broken": "fake_trainers:deterministic",
                "crash": "fake_trainers:crash", "slow": "fake_trainers:slow"}


@pytest.fixture(scope="module")
def trainers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """(env for the trial processes, a staged dataset dir, a work dir)."""
    root = tmp_path_factory.mktemp("trial-process")
    site = root / "site"
    (site / "fake_trainers-1.0.dist-info").mkdir(parents=True)
    (site / "fake_trainers.py").write_text(FAKE_TRAINERS)
    (site / "fake_trainers-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-trainers\nVersion: 1.0\n")
    (site / "fake_trainers-1.0.dist-info" / "entry_points.txt").write_text(
        "[modelfleet.trainers]\n" + "".join(f"{k} = {v}\n" for k, v in ENTRY_POINTS.items()))
    path = os.pathsep.join([str(site), str(REPO / "tuning" / "example_trainer"), str(REPO)])
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    data = build_digits_dataset(root / "data", 1)
    return {"env": env, "data": data, "root": root}


def config(trainers: dict[str, Any], name: str, trial: int, epochs: int = 1) -> dict[str, Any]:
    work = trainers["root"] / "trials" / str(trial)
    return {"entry_point": f"{name} = {ENTRY_POINTS[name]}", "data_dir": str(trainers["data"]),
            "work_dir": str(work), "params": {}, "epochs": epochs, "workers": 1, "index": 0,
            "tf_config": None, "collective_timeout_s": 60.0, "gpus": 0,
            "output_uri": str(trainers["root"] / "models"), "webhdfs_url": "",
            "result_file": str(work / "result.json"),
            "provenance": {"job": "j", "pod": "p", "source": f"test trial {trial}"}}


@pytest.fixture
def zygote(trainers: dict[str, Any]) -> Iterator[Zygote]:
    z = Zygote(Path(sys.executable), trainers["env"])
    yield z
    z.close()
    assert z.proc.returncode is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_forked_trials_hand_over_results_and_contain_every_failure(trainers, zygote):
    first = zygote.start(config(trainers, "digits", 1))
    events = list(first.events())
    assert [e["epoch"] for e in events if e.get("phase") == "training"] == [1]
    assert first.result is not None and first.finish() == 0
    assert first.pid is not None and first.pid != zygote.proc.pid
    model = Path(first.result["model_uri"])
    assert json.loads((model / "metadata.json").read_text())["holdout"]["metric"] == "accuracy"

    broken = zygote.start(config(trainers, "broken", 2))  # reaps the first one before forking
    assert not _alive(first.pid)
    failed = [e for e in broken.events() if e.get("phase") == "failed"]
    assert failed and "learning_rate must be positive" in failed[0]["message"]
    assert broken.result is None and broken.finish() == exitcodes.DETERMINISTIC

    crashed = zygote.start(config(trainers, "crash", 3))
    list(crashed.events())
    assert crashed.result is None and crashed.finish() == -6  # SIGABRT, the zygote lives on

    slow = zygote.start(config(trainers, "slow", 4))
    seen = 0
    for event in slow.events():
        seen += event.get("phase") == "training"
        if seen == 2:
            slow.kill()  # what a prune does
            break
    assert slow.finish() == -9 and not zygote.dead

    again = zygote.start(config(trainers, "digits", 5))  # still forks after all of that
    list(again.events())
    assert again.finish() == 0 and again.result["version"] == first.result["version"] + 1


def test_a_dead_zygote_ends_its_trial_and_says_so(trainers, zygote):
    trial = zygote.start(config(trainers, "slow", 6))
    events = trial.events()
    assert next(events)["phase"] == "training"
    zygote.kill()  # e.g. the OOM killer took the zygote
    rest = list(events)  # ends: no `done`, no `exited` will come
    assert all(e.get("phase") == "training" for e in rest) and trial.result is None
    assert trial.finish() == -9 and zygote.dead
    with pytest.raises(RuntimeError, match="zygote died"):
        zygote.start(config(trainers, "digits", 7))
    # the orphaned trial process was killed with its process group, or is reparented:
    # either way it no longer reports to anyone
    if trial.pid is not None and _alive(trial.pid):
        os.kill(trial.pid, 9)


def test_a_spawned_trial_hands_over_its_result_before_it_exits(trainers):
    child = SpawnedTrial(Path(sys.executable), trainers["env"]).start(
        config(trainers, "digits", 8))
    list(child.events())
    assert child.result is not None and child.finish() == 0  # at once: reaped in the background
    deadline = time.monotonic() + 30
    while child.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert child.proc.returncode == 0
