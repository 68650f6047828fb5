"""The internal request type, client errors, JSON parsing and input validation.

Both codecs decode into `{input name: ndarray}` validated against the model signature
here, so every malformed input is rejected (400, naming the input) before it can reach a
batch.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from serving.runtime import Signature, TensorSpec

OrjsonOpts = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class ClientError(Exception):
    """A request the server refuses; `status` is the HTTP code (4xx, or 503/504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad(message: str) -> ClientError:
    return ClientError(400, message)


@dataclass(slots=True)
class InferRequest:
    """A decoded, validated request: every input shares the batch dimension `batch`."""

    inputs: dict[str, np.ndarray]
    batch: int
    signature: str = "serving_default"
    outputs: list[str] | None = None  # None: every output
    top_k: int = 0
    id: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_json(body: bytes) -> Any:
    """orjson, falling back to `json` for the NaN/Infinity tokens TF Serving accepts."""
    if not body:
        raise bad("malformed JSON: empty request body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise bad(f"malformed JSON: {first}") from None


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=OrjsonOpts)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _decode_strings(value: Any, name: str) -> Any:
    if isinstance(value, np.ndarray):  # V2 hands over its data already shaped
        value = value.tolist()
    if isinstance(value, list):
        return [_decode_strings(v, name) for v in value]
    if isinstance(value, bytes):  # V2 binary BYTES elements
        return value
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise bad(f"input '{name}': invalid base64 ({exc})") from None
    if isinstance(value, str):
        return value.encode()
    raise bad(f"input '{name}': expected string or {{\"b64\": ...}}, got {type(value).__name__}")


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def to_array(name: str, value: Any, spec: TensorSpec, allow_nonfinite: bool) -> np.ndarray:
    """Convert a JSON value to the spec's dtype, refusing lossy or non-numeric input."""
    if spec.dtype == "string":
        arr = np.array(_decode_strings(value, name), dtype=object)
        if arr.dtype != object:
            raise bad(f"input '{name}': ragged or mixed nested list")
        return arr
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError, RecursionError):
        raise bad(f"input '{name}': ragged nested list (rows of different lengths)") from None
    kind = raw.dtype.kind
    want = spec.np_dtype
    if kind in "OUSV" or (kind == "b" and want.kind != "b"):
        got = "nested list of mixed lengths or types" if kind == "O" else (
            "bool" if kind == "b" else "string")
        raise bad(f"input '{name}': expected {spec.dtype} values, got {got}")
    if kind == "f" and want.kind in "iub" and (
            not np.isfinite(raw).all() or (raw != np.floor(raw)).any()):
        raise bad(f"input '{name}': expected {spec.dtype}, got non-integer numbers")
    if want.kind in "iu" and raw.size:
        info = np.iinfo(want)
        if raw.min() < info.min or raw.max() > info.max:
            raise bad(f"input '{name}': values out of range for {spec.dtype}")
    arr = raw.astype(want, copy=False)
    if want.kind == "f" and not allow_nonfinite and not np.isfinite(arr).all():
        raise bad(f"input '{name}': NaN or Infinity not allowed")
    return arr


def check_shape(name: str, arr: np.ndarray, spec: TensorSpec, max_batch: int) -> None:
    expected = spec.shape
    ok = arr.ndim == len(expected) and all(
        e < 0 or e == a for e, a in zip(expected, arr.shape, strict=True)
    )
    if not ok:
        raise bad(f"input '{name}': expected shape {shape_text(expected)} {spec.dtype}, got "
                  f"{shape_text(arr.shape)} {arr.dtype.name if arr.dtype != object else 'string'}")
    if arr.shape[0] == 0:
        raise bad(f"input '{name}': empty batch")
    if arr.shape[0] > max_batch:
        raise bad(f"input '{name}': batch of {arr.shape[0]} exceeds the maximum {max_batch}")


def validate(values: dict[str, Any], sig: Signature, *, max_batch: int,
             allow_nonfinite: bool) -> tuple[dict[str, np.ndarray], int]:
    """Check names, dtypes and shapes; return arrays and the shared batch size."""
    extra = [n for n in values if n not in sig.inputs]
    if extra:
        raise bad(f"unknown input '{extra[0]}' (signature '{sig.name}' expects "
                  f"{sorted(sig.inputs)})")
    missing = [n for n in sig.inputs if n not in values]
    if missing:
        raise bad(f"missing input '{missing[0]}' (signature '{sig.name}' expects "
                  f"{sorted(sig.inputs)})")
    arrays = {}
    for name, spec in sig.inputs.items():
        arr = to_array(name, values[name], spec, allow_nonfinite)
        check_shape(name, arr, spec, max_batch)
        arrays[name] = arr
    batches = {a.shape[0] for a in arrays.values()}
    if len(batches) > 1:
        raise bad(f"inputs must share the batch dimension, got sizes "
                  f"{ {n: a.shape[0] for n, a in arrays.items()} }")
    return arrays, batches.pop()


def parse_top_k(value: Any, where: str, n_labels: int) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise bad(f"{where}: top_k must be an integer, got {value!r}") from None
    if isinstance(value, float) and not value.is_integer() or not 1 <= k <= max(n_labels, 1):
        raise bad(f"{where}: top_k must be between 1 and {n_labels}, got {value!r}")
    if n_labels == 0:
        raise bad(f"{where}: this model has no labels for top_k")
    return k


def apply_top_k(outputs: dict[str, Any], label_output: str, labels: list[str],
                k: int) -> dict[str, Any]:
    """Replace the scores output with `labels` (strings) and `scores`, best first."""
    scores = outputs[label_output]
    idx = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
    top = np.take_along_axis(scores, idx, axis=-1)
    names = np.asarray(labels, dtype=object)[idx].tolist()
    rest = {n: v for n, v in outputs.items() if n != label_output}
    return {**rest, "labels": names, "scores": top}
