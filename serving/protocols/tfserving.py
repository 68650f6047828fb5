"""TF Serving REST v1 predict codec: row (`instances`) and columnar (`inputs`) formats."""

from __future__ import annotations

from typing import Any

from serving.protocols.common import ClientError, InferRequest, bad, dumps, parse_json, validate
from serving.runtime import Signature

TF_DTYPE_ENUM = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF",
                 "bfloat16": "DT_BFLOAT16"}


def decode_predict(body: bytes, signatures: dict[str, Signature], default: str, *,
                   max_batch: int, allow_nonfinite: bool) -> tuple[InferRequest, str]:
    """Return the request and its format, "row" or "columnar"."""
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise bad("request body must be a JSON object with 'instances' or 'inputs'")
    sig_name = doc.get("signature_name", default)
    if not isinstance(sig_name, str):
        raise bad("'signature_name' must be a string")
    sig = signatures.get(sig_name)
    if sig is None:
        raise ClientError(404, f"Serving signature name: \"{sig_name}\" not found in "
                               f"signature def (have {sorted(signatures)})")
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if has_rows and has_cols:
        raise bad("request has both 'instances' and 'inputs'; use one")
    if not (has_rows or has_cols):
        raise bad("request needs 'instances' (row format) or 'inputs' (columnar format)")
    extra = set(doc) - {"instances", "inputs", "signature_name"}
    if extra:
        raise bad(f"unknown request field '{sorted(extra)[0]}'")
    names = list(sig.inputs)
    if has_rows:
        values = _rows(doc["instances"], names)
        fmt = "row"
    else:
        cols = doc["inputs"]
        if isinstance(cols, dict) and not (len(cols) == 1 and "b64" in cols):
            values = cols
        elif len(names) == 1:
            values = {names[0]: cols}
        else:
            raise bad(f"'inputs' must be an object keyed by input name {sorted(names)}")
        fmt = "columnar"
    arrays, batch = validate(values, sig, max_batch=max_batch, allow_nonfinite=allow_nonfinite)
    return InferRequest(arrays, batch, sig_name), fmt


def _rows(instances: Any, names: list[str]) -> dict[str, Any]:
    if not isinstance(instances, list):
        raise bad("'instances' must be a list with one element per example")
    if not instances:
        raise bad("'instances' is empty")
    first = instances[0]
    named = isinstance(first, dict) and not (len(first) == 1 and "b64" in first)
    if not named:
        if len(names) != 1:
            raise bad(f"each instance must be an object keyed by input name {sorted(names)}")
        return {names[0]: instances}
    values: dict[str, list[Any]] = {}
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise bad(f"instance {i} is not an object like instance 0")
        if i and inst.keys() != first.keys():
            raise bad(f"instance {i} has inputs {sorted(inst)}, instance 0 has {sorted(first)}")
        for key, val in inst.items():
            values.setdefault(key, []).append(val)
    return values


def encode_predict(outputs: dict[str, Any], fmt: str, batch: int) -> bytes:
    """Row requests get `predictions`, columnar requests `outputs` (TF Serving's rules)."""
    if fmt == "columnar":
        if len(outputs) == 1:
            return dumps({"outputs": next(iter(outputs.values()))})
        return dumps({"outputs": outputs})
    if len(outputs) == 1:
        return dumps({"predictions": next(iter(outputs.values()))})
    return dumps({"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(batch)]})


def status_body(name: str, version: int | None, state: str, error: str, ready: bool) -> dict:
    return {
        "name": name,
        "ready": ready,
        "model_version_status": [{
            "version": str(version or 0),
            "state": state,
            "status": {"error_code": "OK" if not error else "UNKNOWN", "error_message": error},
        }],
    }


def metadata_body(name: str, version: int, signatures: dict[str, Signature]) -> dict:
    def tensor(spec: Any) -> dict[str, Any]:
        return {"dtype": TF_DTYPE_ENUM.get(spec.dtype, "DT_" + spec.dtype.upper()),
                "name": spec.name,
                "tensor_shape": {"dim": [{"size": str(d)} for d in spec.shape],
                                 "unknown_rank": False}}

    defs = {
        s.name: {"inputs": {k: tensor(v) for k, v in s.inputs.items()},
                 "outputs": {k: tensor(v) for k, v in s.outputs.items()},
                 "method_name": "tensorflow/serving/predict"}
        for s in signatures.values()
    }
    return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
            "metadata": {"signature_def": {"signature_def": defs}}}

