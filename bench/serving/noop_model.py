"""A no-op model with the demo model's signature, for the HTTP-only ceiling of the benchmark.

`probabilities = reshape(image, [-1, 64])[:, :10]`: same input parsing and same-sized output
as the digits CNN, almost no compute. Written as a store version (SavedModel + LiteRT fp32)
with the same metadata layout, so the real server serves it unchanged.

Usage: python bench/serving/noop_model.py OUTPUT_BASE
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tensorflow as tf  # noqa: E402

from serving import store  # noqa: E402
from serving.demo_model import INPUT_NAME, LABELS, OUTPUT_NAME  # noqa: E402


class NoOp(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name=INPUT_NAME)])
    def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_NAME: tf.reshape(image, [-1, 64])[:, :10]}


def build(output: str) -> int:
    module = NoOp()
    with tempfile.TemporaryDirectory() as tmp:
        vdir = Path(tmp) / "v"
        tf.saved_model.save(module, str(vdir), signatures={"serving_default": module.serve})
        lite = tf.lite.TFLiteConverter.from_saved_model(str(vdir)).convert()
        (vdir / store.TFLITE_FP32).write_bytes(lite)
        store.seal(vdir, {
            "name": "noop",
            "signature": {"name": "serving_default",
                          "inputs": {INPUT_NAME: {"dtype": "float32", "shape": [-1, 8, 8, 1]}},
                          "outputs": {OUTPUT_NAME: {"dtype": "float32", "shape": [-1, 10]}}},
            "labels": LABELS, "label_output": OUTPUT_NAME,
            "variants": {"tflite_fp32": store.TFLITE_FP32},
            "provenance": {"trainer": "bench/serving/noop_model.py", "purpose": "HTTP ceiling"},
        })
        return store.Store(output).publish(vdir)


if __name__ == "__main__":
    print(build(sys.argv[1]))
