"""The BentoML 1.4 peer: the same SavedModel through its concrete function, one worker.

Run by bench/serving/run.py inside its own venv: `bentoml serve bento_service:Digits`.
BENCH_MODEL_DIR names the version directory; BENCH_BENTO_BATCHABLE=1 turns on BentoML's
adaptive batching (max_batch_size 64, max_latency_ms 1000).
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import tensorflow as tf

MODEL_DIR = os.environ["BENCH_MODEL_DIR"]
BATCHABLE = os.environ.get("BENCH_BENTO_BATCHABLE", "0") == "1"
API_OPTS = ({"batchable": True, "batch_dim": (0, 0), "max_batch_size": 64,
             "max_latency_ms": 1000} if BATCHABLE else {})


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Digits:
    def __init__(self) -> None:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self.fn = tf.saved_model.load(MODEL_DIR).signatures["serving_default"]
        for b in (1, 2, 4, 8, 16, 32, 64):
            self.fn(image=tf.zeros([b, 8, 8, 1]))

    @bentoml.api(**API_OPTS)
    def predict(self, image: np.ndarray) -> np.ndarray:
        return self.fn(image=tf.constant(image, tf.float32))["probabilities"].numpy()
