"""build_artifact/evaluate on a real (briefly trained) SavedModel with serving's runtimes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from serving import runtime as rt
from serving import store as store_mod
from tuning import artifact
from tuning.contract import HOLDOUT_FILE, TrainerError, TrainResult
from tuning.dataset import build_digits_dataset, load_split

# the TFLite calibrator still runs the deprecated tf.lite.Interpreter internally
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
LABELS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_digits_dataset(tmp_path_factory.mktemp("ds"), 1)


@pytest.fixture(scope="module")
def result(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    from serving import demo_model

    x_tr, y_tr, _x, _y = load_split(data_dir)
    model = demo_model.train(x_tr, y_tr, epochs=3)
    path = tmp_path_factory.mktemp("work") / "saved_model"
    demo_model.export_saved_model(model, path)
    return TrainResult(saved_model=path, input_name="image", input_shape=[-1, 8, 8, 1],
                       label_output="probabilities", labels=LABELS,
                       metrics={"loss": 0.5}, num_replicas_in_sync=2, name="digits-cnn",
                       code_version="test 0.1")


def test_build_artifact_layout_and_metadata(result: TrainResult, data_dir: Path,
                                            tmp_path: Path) -> None:
    out = tmp_path / "v"
    meta = artifact.build_artifact(result, data_dir, out, {
        "params": {"learning_rate": 0.003}, "epochs": 3, "job": "trial-1", "pod": "trial-1-0",
        "dataset_version": 1})
    assert meta == store_mod.verify(out, str(out))
    names = {p.name for p in out.iterdir()}
    assert {store_mod.SAVED_MODEL_PB, "variables", store_mod.TFLITE_FP32,
            store_mod.TFLITE_INT8, store_mod.METADATA} <= names
    assert meta["name"] == "digits-cnn" and meta["labels"] == LABELS
    assert meta["label_output"] == "probabilities"
    assert meta["signature"] == {
        "name": "serving_default",
        "inputs": {"image": {"dtype": "float32", "shape": [-1, 8, 8, 1]}},
        "outputs": {"probabilities": {"dtype": "float32", "shape": [-1, 10]}},
    }
    assert meta["variants"] == {"tflite_fp32": store_mod.TFLITE_FP32,
                                "tflite_int8": store_mod.TFLITE_INT8}
    holdout = meta["holdout"]
    assert holdout["metric"] == "accuracy" and holdout["direction"] == "maximize"
    assert holdout["n"] == 360 and holdout["value"] == holdout["savedmodel"]
    assert holdout["savedmodel"] > 0.8  # three epochs are plenty to beat chance
    assert abs(holdout["tflite_fp32"] - holdout["savedmodel"]) < 0.006
    assert abs(holdout["tflite_int8"] - holdout["savedmodel"]) < 0.05
    prov = meta["provenance"]
    assert prov["dataset"] == "digits" and prov["dataset_version"] == 1
    assert prov["code_version"] == "test 0.1" and prov["num_replicas_in_sync"] == 2
    assert prov["train_metrics"] == {"loss": 0.5}
    assert prov["params"] == {"learning_rate": 0.003} and prov["pod"] == "trial-1-0"
    assert prov["int8"].startswith("full-integer PTQ, 200 training images")

    # serving's own selection loads it, and evaluate() agrees with the recorded metric
    runtime, selection = rt.load(out, meta, choice="auto", primary_batch=1, max_batch=8,
                                 num_threads=1, pool_size=1, iters=3)
    assert selection.runtime in {"savedmodel", "tflite-fp32", "tflite-int8"}
    _x, _y, x_ho, _y_ho = load_split(data_dir)
    assert runtime.predict({"image": x_ho[:3]})["probabilities"].shape == (3, 10)
    assert artifact.evaluate(out, data_dir / HOLDOUT_FILE) == holdout["savedmodel"]
    assert artifact.evaluate(out, data_dir) == holdout["savedmodel"]  # a dataset directory


def test_int8_failure_publishes_without_it(result: TrainResult, data_dir: Path,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    real = artifact.convert_tflite

    def no_int8(saved: Path, calibration: np.ndarray | None, name: str) -> bytes:
        if calibration is not None:
            raise RuntimeError("quantizer exploded")
        return real(saved, calibration, name)

    monkeypatch.setattr(artifact, "convert_tflite", no_int8)
    out = tmp_path / "v"
    meta = artifact.build_artifact(result, data_dir, out, {})
    store_mod.verify(out, str(out))
    assert not (out / store_mod.TFLITE_INT8).exists()
    assert meta["variants"] == {"tflite_fp32": store_mod.TFLITE_FP32}
    assert "tflite_int8" not in meta["holdout"]
    assert meta["provenance"]["int8"] == ("not published: conversion failed (RuntimeError: "
                                          "quantizer exploded)")
    assert store_mod.TFLITE_INT8 not in meta["files"]


@pytest.mark.parametrize(("change", "match"), [
    ({"label_output": "logits"}, "serving_default has no output 'logits'"),
    ({"input_name": "pixels"}, "serving_default has no input 'pixels'"),
    ({"input_shape": [-1, 64]}, r"input 'image' is \[-1, 8, 8, 1\], the trainer said \[-1, 64\]"),
    ({"labels": ["a", "b"]}, "has 10 classes but the trainer gave 2 labels"),
    ({"saved_model": Path("/nonexistent/sm")}, "not a SavedModel directory"),
])
def test_result_mismatch_is_a_trainer_error(result: TrainResult, data_dir: Path,
                                            tmp_path: Path, change: dict, match: str) -> None:
    with pytest.raises(TrainerError, match=match):
        artifact.build_artifact(dataclasses.replace(result, **change), data_dir,
                                tmp_path / "v", {})
    assert not (tmp_path / "v" / store_mod.METADATA).exists()


def test_out_dir_must_be_empty(result: TrainResult, data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "stray").write_text("x")
    with pytest.raises(FileExistsError, match="is not empty"):
        artifact.build_artifact(result, data_dir, tmp_path / "v", {})


def test_evaluate_refuses_a_corrupt_version(result: TrainResult, data_dir: Path,
                                            tmp_path: Path) -> None:
    out = tmp_path / "v"
    artifact.build_artifact(result, data_dir, out, {})
    meta = json.loads((out / store_mod.METADATA).read_text())
    meta["label_output"] = "nope"
    store_mod.seal(out, {k: v for k, v in meta.items() if k not in ("files", "format_version")})
    with pytest.raises(store_mod.ArtifactCorrupt, match="label_output 'nope' is not an output"):
        artifact.evaluate(out, data_dir / HOLDOUT_FILE)
    with pytest.raises(TrainerError, match=r"none\.npz: missing"):
        artifact.evaluate(out, tmp_path / "none.npz")
    (out / store_mod.TFLITE_FP32).write_bytes(b"changed")
    with pytest.raises(store_mod.ArtifactCorrupt, match="model_fp32.tflite fails its sha256"):
        artifact.evaluate(out, data_dir / HOLDOUT_FILE)
