"""The KServe 0.21 peer: the same artifact through a small custom `kserve.Model`, one worker.

Run by bench/serving/run.py inside its own venv:

    python kserve_model.py --port PORT --model-dir VERSION_DIR --runtime savedmodel|tflite-fp32

V1 (`{"instances": [...]}` -> `{"predictions": [...]}`) and V2 (`InferRequest`) predict, the
SavedModel through its `serving_default` concrete function or LiteRT fp32 (the artifact's
`tflite_fp32` variant), 1 thread. KServe 0.21's REST server has no host option: it passes
`host="0.0.0.0"` to uvicorn (kserve/protocol/rest/server.py), so `LoopbackRESTServer` sets
uvicorn's host to 127.0.0.1 before anything binds; run.py checks the listening sockets too.
gRPC is off (it would listen on [::]), as are the access log and per-request latency log.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

HOST = "127.0.0.1"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--model-dir", type=Path, required=True, help="the version directory")
    ap.add_argument("--runtime", choices=("savedmodel", "tflite-fp32"), default="savedmodel")
    ap.add_argument("--model-name", default="digits")
    return ap.parse_args(argv)


# Parsed before kserve is imported: kserve.model_server parses sys.argv at import time.
ARGS = parse_args(sys.argv[1:])
sys.argv = sys.argv[:1]

import kserve  # noqa: E402
import kserve.model_server as kserve_model_server  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402
from kserve.protocol.rest.server import RESTServer  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402


class LoopbackRESTServer(RESTServer):
    """KServe's REST server with uvicorn bound to 127.0.0.1 and no access log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.host = HOST
        # uvicorn logs access lines when its logger has handlers; KServe's logging config adds one.
        self.config.access_log = False
        access = logging.getLogger("uvicorn.access")
        access.handlers.clear()
        access.propagate = False


def savedmodel_fn(version_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return lambda x: fn(image=tf.constant(x, tf.float32))["probabilities"].numpy()


def litert_fn(version_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """LiteRT fp32, one interpreter per batch size seen (resizing per call would dominate)."""
    from ai_edge_litert.interpreter import Interpreter

    meta = json.loads((version_dir / "metadata.json").read_text())
    content = (version_dir / meta["variants"]["tflite_fp32"]).read_bytes()
    by_size: dict[int, tuple[Any, int, int]] = {}

    def run(x: np.ndarray) -> np.ndarray:
        entry = by_size.get(len(x))
        if entry is None:
            interp = Interpreter(model_content=content, num_threads=1)
            inp = interp.get_input_details()[0]["index"]
            interp.resize_tensor_input(inp, list(x.shape))
            interp.allocate_tensors()
            entry = by_size[len(x)] = (interp, inp, interp.get_output_details()[0]["index"])
        interp, inp, out = entry
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(out).copy()

    return run


class Digits(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str, version_dir: Path, runtime: str) -> None:
        super().__init__(name)
        self.version_dir, self.runtime = version_dir, runtime
        self.fn: Callable[[np.ndarray], np.ndarray] | None = None

    def load(self) -> bool:
        make = savedmodel_fn if self.runtime == "savedmodel" else litert_fn
        self.fn = make(self.version_dir)
        for b in (1, 2, 4, 8, 16, 32, 64):
            self.fn(np.zeros([b, 8, 8, 1], np.float32))
        self.ready = True
        return True

    def predict(self, payload: dict[str, Any] | InferRequest,
                headers: dict[str, str] | None = None) -> dict[str, Any] | InferResponse:
        assert self.fn is not None
        if isinstance(payload, InferRequest):
            x = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
            y = self.fn(x)
            out = InferOutput("probabilities", list(y.shape), "FP32", y.tolist())
            return InferResponse(payload.id or generate_uuid(), self.name, [out])
        x = np.asarray(payload["instances"], np.float32)
        return {"predictions": self.fn(x).tolist()}


def main() -> None:
    version = metadata.version("kserve")
    if version != "0.21.0":  # the loopback override below depends on 0.21's internals
        sys.exit(f"kserve {version} found; this peer is written for kserve 0.21.0")
    kserve_model_server.RESTServer = LoopbackRESTServer  # type: ignore[misc]
    model = Digits(ARGS.model_name, ARGS.model_dir, ARGS.runtime)
    model.load()
    kserve.ModelServer(http_port=ARGS.port, workers=1, enable_grpc=False,
                       enable_latency_logging=False).start([model])


if __name__ == "__main__":
    main()
