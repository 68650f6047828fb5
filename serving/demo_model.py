"""The demo image-tagging model: a small CNN on scikit-learn's 8x8 digits.

`build_demo(output)` trains it (seconds on one core), exports a SavedModel whose
`serving_default` signature takes `image` float32[-1, 8, 8, 1] (pixels scaled to 0..1)
and returns `probabilities` float32[-1, 10], converts LiteRT fp32 and full-integer int8
variants, measures all three on a stratified holdout with the serving runtimes, and
publishes the version into the store (`serving.store`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from serving import store as store_mod

log = logging.getLogger(__name__)

LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
SEED = 7


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_holdout, y_holdout), images float32 [n, 8, 8, 1] in 0..1."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_ho, y_tr, y_ho = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    return x_tr, y_tr, x_ho, y_ho


def train(x: np.ndarray, y: np.ndarray, epochs: int) -> Any:
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([
        keras.Input((8, 8, 1), name=INPUT_NAME),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(len(LABELS), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def export_saved_model(model: Any, path: Path) -> None:
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda image: {OUTPUT_NAME: model(image, training=False)},
        input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def convert_tflite(saved_model: Path, calibration: np.ndarray | None) -> bytes:
    """fp32 when `calibration` is None, else full-integer int8 (int8 input and output)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if calibration is not None:
        def representative() -> Any:
            for row in calibration:
                yield [row[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def accuracy(runtime: Any, x: np.ndarray, y: np.ndarray, batch: int = 32) -> float:
    hits = 0
    for start in range(0, len(x), batch):
        out = runtime.predict({INPUT_NAME: x[start:start + batch]})[OUTPUT_NAME]
        hits += int((out.argmax(axis=1) == y[start:start + batch]).sum())
    return round(hits / len(x), 4)


def build_demo(output: str, *, epochs: int = 12, version: int = 0, webhdfs_url: str = "") -> int:
    """Train, export, evaluate and publish the demo model; return the published version."""
    import tensorflow as tf

    from serving import runtime as rt

    started = time.perf_counter()
    x_tr, y_tr, x_ho, y_ho = load_digits_split()
    model = train(x_tr, y_tr, epochs)
    train_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="demo-model-") as tmp:
        vdir = Path(tmp) / "v"
        export_saved_model(model, vdir)
        (vdir / store_mod.TFLITE_FP32).write_bytes(convert_tflite(vdir, None))
        (vdir / store_mod.TFLITE_INT8).write_bytes(convert_tflite(vdir, x_tr[:200]))
        signature = rt.Signature.from_dict({
            "name": "serving_default",
            "inputs": {INPUT_NAME: {"dtype": "float32", "shape": [-1, 8, 8, 1]}},
            "outputs": {OUTPUT_NAME: {"dtype": "float32", "shape": [-1, len(LABELS)]}},
        })
        fp32 = rt.TFLiteRuntime(vdir / store_mod.TFLITE_FP32, signature, "tflite-fp32")
        int8 = rt.TFLiteRuntime(vdir / store_mod.TFLITE_INT8, signature, "tflite-int8")
        holdout = {
            "metric": "accuracy",
            "n": len(x_ho),
            "savedmodel": accuracy(rt.SavedModelRuntime(vdir), x_ho, y_ho),
            "tflite_fp32": accuracy(fp32, x_ho, y_ho),
            "tflite_int8": accuracy(int8, x_ho, y_ho),
        }
        store_mod.seal(vdir, {
            "name": "digits-cnn",
            "signature": signature.to_dict(),
            "labels": LABELS,
            "label_output": OUTPUT_NAME,
            "holdout": holdout,
            "variants": {"tflite_fp32": store_mod.TFLITE_FP32,
                         "tflite_int8": store_mod.TFLITE_INT8},
            "provenance": {
                "dataset": "sklearn.datasets.load_digits (8x8, pixels/16)",
                "split": f"stratified 80/20, random_state={SEED}",
                "trainer": "serving.demo_model.build_demo",
                "epochs": epochs,
                "seed": SEED,
                "train_seconds": round(train_s, 2),
                "tensorflow": tf.__version__,
                "int8": "full-integer PTQ, 200 training images as representative data",
                "created_unix": int(time.time()),
                "host_user": os.environ.get("USER", ""),
            },
        })
        published = store_mod.Store(output, webhdfs_url=webhdfs_url).publish(vdir, version)
    log.info("published %s version %d: holdout %s", output, published, holdout)
    return published
