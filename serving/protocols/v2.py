"""Open Inference Protocol (KServe V2) REST codec."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from serving.protocols.common import InferRequest, bad, dumps, parse_json, parse_top_k, validate
from serving.runtime import Signature

DATATYPE_DTYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
    "FP32": "float32", "FP64": "float64", "BYTES": "string",
}


def decode_infer(body: bytes, sig: Signature, *, max_batch: int, allow_nonfinite: bool,
                 n_labels: int, header_length: int | None = None) -> InferRequest:
    """Decode a JSON request, or a binary-tensor one (`header_length` = JSON header size)."""
    binary = b""
    if header_length is not None:
        if not 0 < header_length <= len(body):
            raise bad(f"Inference-Header-Content-Length {header_length} does not fit a body "
                      f"of {len(body)} bytes")
        body, binary = body[:header_length], body[header_length:]
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise bad("request body must be a JSON object with 'inputs'")
    tensors = doc.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise bad("'inputs' must be a non-empty list of tensors")
    values: dict[str, Any] = {}
    offset = 0
    for i, t in enumerate(tensors):
        if not isinstance(t, dict):
            raise bad(f"inputs[{i}] must be an object with name, shape, datatype and data")
        name = t.get("name")
        if not isinstance(name, str):
            raise bad(f"inputs[{i}]: 'name' must be a string")
        if name in values:
            raise bad(f"input '{name}' given twice")
        tparams = t.get("parameters") or {}
        if not isinstance(tparams, dict):
            raise bad(f"input '{name}': 'parameters' must be an object")
        for key in ("shape", "datatype") if "binary_data_size" in tparams else (
                "shape", "datatype", "data"):
            if key not in t:
                raise bad(f"input '{name}': missing '{key}'")
        shape = t["shape"]
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise bad(f"input '{name}': 'shape' must be a list of non-negative integers")
        spec = sig.inputs.get(name)
        if spec is not None and t["datatype"] != spec.datatype:
            raise bad(f"input '{name}': expected datatype {spec.datatype}, got {t['datatype']!r}")
        if "binary_data_size" in tparams:
            size = tparams["binary_data_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise bad(f"input '{name}': binary_data_size must be a non-negative integer")
            if offset + size > len(binary):
                raise bad(f"input '{name}': binary_data_size {size} runs past the "
                          f"{len(binary)} bytes of binary data")
            values[name] = (_from_binary(name, binary[offset:offset + size], t["datatype"],
                                         shape), shape)
            offset += size
            continue
        if not isinstance(t["data"], list):
            raise bad(f"input '{name}': 'data' must be a list")
        values[name] = (t["data"], shape)
    if offset != len(binary):
        raise bad(f"{len(binary) - offset} bytes of binary data not claimed by any input")
    arrays_in: dict[str, Any] = {}
    for name, (data, shape) in values.items():
        spec = sig.inputs.get(name)
        if spec is None:
            arrays_in[name] = data  # validate() names the unknown input
            continue
        if isinstance(data, np.ndarray):  # binary input, already typed and shaped
            arrays_in[name] = data
            continue
        flat = _flatten(name, data) if spec.dtype == "string" else data
        try:
            arr = np.asarray(flat) if spec.dtype != "string" else np.array(flat, dtype=object)
        except (ValueError, TypeError, RecursionError):
            raise bad(f"input '{name}': ragged nested 'data'") from None
        if arr.size != math.prod(shape):
            raise bad(f"input '{name}': data has {arr.size} elements, shape "
                      f"{shape} needs {math.prod(shape)}")
        arrays_in[name] = arr.reshape(shape)
    arrays, batch = validate(arrays_in, sig, max_batch=max_batch, allow_nonfinite=allow_nonfinite)
    outputs = None
    if "outputs" in doc:
        req = doc["outputs"]
        if not isinstance(req, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) for o in req):
            raise bad("'outputs' must be a list of objects with a 'name'")
        outputs = [o["name"] for o in req]
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise bad("'parameters' must be an object")
    top_k = parse_top_k(params["top_k"], "parameters", n_labels) if "top_k" in params else 0
    binary_out = {o["name"] for o in doc.get("outputs") or []
                  if isinstance(o.get("parameters"), dict) and o["parameters"].get("binary_data")}
    everything = params.get("binary_data_output") is True
    return InferRequest(arrays, batch, sig.name, outputs, top_k, doc.get("id"),
                        {"binary_outputs": binary_out, "binary_all": everything})


def _from_binary(name: str, raw: bytes, datatype: Any, shape: list[int]) -> Any:
    """Decode one input of Triton's binary tensor extension (little-endian, row-major)."""
    count = math.prod(shape)
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise bad(f"input '{name}': truncated BYTES element length")
            n = int.from_bytes(raw[pos:pos + 4], "little")
            items.append(raw[pos + 4:pos + 4 + n])
            pos += 4 + n
        if pos != len(raw) or len(items) != count:
            raise bad(f"input '{name}': binary BYTES data holds {len(items)} elements, shape "
                      f"{shape} needs {count}")
        return np.array(items, dtype=object).reshape(shape)
    dtype = DATATYPE_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise bad(f"input '{name}': unknown datatype {datatype!r}")
    np_dtype = np.dtype(dtype).newbyteorder("<")
    if len(raw) != count * np_dtype.itemsize:
        raise bad(f"input '{name}': binary data has {len(raw)} bytes, shape {shape} of "
                  f"{datatype} needs {count * np_dtype.itemsize}")
    return np.frombuffer(raw, dtype=np_dtype).reshape(shape).astype(np.dtype(dtype))


def _flatten(name: str, data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def select_outputs(outputs: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    if wanted is None:
        return outputs
    unknown = [w for w in wanted if w not in outputs]
    if unknown:
        raise bad(f"unknown output '{unknown[0]}' (model has {sorted(outputs)})")
    return {w: outputs[w] for w in wanted}


def encode_infer(model: str, version: int, req: InferRequest,
                 outputs: dict[str, Any]) -> tuple[bytes, int | None]:
    """JSON body, or (binary outputs requested) JSON header + raw tensors and its length."""
    tensors = []
    chunks: list[bytes] = []
    binary_out = req.extra.get("binary_outputs", set())
    binary_all = req.extra.get("binary_all", False)
    for name, value in outputs.items():
        as_binary = binary_all or name in binary_out
        if isinstance(value, np.ndarray):
            tensor = {"name": name, "shape": list(value.shape),
                      "datatype": _datatype(value.dtype)}
            if as_binary:
                raw = np.ascontiguousarray(value, value.dtype.newbyteorder("<")).tobytes()
            else:
                tensor["data"] = value.ravel()
        else:  # labels: nested list of str
            arr = np.asarray(value, dtype=object)
            tensor = {"name": name, "shape": list(arr.shape), "datatype": "BYTES"}
            flat = arr.ravel().tolist()
            if as_binary:
                raw = b"".join(len(b).to_bytes(4, "little") + b
                               for b in (x.encode() for x in flat))
            else:
                tensor["data"] = flat
        if as_binary:
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        tensors.append(tensor)
    body: dict[str, Any] = {"model_name": model, "model_version": str(version),
                            "outputs": tensors}
    if req.id is not None:
        body["id"] = req.id
    header = dumps(body)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def _datatype(dtype: np.dtype) -> str:
    for dt, name in DATATYPE_DTYPES.items():
        if name == dtype.name:
            return dt
    return "BYTES"


def metadata_body(model: str, version: int, platform: str, sig: Signature) -> dict[str, Any]:
    def tensor(spec: Any) -> dict[str, Any]:
        return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}

    return {"name": model, "versions": [str(version)], "platform": platform,
            "inputs": [tensor(s) for s in sig.inputs.values()],
            "outputs": [tensor(s) for s in sig.outputs.values()]}
