"""The example training package: built into a wheel offline, installed into a temporary
target, loaded through its `modelfleet.trainers` entry point and trained for real (CPU).

The multi-worker code path (MultiWorkerMirroredStrategy + custom loop) runs here with a
single worker and no TF_CONFIG; a real two-process cluster would need TF servers listening
on every address, so the 2-pod run is tested with the cluster, not here.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from serving import runtime as rt
from serving import store as store_mod
from tuning import artifact
from tuning.contract import ENTRY_POINT_GROUP, TRAIN_FILE, TrainContext, TrainerError
from tuning.dataset import build_digits_dataset, load_split

# the TFLite calibrator still runs the deprecated tf.lite.Interpreter internally
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
REPO = Path(__file__).resolve().parents[2]
PACKAGE_SRC = REPO / "tuning" / "example_trainer"
EPOCHS = 15  # ~4 s on 2 cores; holdout accuracy ~0.98


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                   check=True, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("trainer-build")
    src = Path(shutil.copytree(PACKAGE_SRC, tmp / "src", ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__")))  # builds never write into the repo
    pip("wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", str(tmp / "dist"),
        str(src))
    (built,) = (tmp / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def site(wheel: Path) -> Iterator[Path]:
    target = wheel.parent.parent / "site"
    pip("install", "--no-build-isolation", "--no-deps", "--no-index", "--target", str(target),
        str(wheel))
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m == "digits_trainer" or
                 m.startswith("digits_trainer.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def entry(site: Path) -> md.EntryPoint:
    found = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP, name="digits")
             if Path(str(ep.dist.locate_file(""))).resolve() == site.resolve()]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def module(entry: md.EntryPoint) -> ModuleType:
    train = entry.load()
    mod = sys.modules[train.__module__]
    assert Path(mod.__file__).is_relative_to(Path(str(entry.dist.locate_file(""))))
    return mod


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_digits_dataset(tmp_path_factory.mktemp("ds"), 1)


class Reports:
    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, float]]] = []

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        assert all(isinstance(v, float) for v in metrics.values()), metrics
        self.calls.append((epoch, metrics))


def context(data_dir: Path, work: Path, report: Reports, *, params: dict | None = None,
            epochs: int = EPOCHS, **kw: object) -> TrainContext:
    return TrainContext(data_dir=data_dir, work_dir=work, params=params or {}, epochs=epochs,
                        report=report, **kw)


def holdout_accuracy(saved_model: Path, data_dir: Path) -> float:
    _x, _y, x_ho, y_ho = load_split(data_dir)
    out = rt.SavedModelRuntime(saved_model).predict({"image": x_ho})["probabilities"]
    return float((out.argmax(axis=1) == y_ho).mean())


def test_wheel_is_self_contained(wheel: Path) -> None:
    assert wheel.name == "digits_trainer-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read("digits_trainer-1.0.0.dist-info/METADATA").decode()
        eps = zf.read("digits_trainer-1.0.0.dist-info/entry_points.txt").decode()
    assert {n.split("/")[0] for n in names} == {"digits_trainer",
                                                "digits_trainer-1.0.0.dist-info"}
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == ["Requires-Dist: numpy>=1.26"]
    assert f"[{ENTRY_POINT_GROUP}]" in eps and "digits = digits_trainer.train:train" in eps


def test_main_project_does_not_package_it() -> None:
    from setuptools import find_packages

    assert not (PACKAGE_SRC / "__init__.py").exists()
    found = find_packages(where=str(REPO),
                          include=["fleet*", "tui*", "serving*", "tuning*", "devcluster*"])
    assert "tuning" in found
    assert not [p for p in found if "example_trainer" in p or "digits_trainer" in p]


def test_package_imports_only_the_contract_from_tuning() -> None:
    for path in (PACKAGE_SRC / "digits_trainer").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] in ("tuning", "serving", "fleet", "tui", "devcluster"):
                    assert name == "tuning.contract", f"{path.name} imports {name}"


def test_trains_through_entry_point_and_publishes(entry: md.EntryPoint, module: ModuleType,
                                                  data_dir: Path, tmp_path: Path) -> None:
    assert entry.dist.version == "1.0.0"
    reports = Reports()
    started = time.perf_counter()
    result = entry.load()(context(data_dir, tmp_path / "work", reports))
    train_s = time.perf_counter() - started
    assert [e for e, _ in reports.calls] == list(range(1, EPOCHS + 1))
    assert all(set(m) == {"loss", "accuracy", "val_loss", "val_accuracy"}
               for _, m in reports.calls)
    assert reports.calls[-1][1]["loss"] < reports.calls[0][1]["loss"] / 5
    assert result.metrics == reports.calls[-1][1]
    assert result.saved_model == tmp_path / "work" / "saved_model"
    assert (result.input_name, result.input_shape, result.label_output) == (
        "image", [-1, 8, 8, 1], "probabilities")
    assert result.labels[0] == "zero" and len(result.labels) == 10
    assert result.num_replicas_in_sync == 1
    assert result.code_version == "digits-trainer 1.0.0"

    started = time.perf_counter()
    out = tmp_path / "version"
    meta = artifact.build_artifact(result, data_dir, out, {"epochs": EPOCHS, "params": {}})
    convert_s = time.perf_counter() - started
    assert store_mod.verify(out, str(out)) == meta
    holdout = meta["holdout"]
    print(f"\ndigits-trainer fit: {EPOCHS} epochs {train_s:.1f}s, artifact {convert_s:.1f}s, "
          f"holdout {holdout}")
    assert holdout["savedmodel"] >= 0.95
    assert holdout["tflite_fp32"] >= 0.95 and holdout["tflite_int8"] >= 0.94
    assert meta["provenance"]["code_version"] == "digits-trainer 1.0.0"

    _x, _y, x_ho, y_ho = load_split(data_dir)
    served = rt.SavedModelRuntime(out).predict({"image": x_ho[:16]})["probabilities"]
    assert served.shape == (16, 10)
    np.testing.assert_allclose(served.sum(axis=1), 1.0, rtol=1e-5)
    assert (served.argmax(axis=1) == y_ho[:16]).mean() >= 0.85
    assert store_mod.Store(str(tmp_path / "store")).publish(out, 0) == 1


def test_multi_worker_loop_single_process(module: ModuleType, data_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    reports = Reports()
    started = time.perf_counter()
    result = module.train_multi_worker(context(data_dir, tmp_path / "w", reports, epochs=10,
                                               collective_timeout_s=30.0))
    train_s = time.perf_counter() - started
    assert [e for e, _ in reports.calls] == list(range(1, 11))
    assert all(set(m) == {"loss", "accuracy", "val_loss", "val_accuracy"}
               for _, m in reports.calls)
    assert reports.calls[-1][1]["loss"] < reports.calls[0][1]["loss"] / 5
    assert result.num_replicas_in_sync == 1
    assert result.saved_model == tmp_path / "w" / "saved_model"
    acc = holdout_accuracy(result.saved_model, data_dir)
    print(f"\ndigits-trainer custom loop: 10 epochs {train_s:.1f}s, holdout {acc:.4f}")
    assert acc >= 0.95


TWO_REPLICAS = """
import json, sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from digits_trainer import train as T
from tuning.contract import TrainContext
reports = []
ctx = TrainContext(data_dir=Path(sys.argv[1]), work_dir=Path(sys.argv[2]), params={
    "dropout": "0.1"}, epochs=10, report=lambda e, m: reports.append([e, m]))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
r = T.train_multi_worker(ctx, strategy=strategy)
print(json.dumps({"replicas": r.num_replicas_in_sync, "saved_model": str(r.saved_model),
                  "reports": reports}))
"""


def test_custom_loop_with_two_replicas(site: Path, data_dir: Path, tmp_path: Path) -> None:
    """The same loop with two in-sync replicas (two logical CPUs, so a subprocess)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, "-c", TWO_REPLICAS, str(data_dir),
                           str(tmp_path / "w")], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["replicas"] == 2
    reports = got["reports"]
    assert [e for e, _ in reports] == list(range(1, 11))
    assert reports[-1][1]["loss"] < reports[0][1]["loss"] / 5
    # global batch 2 * 64: 1293 // 128 = 10 steps, so 1280 samples per epoch
    assert all(abs(m["accuracy"] * 1280 - round(m["accuracy"] * 1280)) < 1e-6
               for _, m in reports)
    acc = holdout_accuracy(Path(got["saved_model"]), data_dir)
    print(f"\ndigits-trainer custom loop, 2 replicas: holdout {acc:.4f}")
    assert acc >= 0.95


def test_non_chief_exports_to_a_deleted_directory(module: ModuleType, data_dir: Path,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    reports = Reports()
    work = tmp_path / "w"
    result = module.train_multi_worker(context(data_dir, work, reports, epochs=2, index=1))
    assert reports.calls == []  # only the chief reports
    assert not result.saved_model.exists()
    assert result.saved_model.name == "saved_model"
    assert result.saved_model.parent.name.startswith("saved_model.worker-1-")
    assert list(work.iterdir()) == []  # the temporary export is gone
    assert set(result.metrics) == {"loss", "accuracy"}


def test_workers_must_match_tf_config(entry: md.EntryPoint, data_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    train = entry.load()
    ctx = context(data_dir, tmp_path, Reports(), workers=2, index=1)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TrainerError, match=r"ctx\.workers=2 but \$TF_CONFIG is not set"):
        train(ctx)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    with pytest.raises(TrainerError, match=r"names 1 workers: \['a:1'\]"):
        train(ctx)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:1"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    with pytest.raises(TrainerError, match=r"is not worker 1 \(ctx\.index\)"):
        train(ctx)
    monkeypatch.setenv("TF_CONFIG", "{nope")
    with pytest.raises(TrainerError, match="not a worker cluster spec"):
        train(ctx)


def test_params_are_coerced(module: ModuleType) -> None:
    p = module.parse_params({"learning_rate": "0.01", "batch_size": "32", "dense": 128.0,
                             "dropout": "0.25", "conv1": " 8 ", "seed": "64.0"})
    assert (p.learning_rate, p.batch_size, p.dense, p.dropout, p.conv1, p.seed) == (
        0.01, 32, 128, 0.25, 8, 64)
    assert isinstance(p.batch_size, int) and isinstance(p.learning_rate, float)
    assert module.parse_params({}) == module.Params()
    assert module.parse_params({}).learning_rate == 3e-3


@pytest.mark.parametrize(("params", "match"), [
    ({"lr": 0.1, "epochs": 3}, r"unknown parameters epochs, lr; digits-trainer takes "
                               r"learning_rate, batch_size"),
    ({"learning_rate": "fast"}, r"learning_rate='fast' is not a number"),
    ({"learning_rate": 0}, r"learning_rate=0 must be in \(0, 1\]"),
    ({"learning_rate": "nan"}, "learning_rate='nan' is not finite"),
    ({"batch_size": "6.5"}, r"batch_size='6\.5' is not an integer"),
    ({"batch_size": 0}, r"batch_size=0 must be in \[1, 4096\]"),
    ({"conv1": True}, "conv1=True: expected int, got a bool"),
    ({"dropout": "0.95"}, r"dropout='0\.95' must be in \[0, 0\.9\]"),
    ({"seed": -1}, r"seed=-1 must be in \[0, 2147483647\]"),
])
def test_bad_params_raise_before_training(entry: md.EntryPoint, data_dir: Path, tmp_path: Path,
                                          params: dict, match: str) -> None:
    with pytest.raises(TrainerError, match=match):
        entry.load()(context(data_dir, tmp_path, Reports(), params=params))
    assert not (tmp_path / "saved_model").exists()


def test_bad_inputs(entry: md.EntryPoint, data_dir: Path, tmp_path: Path) -> None:
    train = entry.load()
    with pytest.raises(TrainerError, match="epochs must be a positive integer, got 0"):
        train(context(data_dir, tmp_path, Reports(), epochs=0))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainerError, match=rf"{TRAIN_FILE}: missing"):
        train(context(empty, tmp_path, Reports()))
    np.savez(empty / TRAIN_FILE, x=np.zeros((30, 64), np.float32), y=np.zeros(30, np.int64))
    with pytest.raises(TrainerError, match=r"x must be float32 \[n, 8, 8, 1\], got float32 "
                                           r"\[30, 64\]"):
        train(context(empty, tmp_path, Reports()))
    np.savez(empty / TRAIN_FILE, x=np.zeros((30, 8, 8, 1), np.float32),
             y=np.full(30, 10, np.int64))
    with pytest.raises(TrainerError, match=r"labels must be 0\.\.9, found 10\.\.10"):
        train(context(empty, tmp_path, Reports()))
