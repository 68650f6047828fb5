"""Model runtimes: a SavedModel concrete function and LiteRT fp32/int8, plus the selection rule.

Every runtime maps `{input name: ndarray with a batch dimension}` to
`{output name: ndarray}` and is safe to call from several threads. Keras `predict` is
never used: SavedModels run through their signature's concrete function (one trace serves
every batch size) and LiteRT through interpreters pre-sized for each served batch size.
"""

from __future__ import annotations

import logging
import queue
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from serving import store as store_mod

log = logging.getLogger(__name__)

V2_DATATYPES = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32",
    "uint64": "UINT64", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64", "string": "BYTES",
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """dtype is a numpy/TF name (`float32`, `string`); -1 marks a variable dimension."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def datatype(self) -> str:
        return V2_DATATYPES.get(self.dtype, self.dtype.upper())

    @property
    def np_dtype(self) -> Any:
        return np.object_ if self.dtype == "string" else np.dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        def specs(part: dict[str, Any]) -> dict[str, TensorSpec]:
            return {k: TensorSpec(k, v["dtype"], tuple(v["shape"])) for k, v in part.items()}

        return cls(data.get("name", "serving_default"), specs(data["inputs"]),
                   specs(data["outputs"]))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "inputs": {k: v.to_dict() for k, v in self.inputs.items()},
                "outputs": {k: v.to_dict() for k, v in self.outputs.items()}}


class Runtime(Protocol):
    name: str
    platform: str
    signatures: dict[str, Signature]
    default_signature: str

    def predict(self, inputs: dict[str, np.ndarray],
                signature: str = "serving_default") -> dict[str, np.ndarray]: ...


def _tf_spec(name: str, spec: Any) -> TensorSpec:
    shape = tuple(-1 if d is None else int(d) for d in spec.shape.as_list())
    return TensorSpec(name, spec.dtype.name, shape)


class SavedModelRuntime:
    """Runs a SavedModel's signatures as concrete functions."""

    platform = "tensorflow_savedmodel"

    def __init__(self, path: Path, name: str = "savedmodel", intra_op_threads: int = 0) -> None:
        import tensorflow as tf

        if intra_op_threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already initialised in this process
                pass
        self.name = name
        self._tf = tf
        self._loaded = tf.saved_model.load(str(path))
        self._fns = dict(self._loaded.signatures)
        self.signatures: dict[str, Signature] = {}
        for sig_name, fn in self._fns.items():
            inputs = {k: _tf_spec(k, s) for k, s in fn.structured_input_signature[1].items()}
            outputs = {k: _tf_spec(k, s) for k, s in fn.structured_outputs.items()}
            self.signatures[sig_name] = Signature(sig_name, inputs, outputs)
        self.default_signature = (
            "serving_default" if "serving_default" in self._fns else next(iter(self._fns))
        )

    def predict(self, inputs: dict[str, np.ndarray],
                signature: str = "serving_default") -> dict[str, np.ndarray]:
        fn = self._fns[signature]
        result = fn(**{k: self._tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in result.items()}


def batch_sizes_upto(max_batch: int) -> list[int]:
    """Powers of two below `max_batch`, then `max_batch` itself."""
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 2
    return [*sizes, max_batch]


class TFLiteRuntime:
    """A LiteRT model; inputs are padded up to the next served batch size.

    Quantized (int8/uint8) inputs and outputs are converted from and to the float
    signature with the tensor's scale and zero point.
    """

    platform = "tensorflow_tflite"

    def __init__(self, path: Path, signature: Signature, name: str, *, num_threads: int = 1,
                 max_batch: int = 32, pool_size: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.name = name
        self.path = Path(path)
        self._content = self.path.read_bytes()
        self._new = lambda: Interpreter(model_content=self._content, num_threads=num_threads)
        self.signatures = {signature.name: signature}
        self.default_signature = signature.name
        self._sig = signature
        self.sizes = batch_sizes_upto(max_batch)
        self._pool: queue.SimpleQueue[dict[int, Any]] = queue.SimpleQueue()
        for _ in range(pool_size):
            self._pool.put({})
        probe = self._new()
        runner = probe.get_signature_runner(signature.name)
        self._in = {k: (d["index"], d["dtype"], d["quantization"])
                    for k, d in runner.get_input_details().items()}
        self._out = {k: (d["index"], d["dtype"], d["quantization"])
                     for k, d in runner.get_output_details().items()}
        missing = set(signature.inputs) - set(self._in)
        if missing:
            raise store_mod.ArtifactCorrupt(str(path), f"LiteRT model lacks inputs {missing}")

    def prepare(self) -> None:
        """Create and run an interpreter for every served batch size in every pool slot."""
        caches = [self._pool.get() for _ in range(self._pool.qsize())]
        try:
            for cache in caches:
                for size in self.sizes:
                    self._interpreter(cache, size).invoke()
        finally:
            for cache in caches:
                self._pool.put(cache)

    def _interpreter(self, cache: dict[int, Any], size: int) -> Any:
        interp = cache.get(size)
        if interp is None:
            interp = self._new()
            for key, (index, _dt, _q) in self._in.items():
                shape = [size, *[1 if d < 0 else d for d in self._sig.inputs[key].shape[1:]]]
                interp.resize_tensor_input(index, shape)
            interp.allocate_tensors()
            cache[size] = interp
        return interp

    def predict(self, inputs: dict[str, np.ndarray],
                signature: str = "serving_default") -> dict[str, np.ndarray]:
        n = len(next(iter(inputs.values())))
        if n > self.sizes[-1]:  # split oversized calls
            parts = [self.predict({k: v[i:i + self.sizes[-1]] for k, v in inputs.items()})
                     for i in range(0, n, self.sizes[-1])]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        size = next(s for s in self.sizes if s >= n)
        cache = self._pool.get()
        try:
            interp = self._interpreter(cache, size)
            for key, (index, dtype, (scale, zero)) in self._in.items():
                x = inputs[key]
                if np.issubdtype(dtype, np.integer) and scale:
                    info = np.iinfo(dtype)
                    x = np.clip(np.round(x / scale + zero), info.min, info.max)
                x = x.astype(dtype, copy=False)
                if size != n:
                    x = np.concatenate([x, np.zeros((size - n, *x.shape[1:]), dtype)])
                interp.set_tensor(index, x)
            interp.invoke()
            out = {}
            for key, (index, dtype, (scale, zero)) in self._out.items():
                y = interp.get_tensor(index)[:n]
                if np.issubdtype(dtype, np.integer) and scale:
                    y = (y.astype(np.float32) - zero) * np.float32(scale)
                out[key] = y
            return out
        finally:
            self._pool.put(cache)


def synthetic_inputs(sig: Signature, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for warmup: uniform 0..1 floats, small ints, 'x' strings; -1 dims become 1."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, spec in sig.inputs.items():
        shape = (batch, *[1 if d < 0 else d for d in spec.shape[1:]])
        if spec.dtype == "string":
            out[name] = np.full(shape, b"x", dtype=object)
        elif spec.dtype == "bool":
            out[name] = rng.integers(0, 2, shape).astype(bool)
        elif np.issubdtype(spec.np_dtype, np.integer):
            out[name] = rng.integers(0, 2, shape).astype(spec.np_dtype)
        else:
            out[name] = rng.random(shape).astype(spec.np_dtype)
    return out


def time_model(fn: Callable[[dict[str, np.ndarray]], Any], inputs: dict[str, np.ndarray],
               iters: int, warm: int = 3) -> list[float]:
    """Seconds per call, after `warm` untimed calls."""
    for _ in range(warm):
        fn(inputs)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - t0)
    return times


@dataclass(slots=True)
class Selection:
    """Which runtime serves, why, and the warmup timings (median ms per batch size)."""

    runtime: str
    reason: str
    timings_ms: dict[str, dict[int, float]] = field(default_factory=dict)


def int8_qualifies(fp32_ms: float, int8_ms: float, fp32_acc: float | None,
                   int8_acc: float | None) -> tuple[bool, str]:
    """The int8 rule: at least as fast here and within 1 point of fp32 holdout accuracy."""
    if fp32_acc is None or int8_acc is None:
        return False, "int8 not served: no holdout accuracy recorded for fp32 and int8"
    point = 0.01 if max(fp32_acc, int8_acc) <= 1.0 else 1.0
    drop = fp32_acc - int8_acc
    if drop > point + 1e-9:
        return False, (f"int8 not served: holdout accuracy {int8_acc} is more than 1 point "
                       f"below fp32 {fp32_acc}")
    if int8_ms > fp32_ms:
        return False, (f"int8 not served: slower on this CPU ({int8_ms:.3f} ms vs fp32 "
                       f"{fp32_ms:.3f} ms)")
    return True, (f"int8 served: {int8_ms:.3f} ms vs fp32 {fp32_ms:.3f} ms, accuracy "
                  f"{int8_acc} vs {fp32_acc}")


def _median_ms(runtime: Runtime, sig: Signature, batches: Iterable[int], iters: int) -> dict[
        int, float]:
    return {b: round(1e3 * statistics.median(
        time_model(runtime.predict, synthetic_inputs(sig, b), iters)), 4) for b in batches}


def load(version_dir: Path, meta: dict[str, Any], *, choice: str, primary_batch: int,
         max_batch: int, num_threads: int, pool_size: int, iters: int = 30) -> tuple[
        Runtime, Selection]:
    """Build the runtime named by `choice` (auto: apply the selection rules)."""
    variants = meta.get("variants", {})
    holdout = meta.get("holdout", {})
    sig = Signature.from_dict(meta["signature"])

    def lite(kind: str) -> TFLiteRuntime | None:
        rel = variants.get(kind.replace("-", "_"))
        if not rel or not (version_dir / rel).is_file():
            return None
        return TFLiteRuntime(version_dir / rel, sig, kind, num_threads=num_threads,
                             max_batch=max_batch, pool_size=pool_size)

    if choice == "savedmodel":
        return SavedModelRuntime(version_dir, intra_op_threads=num_threads), Selection(
            "savedmodel", "configured")
    if choice == "tflite-fp32":
        fp = lite("tflite-fp32")
        if fp is None:
            raise store_mod.ArtifactCorrupt(str(version_dir), "no tflite_fp32 variant")
        return fp, Selection("tflite-fp32", "configured")
    timings: dict[str, dict[int, float]] = {}
    measure = sorted({1, primary_batch})
    candidates: list[Runtime] = [] if choice == "tflite-int8" else [SavedModelRuntime(
        version_dir, intra_op_threads=num_threads)]
    fp_lite = lite("tflite-fp32")
    if fp_lite is not None:
        candidates.append(fp_lite)
    if not candidates:
        candidates.append(SavedModelRuntime(version_dir, intra_op_threads=num_threads))
    for cand in candidates:
        timings[cand.name] = _median_ms(cand, sig, measure, iters)
    fp32 = min(candidates, key=lambda c: timings[c.name][primary_batch])
    reason = f"fastest fp32 runtime at batch {primary_batch}"
    int8 = lite("tflite-int8")
    if int8 is None:
        reason += "; no int8 variant"
    else:
        timings[int8.name] = _median_ms(int8, sig, measure, iters)
        fp_acc = holdout.get(fp32.name.replace("-", "_"), holdout.get("savedmodel"))
        ok, why = int8_qualifies(timings[fp32.name][primary_batch],
                                 timings[int8.name][primary_batch], fp_acc,
                                 holdout.get("tflite_int8"))
        log.info("%s", why)
        if ok:
            return int8, Selection(int8.name, why, timings)
        reason = f"{reason}; {why}"
    return fp32, Selection(fp32.name, reason, timings)
